/**
 * Cookie affinity alone (SPEC section 3, `sticky`): reading the Cookie
 * header, the token a backend gets, and when a pinned backend is honoured.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { BackendPool } from '../../src/pool/pool';
import { Sticky, readCookie } from '../../src/pool/sticky';
import { backendLines, namedPoolConfig, poolConfig } from '../helpers/pools';

const pools: BackendPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

/** The running Fulcrum's key (one per Fulcrum and its workers). */
const KEY = randomBytes(32);

function stickyPool(lines: string[] = backendLines('abc', { c: 'backup: true' }), key: string | Buffer = KEY): { pool: BackendPool; sticky: Sticky } {
  const pool = new BackendPool(poolConfig(...lines, 'sticky: { cookie: FULCRUM_STICKY }'));
  pools.push(pool);
  return { pool, sticky: new Sticky(pool, pool.config.sticky!.cookie, key) };
}

/** The cookie's value in a Set-Cookie header (the part a browser sends back). */
function tokenOf(setCookie: string): string {
  const pair = setCookie.split(';')[0]!;
  return pair.slice(pair.indexOf('=') + 1);
}

describe('readCookie (RFC 6265 section 5.4 layout)', () => {
  test.each<[string, string, string | undefined]>([
    ['FULCRUM=abc', 'FULCRUM', 'abc'],
    ['a=1; FULCRUM=abc; b=2', 'FULCRUM', 'abc'],
    ['a=1;FULCRUM=abc;b=2', 'FULCRUM', 'abc'],
    ['  a=1 ;   FULCRUM = abc  ; b=2', 'FULCRUM', 'abc'],
    ['a=1; FULCRUM=abc', 'FULCRUM', 'abc'],
    // First of two wins (RFC 6265 section 5.4: the longer path is listed first).
    ['FULCRUM=first; FULCRUM=second', 'FULCRUM', 'first'],
    // A name is matched whole and case-sensitively.
    ['XFULCRUM=no; FULCRUM_X=no; fulcrum=no', 'FULCRUM', undefined],
    ['XFULCRUM=no; FULCRUM=yes', 'FULCRUM', 'yes'],
    // The value runs to the next ';' and may hold '='.
    ['FULCRUM=a=b==; c=d', 'FULCRUM', 'a=b=='],
    // Double quotes are part of the cookie-value (RFC 6265 section 4.1.1), kept as sent.
    ['FULCRUM="abc"', 'FULCRUM', '"abc"'],
    ['FULCRUM=', 'FULCRUM', ''],
    // A segment without '=' does not borrow the next segment's.
    ['FULCRUM; x=1', 'FULCRUM', undefined],
    ['flag; FULCRUM=abc', 'FULCRUM', 'abc'],
    ['a=1; b=2', 'FULCRUM', undefined],
    ['', 'FULCRUM', undefined],
    [';;;', 'FULCRUM', undefined],
    ['a=1;', 'a', '1'],
  ])('%j → %j', (header, name, expected) => {
    expect(readCookie(header, name)).toBe(expected);
  });
});

describe('the token', () => {
  test('Set-Cookie: the configured name, an opaque 16-character token, Path=/, HttpOnly, SameSite=Lax', () => {
    const { pool, sticky } = stickyPool();
    for (const b of pool.backends) {
      expect(sticky.setCookie(b)).toMatch(/^FULCRUM_STICKY=[A-Za-z0-9_-]{16}; Path=\/; HttpOnly; SameSite=Lax$/);
    }
    expect(sticky.cookie).toBe('FULCRUM_STICKY');
  });

  test('never the backend\'s address or name', () => {
    const { pool, sticky } = stickyPool();
    for (const b of pool.backends) {
      const token = tokenOf(sticky.setCookie(b));
      const { hostname, port } = new URL(b.url);
      // The test backends are named a, b, c: one letter turns up in a random token by chance, so names count from 4 characters.
      for (const part of [b.url, hostname, port, b.name, Buffer.from(b.url).toString('base64url').slice(0, 8)].filter((x) => x.length >= 4)) {
        expect(token).not.toContain(part);
      }
    }
  });

  test('keyed: the same key (sticky.secret, or one Fulcrum and its workers) gives the same tokens, another key others', () => {
    const secret = 'a-shared-secret-of-replicas';
    const one = stickyPool(undefined, secret);
    const two = stickyPool(undefined, secret);
    const other = stickyPool(undefined, randomBytes(32));
    const tokens = (x: { pool: BackendPool; sticky: Sticky }) => x.pool.backends.map((b) => tokenOf(x.sticky.setCookie(b)));
    expect(tokens(two)).toEqual(tokens(one));
    for (const [i, t] of tokens(other).entries()) expect(t).not.toBe(tokens(one)[i]);
  });

  test('units finding: a backend\'s address cannot be worked back from its token by hashing candidate addresses', () => {
    const { pool, sticky } = stickyPool(['backends:', '  - url: http://10.0.0.57:8080']);
    const token = tokenOf(sticky.setCookie(pool.backends[0]!));
    expect(pool.backends[0]!.name).toBe('10.0.0.57:8080');
    // What an attacker who knows the pool's name can try: every address of the /24 on common ports, unkeyed or with a guessable key.
    const found: string[] = [];
    for (let host = 0; host < 256; host++) {
      for (const port of [80, 443, 3000, 8000, 8080]) {
        const name = `10.0.0.${host}:${port}`;
        const text = `fulcrum:${pool.name}:${name}`;
        const guesses = [createHash('sha256').update(text), createHmac('sha256', '').update(text), createHmac('sha256', pool.name).update(text)];
        if (guesses.some((h) => h.digest('base64url').slice(0, 16) === token)) found.push(name);
      }
    }
    expect(found).toEqual([]);
  });

  test('one per backend, the same every time and in every replica with the same config', () => {
    const one = stickyPool();
    const two = stickyPool();
    const tokens = one.pool.backends.map((b) => tokenOf(one.sticky.setCookie(b)));
    expect(new Set(tokens).size).toBe(3);
    expect(one.pool.backends.map((b) => tokenOf(one.sticky.setCookie(b)))).toEqual(tokens);
    expect(two.pool.backends.map((b) => tokenOf(two.sticky.setCookie(b)))).toEqual(tokens);
  });

  test('derived from the pool and backend names: another pool with the same backend names gets other tokens', () => {
    const web = stickyPool();
    const api = new BackendPool(namedPoolConfig('api', [...backendLines('abc', { c: 'backup: true' }), 'sticky: { cookie: FULCRUM_STICKY }']));
    pools.push(api);
    const apiSticky = new Sticky(api, 'FULCRUM_STICKY', KEY);
    for (let i = 0; i < 3; i++) {
      expect(api.backends[i]!.name).toBe(web.pool.backends[i]!.name);
      expect(apiSticky.setCookie(api.backends[i]!)).not.toBe(web.sticky.setCookie(web.pool.backends[i]!));
    }
  });
});

