import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildRing, ConsistentHash, MAX_RING_POINTS, murmur3, VNODES_PER_WEIGHT } from '../../src/balancing/consistent-hash';
import { createStrategy } from '../../src/balancing';
import { backend, backends, depsWith, mulberry32, tally, type TestBackend } from './helpers';

/** Reference MurmurHash3 x86_32 over explicit bytes, to check the allocation-free UTF-8 path. */
function murmur3Bytes(bytes: Uint8Array, seed = 0): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = bytes.length & ~3;
  const mixK = (k: number): number => Math.imul(((Math.imul(k, c1) << 15) | (Math.imul(k, c1) >>> 17)), c2);
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= mixK(k);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = bytes.length & 3;
  if (tail > 0) {
    let k = bytes[blocks]!;
    if (tail > 1) k |= bytes[blocks + 1]! << 8;
    if (tail > 2) k |= bytes[blocks + 2]! << 16;
    h ^= mixK(k);
  }
  h ^= bytes.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function keys(n: number, seed = 1): string[] {
  const rng = mulberry32(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`${Math.floor(rng() * 256)}.${Math.floor(rng() * 256)}.${Math.floor(rng() * 256)}.${i % 256}`);
  return out;
}

function mapping(s: ConsistentHash<TestBackend>, available: readonly TestBackend[], ks: readonly string[]): string[] {
  return ks.map((k) => s.pick(available, { hashKey: k }).name);
}

function ringOf(available: readonly TestBackend[]): ConsistentHash<TestBackend> {
  const s = new ConsistentHash<TestBackend>();
  s.update(available);
  return s;
}

const FIVE = ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.4:8080', '10.0.0.5:8080'];

describe('murmur3', () => {
  test.each([
    ['', 0, 0x00000000],
    ['', 1, 0x514e28b7],
    ['hello', 0, 0x248bfa47],
    ['Hello, world!', 1234, 0xfaf6cdb3],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
  ])('matches the published vector for %p (seed %p)', (input, seed, expected) => {
    expect(murmur3(input, seed)).toBe(expected);
  });

  test('hashes the UTF-8 bytes, as Buffer.from encodes them (lone surrogates included)', () => {
    const inputs = ['a', 'ab', 'abc', 'abcd', 'abcde', 'é', 'naïve café', '日本語のキー', '😀', 'x😀yz', '\u{10ffff}', '\ud800', 'a\udc00b', '\ud83d', '\u0080\u07ff\u0800\uffff'];
    for (const s of inputs) expect([s, murmur3(s)]).toEqual([s, murmur3Bytes(Buffer.from(s, 'utf8'))]);
    const rng = mulberry32(5);
    for (let i = 0; i < 500; i++) {
      let s = '';
      const len = Math.floor(rng() * 20);
      for (let j = 0; j < len; j++) s += String.fromCharCode(Math.floor(rng() * 0x10000));
      expect(murmur3(s, i)).toBe(murmur3Bytes(Buffer.from(s, 'utf8'), i));
    }
  });
});

describe('hash ring', () => {
  test(`${VNODES_PER_WEIGHT} points per unit of weight, sorted and distinct`, () => {
    const ring = buildRing([backend('a', 1), backend('b', 2), backend('c', 0.01)]);
    expect(ring.points.length).toBe(VNODES_PER_WEIGHT * 3 + 2); // c gets at least 1 (round(1.6) = 2)
    for (let i = 1; i < ring.points.length; i++) expect(ring.points[i]!).toBeGreaterThan(ring.points[i - 1]!);
    expect(Object.fromEntries(tally([...ring.owners].map(String)))).toEqual({ '0': 160, '1': 320, '2': 2 });
  });

  test(`large weights are capped at about ${MAX_RING_POINTS} points in all`, () => {
    const big = Array.from({ length: 50 }, (_, i) => backend(`b${i}`, 100));
    const ring = buildRing(big);
    expect(ring.points.length).toBeLessThanOrEqual(MAX_RING_POINTS + big.length);
    expect(ring.points.length).toBeGreaterThan(MAX_RING_POINTS * 0.99);
  });

  test('does not depend on the order of the backends', () => {
    const all = FIVE.map((n) => backend(n));
    const ks = keys(2000, 2);
    const reversed = [...all].reverse();
    expect(mapping(ringOf(reversed), reversed, ks)).toEqual(mapping(ringOf(all), all, ks));
  });
});

