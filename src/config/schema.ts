/**
 * The shape of the config file: zod schemas with every default in one place,
 * leaf parsers with human messages, and the checks that span several parts of
 * the file (a route's pool must exist, two listeners cannot share a port).
 *
 * Objects are strict everywhere: a typo must never be silently ignored.
 * Zod sees the file after `${NAME}` interpolation; positions are mapped back to
 * the YAML by load.ts through each issue's `path`.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { z } from 'zod';
import { MAX_DURATION_MS, durationError, durationTooLongError, parseDuration, parseSize, show, sizeError } from './units';
import {
  STRATEGY_NAMES,
  type Address,
  type BackendConfig,
  type Config,
  type HashOn,
  type ListenerConfig,
  type LogLevel,
  type PoolConfig,
  type RateLimitConfig,
  type RetryCondition,
  type TlsMinVersion,
} from './types';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
export const RETRY_CONDITIONS: readonly RetryCondition[] = ['connect-failure', 'reset', 'timeout', '502', '503', '504'];

/** Pool and listener names appear in URLs of the admin API and in metric labels. */
const NAME = /^[A-Za-z0-9._-]+$/;
/** Backend names default to host:port, IPv6 included ("[::1]:8080"). */
const BACKEND_NAME = /^[A-Za-z0-9._:[\]-]+$/;
/** RFC 6265 section 4.1.1: a cookie name is an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOSTNAME = /^[A-Za-z0-9_.:-]+$/;

export const DEFAULT_ADMIN: Address = { host: '127.0.0.1', port: 9901 };

// ---------------------------------------------------------------------------
// Leaf parsers: value in, normalised value or an Invalid (with a message) out.

export class Invalid {
  constructor(readonly message: string) {}
}


export function durationValue(v: unknown, positive: boolean): number | Invalid {
  const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined;
  if (ms === undefined) return new Invalid(durationError(v));
  if (positive && ms === 0) return new Invalid(`duration must be greater than 0, got ${show(v)}`);
  if (ms > MAX_DURATION_MS) return new Invalid(durationTooLongError(v));
  return ms;
}

export function sizeValue(v: unknown): number | Invalid {
  const bytes = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
  return bytes === undefined ? new Invalid(sizeError(v)) : bytes;
}

/** "host:port", "[::]:8080" or ":8080" (all interfaces, 0.0.0.0). */
export function parseListen(v: unknown): Address | Invalid {
  const bad = new Invalid(`invalid listen address ${show(v)}: use host:port, e.g. 0.0.0.0:8080, [::]:8080 or :8080`);
  if (typeof v !== 'string') return bad;
  let host: string;
  let port: string;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0 || v[end + 1] !== ':') return bad;
    host = v.slice(1, end);
    port = v.slice(end + 2);
    if (!host.includes(':')) return bad;
  } else {
    const colon = v.lastIndexOf(':');
    if (colon < 0) return bad;
    host = v.slice(0, colon);
    port = v.slice(colon + 1);
    if (host.includes(':')) return new Invalid(`invalid listen address ${show(v)}: write IPv6 addresses in brackets, e.g. [::]:8080`);
    if (host === '') host = '0.0.0.0';
  }
  if (host === '' || !HOSTNAME.test(host)) return bad;
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return new Invalid(`invalid port in ${show(v)}: use a whole number from 0 to 65535`);
  }
  return { host, port: Number(port) };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** A backend URL is an origin: scheme, host, port. The result is normalised with an explicit port. */
export function parseBackendUrl(v: unknown): { url: string; name: string } | Invalid {
  const bad = new Invalid(`backend url must be an origin like http://10.0.0.1:8080 (no path), got ${show(v)}`);
  if (typeof v !== 'string') return bad;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return bad;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return bad;
  if (u.hostname === '' || u.pathname !== '/' || u.search !== '' || u.hash !== '') return bad;
  if (u.username !== '' || u.password !== '') return bad;
  const port = u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
  // URL.hostname keeps IPv6 brackets ("[::1]"), which is what both forms want.
  return { url: `${u.protocol}//${u.hostname}:${port}`, name: `${u.hostname}:${port}` };
}

