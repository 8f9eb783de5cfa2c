import { formatProblem } from '../../src/errors';
import { parseConfig } from '../../src/config';
import { MINIMAL, positions, problemsOf, yaml } from './helpers';
import { DEFAULT_CIPHERS } from '../../src/config/values';
import { selfSigned } from '../helpers/tls';

/** MINIMAL (9 lines) with `lines` appended: they start at line 10, inside pools.web. */
const withPool = (...lines: string[]) => yaml(...MINIMAL, ...lines);

describe('YAML syntax errors', () => {
  test('are reported with their line, before any schema check', () => {
    const text = yaml(
      'listeners:',
      '  main:',
      '    listen: 127.0.0.1:0',
      '   routes: [',
      'pools: {}',
      'bogus: 1',
    );
    const problems = problemsOf(text);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.message.startsWith('YAML syntax error: '))).toBe(true);
    expect(problems[0]!.line).toBe(4);
    expect(problems.some((p) => p.message.includes('bogus'))).toBe(false);
  });

  test('all of them, sorted', () => {
    const text = yaml('a: : b', 'c: 1', 'd: [1, 2', 'e: 1');
    const ps = problemsOf(text);
    expect(ps.length).toBeGreaterThanOrEqual(2);
    expect(ps[0]!.line).toBe(1);
    const lines = ps.map((p) => p.line);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
  });

  test('a duplicate key is an error at the second one', () => {
    expect(positions(yaml(...MINIMAL, '  web:', '    backends: []'))).toEqual([
      '10:3: YAML syntax error: Map keys must be unique',
    ]);
  });
});

describe('the document itself', () => {
  test.each([
    ['', 'the config file is empty'],
    ['# only a comment\n', 'the config file is empty'],
    ['- a\n- b\n', 'the config file must be a map'],
    ['just text\n', 'the config file must be a map'],
  ])('%p → 1:1', (text, message) => {
    expect(problemsOf(text)).toEqual([{ file: 'fulcrum.yaml', line: 1, col: 1, message: expect.stringContaining(message) }]);
  });

  test('listeners and pools are required', () => {
    expect(positions('workers: 2\n')).toEqual([
      '1:1: missing required key "listeners"',
      '1:1: missing required key "pools"',
    ]);
  });
});

describe('unknown keys', () => {
  test('a typo gets a suggestion, at the key itself', () => {
    expect(positions(withPool('    healthCheck:', '      intervall: 5s'))).toEqual([
      '11:7: pools.web.healthCheck: unknown key "intervall" (did you mean "interval"?)',
    ]);
  });

  test('without a near match the allowed keys are listed; each key at its own position', () => {
    expect(positions(yaml('zork: 1', ...MINIMAL, '    retries: { attempts: 1, tries: 2, qqqqqqqq: 3 }'))).toEqual([
      '1:1: unknown key "zork": expected one of workers, shutdownTimeout, shutdownDelay, log, admin, tracing, listeners, pools, cluster',
      '11:29: pools.web.retries: unknown key "tries": expected one of attempts, on',
      '11:39: pools.web.retries: unknown key "qqqqqqqq": expected one of attempts, on',
    ]);
  });
});