describe('preferred: the pinned backend while it is available', () => {
  test('a cookie set for a backend brings the request back to it, among other cookies', () => {
    const { pool, sticky } = stickyPool();
    const [a, b] = pool.backends;
    expect(sticky.preferred(`theme=dark; ${sticky.setCookie(b!).split(';')[0]}; lang=en`)).toBe(b);
    expect(sticky.preferred(sticky.setCookie(a!).split(';')[0])).toBe(a);
  });

  test.each([
    ['no Cookie header', undefined],
    ['no such cookie', 'theme=dark'],
    ['an unknown token', 'FULCRUM_STICKY=AAAAAAAAAAAAAAAA'],
    ['an empty value', 'FULCRUM_STICKY='],
  ])('%s: none', (_what, header) => {
    const { sticky } = stickyPool();
    expect(sticky.preferred(header)).toBeUndefined();
  });

  test.each(['health-down', 'eject', 'drain'] as const)('a backend that is not up after %s: none (balanced anew), and again once it is back', (event) => {
    const { pool, sticky } = stickyPool();
    const a = pool.get('a')!;
    const cookie = tokenOf(sticky.setCookie(a));
    pool.transition(a, event, 'test');
    expect(sticky.preferred(`FULCRUM_STICKY=${cookie}`)).toBeUndefined();
    pool.transition(a, event === 'health-down' ? 'health-up' : event === 'eject' ? 'uneject' : 'enable', 'test');
    expect(sticky.preferred(`FULCRUM_STICKY=${cookie}`)).toBe(a);
  });

  test('a backup is honoured only while it is in use (no primary up)', () => {
    const { pool, sticky } = stickyPool();
    const c = pool.get('c')!;
    const header = `FULCRUM_STICKY=${tokenOf(sticky.setCookie(c))}`;
    expect(sticky.preferred(header)).toBeUndefined();
    pool.transition(pool.get('a')!, 'health-down', 'test');
    pool.transition(pool.get('b')!, 'health-down', 'test');
    expect(sticky.preferred(header)).toBe(c);
  });

  test('a cookie of another name with the same token is not ours', () => {
    const { pool, sticky } = stickyPool();
    const token = tokenOf(sticky.setCookie(pool.get('a')!));
    expect(sticky.preferred(`OTHER=${token}`)).toBeUndefined();
    expect(sticky.preferred(`FULCRUM_STICKY="${token}"`)).toBeUndefined();
  });
});

describe('backends added and removed at run time (DNS discovery)', () => {
  test('an added backend is known by its token; a removed one is forgotten; the same name back is found again', () => {
    const { pool, sticky } = stickyPool();
    const x = pool.add({ url: 'http://127.0.0.1:9200', name: 'x', weight: 1, backup: false });
    const header = `FULCRUM_STICKY=${tokenOf(sticky.setCookie(x))}`;
    expect(sticky.preferred(header)).toBe(x);
    pool.remove(x);
    expect(sticky.preferred(header)).toBeUndefined();
    const again = pool.add({ url: 'http://127.0.0.1:9200', name: 'x', weight: 1, backup: false });
    expect(again).not.toBe(x);
    expect(sticky.preferred(header)).toBe(again);
    expect(sticky.setCookie(again)).toBe(`${header}; Path=/; HttpOnly; SameSite=Lax`);
  });
});
