import { createHmac } from 'node:crypto';
import type { Backend } from './backend';
import type { BackendPool } from './pool';

/**
 * Cookie affinity, a layer above the strategy (as in Traefik): the cookie holds
 * an opaque token per backend, never its address. A token is an HMAC of the
 * pool and backend names under a key: `sticky.secret` when the config has one
 * (replicas that must agree share it), else the running Fulcrum's own random
 * key (the same in all its workers and across reloads). A plain hash of the
 * names would not do: a backend's default name is its address, and the
 * addresses of a /24 can be hashed in milliseconds to find the one that fits.
 */
export class Sticky {
  readonly cookie: string;
  readonly #pool: BackendPool;
  readonly #byToken = new Map<string, Backend>();
  readonly #setCookie = new Map<Backend, string>();
  readonly #key: string | Buffer;

  constructor(pool: BackendPool, cookie: string, key: string | Buffer) {
    this.cookie = cookie;
    this.#pool = pool;
    this.#key = key;
    for (const b of pool.backends) this.#remember(b);
    // DNS discovery adds and removes backends at run time.
    pool.onMembership((b, change) => {
      if (change === 'added') this.#remember(b);
      else this.#forget(b);
    });
  }

  /** The backend a request's cookie header pins it to, if that backend is available now. */
  preferred(cookieHeader: string | undefined): Backend | undefined {
    if (cookieHeader === undefined) return undefined;
    const token = readCookie(cookieHeader, this.cookie);
    if (token === undefined) return undefined;
    const b = this.#byToken.get(token);
    return b !== undefined && this.#pool.available.includes(b) ? b : undefined;
  }

  setCookie(backend: Backend): string {
    return this.#setCookie.get(backend) ?? this.#remember(backend);
  }

  #remember(b: Backend): string {
    const token = createHmac('sha256', this.#key).update(`fulcrum:${this.#pool.name}:${b.name}`).digest('base64url').slice(0, 16);
    const header = `${this.cookie}=${token}; Path=/; HttpOnly; SameSite=Lax`;
    this.#byToken.set(token, b);
    this.#setCookie.set(b, header);
    return header;
  }

  #forget(b: Backend): void {
    const header = this.#setCookie.get(b);
    if (header === undefined) return;
    this.#setCookie.delete(b);
    this.#byToken.delete(header.slice(this.cookie.length + 1, header.indexOf(';')));
  }
}

/** Value of cookie `name` in a Cookie header (RFC 6265 §5.4 layout: "a=1; b=2"). */
export function readCookie(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      return header.slice(eq + 1, end).trim();
    }
    start = end + 1;
  }
  return undefined;
}