describe('values', () => {
  test('interval: 5 seconds', () => {
    expect(positions(withPool('    healthCheck:', '      interval: 5 seconds'))).toEqual([
      '11:17: pools.web.healthCheck.interval: invalid duration "5 seconds": use a number with ms, s, m or h, e.g. 5s',
    ]);
  });

  test('a bare number is not a duration', () => {
    expect(positions(withPool('    healthCheck: { timeout: 5 }'))).toEqual([
      '10:29: pools.web.healthCheck.timeout: invalid duration 5: use a number with ms, s, m or h, e.g. 5s',
    ]);
  });

  // Regression: Node's timers turn a delay above 2^31-1 ms into 1 ms, so
  // `baseEjectionTime: 30d` passed validation and then let an ejected backend
  // back at once (and `interval: 25d` probed in a tight loop).
  test.each([
    ['    outlierDetection: { baseEjectionTime: 25d }', null],
    ['    outlierDetection: { baseEjectionTime: 600h }', '10:43: pools.web.outlierDetection.baseEjectionTime: duration "600h" is too long'],
    ['    healthCheck: { interval: 2147484s }', '10:30: pools.web.healthCheck.interval: duration "2147484s" is too long'],
    ['    timeouts: { idle: 35792m }', '10:23: pools.web.timeouts.idle: duration "35792m" is too long'],
  ])('a duration above 2^31-1 ms: %s', (line, expected) => {
    const got = positions(withPool(line));
    if (expected === null) {
      // "d" is not a unit at all: the usual message, not the length one.
      expect(got).toEqual([expect.stringContaining('invalid duration "25d"')]);
      return;
    }
    expect(got).toEqual([`${expected}: at most 2147483647ms (about 24.8 days, the longest timer Node.js keeps)`]);
  });

  test('2^31-1 ms itself is accepted, in any unit that adds up to it', () => {
    expect(parseConfig(withPool('    timeouts: { response: 2147483647ms }'), 'f.yaml', {}).pools[0]!.timeouts.responseMs).toBe(2 ** 31 - 1);
    expect(parseConfig(withPool('    timeouts: { response: 596h }'), 'f.yaml', {}).pools[0]!.timeouts.responseMs).toBe(596 * 3_600_000);
    expect(parseConfig(yaml('shutdownTimeout: 2147483.647s', ...MINIMAL), 'f.yaml', {}).shutdownTimeoutMs).toBe(2 ** 31 - 1);
    expect(positions(yaml('shutdownTimeout: 2147483.648s', ...MINIMAL))).toEqual([
      '1:18: shutdownTimeout: duration "2147483.648s" is too long: at most 2147483647ms (about 24.8 days, the longest timer Node.js keeps)',
    ]);
  });

  test('a bad size', () => {
    expect(positions(yaml(...MINIMAL.slice(0, 3), '    limits: { maxBodySize: 10 megs }', ...MINIMAL.slice(3)))).toEqual([
      '4:28: listeners.main.limits.maxBodySize: invalid size "10 megs": use a number with b, kb, mb or gb, e.g. 10mb',
    ]);
  });

  test('unknown strategy lists the valid names', () => {
    expect(positions(withPool('    strategy: fastest'))).toEqual([
      '10:15: pools.web.strategy: unknown strategy "fastest": expected one of round-robin, weighted-round-robin, '
        + 'least-connections, random, power-of-two, ewma, consistent-hash',
    ]);
  });

  test('wrong types and ranges', () => {
    expect(positions(withPool(
      '    panicThreshold: 150',
      '    maxConnectionsPerBackend: 1.5',
      '    sticky: { cookie: "a b" }',
      '    retries: { on: [reset, 500] }',
    ))).toEqual([
      '10:21: pools.web.panicThreshold: must be at most 100',
      '11:31: pools.web.maxConnectionsPerBackend: expected a whole number, got 1.5',
      '12:23: pools.web.sticky.cookie: invalid cookie name "a b": use letters, digits and !#$%&\'*+-.^_`|~',
      '13:28: pools.web.retries.on[1]: unknown retry condition 500: expected one of connect-failure, reset, timeout, 502, 503, 504',
    ]);
  });

  test('a sticky secret too short to be a key', () => {
    expect(positions(withPool('    sticky: { cookie: S, secret: short }'))).toEqual([
      '10:34: pools.web.sticky.secret: must be a string of at least 16 characters (for example "${FULCRUM_STICKY_SECRET}")',
    ]);
  });

  test('log level and workers', () => {
    expect(positions(yaml('workers: 0', 'log: { level: loud, access: yes }', ...MINIMAL))).toEqual([
      '1:10: workers: expected a whole number of at least 1 or "auto", got 0',
      '2:15: log.level: unknown log level "loud": expected one of trace, debug, info, warn, error',
      '2:29: log.access: expected true or false, got "yes"',
    ]);
  });

  test('a missing required key points at the map that should hold it', () => {
    expect(positions(yaml(...MINIMAL, '      - name: b2'))).toEqual([
      '10:9: pools.web.backends[1]: missing required key "url"',
    ]);
  });

  test('listen addresses', () => {
    const listen = (addr: string) => positions(yaml(...MINIMAL.slice(0, 2), `    listen: ${addr}`, ...MINIMAL.slice(3)));
    expect(listen('8080')).toEqual(['3:13: listeners.main.listen: invalid listen address 8080: use host:port, e.g. 0.0.0.0:8080, [::]:8080 or :8080']);
    expect(listen('127.0.0.1:70000')).toEqual(['3:13: listeners.main.listen: invalid port in "127.0.0.1:70000": use a whole number from 0 to 65535']);
    expect(listen(':::8080')[0]).toContain('write IPv6 addresses in brackets');
  });

  test.each(['ftp://x', 'http://x/path', 'not a url', 'http://x?q=1', 'http://user:pw@x'])('bad backend url %p', (url) => {
    expect(problemsOf(yaml(...MINIMAL.slice(0, 8), `      - url: ${url}`))).toEqual([{
      file: 'fulcrum.yaml',
      line: 9,
      col: 14,
      message: `pools.web.backends[0].url: backend url must be an origin like http://10.0.0.1:8080 (no path), got ${JSON.stringify(url)}`,
    }]);
  });

  test('expectStatus', () => {
    expect(positions(withPool('    healthCheck: { expectStatus: 2xx }'))).toEqual([
      '10:34: pools.web.healthCheck.expectStatus: invalid expectStatus "2xx": use status codes and ranges, e.g. 200-399 or "200,204"',
    ]);
    expect(positions(withPool('    healthCheck: { expectStatus: 399-200 }'))[0]).toContain('invalid expectStatus "399-200"');
  });

  test('pathPrefix must start with /', () => {
    expect(positions(yaml(...MINIMAL.slice(0, 4), '      - { match: { pathPrefix: api }, pool: web }', ...MINIMAL.slice(5)))).toEqual([
      '5:32: listeners.main.routes[0].match.pathPrefix: path must start with "/", got "api"',
    ]);
  });
});

