/**
 * describeChanges: the lines a reload logs and answers with (SPEC section 6),
 * between two configs read by the real parser. Exact strings, exact order:
 * listeners, then pools (each pool's backends after it), then the rest.
 */
import path from 'node:path';
import { parseConfig } from '../src/config';
import type { Config } from '../src/config/types';
import { describeChanges } from '../src/reload';

/** Relative to this folder, so `tls` can name the fixture certificates. */
const FILE = path.join(__dirname, 'config', 'fixtures', 'reload.yaml');

function config(...lines: string[]): Config {
  return parseConfig(lines.join('\n') + '\n', FILE, {});
}

/** A base config whose parts a test replaces by name. */
function base(parts: { top?: string[]; main?: string[]; listeners?: string[]; web?: string[]; pools?: string[] } = {}): Config {
  return config(
    ...(parts.top ?? []),
    'listeners:',
    '  main:',
    ...(parts.main ?? ['    listen: 127.0.0.1:8080', '    routes:', '      - pool: web']),
    ...(parts.listeners ?? []),
    'pools:',
    '  web:',
    ...(parts.web ?? [
      '    backends:',
      '      - { url: http://10.0.0.1:80, name: a }',
      '      - { url: http://10.0.0.2:80, name: b }',
    ]),
    ...(parts.pools ?? []),
  );
}

test('the same config: nothing', () => {
  expect(describeChanges(base(), base())).toEqual([]);
});

describe('listeners', () => {
  test.each<[string, string[], string[]]>([
    ['another port', ['    listen: 127.0.0.1:8081', '    routes:', '      - pool: web'], ['listener main: address changed']],
    ['another host', ['    listen: 0.0.0.0:8080', '    routes:', '      - pool: web'], ['listener main: address changed']],
    ['a route added', ['    listen: 127.0.0.1:8080', '    routes:', '      - { match: { pathPrefix: /v1/ }, pool: web }', '      - pool: web'], ['listener main: routes changed']],
    ['stripPrefix', ['    listen: 127.0.0.1:8080', '    routes:', '      - pool: web', '        stripPrefix: true'], ['listener main: routes changed']],
    ['tls on', ['    listen: 127.0.0.1:8080', '    tls: { cert: certs/server.crt, key: certs/server.key }', '    routes:', '      - pool: web'], ['listener main: tls changed']],
    ['limits', ['    listen: 127.0.0.1:8080', '    limits: { maxBodySize: 1mb }', '    routes:', '      - pool: web'], ['listener main: limits changed']],
    ['address, routes and limits at once', ['    listen: 127.0.0.1:9000', '    limits: { headersTimeout: 1s }', '    routes:', '      - pool: web', '        stripPrefix: true'],
      ['listener main: address changed', 'listener main: routes changed', 'listener main: limits changed']],
    ['a route becomes a redirect (SPEC 8)', ['    listen: 127.0.0.1:8080', '    routes:', '      - redirect: { scheme: https }'], ['listener main: routes changed']],
    ['a weight of pools', ['    listen: 127.0.0.1:8080', '    routes:', '      - pools: [ { pool: web, weight: 2 } ]'], ['listener main: routes changed']],
    ['a response header rule', ['    listen: 127.0.0.1:8080', '    routes:', '      - { pool: web, responseHeaders: { set: { x-a: b } } }'], ['listener main: routes changed']],
    ['the same values written otherwise', ['    listen: "127.0.0.1:8080"', '    limits: { maxBodySize: 0 }', '    routes: [{ pool: web, stripPrefix: false }]'], []],
  ])('%s', (_what, main, expected) => {
    expect(describeChanges(base(), base({ main }))).toEqual(expected);
  });

  test('http2 is reported with tls', () => {
    const tls = ['    listen: 127.0.0.1:8080', '    tls: { cert: certs/server.crt, key: certs/server.key }', '    routes:', '      - pool: web'];
    expect(describeChanges(base({ main: tls }), base({ main: [...tls, '    http2: true'] }))).toEqual(['listener main: tls changed']);
  });

  test('added and removed, by name', () => {
    const admin = ['  admin2:', '    listen: 127.0.0.1:8090', '    routes:', '      - pool: web'];
    const other = ['  other:', '    listen: 127.0.0.1:8091', '    routes:', '      - pool: web'];
    expect(describeChanges(base(), base({ listeners: admin }))).toEqual(['listener admin2: added']);
    expect(describeChanges(base({ listeners: admin }), base())).toEqual(['listener admin2: removed']);
    // Added ones in the new file's order, then the removed ones.
    expect(describeChanges(base({ listeners: admin }), base({ listeners: other }))).toEqual(['listener other: added', 'listener admin2: removed']);
  });

  test('a listener moved within the file is not a change', () => {
    const extra = ['  second:', '    listen: 127.0.0.1:8090', '    routes:', '      - pool: web'];
    const first = base({ listeners: extra });
    const swapped = config(
      'listeners:', ...extra, '  main:', '    listen: 127.0.0.1:8080', '    routes:', '      - pool: web',
      'pools:', '  web:', '    backends:', '      - { url: http://10.0.0.1:80, name: a }', '      - { url: http://10.0.0.2:80, name: b }',
    );
    expect(describeChanges(first, swapped)).toEqual([]);
  });
});

