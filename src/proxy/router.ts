import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig, RouteMatchConfig, ValueMatchConfig } from '../config/types';

/** A header or query condition, compiled. */
interface Condition {
  readonly name: string;
  readonly exact: string | undefined;
  readonly regex: RegExp | undefined;
}

/** One route's conditions, compiled at load, and what the listener made of the route. */
interface Entry<R> {
  /** Position in the file: candidates from several index lists are tried in this order. */
  readonly index: number;
  readonly route: R;
  readonly hosts: readonly string[] | undefined;
  /** No condition but the host: the route matches every request that reaches it. */
  readonly always: boolean;
  readonly path: string | undefined;
  readonly prefix: string | undefined;
  readonly regex: RegExp | undefined;
  readonly methods: ReadonlySet<string> | null;
  /** Exact conditions first, regexes last: a regex runs only once everything cheaper held. */
  readonly headers: readonly Condition[] | null;
  readonly query: readonly Condition[] | null;
}

/**
 * Routes of one listener, precomputed (SPEC 8.1: first match wins).
 *
 * By host: one table per host that any route names (the host-less routes in
 * their places), one for every other host, and tables for hosts that only a
 * wildcard covers, made on first sight and cached (bounded).
 *
 * Within a table, by path: a route whose path condition fixes the request's
 * first segment ("/v1/" of pathPrefix "/v1/users", of pathRegex
 * "^/v1/users/[0-9]+$", of path "/v1/health") is filed under that segment,
 * an exact path under the path itself; the rest (no path condition, or one
 * shorter than a segment) are candidates for every request. A request costs
 * a Map lookup for its host, one for its path, one for its first segment,
 * then the conditions of those candidates only, in file order: 100 routes cost
 * what the few that could match cost, and a regex runs only on a request it
 * could match.
 */
export class Router<R> {
  readonly #all: readonly Entry<R>[];
  readonly #byHost = new Map<string, Table<R>>();
  readonly #anyHost: Table<R>;
  /** Every route applies to every host: no host lookup at all. */
  readonly #hostless: boolean;
  /** Some route names "*.example.com": hosts not named exactly are resolved once, then cached. */
  readonly #wildcards: boolean;

  constructor(routes: readonly RouteConfig[], compile: (route: RouteConfig, index: number) => R) {
    const all = routes.map((r, i) => entry(r.match, i, compile(r, i)));
    this.#all = all;
    this.#anyHost = new Table(all.filter((e) => e.hosts === undefined));
    this.#hostless = this.#anyHost.size === all.length;
    this.#wildcards = all.some((e) => e.hosts?.some((h) => h.startsWith('*.')) === true);
    for (const e of all) {
      for (const h of e.hosts ?? []) {
        if (!h.startsWith('*.') && !this.#byHost.has(h)) this.#byHost.set(h, this.#tableFor(h));
      }
    }
  }

  /** Routes that apply to `host`, in config order: host-less ones, exact ones, wildcards that cover it. */
  #tableFor(host: string): Table<R> {
    return new Table(this.#all.filter((e) => e.hosts === undefined || e.hosts.some((h) => h === host
      || (h.startsWith('*.') && host.length > h.length - 1 && host.endsWith(h.slice(1))))));
  }

  #table(host: string): Table<R> {
    const known = this.#byHost.get(host);
    if (known !== undefined) return known;
    if (!this.#wildcards) return this.#anyHost;
    // Bounded: a client inventing Host values cannot grow this without limit.
    if (this.#byHost.size >= 10_000) this.#byHost.clear();
    const table = this.#tableFor(host);
    this.#byHost.set(host, table);
    return table;
  }

  /** The first route whose match holds for this request, or undefined (404). */
  match(hostHeader: string | undefined, path: string, method: string, headers: IncomingHttpHeaders): R | undefined {
    const table = this.#hostless ? this.#anyHost : this.#table(hostOnly(hostHeader));
    return table.find(path, method, headers);
  }
}

/** The routes that apply to one host, indexed by path. */
class Table<R> {
  readonly size: number;
  /** Exact paths → routes; null when no route of this table has one. */
  readonly #exact: Map<string, Entry<R>[]> | null;
  /** First path segments ("/v1/") → routes; null when no route fixes one. */
  readonly #segments: Map<string, Entry<R>[]> | null;
  /** Candidates for every request. */
  readonly #rest: readonly Entry<R>[];

  constructor(entries: readonly Entry<R>[]) {
    this.size = entries.length;
    const exact = new Map<string, Entry<R>[]>();
    const segments = new Map<string, Entry<R>[]>();
    const rest: Entry<R>[] = [];
    for (const e of entries) {
      if (e.path !== undefined) {
        push(exact, e.path, e);
        continue;
      }
      const literal = e.prefix ?? (e.regex !== undefined ? literalPrefix(e.regex.source) : undefined);
      const segment = literal === undefined || literal.includes('?') ? undefined : firstSegmentOf(literal);
      if (segment !== undefined) push(segments, segment, e);
      else rest.push(e);
    }
    this.#exact = exact.size > 0 ? exact : null;
    this.#segments = segments.size > 0 ? segments : null;
    this.#rest = rest;
  }