describe('environment variables', () => {
  test('an unset variable is reported at its scalar, once per variable', () => {
    expect(positions(yaml('admin: { token: "${NOPE}-${ALSO_NOPE}-${SET}" }', ...MINIMAL), { SET: 'x' })).toEqual([
      '1:17: environment variable NOPE is not set',
      '1:17: environment variable ALSO_NOPE is not set',
    ]);
  });

  test('keys are not interpolated', () => {
    expect(positions(yaml('${X}: 1', ...MINIMAL), { X: 'workers' })).toEqual([
      '1:1: unknown key "${X}": expected one of workers, shutdownTimeout, shutdownDelay, log, admin, tracing, listeners, pools, cluster',
    ]);
  });

  test('the schema does not pile a second error on the same value', () => {
    expect(positions(yaml(...MINIMAL.slice(0, 2), '    listen: ${LISTEN}', ...MINIMAL.slice(3)))).toEqual([
      '3:13: environment variable LISTEN is not set',
    ]);
  });
});

describe('cross-reference checks', () => {
  test('a route to a pool that does not exist', () => {
    expect(positions(yaml(...MINIMAL.slice(0, 4), '      - pool: nope', ...MINIMAL.slice(5)))).toEqual([
      '5:15: listeners.main.routes[0].pool: route points to unknown pool "nope" (pools: web)',
    ]);
  });

  test('admin on a non-loopback address needs a token', () => {
    expect(positions(yaml('admin: { listen: 0.0.0.0:9901 }', ...MINIMAL))).toEqual([
      '1:18: admin.listen is not a loopback address: set admin.token',
    ]);
    expect(() => parseConfig(yaml('admin: { listen: 0.0.0.0:9901, token: t }', ...MINIMAL), 'f', {})).not.toThrow();
    for (const host of ['127.0.0.5', '[::1]', 'localhost']) {
      expect(() => parseConfig(yaml(`admin: { listen: "${host}:9901" }`, ...MINIMAL), 'f', {})).not.toThrow();
    }
  });

  test('http2 without tls is cleartext HTTP/2 with prior knowledge beside HTTP/1.1 (SPEC 9.2)', () => {
    const c = parseConfig(yaml(...MINIMAL.slice(0, 3), '    http2: true', ...MINIMAL.slice(3)), 'f', {});
    expect(c.listeners[0]).toMatchObject({ http2: true });
    expect(c.listeners[0]!.tls).toBeUndefined();
  });

  test('pool protocol and gRPC health checks: bad values and bad combinations at their position', () => {
    expect(positions(withPool('    protocol: h2'))).toEqual([
      '10:15: pools.web.protocol: unknown protocol "h2": expected one of http1, http2',
    ]);
    expect(positions(withPool('    protocol: http2', '    healthCheck: { path: /healthz, grpc: { service: "" } }'))).toEqual([
      '11:36: pools.web.healthCheck.grpc: healthCheck takes either path (a GET) or grpc (grpc.health.v1), not both',
    ]);
    expect(positions(withPool('    healthCheck: { grpc: {} }'))).toEqual([
      '10:20: pools.web.healthCheck.grpc: a grpc health check needs protocol: http2 (pool "web" speaks http1)',
    ]);
    expect(positions(withPool('    protocol: http2', '    healthCheck: { grpc: { service: 1 }, expectStatus: 200 }'))).toEqual([
      '11:37: pools.web.healthCheck.grpc.service: expected a string, got 1',
      '11:42: pools.web.healthCheck.expectStatus: expectStatus does not apply to a grpc health check (SERVING passes)',
    ]);
    expect(positions(withPool('    protocol: http2', '    healthCheck: { grpc: { servce: x } }'))).toEqual([
      '11:28: pools.web.healthCheck.grpc: unknown key "servce" (did you mean "service"?)',
    ]);
    const ok = parseConfig(withPool('    protocol: http2', '    healthCheck: { grpc: { service: a.B }, interval: 1s }'), 'f', {});
    expect(ok.pools[0]).toMatchObject({ protocol: 'http2', healthCheck: { grpc: { service: 'a.B' }, intervalMs: 1000 } });
    expect(parseConfig(withPool('    protocol: http2', '    healthCheck: { grpc: }'), 'f', {}).pools[0]!.healthCheck!.grpc).toEqual({ service: '' });
    expect(parseConfig(yaml(...MINIMAL), 'f', {}).pools[0]!.protocol).toBe('http1');
  });

  test('duplicate backend names, defaulted or explicit', () => {
    expect(positions(withPool(
      '      - url: http://127.0.0.1:3001/',
      '      - { url: "http://127.0.0.1:3002", name: a }',
      '      - { url: "http://127.0.0.1:3003", name: a }',
    ))).toEqual([
      '10:14: pools.web.backends[1].url: duplicate backend name "127.0.0.1:3001" in pool "web": give each backend a unique name',
      '12:47: pools.web.backends[3].name: duplicate backend name "a" in pool "web": give each backend a unique name',
    ]);
  });

  test('hashOn on a pool that does not use consistent-hash', () => {
    expect(positions(withPool('    hashOn: header:x-user'))).toEqual([
      '10:13: pools.web.hashOn: hashOn only applies to strategy consistent-hash (this pool uses round-robin)',
    ]);
  });

  test('a pool without backends or discovery, a listener without routes', () => {
    expect(positions(yaml(
      'listeners:',
      '  main:',
      '    listen: 127.0.0.1:0',
      '    routes: []',
      'pools:',
      '  web:',
      '    strategy: random',
    ))).toEqual([
      '4:13: listeners.main.routes: a listener needs at least one route',
      '6:3: pools.web: pool "web" needs at least one backend or a discovery block',
    ]);
  });

  test('two listeners on one port', () => {
    expect(positions(yaml(
      'admin: { listen: "127.0.0.1:8080" }',
      'listeners:',
      '  a: { listen: "[::]:8080", routes: [{ pool: web }] }',
      '  b: { listen: ":0", routes: [{ pool: web }] }',
      '  c: { listen: ":0", routes: [{ pool: web }] }',
      ...MINIMAL.slice(5),
    ))).toEqual([
      '3:16: listeners.a.listen: port 8080 is already used by admin.listen',
    ]);
  });

  test('names that cannot appear in URLs', () => {
    expect(positions(yaml(
      'listeners:',
      '  "my listener": { listen: ":0", routes: [{ pool: web }] }',
      'pools:',
      '  web: { backends: [{ url: "http://127.0.0.1:1", name: "a/b" }] }',
    ))).toEqual([
      '2:3: listeners."my listener": invalid listener name "my listener": use letters, digits and . _ -',
      '4:56: pools.web.backends[0].name: invalid backend name "a/b": use letters, digits and . _ : - [ ]',
    ]);
  });
});

