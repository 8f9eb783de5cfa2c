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
export declare class Router<P> {
    #private;
    constructor(routes: readonly RouteConfig[], resolvePool: (name: string) => P);
    /** First matching route for a Host header value and a request path, or undefined (404). */
    match(hostHeader: string | undefined, path: string): Route<P> | undefined;
}
/** "/v1/users?x=1" without "/v1/" → "/users?x=1"; never returns an empty path. */
export declare function stripPathPrefix(path: string, prefix: string): string;
