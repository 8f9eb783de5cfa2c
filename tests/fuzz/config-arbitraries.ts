/**
 * Config objects close to the schema (SPEC section 2), for the object-level
 * properties: `validConfig` builds only configs the spec says are valid (and
 * remembers the listener and pool names it used); `anyConfig` mixes valid
 * values with wrong types, out-of-range numbers, junk strings, missing required
 * keys and unknown keys at every level.
 */
import fc from 'fast-check';
import { STRATEGY_NAMES } from '../../src/config';
import { ZSTD_AVAILABLE } from '../../src/config/front-door';
import { SPECIAL_VALUES } from './mutations';

type Obj = Record<string, unknown>;

/**
 * Names the spec allows (letters, digits, . _ -) that are also Object.prototype
 * members. `__proto__` is refused by the config (a map keyed by it loses the
 * entry in JavaScript), so it is not here.
 */
export const TRICKY_NAMES: readonly string[] = [
  'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf',
  '__defineGetter__', 'then', 'length', '0', '-1', '1e3', 'true', 'null', '.', '..', '-', '_',
];

/** Strings over `chars` (cheaper to generate and shrink than fc.stringMatching). */
function stringOf(chars: string, minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...chars), minLength, maxLength });
}
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const plainName = stringOf(`${ALNUM}._-`, 1, 12);
// fast-check biases strings towards "__proto__" on purpose; the config refuses that name.
export const validName = fc.oneof({ weight: 4, arbitrary: plainName }, { weight: 1, arbitrary: fc.constantFrom(...TRICKY_NAMES) })
  .filter((n) => n !== '__proto__');

/** An object with exactly these own keys, `__proto__` included (a plain `o[k] = v` would set the prototype). */
export function objectOf(entries: readonly (readonly [string, unknown])[]): Obj {
  const o: Obj = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

// --- junk: any value of any type ------------------------------------------------

export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(), // NaN, ±Infinity, -0 included
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
  fc.constantFrom(-1, 0, 1, 65_536, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(...SPECIAL_VALUES),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant(null)), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.integer(), fc.string({ maxLength: 5 })), { maxKeys: 3 }),
);

const UNKNOWN_KEYS = [
  'listner', 'pool', 'backend', 'healthcheck', 'helthCheck', 'retry', 'timeout', 'Strategy', 'urls', 'zz_unknown',
  '__proto__', 'constructor', '<<', '', ' ', 'é', '😀', '${FUZZ_VAR}',
];

/**
 * In `any` mode: each value is usually valid, sometimes a plausible wrong value,
 * sometimes junk; keys may go missing; an unknown key may join in.
 */
function pick<T>(mode: Mode, valid: fc.Arbitrary<T>, wrong: fc.Arbitrary<unknown> = junk): fc.Arbitrary<unknown> {
  return mode === 'valid' ? valid : fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: wrong }, { weight: 1, arbitrary: junk });
}

type Mode = 'valid' | 'any';
type Shape = Record<string, fc.Arbitrary<unknown>>;

/**
 * A map with the given keys. `required` keys are always present in valid mode;
 * other keys come and go. In any mode every key may be missing and one unknown
 * key may be added.
 */
function map(mode: Mode, shape: Shape, required: readonly string[] = []): fc.Arbitrary<unknown> {
  const keys = Object.keys(shape);
  const record = fc.record(shape, { requiredKeys: mode === 'valid' ? required.filter((k) => keys.includes(k)) : [] });
  if (mode === 'valid') return record;
  return fc
    .tuple(record, fc.option(fc.tuple(fc.oneof(fc.constantFrom(...UNKNOWN_KEYS), fc.string({ maxLength: 8 })), junk), { freq: 6 }))
    .map(([o, extra]) => (extra === null ? o : objectOf([...Object.entries(o as Obj), extra])));
}

// --- leaves ---------------------------------------------------------------------

