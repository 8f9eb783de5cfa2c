/**
 * Routes in the config file (SPEC section 8): the keys of one route, their
 * value parsers, the checks that span keys (one action, a pool that exists,
 * rewrite or stripPrefix), and the route as types.ts has it. schema.ts,
 * checks.ts and normalise.ts each call in here once.
 */
import http from 'node:http';
import { z } from 'zod';
import safeRegex from 'safe-regex2';
import { int, leaf, oneOf, strict } from './builders';
import { show } from './units';
import type { CrossProblem, PathSegment } from './checks';
import type { HeaderRulesConfig, RetryCondition, RouteConfig, RouteMatchConfig, ValueMatchConfig } from './types';
import { Invalid, durationValue, matchHost, retryCondition, sizeValue } from './values';

/** RFC 9110 §5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 9110 §7.6.1: never forwarded, so a rule cannot set them (and Fulcrum writes the framing itself). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/** The methods a route can name: those Fulcrum forwards (CONNECT is refused before routing). */
const METHODS: readonly string[] = http.METHODS.filter((m) => m !== 'CONNECT');

const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;

/** The actions of SPEC 8: exactly one per route. */
const ACTIONS = ['pool', 'pools', 'redirect', 'respond'] as const;

/** Keys that only mean something when the route forwards to a pool. */
const FORWARDING_ONLY = ['rewrite', 'requestHeaders', 'timeouts', 'retries', 'mirror'] as const;

/**
 * A JavaScript regex, compiled now. safe-regex2 refuses sources whose star
 * height is above one (`(a+)+`, `(a*)*b`): the shape that backtracks
 * exponentially on a crafted request.
 */