/** "200-399", "200", "200,204,300-399", 204, or a list of those → inclusive ranges. */
export function parseExpectStatus(v: unknown): [number, number][] | Invalid {
  const bad = new Invalid(`invalid expectStatus ${show(v)}: use status codes and ranges, e.g. 200-399 or "200,204"`);
  const parts: string[] = [];
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) return bad;
  for (const item of items) {
    if (typeof item === 'number') parts.push(String(item));
    else if (typeof item === 'string') parts.push(...item.split(','));
    else return bad;
  }
  const ranges: [number, number][] = [];
  for (const raw of parts) {
    const m = /^\s*(\d{3})(?:\s*-\s*(\d{3}))?\s*$/.exec(raw);
    if (m === null) return bad;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 100 || hi > 599 || lo > hi) return bad;
    ranges.push([lo, hi]);
  }
  return ranges;
}

/** `ip | header:NAME | cookie:NAME | path`. Header names are case-insensitive, so lower-cased. */
export function parseHashOn(v: unknown): HashOn | Invalid {
  const bad = new Invalid(`invalid hashOn ${show(v)}: expected ip, path, header:NAME or cookie:NAME`);
  if (typeof v !== 'string') return bad;
  if (v === 'ip') return { kind: 'ip' };
  if (v === 'path') return { kind: 'path' };
  const m = /^(header|cookie):(.+)$/.exec(v);
  if (m === null || !TOKEN.test(m[2]!)) return bad;
  return m[1] === 'header' ? { kind: 'header', name: m[2]!.toLowerCase() } : { kind: 'cookie', name: m[2]! };
}

export function parseRateLimitKey(v: unknown): RateLimitConfig['key'] | Invalid {
  const bad = new Invalid(`invalid rate limit key ${show(v)}: expected ip or header:NAME`);
  if (v === 'ip') return { kind: 'ip' };
  if (typeof v !== 'string') return bad;
  const m = /^header:(.+)$/.exec(v);
  if (m === null || !TOKEN.test(m[1]!)) return bad;
  return { kind: 'header', name: m[1]!.toLowerCase() };
}

function retryCondition(v: unknown): RetryCondition | Invalid {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s === 'string' && (RETRY_CONDITIONS as readonly string[]).includes(s)) return s as RetryCondition;
  return new Invalid(`unknown retry condition ${show(v)}: expected one of ${RETRY_CONDITIONS.join(', ')}`);
}

function workersValue(v: unknown): number | 'auto' | Invalid {
  if (v === 'auto') return 'auto';
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return v;
  return new Invalid(`expected a whole number of at least 1 or "auto", got ${show(v)}`);
}

/** Route hosts are compared with the request's Host without its port: lower-case, port dropped. */
function matchHost(v: unknown): string | Invalid {
  const bad = new Invalid(`invalid match.host ${show(v)}: expected a host name such as api.example.com or *.example.com`);
  if (typeof v !== 'string') return bad;
  let host = v.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed !== null) host = bracketed[1]!;
  else if (/^[^:]+:\d+$/.test(host)) host = host.slice(0, host.indexOf(':'));
  // A "*" is allowed only as a whole first label: "*.example.com" matches any subdomain.
  const wild = host.startsWith('*.') ? host.slice(2) : host;
  return wild !== '' && /^[a-z0-9_.:-]+$/.test(wild) ? host : bad;
}

function pathPrefix(v: unknown): string | Invalid {
  return typeof v === 'string' && v.startsWith('/') ? v : new Invalid(`path must start with "/", got ${show(v)}`);
}

function backendName(v: unknown): string | Invalid {
  return typeof v === 'string' && BACKEND_NAME.test(v)
    ? v
    : new Invalid(`invalid backend name ${show(v)}: use letters, digits and . _ : - [ ]`);
}