describe('pools and backends', () => {
  const web = (...backends: string[]) => ['    backends:', ...backends.map((b) => `      - ${b}`)];
  const A = '{ url: http://10.0.0.1:80, name: a }';
  const B = '{ url: http://10.0.0.2:80, name: b }';

  test.each<[string, string[], string[]]>([
    ['a backend added', web(A, B, '{ url: http://10.0.0.3:80, name: c }'), ['pool web: backend c added']],
    ['a backend removed', web(A), ['pool web: backend b removed']],
    ['a weight', web(A, '{ url: http://10.0.0.2:80, name: b, weight: 3 }'), ['pool web: backend b changed']],
    ['a url', web(A, '{ url: http://10.0.0.9:80, name: b }'), ['pool web: backend b changed']],
    ['backup', web(A, '{ url: http://10.0.0.2:80, name: b, backup: true }'), ['pool web: backend b changed']],
    ['a rename is one removed and one added', web(A, '{ url: http://10.0.0.2:80, name: b2 }'), ['pool web: backend b2 added', 'pool web: backend b removed']],
    ['the order of backends is no change', web(B, A), []],
    ['the default weight written out is no change', web('{ url: http://10.0.0.1:80, name: a, weight: 1 }', B), []],
    ['the strategy', [...web(A, B), '    strategy: least-connections'], ['pool web: settings changed']],
    ['a health check', [...web(A, B), '    healthCheck: { interval: 1s }'], ['pool web: settings changed']],
    ['timeouts', [...web(A, B), '    timeouts: { connect: 1s }'], ['pool web: settings changed']],
    ['the protocol (SPEC 9.1)', [...web(A, B), '    protocol: http2'], ['pool web: settings changed']],
    ['a grpc health check', [...web(A, B), '    protocol: http2', '    healthCheck: { grpc: { service: x } }'], ['pool web: settings changed']],
    ['settings and backends', [...web(B, '{ url: http://10.0.0.3:80, name: c }'), '    panicThreshold: 50'],
      ['pool web: settings changed', 'pool web: backend c added', 'pool web: backend a removed']],
  ])('%s', (_what, lines, expected) => {
    expect(describeChanges(base(), base({ web: lines }))).toEqual(expected);
  });

  test('a pool added and one removed: the new one first, its backends not listed', () => {
    const api = ['  api:', '    backends:', '      - url: http://10.0.1.1:80'];
    const cache = ['  cache:', '    backends:', '      - url: http://10.0.2.1:80'];
    expect(describeChanges(base(), base({ pools: api }))).toEqual(['pool api: added']);
    expect(describeChanges(base({ pools: api }), base({ pools: cache }))).toEqual(['pool cache: added', 'pool api: removed']);
  });
});

test('the rest: log, admin.token, workers, shutdownTimeout, in that order', () => {
  const before = base({ top: ['workers: 1', 'shutdownTimeout: 30s', 'log: { level: info, access: true }', 'admin: { listen: 127.0.0.1:9901, token: one }'] });
  const after = base({ top: ['workers: 2', 'shutdownTimeout: 5s', 'log: { level: debug, access: true }', 'admin: { listen: 127.0.0.1:9901, token: two }'] });
  expect(describeChanges(before, after)).toEqual([
    'log changed', 'admin.token changed', 'workers changed: takes effect after a restart', 'shutdownTimeout changed',
  ]);
  const accessOff = base({ top: ['workers: 1', 'shutdownTimeout: 30s', 'log: { level: info, access: false }', 'admin: { listen: 127.0.0.1:9901, token: one }'] });
  expect(describeChanges(before, accessOff)).toEqual(['log changed']);
  // The admin address is the server's to report (it needs a restart): not here.
  const moved = base({ top: ['workers: 1', 'shutdownTimeout: 30s', 'log: { level: info, access: true }', 'admin: { listen: 127.0.0.1:9911, token: one }'] });
  expect(describeChanges(before, moved)).toEqual([]);
});

test('everything at once keeps the order: listeners, pools, the rest', () => {
  const after = base({
    top: ['workers: 3'],
    main: ['    listen: 127.0.0.1:8081', '    routes:', '      - pool: web'],
    listeners: ['  extra:', '    listen: 127.0.0.1:8090', '    routes:', '      - pool: api'],
    web: ['    backends:', '      - { url: http://10.0.0.1:80, name: a, weight: 2 }'],
    pools: ['  api:', '    backends:', '      - url: http://10.0.1.1:80'],
  });
  expect(describeChanges(base(), after)).toEqual([
    'listener main: address changed',
    'listener extra: added',
    'pool web: backend a changed',
    'pool web: backend b removed',
    'pool api: added',
    'workers changed: takes effect after a restart',
  ]);
});
