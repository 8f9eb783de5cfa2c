/** Shares over many picks, with a seeded PRNG so every run sees the same draws. */
import { createStrategy } from '../../src/balancing';
import { backends, depsWith, mulberry32, tally, type TestBackend } from './helpers';

test('weighted random: each backend within 2% of its weight share (or 5 sd) over 100k picks', () => {
  const weights = [1, 2, 3, 4];
  const all = backends('abcd', weights);
  const s = createStrategy('random', depsWith(mulberry32(2024)));
  s.update(all);
  const N = 100_000;
  const names: string[] = [];
  for (let i = 0; i < N; i++) names.push(s.pick(all, {}).name);
  const counts = tally(names);
  const total = weights.reduce((x, y) => x + y, 0);
  for (const [i, b] of all.entries()) {
    const expected = weights[i]! / total;
    const share = (counts.get(b.name) ?? 0) / N;
    // 2% of the share, or 5 standard deviations, whichever is looser (0.1 at 100k: sd 0.00095).
    const sd = Math.sqrt((expected * (1 - expected)) / N);
    expect(Math.abs(share - expected)).toBeLessThan(Math.max(0.02 * expected, 5 * sd));
  }
});

test('uniform random: each of 5 equal backends within 2% of a fifth over 100k picks', () => {
  const all = backends('abcde');
  const s = createStrategy('random', depsWith(mulberry32(7)));
  s.update(all);
  const N = 100_000;
  const names: string[] = [];
  for (let i = 0; i < N; i++) names.push(s.pick(all, {}).name);
  for (const n of tally(names).values()) expect(Math.abs(n / N - 0.2) / 0.2).toBeLessThan(0.02); // 2% here is over 3 sd
});

test('smooth weighted round robin gives exact shares over a whole cycle', () => {
  const all = backends('abcd', [4, 3, 2, 1]);
  const s = createStrategy('weighted-round-robin', depsWith(mulberry32(1)));
  s.update(all);
  const names: string[] = [];
  for (let i = 0; i < 1000; i++) names.push(s.pick(all, {}).name);
  expect(Object.fromEntries(tally(names))).toEqual({ a: 400, b: 300, c: 200, d: 100 });
});

/** Holds 64 requests in flight, finishing a uniformly chosen one per new request; returns the mean and max spread of in-flight counts. */
function inFlightSpread(name: 'power-of-two' | 'random'): { mean: number; max: number } {
  const all = backends('abcdefgh');
  const rng = mulberry32(3);
  const s = createStrategy<TestBackend>(name, depsWith(rng));
  s.update(all);
  const held: TestBackend[] = [];
  let max = 0;
  let sum = 0;
  const N = 20_000;
  for (let i = 0; i < N; i++) {
    const b = s.pick(all, {});
    b.inFlight++;
    held.push(b);
    if (held.length > 64) {
      const j = Math.floor(rng() * held.length);
      held[j]!.inFlight--;
      held[j] = held[held.length - 1]!;
      held.pop();
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of all) {
      lo = Math.min(lo, x.inFlight);
      hi = Math.max(hi, x.inFlight);
    }
    max = Math.max(max, hi - lo);
    sum += hi - lo;
  }
  return { mean: sum / N, max };
}

test('power-of-two keeps in-flight counts much closer together than random does', () => {
  const p2c = inFlightSpread('power-of-two');
  const random = inFlightSpread('random');
  expect(p2c.mean).toBeLessThan(random.mean * 0.6);
  expect(p2c.max).toBeLessThan(random.max);
});
