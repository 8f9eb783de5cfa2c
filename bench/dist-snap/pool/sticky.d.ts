import type { Backend } from './backend';
import type { BackendPool } from './pool';
/**
 * Cookie affinity, a layer above the strategy (as in Traefik): the cookie holds
 * an opaque token per backend, never its address. Tokens are derived from the
 * pool and backend names, so every replica with the same config agrees on them.
 */
export declare class Sticky {
    #private;
    readonly cookie: string;
    constructor(pool: BackendPool, cookie: string);
    /** The backend a request's cookie header pins it to, if that backend is available now. */
    preferred(cookieHeader: string | undefined): Backend | undefined;
    setCookie(backend: Backend): string;
}
/** Value of cookie `name` in a Cookie header (RFC 6265 §5.4 layout: "a=1; b=2"). */
export declare function readCookie(header: string, name: string): string | undefined;