export function regexSource(v: unknown): string | Invalid {
  if (typeof v !== 'string' || v === '') return new Invalid(`expected a regular expression, got ${show(v)}`);
  try {
    new RegExp(v);
  } catch (err) {
    return new Invalid(`invalid regular expression ${show(v)}: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
  if (!safeRegex(v)) {
    return new Invalid(`regular expression ${show(v)} could take super-linear time on a crafted request (nested quantifiers such as (a+)+): rewrite it without them`);
  }
  return v;
}

/** An exact path: starts with "/", no query string. */
export function exactPath(v: unknown): string | Invalid {
  if (typeof v !== 'string' || !v.startsWith('/')) return new Invalid(`path must start with "/", got ${show(v)}`);
  if (v.includes('?') || v.includes('#')) return new Invalid(`path ${show(v)} must not hold a query string or fragment`);
  return v;
}

/** `host: a.example.com` or a list of hosts. */
function matchHosts(v: unknown): string[] | Invalid {
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) return new Invalid('match.host needs at least one host');
  const out: string[] = [];
  for (const item of items) {
    const h = matchHost(item);
    if (h instanceof Invalid) return h;
    out.push(h);
  }
  return out;
}

function method(v: unknown): string | Invalid {
  if (typeof v === 'string' && METHODS.includes(v)) return v;
  if (typeof v === 'string' && METHODS.includes(v.toUpperCase())) return new Invalid(`methods are case-sensitive: write ${v.toUpperCase()}, not ${show(v)}`);
  return new Invalid(`unknown method ${show(v)}: expected one such as GET, HEAD, POST, PUT, DELETE`);
}

/** YAML types `1` and `true`; a header or query value is text either way. */
function scalarText(v: unknown): string | Invalid {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return new Invalid(`expected a string, got ${show(v)}`);
}

/** An exact value, or `{ regex: SOURCE }`. */
function valueMatch(v: unknown): { exact: string } | { regex: string } | Invalid {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length !== 1 || keys[0] !== 'regex') return new Invalid(`expected an exact value or { regex: ... }, got a map with ${keys.map((k) => JSON.stringify(k)).join(', ') || 'no keys'}`);
    const r = regexSource((v as { regex: unknown }).regex);
    return r instanceof Invalid ? r : { regex: r };
  }
  const s = scalarText(v);
  return s instanceof Invalid ? new Invalid(`expected an exact value or { regex: ... }, got ${show(v)}`) : { exact: s };
}

function redirectStatus(v: unknown): number | Invalid {
  return typeof v === 'number' && (REDIRECT_STATUSES as readonly number[]).includes(v)
    ? v
    : new Invalid(`redirect status must be one of ${REDIRECT_STATUSES.join(', ')}, got ${show(v)}`);
}

/** A host name or address for a Location: no port (that is `port`), no path. */
function redirectHost(v: unknown): string | Invalid {
  if (typeof v === 'string' && /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])$/.test(v)) return v.toLowerCase();
  return new Invalid(`invalid redirect host ${show(v)}: expected a host name such as www.example.com (the port is "port")`);
}

const positiveDuration = leaf((v) => durationValue(v, true));
const headerValues = z.record(z.string(), leaf(scalarText));

const headerRules = strict({
  remove: z.array(z.string()).default([]),
  set: headerValues.default({}),
  add: headerValues.default({}),
});

/** `retries` of a pool and of a route: the same block, with the same defaults (README "retries"). */
export const retriesSchema = strict({
  attempts: int(0, 100).default(1),
  // A request cut on a stale keep-alive socket is sent again whatever this
  // says (src/proxy/exchange.ts), so the default stays HAProxy's.
  on: z.array(leaf(retryCondition)).default(['connect-failure']),
});

export const routeSchema = strict({
  match: strict({
    host: leaf(matchHosts).optional(),
    path: leaf(exactPath).optional(),
    pathPrefix: leaf((v) => (typeof v === 'string' && v.startsWith('/') ? v : new Invalid(`path must start with "/", got ${show(v)}`))).optional(),
    pathRegex: leaf(regexSource).optional(),
    methods: z.array(leaf(method)).min(1).optional(),
    headers: z.record(z.string(), leaf(valueMatch)).optional(),
    query: z.record(z.string(), leaf(valueMatch)).optional(),
  }).optional(),
  pool: z.string().min(1).optional(),
  pools: z.array(strict({ pool: z.string().min(1), weight: int(0, 10_000).default(1) })).min(1).optional(),
  redirect: strict({
    scheme: oneOf('redirect scheme', ['http', 'https'] as const).optional(),
    host: leaf(redirectHost).optional(),
    port: int(1, 65_535).optional(),
    path: leaf(exactPath).optional(),
    status: leaf(redirectStatus).default(302),
  }).optional(),
  respond: strict({
    status: int(200, 599),
    body: z.string().default(''),
    headers: headerValues.default({}),
  }).optional(),
  stripPrefix: z.boolean().default(false),
  rewrite: strict({
    pathRegex: leaf(regexSource).optional(),
    replacement: z.string().optional(),
    path: leaf(exactPath).optional(),
  }).optional(),
  requestHeaders: headerRules.optional(),
  responseHeaders: headerRules.optional(),
  timeouts: strict({ connect: positiveDuration.optional(), response: positiveDuration.optional() }).optional(),
  retries: retriesSchema.optional(),
  mirror: strict({
    pool: z.string().min(1),
    percent: z.number().min(0).max(100).default(100),
    maxBodySize: leaf(sizeValue).default(64 * 1024),
  }).optional(),
});

type RouteFile = z.output<typeof routeSchema>;

// ---- cross-key checks -------------------------------------------------------

type RawMap = Record<string, unknown>;

function isMap(v: unknown): v is RawMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The rules across the keys of one route; `at` is the route's path in the file, `pools` the file's pools (undefined when that part is broken). */
export function routeProblems(r: unknown, at: readonly PathSegment[], pools: RawMap | undefined): CrossProblem[] {
  const problems: CrossProblem[] = [];
  if (!isMap(r)) return problems;
  const add = (path: readonly PathSegment[], message: string, atKey = false) => problems.push({ path: [...at, ...path], message, ...(atKey ? { atKey } : {}) });
  const knownPool = (name: unknown, path: readonly PathSegment[], what: string) => {
    if (pools === undefined || typeof name !== 'string' || name === '' || Object.hasOwn(pools, name)) return;
    const known = Object.keys(pools);
    add(path, `${what} points to unknown pool ${JSON.stringify(name)}${known.length > 0 ? ` (pools: ${known.join(', ')})` : ''}`);
  };

  const actions = ACTIONS.filter((k) => r[k] !== undefined);
  if (actions.length === 0) {
    add([], 'a route needs exactly one of pool, pools, redirect, respond');
  } else if (actions.length > 1) {
    add([actions[1]!], `a route does exactly one thing: it has both ${actions[0]} and ${actions[1]} (keep one of pool, pools, redirect, respond)`, true);
  }
  knownPool(r.pool, ['pool'], 'route');
  if (Array.isArray(r.pools)) {
    const seen = new Set<string>();
    let total = 0;
    r.pools.forEach((p, i) => {
      if (!isMap(p)) return;
      knownPool(p.pool, ['pools', i, 'pool'], 'pools entry');
      if (typeof p.pool === 'string') {
        if (seen.has(p.pool)) add(['pools', i, 'pool'], `pool ${JSON.stringify(p.pool)} is listed twice: give it one entry with the sum of the weights`);
        seen.add(p.pool);
      }
      total += typeof p.weight === 'number' ? p.weight : p.weight === undefined ? 1 : NaN;
    });
    if (total === 0) add(['pools'], 'every weight is 0: at least one pool must take requests');
  }

  const forwards = actions.length === 1 && (actions[0] === 'pool' || actions[0] === 'pools');
  if (actions.length === 1 && !forwards) {
    for (const key of FORWARDING_ONLY) {
      if (r[key] !== undefined) add([key], `${key} only applies to a route that forwards (pool or pools), not to ${actions[0]}`, true);
    }
    if (r.stripPrefix === true) add(['stripPrefix'], `stripPrefix only applies to a route that forwards (pool or pools), not to ${actions[0]}`);
  }

  if (isMap(r.match)) {
    const paths = (['path', 'pathPrefix', 'pathRegex'] as const).filter((k) => r.match && (r.match as RawMap)[k] !== undefined);
    if (paths.length > 1) add(['match', paths[1]!], `use one of path, pathPrefix, pathRegex (this match has ${paths.join(' and ')})`, true);
    for (const part of ['headers', 'query'] as const) {
      const m = (r.match as RawMap)[part];
      if (part === 'headers' && isMap(m)) {
        for (const name of Object.keys(m)) if (!TOKEN.test(name)) add(['match', part, name], `invalid header name ${JSON.stringify(name)}`, true);
      }
    }
  }

  if (isMap(r.rewrite)) {
    const w = r.rewrite;
    if (r.stripPrefix === true) add(['rewrite'], 'rewrite cannot be used with stripPrefix: true (rewrite the whole path instead)', true);
    if (w.path !== undefined && (w.pathRegex !== undefined || w.replacement !== undefined)) {
      add(['rewrite'], 'rewrite is either { path } or { pathRegex, replacement }, not both');
    } else if (w.path === undefined && (w.pathRegex === undefined || w.replacement === undefined)) {
      add(['rewrite'], 'rewrite needs { path: /fixed } or both pathRegex and replacement');
    }
  }

  for (const side of ['requestHeaders', 'responseHeaders'] as const) {
    const rules = r[side];
    if (!isMap(rules)) continue;
    if (Array.isArray(rules.remove)) {
      rules.remove.forEach((name, i) => {
        if (typeof name !== 'string') return;
        if (!TOKEN.test(name)) add([side, 'remove', i], `invalid header name ${JSON.stringify(name)}`);
        else if (name.toLowerCase() === 'content-length') add([side, 'remove', i], 'content-length cannot be removed: Fulcrum frames the message itself');
      });
    }
    for (const op of ['set', 'add'] as const) {
      const m = rules[op];
      if (!isMap(m)) continue;
      for (const name of Object.keys(m)) {
        const problem = headerNameProblem(name, op);
        if (problem !== undefined) add([side, op, name], problem, true);
      }
    }
  }

  if (isMap(r.respond) && isMap(r.respond.headers)) {
    for (const name of Object.keys(r.respond.headers)) {
      const problem = headerNameProblem(name, 'set');
      if (problem !== undefined) add(['respond', 'headers', name], problem, true);
    }
    const status = r.respond.status;
    if ((status === 204 || status === 304) && typeof r.respond.body === 'string' && r.respond.body !== '') {
      add(['respond', 'body'], `a ${status} answer has no body`);
    }
  }

  if (isMap(r.redirect) && ['scheme', 'host', 'port', 'path'].every((k) => (r.redirect as RawMap)[k] === undefined)) {
    add(['redirect'], 'redirect needs at least one of scheme, host, port, path (else it points at itself)');
  }

  if (isMap(r.mirror)) knownPool(r.mirror.pool, ['mirror', 'pool'], 'mirror');
  return problems;
}

function headerNameProblem(name: string, op: string): string | undefined {
  if (!TOKEN.test(name)) return `invalid header name ${JSON.stringify(name)}`;
  const lower = name.toLowerCase();
  if (HOP_BY_HOP.has(lower)) return `${lower} is a hop-by-hop header (RFC 9110 §7.6.1): it is never forwarded, so it cannot be ${op === 'set' ? 'set' : 'added'}`;
  if (lower === 'content-length') return 'content-length cannot be set: Fulcrum frames the message itself';
  return undefined;
}

// ---- normalised -------------------------------------------------------------

function values(m: Record<string, { exact: string } | { regex: string }> | undefined, lower: boolean): ValueMatchConfig[] | undefined {
  if (m === undefined) return undefined;
  return Object.entries(m).map(([name, v]) => ({ name: lower ? name.toLowerCase() : name, ...v }));
}

function rules(r: { remove: string[]; set: Record<string, string>; add: Record<string, string> } | undefined): HeaderRulesConfig | undefined {
  if (r === undefined) return undefined;
  return {
    remove: r.remove.map((n) => n.toLowerCase()),
    set: Object.entries(r.set),
    add: Object.entries(r.add),
  };
}

/** The route as the rest of Fulcrum sees it (types.ts): keys left out stay out. */
export function normaliseRoute(r: RouteFile): RouteConfig {
  const m = r.match;
  const match: RouteMatchConfig = {
    ...(m?.host !== undefined ? { hosts: m.host } : {}),
    ...(m?.path !== undefined ? { path: m.path } : {}),
    ...(m?.pathPrefix !== undefined ? { pathPrefix: m.pathPrefix } : {}),
    ...(m?.pathRegex !== undefined ? { pathRegex: m.pathRegex } : {}),
    ...(m?.methods !== undefined ? { methods: m.methods } : {}),
    ...(m?.headers !== undefined ? { headers: values(m.headers, true) } : {}),
    ...(m?.query !== undefined ? { query: values(m.query, false) } : {}),
  };
  const w = r.rewrite;
  const requestHeaders = rules(r.requestHeaders);
  const responseHeaders = rules(r.responseHeaders);
  return {
    match,
    ...(r.pool !== undefined ? { pool: r.pool } : {}),
    ...(r.pools !== undefined ? { pools: r.pools } : {}),
    ...(r.redirect !== undefined ? { redirect: r.redirect as RouteConfig['redirect'] & object } : {}),
    ...(r.respond !== undefined ? { respond: { status: r.respond.status, body: r.respond.body, headers: Object.entries(r.respond.headers) } } : {}),
    stripPrefix: r.stripPrefix,
    ...(w !== undefined ? { rewrite: w.path !== undefined ? { path: w.path } : { pathRegex: w.pathRegex!, replacement: w.replacement! } } : {}),
    ...(requestHeaders !== undefined ? { requestHeaders } : {}),
    ...(responseHeaders !== undefined ? { responseHeaders } : {}),
    ...(r.timeouts !== undefined
      ? { timeouts: { ...(r.timeouts.connect !== undefined ? { connectMs: r.timeouts.connect } : {}), ...(r.timeouts.response !== undefined ? { responseMs: r.timeouts.response } : {}) } }
      : {}),
    ...(r.retries !== undefined ? { retries: { attempts: r.retries.attempts, on: r.retries.on as RetryCondition[] } } : {}),
    ...(r.mirror !== undefined ? { mirror: r.mirror } : {}),
  };
}