function cookieName(v: unknown): string | Invalid {
  return typeof v === 'string' && TOKEN.test(v)
    ? v
    : new Invalid(`invalid cookie name ${show(v)}: use letters, digits and !#$%&'*+-.^_\`|~`);
}

/** A sticky cookie's key: shared by replicas that must agree on tokens; long enough not to be guessed. */
function stickySecret(v: unknown): string | Invalid {
  return typeof v === 'string' && v.length >= 16
    ? v
    : new Invalid('must be a string of at least 16 characters (for example "${FULCRUM_STICKY_SECRET}")');
}

function dnsName(v: unknown): string | Invalid {
  return typeof v === 'string' && /^[A-Za-z0-9_.-]+$/.test(v)
    ? v
    : new Invalid(`invalid dns name ${show(v)}: expected a host name such as web.internal`);
}

/** A resolver as "host:port"; a bare host means port 53. */
function resolverAddress(v: unknown): string | Invalid {
  if (typeof v === 'string' && v !== '' && !v.includes(':') && HOSTNAME.test(v)) return `${v}:53`;
  const a = parseListen(v);
  if (a instanceof Invalid || a.port === 0) return new Invalid(`invalid dns server ${show(v)}: expected host:port, e.g. 10.0.0.2:53`);
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** TLS files are named relative to the config file; they must exist now, not at first handshake. */
function tlsFile(baseDir: string, what: string) {
  return (v: unknown): string | Invalid => {
    if (typeof v !== 'string' || v === '') return new Invalid(`${what} must be a file path, got ${show(v)}`);
    const resolved = path.resolve(baseDir, v);
    try {
      fs.accessSync(resolved, fs.constants.R_OK);
      if (!fs.statSync(resolved).isFile()) return new Invalid(`cannot read ${what} file ${show(v)} (${resolved}): not a file`);
    } catch (err) {
      return new Invalid(`cannot read ${what} file ${show(v)} (${resolved}): ${fsReason(err)}`);
    }
    return resolved;
  };
}

/**
 * Readable files can still hold no usable PEM, or a key that does not match
 * the certificate: catch that at validation, not at startup.
 */
function unusableKeyPair(baseDir: string, cert: unknown, key: unknown): string | undefined {
  if (typeof cert !== 'string' || typeof key !== 'string' || cert === '' || key === '') return undefined;
  let pair: { cert: Buffer; key: Buffer };
  try {
    const certPath = path.resolve(baseDir, cert);
    const keyPath = path.resolve(baseDir, key);
    // Only regular files: reading a FIFO or a device would block validation.
    if (!fs.statSync(certPath).isFile() || !fs.statSync(keyPath).isFile()) return undefined;
    pair = { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) };
  } catch {
    return undefined; // reported on the file itself
  }
  try {
    tls.createSecureContext(pair);
    return undefined;
  } catch (err) {
    return `tls cert and key cannot be used together: ${(err as Error).message.split('\n')[0]}`;
  }
}

export const TLS_MIN_VERSIONS: readonly TlsMinVersion[] = ['TLSv1.2', 'TLSv1.3'];

/**
 * Mozilla's "intermediate" profile (ssl-config.mozilla.org, v5.7): forward
 * secrecy (ECDHE) with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) only, so no
 * CBC and no static-RSA key exchange. TLS 1.3 suites are OpenSSL's own.
 */
export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** An OpenSSL cipher list, checked by OpenSSL itself now rather than at the first handshake. */
function cipherList(v: unknown): string | Invalid {
  if (typeof v !== 'string' || v.trim() === '') return new Invalid(`tls ciphers must be an OpenSSL cipher list such as ${DEFAULT_CIPHERS.split(':')[1]}, got ${show(v)}`);
  try {
    tls.createSecureContext({ ciphers: v });
  } catch (err) {
    return new Invalid(`OpenSSL refuses the tls cipher list ${show(v)}: ${(err as Error).message.split('\n')[0]}`);
  }
  return v;
}

export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------
// Zod helpers.