const positiveDuration = fc.oneof(
  fc.constantFrom('250ms', '5s', '1m', '1h', '1.5s', '0.5m', '10s', '2s'),
  fc.integer({ min: 1, max: 1_000_000 }).map((n) => `${n}ms`),
  fc.integer({ min: 1, max: 3_600 }).map((n) => `${n}s`),
);
const anyDuration = fc.oneof(positiveDuration, fc.constantFrom('0', '0s', '0ms', 0));
const wrongDuration = fc.constantFrom('5', '5x', '-5s', '5 s', 's', '1e3s', '', 5, -1, '999999999999999999999h', '0.0001ms', '1000000h', true);
const size = fc.oneof(fc.constantFrom('0', 0, '512kb', '10mb', '1gb', '1MB', '100b'), fc.nat(100_000).map((n) => `${n}kb`));
const wrongSize = fc.constantFrom('10', '10 mb', '-1kb', '1tb', 'mb', '', -1, 1.5, '9999999999999gb');
const loopbackListen = fc.constantFrom('127.0.0.1:0', 'localhost:0', '[::1]:0', '127.1.2.3:0');
const listen = fc.oneof(loopbackListen, fc.constantFrom(':0', '0.0.0.0:0', '[::]:0'));
const wrongListen = fc.constantFrom('8080', '127.0.0.1', '127.0.0.1:65536', '127.0.0.1:-1', '::1:80', '[::1]', '[]:80', 'a b:80', ':', '', 80);
const port = fc.integer({ min: 1, max: 65_535 });
const wrongPort = fc.constantFrom(0, -1, 65_536, 1.5, '80', 1e21, Number.NaN);
const token = stringOf(`${ALNUM}_-`, 1, 20);
const headerName = stringOf(`${ALNUM}-`, 1, 12);
const percent = fc.double({ min: 0, max: 100, noNaN: true });
const wrongPercent = fc.constantFrom(-1, 100.5, 101, 1e9, '50', '50%', Number.NaN, Number.POSITIVE_INFINITY);

/** SPEC section 12: `tracing`, its collector and sampling. */
function tracingArb(mode: Mode): fc.Arbitrary<unknown> {
  return map(mode, {
    otlp: map(mode, {
      endpoint: pick(mode, fc.constantFrom('http://127.0.0.1:4318/v1/traces', 'https://otel.internal:4318/v1/traces', 'http://[::1]:4318/v1/traces'),
        fc.constantFrom('127.0.0.1:4318', 'grpc://h:4317', 'http://', 'ftp://h/x', 'http://h/#frag')),
      encoding: pick(mode, fc.constantFrom('protobuf', 'json'), fc.constantFrom('grpc', 'Protobuf', 'proto', '')),
      headers: pick(mode, fc.dictionary(headerName, token, { maxKeys: 3 }), fc.constantFrom({ 'bad name': 'x' }, { h: 'a\nb' }, { h: 5 }, 'x')),
    }, ['endpoint']),
    sampleRatio: pick(mode, fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(-0.1, 1.5, '0.5', Number.NaN)),
    serviceName: pick(mode, token, fc.constantFrom('', 5, null)),
    maxQueueSize: pick(mode, fc.integer({ min: 1, max: 100_000 }), fc.constantFrom(0, -1, 1.5, '2048', 2_000_000)),
  }, ['otlp']);
}

function backendArb(mode: Mode, index: number): fc.Arbitrary<unknown> {
  return map(
    mode,
    {
      url: pick(
        mode,
        fc.constantFrom(`http://127.0.0.1:${3001 + index}`, `https://10.0.0.${1 + index}:8443`, `http://[::1]:${4001 + index}`, `http://backend-${index}.internal`),
        fc.constantFrom('127.0.0.1:80', 'http://h:1/path', 'http://h:1?q', 'ftp://h:1', 'http://u:p@h:1', 'http://', 'http://h:99999'),
      ),
      // Names carry the index so that two backends of one pool never share one.
      name: pick(mode, stringOf(`${ALNUM}._:[]-`, 1, 10).map((s) => `${s}-${index}`), fc.constantFrom('a b', '', 'é', '/x')),
      weight: pick(mode, fc.integer({ min: 1, max: 10_000 }), fc.constantFrom(0, -1, 10_001, 1.5, '1')),
      backup: pick(mode, fc.boolean(), fc.constantFrom('yes', 'true', 1, 0)),
    },
    ['url'],
  );
}

/** rateLimit.scope and outlierDetection.scope: `cluster` is valid only with the top-level cluster block. */
function scopeArb(mode: Mode, withCluster: boolean): fc.Arbitrary<unknown> {
  return pick(mode, withCluster ? fc.constantFrom('local', 'cluster') : fc.constant('local'), fc.constantFrom('global', 'Cluster', '', 1));
}

/** The top-level cluster block (SPEC section 10). */
function clusterArb(mode: Mode): fc.Arbitrary<unknown> {
  return map(mode, {
    redis: pick(mode, fc.constantFrom('redis://127.0.0.1:6379/0', 'rediss://redis.internal:6380', 'redis://user:pw@10.0.0.5:6379', 'redis://localhost'), fc.constantFrom('http://x', 'redis://', 'redis://h:6379/db', 'localhost:6379', '')),
    name: pick(mode, stringOf(`${ALNUM}._-`, 1, 12), fc.constantFrom('', 'a b', 'a:b', 'é')),
    replica: pick(mode, stringOf(`${ALNUM}._:-`, 1, 12), fc.constantFrom('', 'a b', 'a/b')),
  }, ['redis', 'name']);
}

