/**
 * Exact pick orders, pinned as tables (as undici's balanced-pool tests do).
 * Randomness is scripted so every draw is known.
 */
import { createStrategy } from '../../src/balancing';
import type { BalancingStrategy, PickContext } from '../../src/balancing/types';
import type { StrategyName } from '../../src/config/types';
import { backend, backends, depsWith, scripted, type TestBackend } from './helpers';

const none: PickContext = {};

function make(name: StrategyName, random: () => number = scripted([])): BalancingStrategy<TestBackend> {
  return createStrategy<TestBackend>(name, depsWith(random));
}

function picks(s: BalancingStrategy<TestBackend>, available: readonly TestBackend[], count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(s.pick(available, none).name);
  return out.join(' ');
}

describe('round-robin', () => {
  test('each backend in turn, ignoring weights', () => {
    const s = make('round-robin');
    const all = backends('abc', [5, 1, 1]);
    s.update(all);
    expect(picks(s, all, 6)).toBe('a b c a b c');
  });

  test('keeps turning across a shrink, wrapping instead of indexing past the end', () => {
    const s = make('round-robin');
    const all = backends('abcd');
    s.update(all);
    expect(picks(s, all, 3)).toBe('a b c');
    const two = all.slice(0, 2);
    s.update(two);
    expect(picks(s, two, 4)).toBe('a b a b');
  });
});

describe('weighted-round-robin (smooth, nginx)', () => {
  test.each([
    [[5, 1, 1], 14, 'a a b a c a a a a b a c a a'],
    [[2, 1], 6, 'a b a a b a'],
    [[1, 1, 1], 6, 'a b c a b c'],
    [[1, 2, 3], 6, 'c b a c b c'],
    [[0.5, 0.25, 0.25], 8, 'a b c a a b c a'],
  ])('weights %p give, from a fresh state, %#', (weights, count, expected) => {
    const s = make('weighted-round-robin');
    const all = backends('abc'.slice(0, weights.length), weights);
    s.update(all);
    expect(picks(s, all, count)).toBe(expected);
  });

  test('an update with a different set restarts the schedule', () => {
    const s = make('weighted-round-robin');
    const all = backends('abc', [5, 1, 1]);
    s.update(all);
    expect(picks(s, all, 3)).toBe('a a b');
    const moved = [all[1]!, all[0]!, all[2]!];
    s.update(moved);
    // Fresh state (had it kept position, the next picks would have been a c a a).
    expect(picks(s, moved, 7)).toBe('a a b a c a a');
  });

  test('an update with the same set keeps the position (slow start moving a weight)', () => {
    const s = make('weighted-round-robin');
    const all = backends('abc', [5, 1, 1]);
    s.update(all);
    expect(picks(s, all, 3)).toBe('a a b');
    s.update(all);
    expect(picks(s, all, 4)).toBe('a c a a');
  });

  test('a subset pick runs the same step over the subset, as nginx skips tried peers', () => {
    const s = make('weighted-round-robin');
    const all = backends('abc', [5, 1, 1]);
    s.update(all);
    expect(picks(s, all, 1)).toBe('a'); // current: -2, 1, 1
    expect(picks(s, [all[1]!, all[2]!], 1)).toBe('b'); // 2, 2 -> b, minus subset total 2 -> -2, 0, 2
    expect(picks(s, all, 6)).toBe('a c a a b a');
  });
});

describe('least-connections', () => {
  function withLoad(inFlight: readonly number[], weights: readonly number[] = []): TestBackend[] {
    return inFlight.map((f, i) => backend('abcdef'[i]!, weights[i] ?? 1, f));
  }

  test.each([
    ['the fewest in flight', [3, 1, 2], [], 'b'],
    ['the fewest in flight, last', [3, 2, 0], [], 'c'],
    ['in flight per unit of weight', [4, 3, 1], [4, 1, 2], 'c'],
    ['a heavy backend despite more in flight', [6, 2, 2], [10, 1, 1], 'a'],
  ])('picks %s', (_what, inFlight, weights, expected) => {
    const s = make('least-connections');
    const all = withLoad(inFlight, weights);
    s.update(all);
    expect(s.pick(all, none).name).toBe(expected);
  });

  test('ties alternate in turn instead of always taking the first', () => {
    const s = make('least-connections');
    const all = withLoad([0, 0, 0]);
    s.update(all);
    expect(picks(s, all, 6)).toBe('a b c a b c');
    const busyA = withLoad([1, 0, 0]);
    s.update(busyA);
    expect(picks(s, busyA, 4)).toBe('b c b c');
  });

  test('reads in-flight counts live', () => {
    const s = make('least-connections');
    const all = withLoad([0, 0]);
    s.update(all);
    const seq: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = s.pick(all, none);
      b.inFlight++; // never released: the pool keeps them in flight
      seq.push(b.name);
    }
    expect(seq.join(' ')).toBe('a b a b a');
    all[0]!.inFlight = 10;
    expect(picks(s, all, 3)).toBe('b b b');
  });
});

