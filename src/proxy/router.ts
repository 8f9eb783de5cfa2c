import type { RouteConfig } from '../config/types';
import { RouteAccess } from '../access';
import { Compression } from '../compress';

export interface Route<P> {
  readonly host?: string;
  readonly pathPrefix?: string;
  readonly stripPrefix: boolean;
  readonly pool: P;
  /** SPEC 8.3, precomputed; null: no check (one null test per request). */
  readonly access: RouteAccess | null;
  /** SPEC 8.5, precomputed; null: answers pass as they are. */
  readonly compress: Compression | null;
}

/**
 * Routes of one listener, precomputed into one ordered list per host that any
 * route names (plus the host-less routes in their places) and one list for all
 * other hosts. A request costs a Map lookup and a scan of prefixes: no config
 * parsing, no regexes.
 */
export class Router<P> {
  readonly #all: readonly Route<P>[];
  readonly #byHost = new Map<string, readonly Route<P>[]>();
  readonly #anyHost: readonly Route<P>[];
  /** Some route names "*.example.com": hosts not named exactly are resolved once, then cached. */
  readonly #wildcards: boolean;

  constructor(routes: readonly RouteConfig[], resolvePool: (name: string) => P) {
    const all: Route<P>[] = routes.map((r) => ({
      host: r.host,
      pathPrefix: r.pathPrefix,
      stripPrefix: r.stripPrefix,
      pool: resolvePool(r.pool),
      access: r.access !== undefined ? new RouteAccess(r.access) : null,
      compress: r.compress !== undefined ? new Compression(r.compress) : null,
    }));
    this.#all = all;
    this.#anyHost = all.filter((r) => r.host === undefined);
    this.#wildcards = all.some((r) => r.host?.startsWith('*.') === true);
    for (const r of all) {
      if (r.host !== undefined && !r.host.startsWith('*.') && !this.#byHost.has(r.host)) {
        this.#byHost.set(r.host, this.#routesFor(r.host));
      }
    }
  }

  /** Routes that apply to `host`, in config order: host-less ones, exact ones, wildcards that cover it. */
  #routesFor(host: string): readonly Route<P>[] {
    return this.#all.filter((r) => r.host === undefined || r.host === host
      || (r.host.startsWith('*.') && host.length > r.host.length - 1 && host.endsWith(r.host.slice(1))));
  }

  #listFor(host: string): readonly Route<P>[] {
    const known = this.#byHost.get(host);
    if (known !== undefined) return known;
    if (!this.#wildcards) return this.#anyHost;
    // Bounded: a client inventing Host values cannot grow this without limit.
    if (this.#byHost.size >= 10_000) this.#byHost.clear();
    const list = this.#routesFor(host);
    this.#byHost.set(host, list);
    return list;
  }

  /** First matching route for a Host header value and a request path, or undefined (404). */
  match(hostHeader: string | undefined, path: string): Route<P> | undefined {
    const list = this.#all.length === this.#anyHost.length ? this.#anyHost : this.#listFor(hostOnly(hostHeader));
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
