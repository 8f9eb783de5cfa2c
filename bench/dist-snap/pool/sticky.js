"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.Sticky = void 0;
exports.readCookie = readCookie;
const node_crypto_1 = require("node:crypto");
/**
 * Cookie affinity, a layer above the strategy (as in Traefik): the cookie holds
 * an opaque token per backend, never its address. Tokens are derived from the
 * pool and backend names, so every replica with the same config agrees on them.
 */
class Sticky {
    cookie;
    #pool;
    #byToken = new Map();
    #setCookie = new Map();
    constructor(pool, cookie) {
        this.cookie = cookie;
        this.#pool = pool;
        for (const b of pool.backends) {
            const token = (0, node_crypto_1.createHash)('sha256').update(`fulcrum:${pool.name}:${b.name}`).digest('base64url').slice(0, 16);
            this.#byToken.set(token, b);
            this.#setCookie.set(b, `${cookie}=${token}; Path=/; HttpOnly; SameSite=Lax`);
        }
    }
    /** The backend a request's cookie header pins it to, if that backend is available now. */
    preferred(cookieHeader) {
        if (cookieHeader === undefined)
            return undefined;
        const token = readCookie(cookieHeader, this.cookie);
        if (token === undefined)
            return undefined;
        const b = this.#byToken.get(token);
        return b !== undefined && this.#pool.available.includes(b) ? b : undefined;
    }
    setCookie(backend) {
        return this.#setCookie.get(backend);
    }
}
exports.Sticky = Sticky;
/** Value of cookie `name` in a Cookie header (RFC 6265 §5.4 layout: "a=1; b=2"). */
function readCookie(header, name) {
    let start = 0;
    while (start < header.length) {
        let end = header.indexOf(';', start);
        if (end === -1)
            end = header.length;
        const eq = header.indexOf('=', start);
        if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
            return header.slice(eq + 1, end).trim();
        }
        start = end + 1;
    }
    return undefined;
}
//# sourceMappingURL=sticky.js.map