test('several problems in one file are all reported, sorted by position', () => {
  const text = yaml(
    'workers: 0',
    'listeners:',
    '  main:',
    '    listen: 127.0.0.1:99999',
    '    routes:',
    '      - pool: nope',
    'pools:',
    '  web:',
    '    strategy: fastest',
    '    healthCheck: { intervall: 5s }',
    '    backends:',
    '      - url: ftp://x',
    'logg: {}',
    'admin: { token: "${UNSET}" }',
  );
  const problems = problemsOf(text);
  expect(problems.map((p) => `${p.line}:${p.col}`)).toEqual([
    '1:10', '4:13', '6:15', '9:15', '10:20', '12:14', '13:1', '14:17',
  ]);
  expect(problems.map(formatProblem).join('\n')).toMatch(/^fulcrum\.yaml:1:10: workers: /);
  expect(problems[6]!.message).toBe('unknown key "logg" (did you mean "log"?)');
  expect(problems.every((p) => !p.message.includes('\n'))).toBe(true);
});

test('aliases are followed when locating a problem', () => {
  expect(positions(yaml(
    'defaults: &t { connect: 5 seconds }',
    ...MINIMAL,
    '    timeouts: *t',
  ))).toEqual([
    '1:1: unknown key "defaults": expected one of workers, shutdownTimeout, shutdownDelay, log, admin, tracing, listeners, pools, cluster',
    '1:25: pools.web.timeouts.connect: invalid duration "5 seconds": use a number with ms, s, m or h, e.g. 5s',
  ]);
});