function poolArb(mode: Mode, withCluster = false): fc.Arbitrary<unknown> {
  return fc.integer({ min: mode === 'valid' ? 1 : 0, max: 3 }).chain((count) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: count }, (_, i) => backendArb(mode, i))),
      fc.constantFrom(...STRATEGY_NAMES),
      pick(mode, fc.constantFrom('ip', 'path', 'header:X-Tenant', 'cookie:session'), fc.constantFrom('header:', 'cookie:a b', 'query', '')),
      fc.constantFrom('http1', 'http2'),
    ).chain(([backends, strategy, hashOn, protocol]) =>
      map(
        mode,
        {
          protocol: pick(mode, fc.constant(protocol), fc.constantFrom('h2', 'HTTP2', 'http/2', 2, '')),
          strategy: pick(mode, fc.constant(strategy), fc.constantFrom('roundrobin', 'RANDOM', '', 'least_connections')),
          // hashOn only with consistent-hash (the spec says so; anything else is an error).
          ...(strategy === 'consistent-hash' || mode === 'any' ? { hashOn: fc.constant(hashOn) } : {}),
          backends: mode === 'valid' ? fc.constant(backends) : fc.oneof({ weight: 5, arbitrary: fc.constant(backends) }, { weight: 1, arbitrary: junk }),
          discovery: map(mode, {
            dns: map(
              mode,
              {
                name: pick(mode, fc.constantFrom('web.internal', 'localhost', 'a_b.example'), fc.constantFrom('a b', '', 'é.internal')),
                port: pick(mode, port, wrongPort),
                refresh: pick(mode, positiveDuration, wrongDuration),
                server: pick(mode, fc.constantFrom('10.0.0.2:53', '10.0.0.2', '[::1]:53', 'resolver.internal'), fc.constantFrom('10.0.0.2:0', '::1', '')),
              },
              ['name', 'port'],
            ),
          }),
          healthCheck: fc.oneof(
            fc.constant(null), // "on, with the defaults"
            map(mode, {
              path: pick(mode, fc.constantFrom('/', '/healthz', '/health/ready'), fc.constantFrom('healthz', '', 'http://x/')),
              interval: pick(mode, positiveDuration, wrongDuration),
              timeout: pick(mode, positiveDuration, wrongDuration),
              rise: pick(mode, fc.integer({ min: 1, max: 100 }), fc.constantFrom(0, -1, 1.5)),
              fall: pick(mode, fc.integer({ min: 1, max: 100 }), fc.constantFrom(0, -1, 1.5)),
              expectStatus: pick(mode, fc.constantFrom('200-399', '200', 204, '200,204,300-399', [200, '300-399']), fc.constantFrom('99', '600', '399-200', [], 'ok', '2xx')),
            }),
            // grpc.health.v1 (SPEC 9.1): only for http2 pools, never with path or expectStatus.
            ...(protocol === 'http2' || mode === 'any'
              ? [map(mode, {
                  grpc: fc.oneof(fc.constant(null), map(mode, { service: pick(mode, fc.constantFrom('', 'fulcrum.test.Echo', 'grpc.health.v1.Health'), fc.constantFrom(1, true, [])) })),
                  interval: pick(mode, positiveDuration, wrongDuration),
                  timeout: pick(mode, positiveDuration, wrongDuration),
                  rise: pick(mode, fc.integer({ min: 1, max: 100 }), fc.constantFrom(0, -1, 1.5)),
                  fall: pick(mode, fc.integer({ min: 1, max: 100 }), fc.constantFrom(0, -1, 1.5)),
                }, ['grpc'])]
              : []),
          ),
          outlierDetection: fc.oneof(
            fc.constant(null),
            map(mode, {
              consecutiveFailures: pick(mode, fc.integer({ min: 1, max: 1_000 }), fc.constantFrom(0, -1, 1.5)),
              baseEjectionTime: pick(mode, positiveDuration, wrongDuration),
              maxEjectionPercent: pick(mode, percent, wrongPercent),
              scope: scopeArb(mode, withCluster),
            }),
          ),
          slowStart: pick(mode, anyDuration, wrongDuration),
          retries: map(mode, {
            attempts: pick(mode, fc.integer({ min: 0, max: 100 }), fc.constantFrom(-1, 101, 1.5)),
            on: pick(
              mode,
              fc.subarray(['connect-failure', 'reset', 'timeout', '502', '503', '504', 502, 503, 504]),
              fc.constantFrom(['500'], ['5xx'], 'reset', [null]),
            ),
          }),
          timeouts: map(mode, {
            connect: pick(mode, positiveDuration, wrongDuration),
            response: pick(mode, positiveDuration, wrongDuration),
            idle: pick(mode, anyDuration, wrongDuration),
          }),
          maxConnectionsPerBackend: pick(mode, fc.nat(100_000), fc.constantFrom(-1, 1.5, '10')),
          panicThreshold: pick(mode, percent, wrongPercent),
          sticky: map(mode, { cookie: pick(mode, token, fc.constantFrom('a b', '', 'a;b', 'é')) }, ['cookie']),
          // An HTTP/2 connection carries many clients' streams: no PROXY header for it.
          ...(protocol !== 'http2' || mode === 'any'
            ? { proxyProtocol: pick(mode, fc.constantFrom('v1', 'v2'), fc.constantFrom('v3', 'V1', true, 1, '')) }
            : {}),
          // Pool tls is for https:// backends: only drawn as valid when the pool has one.
          ...(mode === 'any' || (backends as Obj[]).some((b) => String(b.url).startsWith('https:'))
            ? {
                tls: fc.oneof(
                  map(mode, {
                    ca: pick(mode, fc.constant('certs/server.crt'), fc.constantFrom('certs/missing.crt', '', 'certs')),
                    serverName: pick(mode, fc.constantFrom('api.internal', 'localhost', '10.0.0.1'), fc.constantFrom('', 'a b', 5)),
                    verify: pick(mode, fc.boolean(), fc.constantFrom('no', 0)),
                  }),
                  map(mode, {
                    cert: pick(mode, fc.constant('certs/server.crt'), fc.constantFrom('certs/missing.crt', 'certs/server.key')),
                    key: pick(mode, fc.constant('certs/server.key'), fc.constantFrom('certs/missing.key', 'certs/server.crt')),
                  }, ['cert', 'key']),
                ),
              }
            : {}),
        },
        // Without backends a pool needs dns discovery; hashOn needs the strategy spelled out.
        // a grpc health check needs protocol http2 spelled out.
        [...(strategy === 'consistent-hash' ? ['backends', 'strategy'] : ['backends']), ...(protocol === 'http2' ? ['protocol'] : [])],
      ),
    ),
  );
}