describe('consistent-hash distribution and stability', () => {
  const ks = keys(10_000);

  test('10k keys over 5 backends: each gets between 10% and 30%', () => {
    const all = FIVE.map((n) => backend(n));
    const counts = tally(mapping(ringOf(all), all, ks));
    expect(counts.size).toBe(5);
    for (const n of counts.values()) {
      expect(n / ks.length).toBeGreaterThan(0.1);
      expect(n / ks.length).toBeLessThan(0.3);
    }
  });

  test('weights scale the share of keys', () => {
    const all = [backend('heavy', 2), backend('light-1', 1), backend('light-2', 1)];
    const counts = tally(mapping(ringOf(all), all, ks));
    expect(counts.get('heavy')! / ks.length).toBeGreaterThan(0.4);
    expect(counts.get('heavy')! / ks.length).toBeLessThan(0.6);
  });

  test('removing one of 5 moves 15%-25% of keys, all of them from the removed backend; adding it back restores the mapping', () => {
    const all = FIVE.map((n) => backend(n));
    const s = ringOf(all);
    const before = mapping(s, all, ks);

    const removed = all[2]!;
    const four = all.filter((b) => b !== removed);
    s.update(four);
    const after = mapping(s, four, ks);
    let moved = 0;
    for (let i = 0; i < ks.length; i++) {
      if (after[i] !== before[i]) {
        moved++;
        expect(before[i]).toBe(removed.name);
      }
    }
    expect(moved / ks.length).toBeGreaterThan(0.15);
    expect(moved / ks.length).toBeLessThan(0.25);

    s.update(all);
    expect(mapping(s, all, ks)).toEqual(before);
  });

  test('adding a sixth backend only moves keys onto it', () => {
    const all = FIVE.map((n) => backend(n));
    const s = ringOf(all);
    const before = mapping(s, all, ks);
    const six = [...all, backend('10.0.0.6:8080')];
    s.update(six);
    const after = mapping(s, six, ks);
    let moved = 0;
    for (let i = 0; i < ks.length; i++) {
      if (after[i] !== before[i]) {
        moved++;
        expect(after[i]).toBe('10.0.0.6:8080');
      }
    }
    expect(moved / ks.length).toBeGreaterThan(0.1);
    expect(moved / ks.length).toBeLessThan(0.25);
  });

  test('a retry excluding a backend goes where the key would go if that backend were gone', () => {
    const all = FIVE.map((n) => backend(n));
    const s = ringOf(all);
    const excluded = all[1]!;
    const subset = all.filter((b) => b !== excluded);
    const retried = mapping(s, subset, ks.slice(0, 2000));
    const without = mapping(ringOf(subset), subset, ks.slice(0, 2000));
    expect(retried).toEqual(without);
    // Keys not on the excluded backend stay where they were.
    const first = mapping(s, all, ks.slice(0, 2000));
    first.forEach((name, i) => {
      if (name !== excluded.name) expect(retried[i]).toBe(name);
    });
  });

  test('without a key: round robin over the available backends', () => {
    const s = createStrategy<TestBackend>('consistent-hash', depsWith(mulberry32(1)));
    const all = backends('abc');
    s.update(all);
    const seq = [0, 1, 2, 3, 4, 5].map(() => s.pick(all, {}).name).join(' ');
    expect(seq).toBe('a b c a b c');
  });

  test('the same key always picks the same backend', () => {
    const all = FIVE.map((n) => backend(n));
    const s = ringOf(all);
    const first = s.pick(all, { hashKey: 'user-42' });
    for (let i = 0; i < 100; i++) expect(s.pick(all, { hashKey: 'user-42' })).toBe(first);
  });

  test('golden mapping: upgrading Fulcrum must not reshuffle keys', () => {
    // Pinned from this implementation; a change here moves every client in a mixed-version fleet.
    const all = FIVE.map((n) => backend(n));
    const s = ringOf(all);
    const got = Object.fromEntries(['10.1.2.3', '192.168.0.7', '/api/users/17', 'session=abc', ''].map((k) => [k, s.pick(all, { hashKey: k }).name]));
    expect(got).toEqual({
      '': '10.0.0.1:8080',
      '/api/users/17': '10.0.0.3:8080',
      '10.1.2.3': '10.0.0.3:8080',
      '192.168.0.7': '10.0.0.5:8080',
      'session=abc': '10.0.0.4:8080',
    });
    // The ring point of a backend's first replica: "<name length>:<name>#<replica>".
    expect(murmur3('10.0.0.1:8080')).toBe(2741077564);
    expect(murmur3('13:10.0.0.1:8080#0')).toBe(3952345187);
    const ring = buildRing([backend('10.0.0.1:8080'), backend('10.0.0.2:8080')]);
    expect(ring.owners[ring.points.indexOf(3952345187)]).toBe(0);
  });
});

describe('cross-process agreement', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-ch-'));
    const root = path.resolve(__dirname, '../..');
    // Compile the strategy with the project's own TypeScript, so a plain node process can load it.
    execFileSync(
      process.execPath,
      [
        require.resolve('typescript/bin/tsc'),
        path.join(root, 'src/balancing/consistent-hash.ts'),
        '--outDir', dir,
        '--rootDir', path.join(root, 'src'),
        '--module', 'commonjs',
        '--target', 'ES2022',
        '--skipLibCheck',
        '--types', 'node',
      ],
      { cwd: root, stdio: 'pipe' },
    );
  }, 60_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('a second node process maps every key to the same backend', () => {
    const names = [...FIVE, 'api-a', 'api-b', '名前'];
    const ks = keys(2000, 9);
    const child = path.join(dir, 'child.js');
    writeFileSync(
      child,
      `const { ConsistentHash } = require(${JSON.stringify(path.join(dir, 'balancing/consistent-hash.js'))});
      const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
      // Different object identities and a different order than the parent's.
      const available = input.names.slice().reverse().map((name) => ({ name, weight: 1, inFlight: 0, latencyEwmaMs: 0 }));
      const s = new ConsistentHash();
      s.update(available);
      process.stdout.write(JSON.stringify(input.keys.map((k) => s.pick(available, { hashKey: k }).name)));`,
    );
    const out = execFileSync(process.execPath, [child], { input: JSON.stringify({ names, keys: ks }), encoding: 'utf8' });
    const theirs = JSON.parse(out) as string[];
    const all = names.map((n) => backend(n));
    const ours = mapping(ringOf(all), all, ks);
    expect(theirs).toHaveLength(ks.length);
    expect(theirs).toEqual(ours);
  });
});
