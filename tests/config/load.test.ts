import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, parseConfig, type Config } from '../../src/config';
import { DEFAULT_CIPHERS } from '../../src/config/values';
import { MINIMAL, yaml } from './helpers';

const FIXTURES = path.join(__dirname, 'fixtures');
const SPEC_FULL = path.join(FIXTURES, 'spec-full.yaml');

describe('the full example of SPEC section 2', () => {
  let config: Config;
  beforeAll(() => {
    config = loadConfig(SPEC_FULL, { FULCRUM_ADMIN_TOKEN: 's3cret' });
  });

  test('top level', () => {
    expect(config.file).toBe(SPEC_FULL);
    expect(config.workers).toBe(1);
    expect(config.shutdownTimeoutMs).toBe(30_000);
    expect(config.log).toEqual({ level: 'info', access: true });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9901, token: 's3cret' });
  });

  test('listener', () => {
    expect(config.listeners).toHaveLength(1);
    const l = config.listeners[0]!;
    expect(l).toMatchObject({ name: 'public', host: '0.0.0.0', port: 8080, http2: false });
    expect(l.tls).toEqual({
      cert: path.join(FIXTURES, 'certs/server.crt'),
      key: path.join(FIXTURES, 'certs/server.key'),
      minVersion: 'TLSv1.2',
      clientAuth: 'none',
      ciphers: DEFAULT_CIPHERS,
    });
    expect(l.limits).toEqual({
      maxBodySize: 10 * 1024 * 1024,
      headersTimeoutMs: 10_000,
      bodyTimeoutMs: 60_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 0,
      rateLimit: { requestsPerSecond: 100, burst: 200, key: { kind: 'ip' }, scope: 'local' },
    });
    expect(l.routes).toEqual([
      { match: { hosts: ['api.example.com'], pathPrefix: '/v1/' }, pool: 'api', stripPrefix: false },
      { match: {}, pool: 'web', stripPrefix: false },
    ]);
  });

  test('pools in file order, backends normalised', () => {
    expect(config.pools.map((p) => p.name)).toEqual(['api', 'web']);
    const [api, web] = config.pools;
    expect(api!.strategy).toBe('least-connections');
    expect(api!.backends).toEqual([
      { url: 'http://10.0.0.21:8080', name: '10.0.0.21:8080', weight: 1, backup: false },
      { url: 'http://10.0.0.22:8080', name: '10.0.0.22:8080', weight: 1, backup: false },
    ]);
    expect(api!.healthCheck).toBeUndefined();
    expect(api!.outlierDetection).toBeUndefined();
    expect(api!.hashOn).toBeUndefined();

    expect(web!.strategy).toBe('round-robin');
    expect(web!.backends.map((b) => [b.name, b.backup])).toEqual([
      ['web-1', false],
      ['10.0.0.12:8080', false],
      ['10.0.0.13:8080', true],
    ]);
    expect(web!.discovery).toEqual({ dns: { name: 'web.internal', port: 8080, refreshMs: 10_000 } });
    expect(web!.healthCheck).toEqual({
      path: '/healthz', intervalMs: 5_000, timeoutMs: 2_000, rise: 2, fall: 3, expectStatus: [[200, 399]],
    });
    expect(web!.outlierDetection).toEqual({ consecutiveFailures: 5, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50, scope: 'local' });
    expect(web!.slowStartMs).toBe(0);
    expect(web!.retries).toEqual({ attempts: 2, on: ['connect-failure', 'reset', '502', '503', '504'] });
    expect(web!.timeouts).toEqual({ connectMs: 3_000, responseMs: 30_000, idleMs: 60_000 });
    expect(web!.maxConnectionsPerBackend).toBe(0);
    expect(web!.panicThreshold).toBe(0);
    expect(web!.sticky).toEqual({ cookie: 'FULCRUM_STICKY' });
  });

  test('the result is deeply frozen', () => {
    // Test files are ES modules, so strict mode: writing to a frozen object throws.
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.pools[1]!.backends[0])).toBe(true);
    expect(Object.isFrozen(config.pools[1]!.healthCheck!.expectStatus[0])).toBe(true);
    expect(() => {
      (config as { workers: unknown }).workers = 4;
    }).toThrow(TypeError);
    expect(() => {
      (config.pools[0]!.backends as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config.listeners[0]!.limits as { maxBodySize: number }).maxBodySize = 1;
    }).toThrow(TypeError);
  });

  test('without FULCRUM_ADMIN_TOKEN it is rejected at the token', () => {
    expect(() => loadConfig(SPEC_FULL, {})).toThrow(/spec-full\.yaml:10:10: environment variable FULCRUM_ADMIN_TOKEN is not set/);
  });
});