// --- the front door (SPEC 8.3-8.5) ------------------------------------------------

/** A bcrypt hash of "fuzz" (cost 4), in the three spellings htpasswd and the libraries write. */
const BCRYPT = '$2b$04$.5soTfkYzNYcCDch5ZG0x.HLpQRG2Xil/73FbeFap8W9P7qxEQt3S';
const cidr = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 32 })).map(([a, b, p]) => `${a}.${b}.0.0/${p}`),
  fc.constantFrom('192.168.1.7', '127.0.0.1', '::1', '2001:db8::/32', 'fd00::/8', '::ffff:10.0.0.0/104', '0.0.0.0/0', '::/0'),
);
const wrongCidr = fc.constantFrom('10.0.0.0/33', '10.0.0', '::1/129', 'fe80::1%eth0', 'localhost', '', '10.0.0.0/-1', '10.0.0.0/8/8', 5);
const cidrs = fc.oneof(fc.array(cidr, { maxLength: 4 }), cidr);
const algorithms = fc.subarray(['br', 'gzip', ...(ZSTD_AVAILABLE ? ['zstd'] : [])], { minLength: 1 });

function accessArb(mode: Mode): fc.Arbitrary<unknown> {
  return map(mode, {
    allow: pick(mode, cidrs, fc.array(wrongCidr, { minLength: 1, maxLength: 2 })),
    deny: pick(mode, cidrs, wrongCidr),
    basicAuth: fc.oneof(
      map(mode, {
        realm: pick(mode, token, fc.constantFrom('', 'a"b', 'a\\b')),
        users: pick(
          mode,
          fc.dictionary(stringOf(`${ALNUM}._-`, 1, 8).filter((u) => u !== '__proto__'), fc.constantFrom(BCRYPT, `$2a$${BCRYPT.slice(4)}`, `$2y$${BCRYPT.slice(4)}`), { minKeys: 1, maxKeys: 3 }),
          fc.constantFrom({ alice: 'secret' }, { alice: '$2b$04$short' }, { alice: '{SHA}abc' }, {}, { 'a:b': BCRYPT }),
        ),
      }, ['realm', 'users']),
      map(mode, {
        realm: pick(mode, token),
        // Relative to the fuzz file's folder (tests/config/fixtures).
        usersFile: pick(mode, fc.constant('htpasswd'), fc.constantFrom('missing-htpasswd', 'certs', 'certs/server.crt', '')),
      }, ['realm', 'usersFile']),
    ),
    forwardAuth: map(mode, {
      url: pick(mode, fc.constantFrom('http://auth.internal:9000/verify', 'https://sso.example.com/check?x=1', 'http://127.0.0.1:1'), fc.constantFrom('ftp://x/', 'auth.internal', 'http://', 'http://u:p@h/', '')),
      timeout: pick(mode, positiveDuration, wrongDuration),
      requestHeaders: pick(mode, fc.array(headerName, { maxLength: 3 }), fc.constantFrom(['a b'], [''], 'cookie')),
      responseHeaders: pick(mode, fc.array(headerName, { maxLength: 3 }), fc.constantFrom(['a b'], [5])),
    }, ['url']),
  });
}