/** Runs a leaf parser; its Invalid becomes a zod issue at this value's path. */
function leaf<T>(parse: (v: unknown) => T | Invalid) {
  return z.unknown().transform((v, ctx): T => {
    const r = parse(v);
    if (r instanceof Invalid) {
      ctx.addIssue({ code: 'custom', message: r.message, input: v });
      return z.NEVER;
    }
    return r;
  });
}

function duration(defaultMs: number, positive = false) {
  return leaf((v) => durationValue(v, positive)).default(defaultMs);
}

function int(min: number, max?: number) {
  const n = z.number().int();
  return max === undefined ? n.min(min) : n.min(min).max(max);
}

/** Keys close to an unknown one, for "did you mean". */
export function suggest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const near = suggest(key, allowed);
  return near !== undefined
    ? `unknown key ${JSON.stringify(key)} (did you mean ${JSON.stringify(near)}?)`
    : `unknown key ${JSON.stringify(key)}: expected one of ${allowed.join(', ')}`;
}

/**
 * A strict object. Zod reports all unknown keys of one object in one issue; the
 * message carries one line per key, in the order of `issue.keys`, so that load.ts
 * can point each at its own key in the file.
 */
function strict<S extends z.ZodRawShape>(shape: S) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? issue.keys.map((k) => unknownKeyMessage(k, allowed)).join('\n') : undefined,
  });
}

function oneOf<T extends string>(what: string, values: readonly T[]) {
  return z.enum(values as readonly [T, ...T[]], {
    error: (issue) => `unknown ${what} ${show(issue.input)}: expected one of ${values.join(', ')}`,
  });
}

// ---------------------------------------------------------------------------
// The schema.

const healthCheck = strict({
  path: leaf(pathPrefix).default('/'),
  interval: duration(5_000, true),
  timeout: duration(2_000, true),
  rise: int(1).default(2),
  fall: int(1).default(3),
  expectStatus: leaf(parseExpectStatus).default([[200, 399]]),
});

const outlierDetection = strict({
  consecutiveFailures: int(1).default(5),
  baseEjectionTime: duration(30_000, true),
  maxEjectionPercent: z.number().min(0).max(100).default(10),
});

/** `healthCheck:` with nothing after it means "on, with the defaults". */
const emptyIsOn = (v: unknown): unknown => (v === null ? {} : v);

const backend = strict({
  url: leaf(parseBackendUrl),
  name: leaf(backendName).optional(),
  weight: int(1, 10_000).default(1),
  backup: z.boolean().default(false),
});

const pool = strict({
  strategy: oneOf('strategy', STRATEGY_NAMES).default('round-robin'),
  hashOn: leaf(parseHashOn).optional(),
  backends: z.array(backend).default([]),
  discovery: strict({
    dns: strict({
      name: leaf(dnsName),
      port: int(1, 65_535),
      refresh: duration(30_000, true),
      server: leaf(resolverAddress).optional(),
    }).optional(),
  }).optional(),
  healthCheck: z.preprocess(emptyIsOn, healthCheck).optional(),
  outlierDetection: z.preprocess(emptyIsOn, outlierDetection).optional(),
  slowStart: duration(0),
  retries: strict({
    attempts: int(0, 100).default(1),
    // A request cut on a stale keep-alive socket is sent again whatever this
    // says (src/proxy/exchange.ts), so the default stays HAProxy's.
    on: z.array(leaf(retryCondition)).default(['connect-failure']),
  }).prefault({}),
  timeouts: strict({
    connect: duration(5_000, true),
    response: duration(30_000, true),
    // Shorter than Node's 5 s server keep-alive, so a reused socket does not race the backend's close.
    idle: duration(4_000),
  }).prefault({}),
  maxConnectionsPerBackend: int(0).default(0),
  panicThreshold: z.number().min(0).max(100).default(0),
  sticky: strict({ cookie: leaf(cookieName), secret: leaf(stickySecret).optional() }).optional(),
});