describe('tls files that exist but cannot be used', () => {
  test('garbage instead of PEM is a problem at the tls block, not a crash at startup', () => {
    const fs = require('node:fs') as typeof import('node:fs');
    const os = require('node:os') as typeof import('node:os');
    const path = require('node:path') as typeof import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-pem-'));
    fs.writeFileSync(path.join(dir, 'bad.crt'), 'not a certificate\n');
    fs.writeFileSync(path.join(dir, 'bad.key'), 'not a key\n');
    const text = yaml(...MINIMAL.slice(0, 3), `    tls: { cert: ${dir}/bad.crt, key: ${dir}/bad.key }`, ...MINIMAL.slice(3));
    const found = positions(text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^4:10: listeners\.main\.tls: tls cert and key cannot be used together: /);
  });
});

describe('tls.minVersion and tls.ciphers (SPEC section 13)', () => {
  const { cert, key } = selfSigned();
  const withTls = (...lines: string[]) => yaml(...MINIMAL.slice(0, 3), '    tls:', `      cert: ${cert}`, `      key: ${key}`, ...lines, ...MINIMAL.slice(3));

  test('default to TLS 1.2 and Mozilla\'s intermediate ciphers', () => {
    const tls = parseConfig(withTls(), 'f', {}).listeners[0]!.tls!;
    expect(tls.minVersion).toBe('TLSv1.2');
    expect(tls.ciphers).toBe(DEFAULT_CIPHERS);
    expect(DEFAULT_CIPHERS.split(':').every((c) => c.startsWith('ECDHE-') && /GCM|CHACHA20/.test(c))).toBe(true);
    expect(parseConfig(withTls('      minVersion: TLSv1.3'), 'f', {}).listeners[0]!.tls!.minVersion).toBe('TLSv1.3');
  });

  test('an unknown minVersion', () => {
    expect(positions(withTls('      minVersion: TLSv1.1'))).toEqual([
      '7:19: listeners.main.tls.minVersion: unknown tls minVersion "TLSv1.1": expected one of TLSv1.2, TLSv1.3',
    ]);
  });

  test('a cipher list OpenSSL refuses, or none', () => {
    expect(positions(withTls('      ciphers: "NOT-A-CIPHER:ALSO-NOT"'))).toEqual([
      expect.stringMatching(/^7:16: listeners\.main\.tls\.ciphers: OpenSSL refuses the tls cipher list "NOT-A-CIPHER:ALSO-NOT": .*no cipher match/i),
    ]);
    expect(positions(withTls('      ciphers: ""'))).toEqual([
      expect.stringMatching(/^7:16: listeners\.main\.tls\.ciphers: tls ciphers must be an OpenSSL cipher list/),
    ]);
  });
});