function compressArb(mode: Mode): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.boolean(),
    map(mode, {
      algorithms: pick(mode, algorithms, fc.constantFrom(['deflate'], [], ['GZIP'], 'gzip', ...(ZSTD_AVAILABLE ? [] : [['zstd']]))),
      minSize: pick(mode, size, wrongSize),
      types: pick(mode, fc.array(fc.constantFrom('text/*', 'application/json', 'image/svg+xml', 'Application/XML'), { minLength: 1, maxLength: 3 }), fc.constantFrom(['*/*'], ['text'], [], ['a b/c'])),
    }),
  );
}

// --- routes (SPEC 8) -------------------------------------------------------------

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
/** A header name a rule may set or add: no hop-by-hop header, no content-length. */
const ruleHeaderName = headerName.filter((h) => !HOP_BY_HOP.includes(h.toLowerCase()) && h.toLowerCase() !== 'content-length');
const safeRegexSource = fc.constantFrom('^/v1/users/[0-9]+$', '^acme-', '^/a', 'b$', '^/(x|y)/', '^\\/api\\.v2', '[0-9]{2,4}', '^/old/(.*)$');
const wrongRegex = fc.constantFrom('(a+)+', '^(a*)*b$', '(x|x)*y*(z+)+', '^/(a', '[', '(?<n>x', '', 5, null);
const routePath = stringOf('abcxyz019/_-', 0, 10).map((s) => `/${s}`);
const wrongPath = fc.constantFrom('v1/', '', 'http://x/', '/a?b', 5);

function valueConditions(mode: Mode, names: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return pick(
    mode,
    fc.dictionary(names, fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), safeRegexSource.map((regex) => ({ regex }))), { maxKeys: 3 }),
    fc.constantFrom({ 'a b': 'x' }, { x: { regex: '(a+)+' } }, { x: { rgx: 'a' } }, { x: null }, { x: ['a'] }, { x: { regex: '^(' } }),
  );
}

function headerRulesArb(mode: Mode): fc.Arbitrary<unknown> {
  const values = fc.dictionary(ruleHeaderName, fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), { maxKeys: 3 });
  const wrongValues = fc.constantFrom({ connection: 'close' }, { 'Transfer-Encoding': 'gzip' }, { upgrade: 'h2c' }, { 'content-length': '5' }, { 'a b': 'c' }, { x: null });
  return map(mode, {
    remove: pick(mode, fc.array(ruleHeaderName, { maxLength: 3 }), fc.constantFrom(['a b'], ['content-length'], 'x', [5])),
    set: pick(mode, values, wrongValues),
    add: pick(mode, values, wrongValues),
  });
}

/**
 * One route. Valid mode: exactly one action; one path condition at most;
 * forwarding-only keys only with pool or pools; rewrite never with
 * stripPrefix: true. Any mode: every key with any value, in any combination.
 */
