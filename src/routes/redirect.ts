import type { RedirectConfig } from '../config/types';

const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443 };

/** An authority as a client may send it in Host: a name or bracketed IPv6 address, and a port. */
const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::(\d{1,5}))?$/;

/**
 * `redirect` (SPEC 8.1): each part given replaces that part of the request's
 * URL; the query string is kept. A scheme given without a port takes that
 * scheme's default port; a default port is never written. The Location is
 * absolute.
 */
export class Redirect {
  readonly status: number;
  readonly #config: RedirectConfig;

  constructor(config: RedirectConfig) {
    this.#config = config;
    this.status = config.status;
  }

  /**
   * The Location for a request that came over `proto` with this Host (or
   * :authority) and origin-form target; undefined when the Host is no
   * authority (the client gets a 400, not a Location built from junk).
   */
  location(proto: 'http' | 'https', authority: string, target: string): string | undefined {
    const m = AUTHORITY.exec(authority);
    if (m === null) return undefined;
    const c = this.#config;
    const scheme = c.scheme ?? proto;
    const host = c.host ?? m[1]!.toLowerCase();
    let port = c.port ?? (c.scheme !== undefined || m[2] === undefined ? undefined : Number(m[2]));
    if (port === DEFAULT_PORT[scheme]) port = undefined;
    const q = target.indexOf('?');
    const path = c.path ?? (q === -1 ? target : target.slice(0, q));
    const query = q === -1 ? '' : target.slice(q);
    return `${scheme}://${host}${port !== undefined ? `:${port}` : ''}${path}${query}`;
  }
}