  find(path: string, method: string, headers: IncomingHttpHeaders): R | undefined {
    const rest = this.#rest;
    if (this.#exact === null && this.#segments === null) {
      for (let i = 0; i < rest.length; i++) {
        const e = rest[i];
        if (e.always || holds(e, path, method, headers)) return e.route;
      }
      return undefined;
    }
    const q = path.indexOf('?');
    const pathOnly = q === -1 ? path : path.slice(0, q);
    const a = this.#exact?.get(pathOnly);
    const s = pathOnly.indexOf('/', 1);
    const b = this.#segments?.get(s === -1 ? pathOnly : pathOnly.slice(0, s + 1));
    // Three lists, each in file order: the candidates are tried merged, in file order.
    let i = 0;
    let j = 0;
    let k = 0;
    const na = a === undefined ? 0 : a.length;
    const nb = b === undefined ? 0 : b.length;
    for (;;) {
      const ea = i < na ? a![i] : undefined;
      const eb = j < nb ? b![j] : undefined;
      const ec = k < rest.length ? rest[k] : undefined;
      let e = ea;
      if (eb !== undefined && (e === undefined || eb.index < e.index)) e = eb;
      if (ec !== undefined && (e === undefined || ec.index < e.index)) e = ec;
      if (e === undefined) return undefined;
      if (e === ea) i++;
      else if (e === eb) j++;
      else k++;
      if (e.always || holds(e, path, method, headers)) return e.route;
    }
  }
}

function push<R>(m: Map<string, Entry<R>[]>, key: string, e: Entry<R>): void {
  const list = m.get(key);
  if (list === undefined) m.set(key, [e]);
  else list.push(e);
}

/** "/v1/users" → "/v1/"; "/v1" → undefined (it does not fix the first segment). */
function firstSegmentOf(literal: string): string | undefined {
  const s = literal.indexOf('/', 1);
  return s === -1 ? undefined : literal.slice(0, s + 1);
}

/**
 * The text every match of an anchored regex starts with: "^/v1/users/[0-9]+$"
 * → "/v1/users/". undefined when there is none to rely on (no "^", an
 * alternation anywhere, or nothing literal before the first operator).
 */
export function literalPrefix(source: string): string | undefined {
  if (!source.startsWith('^') || source.includes('|')) return undefined;
  let out = '';
  for (let i = 1; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const next = source[i + 1];
      // An escaped punctuation character is itself; \d, \w, \b... are classes or assertions.
      if (next === undefined || /[A-Za-z0-9]/.test(next)) break;
      out += next;
      i++;
      continue;
    }
    if ('*+?{'.includes(c)) {
      // The quantifier applies to the last character: it may be absent (or repeated).
      out = out.slice(0, -1);
      break;
    }
    if ('.^$()[]|'.includes(c)) break;
    out += c;
  }
  return out.startsWith('/') ? out : undefined;
}

function compileValues(list: readonly ValueMatchConfig[] | undefined): Condition[] | null {
  if (list === undefined || list.length === 0) return null;
  const exact = list.filter((v) => v.regex === undefined).map((v) => ({ name: v.name, exact: v.exact, regex: undefined }));
  const regex = list.filter((v) => v.regex !== undefined).map((v) => ({ name: v.name, exact: undefined, regex: new RegExp(v.regex!) }));
  return [...exact, ...regex];
}

function entry<R>(m: RouteMatchConfig, index: number, route: R): Entry<R> {
  const methods = m.methods !== undefined ? new Set(m.methods) : null;
  const headers = compileValues(m.headers);
  const query = compileValues(m.query);
  return {
    index,
    route,
    hosts: m.hosts,
    always: m.path === undefined && m.pathPrefix === undefined && m.pathRegex === undefined
      && methods === null && headers === null && query === null,
    path: m.path,
    prefix: m.pathPrefix,
    regex: m.pathRegex !== undefined ? new RegExp(m.pathRegex) : undefined,
    methods,
    headers,
    query,
  };
}

/** Every condition of `e` holds; cheapest first. */
function holds<R>(e: Entry<R>, path: string, method: string, headers: IncomingHttpHeaders): boolean {
  if (e.methods !== null && !e.methods.has(method)) return false;
  if (e.prefix !== undefined && !path.startsWith(e.prefix)) return false;
  if (e.path !== undefined || e.regex !== undefined) {
    const q = path.indexOf('?');
    const pathOnly = q === -1 ? path : path.slice(0, q);
    if (e.path !== undefined && pathOnly !== e.path) return false;
    if (e.regex !== undefined && !e.regex.test(pathOnly)) return false;
  }
  if (e.headers !== null) {
    for (const c of e.headers) if (!valueHolds(c, headers[c.name])) return false;
  }
  if (e.query !== null) {
    const q = path.indexOf('?');
    // WHATWG form decoding: "+" is a space, %-escapes are decoded (a malformed one is kept as written).
    const params = new URLSearchParams(q === -1 ? '' : path.slice(q + 1));
    for (const c of e.query) if (!valueHolds(c, params.getAll(c.name))) return false;
  }
  return true;
}

/** A header's value as node:http joins repeats (", "); Set-Cookie and query parameters as lists: any one may hold. */
function valueHolds(c: Condition, v: string | readonly string[] | undefined): boolean {
  if (v === undefined) return false;
  if (typeof v === 'string') return c.regex !== undefined ? c.regex.test(v) : v === c.exact;
  for (const one of v) if (c.regex !== undefined ? c.regex.test(one) : one === c.exact) return true;
  return false;
}

/** "API.example.com:8080" → "api.example.com"; "[::1]:80" → "[::1]". */
export function hostOnly(host: string | undefined): string {
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