function routeArb(mode: Mode, poolNames: readonly string[]): fc.Arbitrary<unknown> {
  const poolName = poolNames.length > 0 ? fc.constantFrom(...poolNames) : fc.constant('web');
  const wrongPoolName = fc.constantFrom('', 'no-such-pool', 'toString', '__proto__');
  const host = fc.constantFrom('api.example.com', 'API.Example.com:8080', '[::1]', '*.example.com', 'localhost');
  const hosts = pick(mode, fc.oneof(host, fc.array(host, { minLength: 1, maxLength: 3 })), fc.constantFrom('', 'a b', 'é.com', '[::1', [], ['ok.com', '']));
  const pathCondition = mode === 'valid'
    ? fc.oneof(fc.constant({}), routePath.map((path) => ({ path })), routePath.map((pathPrefix) => ({ pathPrefix })), safeRegexSource.map((pathRegex) => ({ pathRegex })))
    : fc.record({ path: pick(mode, routePath, wrongPath), pathPrefix: pick(mode, routePath, wrongPath), pathRegex: pick(mode, safeRegexSource, wrongRegex) }, { requiredKeys: [] });
  const match = fc.tuple(
    map(mode, {
      host: hosts,
      methods: pick(mode, fc.subarray(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'], { minLength: 1 }), fc.constantFrom(['get'], ['CONNECT'], [], 'GET', ['BREW'])),
      headers: valueConditions(mode, token),
      query: valueConditions(mode, stringOf(`${ALNUM}_-`, 1, 8)),
    }),
    pathCondition,
  ).map(([m, p]) => ({ ...(m as Obj), ...p }));
  const weighted: fc.Arbitrary<unknown> = poolNames.length > 0
    ? fc.shuffledSubarray([...poolNames], { minLength: 1 }).chain((names) => fc.tuple(...names.map((n, i) => fc.record({ pool: fc.constant(n), weight: fc.integer({ min: i === 0 ? 1 : 0, max: 10_000 }) }, { requiredKeys: i === 0 ? ['pool', 'weight'] : ['pool'] }))))
    : fc.constant([{ pool: 'web' }]);
  const pools = pick(mode, weighted, fc.constantFrom([], [{ pool: 'web', weight: 10_001 }], [{ pool: 'web', weight: -1 }], [{ pool: 'web', weight: 0 }], [{ weight: 5 }], [{ pool: 'no-such-pool' }]));
  const redirect = fc.tuple(
    map(mode, {
      scheme: pick(mode, fc.constantFrom('http', 'https'), fc.constantFrom('ftp', 'HTTPS', '')),
      host: pick(mode, fc.constantFrom('www.example.com', 'example.org', '[::1]', 'a-b.c'), fc.constantFrom('a b', 'x.com:80', 'http://x', '')),
      port: pick(mode, port, wrongPort),
      path: pick(mode, routePath, wrongPath),
      status: pick(mode, fc.constantFrom(301, 302, 303, 307, 308), fc.constantFrom(200, 304, 300, 399, '301', null)),
    }),
    fc.constantFrom('scheme', 'host', 'path'),
  ).map(([r, needed]) => (mode === 'valid' && !['scheme', 'host', 'port', 'path'].some((k) => k in (r as Obj))
    ? { ...(r as Obj), [needed]: needed === 'scheme' ? 'https' : needed === 'host' ? 'www.example.com' : '/landing' }
    : r));
  const respond = map(mode, {
    status: pick(mode, fc.integer({ min: 200, max: 599 }).filter((n) => n !== 204 && n !== 304), fc.constantFrom(99, 100, 600, '200', 1.5)),
    body: pick(mode, fc.string({ maxLength: 20 }), fc.constantFrom(5, null, ['x'])),
    headers: pick(mode, fc.dictionary(ruleHeaderName, fc.string({ maxLength: 8 }), { maxKeys: 2 }), fc.constantFrom({ connection: 'close' }, { 'content-length': '1' })),
  }, ['status']);
  const forwarding = {
    rewrite: pick(
      mode,
      fc.oneof(routePath.map((path) => ({ path })), safeRegexSource.map((pathRegex) => ({ pathRegex, replacement: '/new/$1' }))),
      fc.constantFrom({}, { path: '/a', pathRegex: '^/a' }, { pathRegex: '^/a' }, { replacement: '/x' }, { pathRegex: '(a+)+', replacement: '/x' }),
    ),
    requestHeaders: headerRulesArb(mode),
    timeouts: map(mode, { connect: pick(mode, positiveDuration, wrongDuration), response: pick(mode, positiveDuration, wrongDuration) }),
    retries: map(mode, {
      attempts: pick(mode, fc.integer({ min: 0, max: 100 }), fc.constantFrom(-1, 101, 1.5)),
      on: pick(mode, fc.subarray(['connect-failure', 'reset', 'timeout', '502', '503', '504', 502]), fc.constantFrom(['500'], 'reset')),
    }),
    mirror: map(mode, {
      pool: pick(mode, poolName, wrongPoolName),
      percent: pick(mode, percent, wrongPercent),
      maxBodySize: pick(mode, size, wrongSize),
    }, ['pool']),
  };
  // SPEC 8.3, 8.5: on a route of any kind (access runs before redirect and respond).
  const frontDoor = { access: accessArb(mode), compress: pick(mode, compressArb(mode), fc.constantFrom('yes', 1, 'gzip', [])) };
  if (mode === 'any') {
    return map(mode, {
      match,
      pool: pick(mode, poolName, wrongPoolName),
      pools,
      redirect,
      respond,
      stripPrefix: pick(mode, fc.boolean(), fc.constantFrom('true', 1)),
      responseHeaders: headerRulesArb(mode),
      ...frontDoor,
      ...forwarding,
    });
  }
  const common = { match, responseHeaders: headerRulesArb(mode), ...frontDoor };
  const forwards = (action: Shape) => fc.tuple(map(mode, { ...common, ...action, ...forwarding }, Object.keys(action)), fc.boolean())
    // rewrite and stripPrefix: true never together.
    .map(([r, strip]) => ({ ...(r as Obj), stripPrefix: 'rewrite' in (r as Obj) ? false : strip }));
  return fc.oneof(
    forwards({ pool: poolName }),
    forwards({ pools }),
    map(mode, { ...common, redirect }, ['redirect']),
    map(mode, { ...common, respond }, ['respond']),
  );
}

function listenerArb(mode: Mode, poolNames: readonly string[], withCluster = false): fc.Arbitrary<unknown> {
  const route = routeArb(mode, poolNames);
  return fc.tuple(fc.boolean(), fc.boolean()).chain(([withTls, withClientCerts]) =>
    map(
      mode,
      {
        listen: pick(mode, listen, wrongListen),
        ...(withTls || mode === 'any'
          ? {
              tls: map(
                mode,
                {
                  cert: pick(mode, fc.constant('certs/server.crt'), fc.constantFrom('certs/missing.crt', '', 'certs', 'certs/server.key')),
                  key: pick(mode, fc.constant('certs/server.key'), fc.constantFrom('certs/missing.key', '', 'certs', 'certs/server.crt')),
                  ...(withClientCerts || mode === 'any'
                    ? {
                        clientCa: pick(mode, fc.constant('certs/server.crt'), fc.constantFrom('certs/missing.crt', '', 'certs')),
                        clientAuth: pick(mode, fc.constantFrom('optional', 'require'), fc.constantFrom('none', 'required', 'yes', true)),
                      }
                    : {}),
                  // acme together with cert and key is an error; workers must be 1: drawn in any mode only.
                  ...(mode === 'any'
                    ? {
                        acme: map(mode, {
                          directory: pick(mode, fc.constant('https://127.0.0.1:14000/dir'), fc.constantFrom('ftp://x', '', 'dir')),
                          email: pick(mode, fc.constant('ops@example.com'), fc.constantFrom('', 5)),
                          domains: pick(mode, fc.constant(['example.com', '*.example.com']), fc.constantFrom([], ['a b'], 'example.com', ['-x.com'])),
                          storage: pick(mode, fc.constant('acme'), fc.constantFrom('', 'certs/server.crt')),
                          ca: pick(mode, fc.constant('certs/server.crt'), fc.constantFrom('certs/missing.crt', '')),
                        }, ['directory', 'domains', 'storage']),
                      }
                    : {}),
                },
                withClientCerts ? ['cert', 'key', 'clientCa', 'clientAuth'] : ['cert', 'key'],
              ),
            }
          : {}),
        trustedProxies: pick(mode, cidrs, fc.oneof(wrongCidr, fc.array(wrongCidr, { minLength: 1, maxLength: 2 }))),
        // With TLS: ALPN h2; without: HTTP/1.1 and h2c on one port (SPEC 9.2).
        http2: pick(mode, fc.boolean(), fc.constantFrom('yes', 1)),
        proxyProtocol: pick(
          mode,
          fc.oneof(fc.boolean(), fc.record({ trusted: fc.subarray(['10.0.0.0/8', 'fd00::/8', '127.0.0.1', '192.0.2.0/24'], { minLength: 1 }) })),
          fc.constantFrom('yes', { trusted: [] }, { trusted: ['10.0.0.0/33'] }, { trusted: ['nonsense'] }, { trust: ['10.0.0.0/8'] }, 1),
        ),
        limits: map(mode, {
          maxBodySize: pick(mode, size, wrongSize),
          headersTimeout: pick(mode, positiveDuration, wrongDuration),
          rateLimit: map(
            mode,
            {
              requestsPerSecond: pick(mode, fc.double({ min: 0.001, max: 1e6, noNaN: true }), fc.constantFrom(0, -1, '100', Number.NaN)),
              burst: pick(mode, fc.double({ min: 1, max: 1e6, noNaN: true }), fc.constantFrom(0, 0.5, -1, '10')),
              key: pick(mode, fc.oneof(fc.constant('ip'), headerName.map((h) => `header:${h}`)), fc.constantFrom('cookie:x', 'header:', 'header:a b', 'IP')),
              scope: scopeArb(mode, withCluster),
            },
            ['requestsPerSecond'],
          ),
        }),
        routes: mode === 'valid'
          ? fc.array(route, { minLength: 1, maxLength: 3 })
          : fc.oneof({ weight: 5, arbitrary: fc.array(route, { minLength: 0, maxLength: 3 }) }, { weight: 1, arbitrary: junk }),
      },
      // HTTP/2 was only drawn as true when tls is present.
      withTls ? ['listen', 'routes', 'tls'] : ['listen', 'routes'],
    ),
  );
}

export interface GeneratedConfig {
  readonly config: Obj;
  readonly listenerNames: readonly string[];
  readonly poolNames: readonly string[];
}

function configArb(mode: Mode): fc.Arbitrary<GeneratedConfig> {
  const names = (min: number) => fc.uniqueArray(validName, { minLength: min, maxLength: 3 });
  return fc.tuple(names(mode === 'valid' ? 1 : 0), names(mode === 'valid' ? 1 : 0), fc.boolean()).chain(([poolNames, listenerNames, withCluster]) =>
    fc
      .tuple(
        fc.tuple(...poolNames.map(() => poolArb(mode, withCluster))),
        fc.tuple(...listenerNames.map(() => listenerArb(mode, poolNames, withCluster))),
        fc.boolean(),
      )
      .chain(([pools, listeners, publicAdmin]) =>
        map(
          mode,
          {
            workers: pick(mode, fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant('auto')), fc.constantFrom(0, -1, 1.5, 'all', '2')),
            shutdownTimeout: pick(mode, anyDuration, wrongDuration),
            shutdownDelay: pick(mode, anyDuration, wrongDuration),
            ...(withCluster || mode === 'any' ? { cluster: clusterArb(mode) } : {}),
            log: map(mode, {
              level: pick(mode, fc.constantFrom('trace', 'debug', 'info', 'warn', 'error'), fc.constantFrom('INFO', 'verbose', 'fatal', '')),
              access: pick(mode, fc.boolean(), fc.constantFrom('yes', 'on', 1)),
            }),
            // A non-loopback admin address needs a token.
            admin: map(
              mode,
              {
                listen: pick(mode, publicAdmin ? fc.constant('0.0.0.0:0') : loopbackListen, wrongListen),
                token: pick(mode, token, fc.constantFrom('', null, 5)),
              },
              publicAdmin ? ['listen', 'token'] : [],
            ),
            tracing: tracingArb(mode),
            listeners: mode === 'valid'
              ? fc.constant(objectOf(listenerNames.map((n, i) => [n, listeners[i]])))
              : fc.oneof({ weight: 6, arbitrary: fc.constant(objectOf(listenerNames.map((n, i) => [n, listeners[i]]))) }, { weight: 1, arbitrary: junk }),
            pools: mode === 'valid'
              ? fc.constant(objectOf(poolNames.map((n, i) => [n, pools[i]])))
              : fc.oneof({ weight: 6, arbitrary: fc.constant(objectOf(poolNames.map((n, i) => [n, pools[i]]))) }, { weight: 1, arbitrary: junk }),
          },
          withCluster ? ['listeners', 'pools', 'cluster'] : ['listeners', 'pools'],
        ).map((config) => ({ config: config as Obj, listenerNames, poolNames })),
      ),
  );
}

export const validConfig = configArb('valid');
export const anyConfig = configArb('any');

/** How the yaml package writes the object: block or flow collections, plain or quoted strings. */
export interface StringifyStyle {
  readonly collectionStyle: 'any' | 'block' | 'flow';
  readonly defaultStringType: 'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE' | 'BLOCK_LITERAL';
  readonly indent: number;
}

export const stringifyStyle: fc.Arbitrary<StringifyStyle> = fc.record({
  collectionStyle: fc.constantFrom('any' as const, 'block' as const, 'flow' as const),
  defaultStringType: fc.constantFrom('PLAIN' as const, 'QUOTE_DOUBLE' as const, 'QUOTE_SINGLE' as const, 'BLOCK_LITERAL' as const),
  indent: fc.integer({ min: 1, max: 8 }),
});