const route = strict({
  match: strict({ host: leaf(matchHost).optional(), pathPrefix: leaf(pathPrefix).optional() }).optional(),
  pool: z.string().min(1),
  stripPrefix: z.boolean().default(false),
});

const rateLimit = strict({
  requestsPerSecond: z.number().positive(),
  burst: z.number().min(1).optional(),
  key: leaf(parseRateLimitKey).default({ kind: 'ip' }),
});

function listener(baseDir: string) {
  return strict({
    listen: leaf(parseListen),
    tls: strict({
      cert: leaf(tlsFile(baseDir, 'tls cert')),
      key: leaf(tlsFile(baseDir, 'tls key')),
      minVersion: oneOf('tls minVersion', TLS_MIN_VERSIONS).default('TLSv1.2'),
      ciphers: leaf(cipherList).default(DEFAULT_CIPHERS),
    }).optional(),
    http2: z.boolean().default(false),
    limits: strict({
      maxBodySize: leaf(sizeValue).default(0),
      headersTimeout: duration(10_000, true),
      bodyTimeout: duration(60_000, true),
      // node:http's own default, which Fulcrum always used; 0 (never close) is not offered.
      keepAliveTimeout: duration(65_000, true),
      maxConnections: int(0).default(0),
      rateLimit: rateLimit.optional(),
    }).prefault({}),
    routes: z.array(route).min(1, { error: 'a listener needs at least one route' }),
  });
}

/**
 * The whole file. `file` is the absolute path of the config file; relative
 * paths in it (TLS certificates) are resolved against its folder.
 */
export function configSchema(file: string) {
  return strict({
    workers: leaf(workersValue).default(1),
    shutdownTimeout: duration(30_000),
    log: strict({
      level: oneOf('log level', LOG_LEVELS).default('info'),
      access: z.boolean().default(true),
    }).prefault({}),
    admin: strict({
      listen: leaf(parseListen).default(DEFAULT_ADMIN),
      token: z.string().min(1, { error: 'admin.token must not be empty' }).optional(),
    }).prefault({}),
    listeners: z.record(z.string(), listener(path.dirname(file))),
    pools: z.record(z.string(), pool),
  }).transform((c): Config => ({
    file,
    workers: c.workers,
    shutdownTimeoutMs: c.shutdownTimeout,
    log: c.log,
    admin: { ...c.admin.listen, ...(c.admin.token !== undefined ? { token: c.admin.token } : {}) },
    listeners: Object.entries(c.listeners).map(([name, l]): ListenerConfig => ({
      name,
      ...l.listen,
      ...(l.tls !== undefined ? { tls: l.tls } : {}),
      http2: l.http2,
      limits: {
        maxBodySize: l.limits.maxBodySize,
        headersTimeoutMs: l.limits.headersTimeout,
        bodyTimeoutMs: l.limits.bodyTimeout,
        keepAliveTimeoutMs: l.limits.keepAliveTimeout,
        maxConnections: l.limits.maxConnections,
        ...(l.limits.rateLimit !== undefined
          ? {
              rateLimit: {
                requestsPerSecond: l.limits.rateLimit.requestsPerSecond,
                burst: l.limits.rateLimit.burst ?? Math.max(1, l.limits.rateLimit.requestsPerSecond),
                key: l.limits.rateLimit.key,
              },
            }
          : {}),
      },
      routes: l.routes.map((r) => ({
        ...(r.match?.host !== undefined ? { host: r.match.host } : {}),
        ...(r.match?.pathPrefix !== undefined ? { pathPrefix: r.match.pathPrefix } : {}),
        pool: r.pool,
        stripPrefix: r.stripPrefix,
      })),
    })),
    pools: Object.entries(c.pools).map(([name, p]): PoolConfig => ({
      name,
      strategy: p.strategy,
      ...(p.strategy === 'consistent-hash' ? { hashOn: p.hashOn ?? { kind: 'ip' } } : {}),
      backends: p.backends.map((b): BackendConfig => ({
        url: b.url.url,
        name: b.name ?? b.url.name,
        weight: b.weight,
        backup: b.backup,
      })),
      ...(p.discovery !== undefined
        ? {
            discovery: p.discovery.dns !== undefined
              ? {
                  dns: {
                    name: p.discovery.dns.name,
                    port: p.discovery.dns.port,
                    refreshMs: p.discovery.dns.refresh,
                    ...(p.discovery.dns.server !== undefined ? { server: p.discovery.dns.server } : {}),
                  },
                }
              : {},
          }
        : {}),
      ...(p.healthCheck !== undefined
        ? {
            healthCheck: {
              path: p.healthCheck.path,
              intervalMs: p.healthCheck.interval,
              timeoutMs: p.healthCheck.timeout,
              rise: p.healthCheck.rise,
              fall: p.healthCheck.fall,
              expectStatus: p.healthCheck.expectStatus,
            },
          }
        : {}),
      ...(p.outlierDetection !== undefined
        ? {
            outlierDetection: {
              consecutiveFailures: p.outlierDetection.consecutiveFailures,
              baseEjectionTimeMs: p.outlierDetection.baseEjectionTime,
              maxEjectionPercent: p.outlierDetection.maxEjectionPercent,
            },
          }
        : {}),
      slowStartMs: p.slowStart,
      retries: { attempts: p.retries.attempts, on: p.retries.on },
      timeouts: { connectMs: p.timeouts.connect, responseMs: p.timeouts.response, idleMs: p.timeouts.idle },
      maxConnectionsPerBackend: p.maxConnectionsPerBackend,
      panicThreshold: p.panicThreshold,
      ...(p.sticky !== undefined ? { sticky: { cookie: p.sticky.cookie, ...(p.sticky.secret !== undefined ? { secret: p.sticky.secret } : {}) } } : {}),
    })),
  }));
}