describe('cluster (SPEC section 10)', () => {
  test('scope cluster needs the cluster block, at the scope', () => {
    expect(positions(withPool('    outlierDetection: { scope: cluster }'))).toEqual([
      '10:32: pools.web.outlierDetection.scope: outlierDetection.scope cluster needs a top-level cluster block (cluster: { redis, name })',
    ]);
    const ok = parseConfig(yaml(...withPool('    outlierDetection: { scope: cluster }').trimEnd().split('\n'), 'cluster: { redis: "redis://127.0.0.1:6379/0", name: prod }'), 'fulcrum.yaml', {});
    expect(ok.cluster).toEqual({ redis: 'redis://127.0.0.1:6379/0', name: 'prod' });
    expect(ok.pools[0]!.outlierDetection!.scope).toBe('cluster');
  });

  test('an unknown scope, a bad redis url, a bad name, a missing name, an unknown key', () => {
    expect(positions(withPool('    outlierDetection: { scope: global }'))).toEqual([
      '10:32: pools.web.outlierDetection.scope: unknown outlierDetection scope "global": expected one of local, cluster',
    ]);
    expect(positions(yaml(...MINIMAL, 'cluster: { redis: "http://x:6379", name: "a b", replica: x, port: 1 }'))).toEqual([
      '10:19: cluster.redis: invalid cluster.redis "http://x:6379": expected redis://host:6379/0 or rediss://host:6380',
      '10:42: cluster.name: invalid cluster.name "a b": use 1 to 64 letters, digits and . _ -',
      '10:61: cluster: unknown key "port": expected one of redis, name, replica',
    ]);
    expect(positions(yaml(...MINIMAL, 'cluster: { redis: "redis://h:6379/db" }'))).toEqual([
      '10:10: cluster: missing required key "name"',
      '10:19: cluster.redis: invalid database in cluster.redis "redis://h:6379/db": expected a number such as /0',
    ]);
  });
});
