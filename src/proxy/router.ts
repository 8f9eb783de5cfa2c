import type { RouteConfig } from '../config/types';

export interface Route<P> {
  readonly host?: string;
  readonly pathPrefix?: string;
  readonly stripPrefix: boolean;
  readonly pool: P;
}

/**
 * Routes of one listener, precomputed into one ordered list per host that any
 * route names (plus the host-less routes in their places) and one list for all
 * other hosts. A request costs a Map lookup and a scan of prefixes: no config
 * parsing, no regexes.
 */
export class Router<P> {
  readonly #byHost = new Map<string, readonly Route<P>[]>();
  readonly #anyHost: readonly Route<P>[];

  constructor(routes: readonly RouteConfig[], resolvePool: (name: string) => P) {
    const all: Route<P>[] = routes.map((r) => ({
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
  match(hostHeader: string | undefined, path: string): Route<P> | undefined {
    const list = this.#byHost.size === 0 ? this.#anyHost : (this.#byHost.get(hostOnly(hostHeader)) ?? this.#anyHost);
    for (let i = 0; i < list.length; i++) {
      const r = list[i];
      if (r.pathPrefix === undefined || path.startsWith(r.pathPrefix)) return r;
    }
    return undefined;
  }
}

/** "API.example.com:8080" → "api.example.com"; "[::1]:80" → "[::1]". */
function hostOnly(host: string | undefined): string {
  if (host === undefined) return '';
  let end = host.length;
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && host.indexOf(']', colon) === -1) end = colon;
  const h = end === host.length ? host : host.slice(0, end);
  return h.toLowerCase();
}

/** "/v1/users?x=1" without "/v1/" → "/users?x=1"; never returns an empty path. */
export function stripPathPrefix(path: string, prefix: string): string {
  const rest = path.slice(prefix.length);
  if (rest === '') return '/';
  return rest.charCodeAt(0) === 47 /* / */ || rest.charCodeAt(0) === 63 /* ? */
    ? (rest.charCodeAt(0) === 63 ? `/${rest}` : rest)
    : `/${rest}`;
}
