import { STATUS_CODES } from 'node:http';
import type { RetriesConfig, RouteConfig } from '../config/types';
import type { BackendPool } from '../pool/pool';
import { HeaderRules, headerRules } from './header-rules';
import { Mirror, type MirrorDeps } from './mirror';
import { Redirect } from './redirect';
import { pathRewriter } from './rewrite';
import { WeightedChoice } from './weighted';

/** A fixed answer (`respond`), made once: status, the whole header list (responseHeaders applied), the body. */
export interface FixedAnswer {
  readonly status: number;
  readonly headers: readonly string[];
  readonly body: Buffer;
}

/** What a route does (SPEC 8: exactly one of pool, pools, redirect, respond). */
export type RouteAction<T> =
  | { readonly kind: 'pool'; readonly target: T }
  | { readonly kind: 'pools'; readonly choice: WeightedChoice<T> }
  | { readonly kind: 'redirect'; readonly redirect: Redirect }
  | { readonly kind: 'respond'; readonly answer: FixedAnswer };

/** A route as a listener runs it: everything a request needs, computed at load. */
export interface CompiledRoute<T> {
  /** Position in the listener's routes (the access log's and traces' route). */
  readonly index: number;
  readonly config: RouteConfig;
  readonly action: RouteAction<T>;
  /** stripPrefix or rewrite; null: the path goes as it came. */
  readonly rewritePath: ((path: string) => string) | null;
  readonly requestRules: HeaderRules | null;
  /** Applied to every answer on this route, Fulcrum's own included. */
  readonly responseRules: HeaderRules | null;
  /** Replaces the pool's retries; undefined: the pool's. */
  readonly retries: RetriesConfig | undefined;
  readonly timeouts: { readonly connectMs?: number; readonly responseMs?: number } | undefined;
  readonly mirror: Mirror | null;
}

export interface RouteDeps<T> {
  /** The target of a pool name the config checked exists. */
  readonly target: (pool: string) => T;
  readonly poolOf: (target: T) => BackendPool;
  readonly random: () => number;
  readonly onMirror: MirrorDeps['onResult'];
}

/** One factory per action, one table: the config's key names the factory. */
const ACTIONS: { readonly [K in RouteAction<unknown>['kind']]: <T>(r: RouteConfig, deps: RouteDeps<T>, rules: HeaderRules | null) => RouteAction<T> } = {
  pool: (r, deps) => ({ kind: 'pool', target: deps.target(r.pool!) }),
  pools: (r, deps) => ({
    kind: 'pools',
    choice: new WeightedChoice(r.pools!.map((p) => ({ target: deps.target(p.pool), weight: p.weight })), deps.random),
  }),
  redirect: (r) => ({ kind: 'redirect', redirect: new Redirect(r.redirect!) }),
  respond: (r, _deps, rules) => ({ kind: 'respond', answer: fixedAnswer(r, rules) }),
};

function actionKind(r: RouteConfig): RouteAction<unknown>['kind'] {
  if (r.pools !== undefined) return 'pools';
  if (r.redirect !== undefined) return 'redirect';
  if (r.respond !== undefined) return 'respond';
  return 'pool';
}

export function compileRoute<T>(r: RouteConfig, index: number, deps: RouteDeps<T>): CompiledRoute<T> {
  const responseRules = headerRules(r.responseHeaders);
  const mirror = r.mirror !== undefined
    ? new Mirror(r.mirror, deps.poolOf(deps.target(r.mirror.pool)), { random: deps.random, onResult: deps.onMirror })
    : null;
  return {
    index,
    config: r,
    action: ACTIONS[actionKind(r)](r, deps, responseRules),
    rewritePath: pathRewriter(r),
    requestRules: headerRules(r.requestHeaders),
    responseRules,
    retries: r.retries,
    timeouts: r.timeouts,
    mirror,
  };
}

function fixedAnswer(r: RouteConfig, rules: HeaderRules | null): FixedAnswer {
  const { status, body, headers } = r.respond!;
  const bytes = Buffer.from(body);
  const hasType = headers.some(([name]) => name.toLowerCase() === 'content-type');
  const list: string[] = [];
  if (!hasType && bytes.length > 0) list.push('content-type', 'text/plain; charset=utf-8');
  for (const [name, value] of headers) list.push(name, value);
  const withLength = status === 204 || status === 304 ? list : [...list, 'content-length', String(bytes.length)];
  return { status, headers: rules === null ? withLength : rules.apply(withLength), body: bytes };
}

/** The header list and one-line body of a redirect to `location`. */
export function redirectAnswer(status: number, location: string): { headers: string[]; body: string } {
  const body = `${(STATUS_CODES[status] ?? 'redirect').toLowerCase()}: ${location}\n`;
  return {
    headers: ['location', location, 'content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body))],
    body,
  };
}