describe('a minimal config', () => {
  const config = parseConfig(yaml(...MINIMAL), 'fulcrum.yaml', {});

  test('gets every default', () => {
    expect(config).toEqual({
      file: path.resolve('fulcrum.yaml'),
      workers: 1,
      shutdownTimeoutMs: 30_000,
      shutdownDelayMs: 0,
      log: { level: 'info', access: true },
      admin: { host: '127.0.0.1', port: 9901 },
      listeners: [
        {
          name: 'main',
          host: '127.0.0.1',
          port: 0,
          http2: false,
          limits: { maxBodySize: 0, headersTimeoutMs: 10_000, bodyTimeoutMs: 60_000, keepAliveTimeoutMs: 65_000, maxConnections: 0 },
          routes: [{ match: {}, pool: 'web', stripPrefix: false }],
        },
      ],
      pools: [
        {
          name: 'web',
          strategy: 'round-robin',
          backends: [{ url: 'http://127.0.0.1:3001', name: '127.0.0.1:3001', weight: 1, backup: false }],
          slowStartMs: 0,
          retries: { attempts: 1, on: ['connect-failure'] },
          timeouts: { connectMs: 5_000, responseMs: 30_000, idleMs: 4_000 },
          maxConnectionsPerBackend: 0,
          protocol: 'http1',
          panicThreshold: 0,
        },
      ],
    });
  });

  test('optional keys are absent, not undefined', () => {
    expect(Object.keys(config.admin)).toEqual(['host', 'port']);
    expect('tls' in config.listeners[0]!).toBe(false);
    expect('healthCheck' in config.pools[0]!).toBe(false);
  });
});

describe('normalisation', () => {
  const parse = (...extra: string[]): Config => parseConfig(yaml(...MINIMAL, ...extra), 'fulcrum.yaml', {});
  const pool = (...lines: string[]) => parse(...lines).pools[0]!;

  test('healthCheck and outlierDetection blocks get their defaults when present', () => {
    const p = pool('    healthCheck: {}', '    outlierDetection:');
    expect(p.healthCheck).toEqual({ path: '/', intervalMs: 5_000, timeoutMs: 2_000, rise: 2, fall: 3, expectStatus: [[200, 399]] });
    expect(p.outlierDetection).toEqual({ consecutiveFailures: 5, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, scope: 'local' });
  });

  test.each([
    ['200', [[200, 200]]],
    ['"200,204,300-399"', [[200, 200], [204, 204], [300, 399]]],
    ['[200, "300-302"]', [[200, 200], [300, 302]]],
    ['200-299', [[200, 299]]],
  ])('expectStatus %s', (written, ranges) => {
    expect(pool('    healthCheck:', `      expectStatus: ${written}`).healthCheck!.expectStatus).toEqual(ranges);
  });

  test('consistent-hash defaults hashOn to ip; header names are lower-cased', () => {
    expect(pool('    strategy: consistent-hash').hashOn).toEqual({ kind: 'ip' });
    expect(pool('    strategy: consistent-hash', '    hashOn: header:X-User').hashOn).toEqual({ kind: 'header', name: 'x-user' });
    expect(pool('    strategy: consistent-hash', '    hashOn: cookie:session').hashOn).toEqual({ kind: 'cookie', name: 'session' });
    expect(pool('    strategy: consistent-hash', '    hashOn: path').hashOn).toEqual({ kind: 'path' });
  });

  test('retry conditions accept YAML numbers', () => {
    expect(pool('    retries: { attempts: 0, on: [502, "503", timeout] }').retries).toEqual({ attempts: 0, on: ['502', '503', 'timeout'] });
  });

  test('backend urls: default ports, IPv6, names', () => {
    const p = pool(
      '      - url: https://example.com',
      '      - url: http://[::1]:8080/',
      '      - url: HTTP://Example.org',
    );
    expect(p.backends.map((b) => [b.url, b.name])).toEqual([
      ['http://127.0.0.1:3001', '127.0.0.1:3001'],
      ['https://example.com:443', 'example.com:443'],
      ['http://[::1]:8080', '[::1]:8080'],
      ['http://example.org:80', 'example.org:80'],
    ]);
  });

  test('listen addresses', () => {
    const text = yaml(
      'admin: { listen: "[::1]:9000" }',
      'listeners:',
      '  a: { listen: ":8080", routes: [{ pool: web }] }',
      '  b: { listen: "[::]:8443", routes: [{ pool: web }] }',
      '  c: { listen: "localhost:0", routes: [{ pool: web }] }',
      'pools:',
      '  web: { backends: [{ url: "http://127.0.0.1:3001" }] }',
    );
    const c = parseConfig(text, 'fulcrum.yaml', {});
    expect(c.admin).toEqual({ host: '::1', port: 9000 });
    expect(c.listeners.map((l) => [l.host, l.port])).toEqual([['0.0.0.0', 8080], ['::', 8443], ['localhost', 0]]);
  });

  test('route match: host lower-cased without port', () => {
    const c = parseConfig(yaml(
      'listeners:',
      '  main:',
      '    listen: 127.0.0.1:0',
      '    routes:',
      '      - { match: { host: API.Example.com:8443, pathPrefix: /v1 }, pool: web, stripPrefix: true }',
      '      - pool: web',
      ...MINIMAL.slice(5),
    ), 'fulcrum.yaml', {});
    expect(c.listeners[0]!.routes[0]).toEqual({ match: { hosts: ['api.example.com'], pathPrefix: '/v1' }, pool: 'web', stripPrefix: true });
  });

  test('rate limit burst defaults to requestsPerSecond, at least 1; key header is lower-cased', () => {
    const limits = (rl: string) => parseConfig(yaml(
      ...MINIMAL.slice(0, 3), `    limits: { rateLimit: ${rl} }`, ...MINIMAL.slice(3),
    ), 'fulcrum.yaml', {}).listeners[0]!.limits.rateLimit;
    expect(limits('{ requestsPerSecond: 50 }')).toEqual({ requestsPerSecond: 50, burst: 50, key: { kind: 'ip' }, scope: 'local' });
    expect(limits('{ requestsPerSecond: 0.5, key: "header:X-Api-Key" }')).toEqual({
      requestsPerSecond: 0.5, burst: 1, key: { kind: 'header', name: 'x-api-key' }, scope: 'local',
    });
  });

  test('workers, log, durations', () => {
    const c = parse('workers: auto', 'shutdownTimeout: 1.5s', 'log: { level: debug, access: false }');
    expect(c.workers).toBe('auto');
    expect(c.shutdownTimeoutMs).toBe(1_500);
    expect(c.log).toEqual({ level: 'debug', access: false });
    expect(parse('shutdownTimeout: 0').shutdownTimeoutMs).toBe(0);
  });

  test('${NAME} is replaced in values, several per string; unquoted numbers stay numbers', () => {
    const c = parseConfig(yaml(
      'listeners:',
      '  main:',
      '    listen: ${HOST}:${PORT}',
      '    routes:',
      '      - pool: web',
      'pools:',
      '  web:',
      '    maxConnectionsPerBackend: ${MAX}',
      '    backends:',
      '      - url: http://${BACKEND}:3001',
    ), 'fulcrum.yaml', { HOST: '127.0.0.2', PORT: '8081', MAX: '7', BACKEND: 'b.internal' });
    expect(c.listeners[0]).toMatchObject({ host: '127.0.0.2', port: 8081 });
    expect(c.pools[0]!.maxConnectionsPerBackend).toBe(7);
    expect(c.pools[0]!.backends[0]!.url).toBe('http://b.internal:3001');
  });

  test('a pool may have discovery instead of backends', () => {
    const c = parseConfig(yaml(
      ...MINIMAL.slice(0, 7),
      '    discovery: { dns: { name: web.internal, port: 8080, server: "10.0.0.2" } }',
    ), 'fulcrum.yaml', {});
    expect(c.pools[0]!.backends).toEqual([]);
    expect(c.pools[0]!.discovery).toEqual({ dns: { name: 'web.internal', port: 8080, refreshMs: 30_000, server: '10.0.0.2:53' } });
  });
});

