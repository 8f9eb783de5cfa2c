/**
 * Validation of the front door's keys (SPEC 8.3-8.5): each problem at its
 * FILE:LINE:COL, and the values as the rest of Fulcrum gets them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { parseConfig } from '../../src/config';
import { ZSTD_AVAILABLE } from '../../src/config/front-door';
import { positions, yaml } from './helpers';

const HASH = bcrypt.hashSync('pw', 4);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-front-door-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A listener with one route whose extra keys are `route` (lines at 8 spaces), and `listener` lines (at 4). */
function config(route: string[], listener: string[] = []): string {
  return yaml(
    'listeners:',
    '  main:',
    '    listen: 127.0.0.1:0',
    ...listener,
    '    routes:',
    '      - pool: web',
    ...route,
    'pools:',
    '  web:',
    '    backends: [ { url: http://127.0.0.1:3001 } ]',
  );
}

describe('valid values', () => {
  test('access, compress and trustedProxies as the rest of Fulcrum gets them', () => {
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, `# ops\nalice:${HASH}\nbob:$2y$${HASH.slice(4)}\n`);
    const c = parseConfig(config([
      '        access:',
      '          allow: [10.0.0.0/8, 192.168.1.7, "2001:db8::/32"]',
      '          deny: 10.0.0.66',
      `          basicAuth: { realm: ops, usersFile: ${file} }`,
      '          forwardAuth: { url: "http://auth.internal:9000/verify", requestHeaders: [Authorization, cookie], responseHeaders: [X-User-Id] }',
      '        compress: { algorithms: [gzip], minSize: 2kb, types: [Text/*] }',
    ], ['    trustedProxies: [10.0.0.0/8, "fd00::/8", 127.0.0.1]']), 'f.yaml', {});
    const l = c.listeners[0]!;
    expect(l.trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8', '127.0.0.1/32']);
    expect(l.routes[0]!.access).toEqual({
      allow: ['10.0.0.0/8', '192.168.1.7/32', '2001:db8::/32'],
      deny: ['10.0.0.66/32'],
      basicAuth: { realm: 'ops', users: { alice: HASH, bob: `$2y$${HASH.slice(4)}` } },
      forwardAuth: { url: 'http://auth.internal:9000/verify', timeoutMs: 2000, requestHeaders: ['authorization', 'cookie'], responseHeaders: ['x-user-id'] },
    });
    expect(l.routes[0]!.compress).toEqual({ algorithms: ['gzip'], minSize: 2048, types: ['text/*'] });
  });

  test('compress: true takes the defaults of SPEC 8.5; false is off', () => {
    const on = parseConfig(config(['        compress: true']), 'f.yaml', {});
    expect(on.listeners[0]!.routes[0]!.compress).toEqual({
      algorithms: ['br', 'gzip'], minSize: 1024,
      types: ['text/*', 'application/json', 'application/javascript', 'application/xml', 'image/svg+xml'],
    });
    expect(parseConfig(config(['        compress: false']), 'f.yaml', {}).listeners[0]!.routes[0]!.compress).toBeUndefined();
  });
});

describe('problems at their position', () => {
  test('a bad CIDR, in trustedProxies and in allow/deny', () => {
    expect(positions(config(['        access: { allow: [10.0.0.0/33], deny: [10.0.0] }'], ['    trustedProxies: [10.0.0.0/8, "fe80::1%eth0"]']))).toEqual([
      '4:34: listeners.main.trustedProxies[1]: invalid address or CIDR "fe80::1%eth0": not an IPv4 or IPv6 address (e.g. 10.0.0.0/8, 192.168.1.7 or "2001:db8::/32")',
      '7:27: listeners.main.routes[0].access.allow[0]: invalid address or CIDR "10.0.0.0/33": the prefix length must be a whole number from 0 to 32 (e.g. 10.0.0.0/8, 192.168.1.7 or "2001:db8::/32")',
      '7:48: listeners.main.routes[0].access.deny[0]: invalid address or CIDR "10.0.0": not an IPv4 or IPv6 address (e.g. 10.0.0.0/8, 192.168.1.7 or "2001:db8::/32")',
    ]);
  });

  test('a plain-text password in users', () => {
    expect(positions(config(['        access: { basicAuth: { realm: ops, users: { alice: secret } } }']))).toEqual([
      '6:60: listeners.main.routes[0].access.basicAuth.users.alice: expected a bcrypt hash ($2a$, $2b$ or $2y$, as `htpasswd -nB USER` writes it): plain-text passwords are not accepted',
    ]);
  });

  test('a plain-text line in usersFile, and a usersFile that cannot be read', () => {
    const plain = path.join(dir, 'plain');
    fs.writeFileSync(plain, `alice:${HASH}\nbob:hunter2\n`);
    expect(positions(config([`        access: { basicAuth: { realm: ops, usersFile: ${plain} } }`]))).toEqual([
      `6:55: listeners.main.routes[0].access.basicAuth.usersFile: usersFile "${plain}" line 2: user "bob" has no bcrypt hash (plain text, or another scheme: write it with htpasswd -B)`,
    ]);
    const missing = path.join(dir, 'missing');
    expect(positions(config([`        access: { basicAuth: { realm: ops, usersFile: ${missing} } }`]))).toEqual([
      `6:55: listeners.main.routes[0].access.basicAuth.usersFile: cannot read usersFile "${missing}" (${missing}): no such file`,
    ]);
    expect(positions(config([`        access: { basicAuth: { realm: ops, usersFile: ${dir} } }`]))[0]).toMatch(/^6:55: .*not a file$/);
  });

  test('users and usersFile together, or neither', () => {
    expect(positions(config(['        access: { basicAuth: { realm: ops } }']))).toEqual([
      '6:30: listeners.main.routes[0].access.basicAuth: basicAuth needs exactly one of users and usersFile',
    ]);
  });

  test('an unknown algorithm, zstd where this Node.js has none, an unknown key', () => {
    const problems = positions(config(['        compress: { algorithms: [gzip, deflate, zstd], level: 9 }']));
    expect(problems).toEqual([
      '6:40: listeners.main.routes[0].compress.algorithms[1]: unknown compress algorithm "deflate": expected br, gzip, zstd',
      ...(ZSTD_AVAILABLE ? [] : [`6:49: listeners.main.routes[0].compress.algorithms[2]: compress algorithm zstd needs Node.js 22.15 or later (zlib.createZstdCompress); this is Node.js ${process.versions.node}`]),
      '6:56: listeners.main.routes[0].compress: unknown key "level": expected one of algorithms, minSize, types',
    ]);
  });

  test('forwardAuth: a url that is no http(s) URL, a bad header name; access: a typo', () => {
    expect(positions(config(['        access: { forwardAuth: { url: "ftp://x/", responseHeaders: ["x user"] }, alow: [] }']))).toEqual([
      '6:39: listeners.main.routes[0].access.forwardAuth.url: forwardAuth url must be an http:// or https:// URL such as http://auth.internal:9000/verify, got "ftp://x/"',
      '6:69: listeners.main.routes[0].access.forwardAuth.responseHeaders[0]: invalid header name "x user"',
      '6:82: listeners.main.routes[0].access: unknown key "alow" (did you mean "allow"?)',
    ]);
  });
});