// ---------------------------------------------------------------------------
// Checks across parts of the file. They read the raw (interpolated) data, so
// they run, and report, even when zod found problems elsewhere; each one only
// looks at values of the right type and leaves the rest to the schema.

export type PathSegment = string | number;

export interface CrossProblem {
  readonly path: readonly PathSegment[];
  readonly message: string;
  /** Point at the key of the last path segment rather than at its value. */
  readonly atKey?: boolean;
}

type RawMap = Record<string, unknown>;

function isMap(v: unknown): v is RawMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A map keyed by "__proto__" loses the entry in JavaScript (the schema's records drop it). */
const RESERVED = new Set(['__proto__']);

export function crossCheck(raw: RawMap, baseDir: string): CrossProblem[] {
  const problems: CrossProblem[] = [];
  const pools = isMap(raw.pools) ? raw.pools : undefined;
  const listeners = isMap(raw.listeners) ? raw.listeners : undefined;
  const addresses: { label: string; address: Address; path: PathSegment[] }[] = [];

  // Admin: a token is required once the API is reachable from other hosts.
  const admin = isMap(raw.admin) ? raw.admin : {};
  const adminAddress = admin.listen === undefined ? DEFAULT_ADMIN : parseListen(admin.listen);
  if (!(adminAddress instanceof Invalid)) {
    addresses.push({ label: 'admin.listen', address: adminAddress, path: ['admin', 'listen'] });
    const token = admin.token;
    if (!isLoopback(adminAddress.host) && (token === undefined || token === null || token === '')) {
      problems.push({ path: ['admin', 'listen'], message: 'admin.listen is not a loopback address: set admin.token' });
    }
  }

  if (listeners !== undefined) {
    if (Object.keys(listeners).length === 0) {
      problems.push({ path: ['listeners'], message: 'at least one listener is required' });
    }
    for (const [name, l] of Object.entries(listeners)) {
      if (!NAME.test(name)) {
        problems.push({ path: ['listeners', name], atKey: true, message: `invalid listener name ${JSON.stringify(name)}: use letters, digits and . _ -` });
      } else if (RESERVED.has(name)) {
        problems.push({ path: ['listeners', name], atKey: true, message: `${JSON.stringify(name)} cannot be a listener name` });
      }
      if (!isMap(l)) continue;
      if (l.http2 === true && (l.tls === undefined || l.tls === null)) {
        problems.push({ path: ['listeners', name, 'http2'], message: 'http2 needs tls: HTTP/2 is offered over TLS (ALPN) only' });
      }
      const tlsProblem = isMap(l.tls) ? unusableKeyPair(baseDir, l.tls.cert, l.tls.key) : undefined;
      if (tlsProblem !== undefined) problems.push({ path: ['listeners', name, 'tls'], message: tlsProblem });
      const address = parseListen(l.listen);
      if (!(address instanceof Invalid)) {
        addresses.push({ label: `listener "${name}"`, address, path: ['listeners', name, 'listen'] });
      }
      if (pools !== undefined && Array.isArray(l.routes)) {
        l.routes.forEach((r, i) => {
          if (isMap(r) && typeof r.pool === 'string' && r.pool !== '' && !Object.hasOwn(pools, r.pool)) {
            const known = Object.keys(pools);
            problems.push({
              path: ['listeners', name, 'routes', i, 'pool'],
              message: `route points to unknown pool ${JSON.stringify(r.pool)}${known.length > 0 ? ` (pools: ${known.join(', ')})` : ''}`,
            });
          }
        });
      }
    }
  }

  // Two sockets on one port: the second bind would fail at start-up (EADDRINUSE).
  for (let i = 0; i < addresses.length; i++) {
    const a = addresses[i]!;
    if (a.address.port === 0) continue;
    const clash = addresses.slice(0, i).find((b) => b.address.port === a.address.port
      && (b.address.host === a.address.host || isWildcard(b.address.host) || isWildcard(a.address.host)));
    if (clash !== undefined) {
      problems.push({ path: a.path, message: `port ${a.address.port} is already used by ${clash.label}` });
    }
  }

  if (pools !== undefined) {
    for (const [name, p] of Object.entries(pools)) {
      if (!NAME.test(name)) {
        problems.push({ path: ['pools', name], atKey: true, message: `invalid pool name ${JSON.stringify(name)}: use letters, digits and . _ -` });
      } else if (RESERVED.has(name)) {
        problems.push({ path: ['pools', name], atKey: true, message: `${JSON.stringify(name)} cannot be a pool name` });
      }
      if (!isMap(p)) continue;
      const strategy = p.strategy ?? 'round-robin';
      if (p.hashOn !== undefined && typeof strategy === 'string' && strategy !== 'consistent-hash') {
        problems.push({
          path: ['pools', name, 'hashOn'],
          message: `hashOn only applies to strategy consistent-hash (this pool uses ${strategy})`,
        });
      }
      const backends = Array.isArray(p.backends) ? p.backends : [];
      const hasDns = isMap(p.discovery) && p.discovery.dns !== undefined && p.discovery.dns !== null;
      if (backends.length === 0 && !hasDns && (p.backends === undefined || Array.isArray(p.backends))) {
        problems.push({
          path: p.backends === undefined ? ['pools', name] : ['pools', name, 'backends'],
          atKey: p.backends === undefined,
          message: `pool "${name}" needs at least one backend or a discovery block`,
        });
      }
      const seen = new Set<string>();
      backends.forEach((b, i) => {
        if (!isMap(b)) return;
        let backendName: string | undefined;
        if (typeof b.name === 'string') backendName = b.name;
        else if (b.name === undefined) {
          const u = parseBackendUrl(b.url);
          if (!(u instanceof Invalid)) backendName = u.name;
        }
        if (backendName === undefined) return;
        if (seen.has(backendName)) {
          problems.push({
            path: ['pools', name, 'backends', i, b.name !== undefined ? 'name' : 'url'],
            message: `duplicate backend name ${JSON.stringify(backendName)} in pool "${name}": give each backend a unique name`,
          });
        }
        seen.add(backendName);
      });
    }
  }
  return problems;
}