describe('loadConfig', () => {
  test('a missing file is FULCRUM_CONFIG_UNREADABLE with the path as given', () => {
    expect(() => loadConfig('does/not/exist.yaml', {})).toThrow(
      expect.objectContaining({
        code: 'FULCRUM_CONFIG_UNREADABLE',
        message: 'does/not/exist.yaml: cannot read config file: no such file',
      }),
    );
  });

  test('a directory is unreadable too', () => {
    expect(() => loadConfig(FIXTURES, {})).toThrow(expect.objectContaining({ code: 'FULCRUM_CONFIG_UNREADABLE' }));
  });

  test('problems name the file as the user gave it; tls paths resolve against its folder', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-config-'));
    try {
      const file = path.join(dir, 'f.yaml');
      fs.writeFileSync(file, yaml(...MINIMAL.slice(0, 3), '    tls: { cert: c.pem, key: k.pem }', ...MINIMAL.slice(3)));
      const rel = path.relative(process.cwd(), file);
      expect(() => loadConfig(rel, {})).toThrow(expect.objectContaining({
        problems: [
          expect.objectContaining({ file: rel, line: 4, col: 18, message: expect.stringContaining(`(${path.join(dir, 'c.pem')}): no such file`) }),
          expect.objectContaining({ file: rel, line: 4, col: 30, message: expect.stringContaining('tls key file "k.pem"') }),
        ],
      }));
      fs.copyFileSync(path.join(FIXTURES, 'certs', 'server.crt'), path.join(dir, 'c.pem'));
      fs.copyFileSync(path.join(FIXTURES, 'certs', 'server.key'), path.join(dir, 'k.pem'));
      expect(loadConfig(rel, {}).listeners[0]!.tls).toEqual({ cert: path.join(dir, 'c.pem'), key: path.join(dir, 'k.pem'), minVersion: 'TLSv1.2', ciphers: DEFAULT_CIPHERS, clientAuth: 'none' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
