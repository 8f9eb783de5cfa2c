"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.Router = void 0;
exports.stripPathPrefix = stripPathPrefix;
/**
 * Routes of one listener, precomputed into one ordered list per host that any
 * route names (plus the host-less routes in their places) and one list for all
 * other hosts. A request costs a Map lookup and a scan of prefixes: no config
 * parsing, no regexes.
 */
class Router {
    #byHost = new Map();
    #anyHost;
    constructor(routes, resolvePool) {
        const all = routes.map((r) => ({
            host: r.host,
            pathPrefix: r.pathPrefix,
            stripPrefix: r.stripPrefix,
            pool: resolvePool(r.pool),
        }));
        this.#anyHost = all.filter((r) => r.host === undefined);
        for (const r of all) {
            if (r.host !== undefined && !this.#byHost.has(r.host)) {
                this.#byHost.set(r.host, all.filter((x) => x.host === undefined || x.host === r.host));
            }
        }
    }
    /** First matching route for a Host header value and a request path, or undefined (404). */
    match(hostHeader, path) {
        const list = this.#byHost.size === 0 ? this.#anyHost : (this.#byHost.get(hostOnly(hostHeader)) ?? this.#anyHost);
        for (let i = 0; i < list.length; i++) {
            const r = list[i];
            if (r.pathPrefix === undefined || path.startsWith(r.pathPrefix))
                return r;
        }
        return undefined;
    }
}
exports.Router = Router;
/** "API.example.com:8080" → "api.example.com"; "[::1]:80" → "[::1]". */
function hostOnly(host) {
    if (host === undefined)
        return '';
    let end = host.length;
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && host.indexOf(']', colon) === -1)
        end = colon;
    const h = end === host.length ? host : host.slice(0, end);
    return h.toLowerCase();
}
/** "/v1/users?x=1" without "/v1/" → "/users?x=1"; never returns an empty path. */
function stripPathPrefix(path, prefix) {
    const rest = path.slice(prefix.length);
    if (rest === '')
        return '/';
    return rest.charCodeAt(0) === 47 /* / */ || rest.charCodeAt(0) === 63 /* ? */
        ? (rest.charCodeAt(0) === 63 ? `/${rest}` : rest)
        : `/${rest}`;
}
//# sourceMappingURL=router.js.map