describe('power-of-two', () => {
  // inFlight: a 5, b 2, c 7, d 2
  const load = (): TestBackend[] => [backend('a', 1, 5), backend('b', 1, 2), backend('c', 1, 7), backend('d', 1, 2)];

  test.each([
    // [first draw, second draw] -> (i, j over the others) -> winner
    [[0.0, 0.4], 'a'], // a(5) vs c(7): j = floor(0.4 * 3) = 1, skipping a -> c
    [[0.3, 0.0], 'b'], // b(2) vs a(5)
    [[0.99, 0.5], 'd'], // d(2) vs b(2): tie, first drawn
    [[0.5, 0.99], 'd'], // c(7) vs d(2): j = 2, skipping c -> d
    [[0.25, 0.25], 'b'], // b(2) vs a(5)? j = 0 -> a: never the same backend twice
  ])('draws %p pick %s', (draws, expected) => {
    const s = make('power-of-two', scripted(draws));
    const all = load();
    s.update(all);
    expect(s.pick(all, none).name).toBe(expected);
  });

  test('the two candidates are always distinct', () => {
    const s = make('power-of-two', scripted([0.5, 0.5, 0.0, 0.0, 0.999, 0.999]));
    const two = [backend('a', 1, 3), backend('b', 1, 1)];
    s.update(two);
    // Every draw pair puts a and b against each other, so the less loaded b always wins.
    expect(picks(s, two, 3)).toBe('b b b');
  });

  test('one backend is returned without drawing', () => {
    const s = make('power-of-two', scripted([]));
    const one = [backend('a')];
    s.update(one);
    expect(s.pick(one, none).name).toBe('a');
  });
});

describe('random', () => {
  test.each([
    ['uniform', [1, 1, 1, 1], [0, 0.2499, 0.25, 0.5, 0.7499, 0.99], 'a a b c c d'],
    ['weighted 3:1', [3, 1], [0, 0.74, 0.75, 0.999], 'a a b b'],
    ['weighted 1:2:1', [1, 2, 1], [0.2, 0.25, 0.74, 0.75, 0.9999], 'a b b c c'],
    ['weighted, fractional', [0.1, 0.3], [0.24, 0.26], 'a b'],
  ])('%s weights %p map draws %p to %s', (_what, weights, draws, expected) => {
    const all = backends('abcd'.slice(0, weights.length), weights);
    const s = make('random', scripted(draws));
    s.update(all);
    expect(picks(s, all, draws.length)).toBe(expected);
    // The rare path (a different array with the same backends) maps the same draws the same way.
    const other = make('random', scripted(draws));
    other.update(all);
    expect(picks(other, [...all], draws.length)).toBe(expected);
  });

  test('a subset is weighted over its own members', () => {
    const all = backends('abc', [1, 2, 1]);
    const s = make('random', scripted([0.6, 0.7]));
    s.update(all);
    // subset b:2, c:1 -> b below 2/3
    expect(picks(s, [all[1]!, all[2]!], 2)).toBe('b c');
  });
});

describe('ewma', () => {
  function view(latencies: readonly number[], inFlight: readonly number[] = [], weights: readonly number[] = []): TestBackend[] {
    return latencies.map((l, i) => backend('abcdef'[i]!, weights[i] ?? 1, inFlight[i] ?? 0, l));
  }

  test.each([
    ['the lowest latency', [10, 20, 5], [], [], 'c'],
    ['latency times (in flight + 1)', [10, 20, 5], [0, 0, 2], [], 'a'], // 10, 20, 15
    ['latency times (in flight + 1), busy fast one', [10, 20, 5], [1, 0, 4], [], 'a'], // 20, 20, 25 -> first in turn
    ['divided by weight when weights differ', [10, 10, 10], [0, 1, 0], [1, 3, 1], 'b'], // 10, 6.7, 10
    ['not helped by weight when it is slow', [10, 40, 10], [0, 0, 0], [1, 3, 1], 'a'], // 10, 13.3, 10
    ['a backend with no samples yet', [10, 0, 30], [0, 5, 0], [], 'b'],
  ])('picks %s', (_what, latencies, inFlight, weights, expected) => {
    const s = make('ewma');
    const all = view(latencies, inFlight, weights);
    s.update(all);
    expect(s.pick(all, none).name).toBe(expected);
  });

  test('ties are broken in turn', () => {
    const s = make('ewma');
    const all = view([10, 0, 0, 0]);
    s.update(all);
    expect(picks(s, all, 4)).toBe('b c d b');
    const equal = view([7, 7]);
    s.update(equal);
    expect(picks(s, equal, 4)).toBe('a b a b');
  });

  test('reads latency and in-flight counts live', () => {
    const s = make('ewma');
    const all = view([10, 12]);
    s.update(all);
    expect(picks(s, all, 2)).toBe('a a');
    all[0]!.inFlight = 1; // 20 vs 12
    expect(picks(s, all, 1)).toBe('b');
    all[1]!.latencyEwmaMs = 50;
    expect(picks(s, all, 1)).toBe('a');
  });
});
