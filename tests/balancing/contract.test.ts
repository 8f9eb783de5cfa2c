/**
 * One contract, run against every strategy (as hono's router tests and Envoy's
 * load balancer tests do): whatever the algorithm, the pool can rely on these.
 */
import { createStrategy } from '../../src/balancing';
import type { BalancingStrategy, PickContext } from '../../src/balancing/types';
import { STRATEGY_NAMES, type StrategyName } from '../../src/config/types';
import { backend, backends, depsWith, mulberry32, tally, type TestBackend } from './helpers';

function make(name: StrategyName, seed = 42): BalancingStrategy<TestBackend> {
  return createStrategy<TestBackend>(name, depsWith(mulberry32(seed)));
}

/** A request context; consistent-hash gets a random key, the others ignore it. */
function contextFrom(rng: () => number): PickContext {
  return { hashKey: `client-${Math.floor(rng() * 1e9)}` };
}

/** Picks `count` times; each pick holds a request in flight, released at random (the pool's role). */
function simulate(s: BalancingStrategy<TestBackend>, available: readonly TestBackend[], count: number, seed: number, subset?: readonly TestBackend[]): string[] {
  const rng = mulberry32(seed);
  const held: TestBackend[] = [];
  const picked: string[] = [];
  for (let i = 0; i < count; i++) {
    const from = subset ?? available;
    const b = s.pick(from, contextFrom(rng));
    if (!from.includes(b)) throw new Error(`picked ${b.name}, not in [${from.map((x) => x.name).join(',')}]`);
    picked.push(b.name);
    b.inFlight++;
    b.latencyEwmaMs = 5 + rng() * 20;
    held.push(b);
    while (held.length > 0 && rng() < 0.6) {
      const j = Math.floor(rng() * held.length);
      held[j]!.inFlight--;
      held.splice(j, 1);
    }
  }
  for (const b of held) b.inFlight--;
  return picked;
}

describe.each(STRATEGY_NAMES.map((n) => [n]))('strategy contract: %s', (name) => {
  test('never returns a backend outside the given array', () => {
    const s = make(name);
    const rng = mulberry32(7);
    const all = backends('abcdef', [1, 2, 3, 1, 5, 0.25]);
    s.update(all);
    for (let i = 0; i < 2000; i++) {
      for (const b of all) {
        b.inFlight = Math.floor(rng() * 5);
        b.latencyEwmaMs = rng() < 0.2 ? 0 : rng() * 100;
      }
      const from = rng() < 0.5 ? all : all.filter(() => rng() < 0.5);
      if (from.length === 0) continue;
      const ctx: PickContext = rng() < 0.2 ? {} : contextFrom(rng);
      expect(from).toContain(s.pick(from, ctx));
    }
  });

  test('works with one backend', () => {
    const s = make(name);
    const only = [backend('solo', 3)];
    s.update(only);
    for (let i = 0; i < 20; i++) {
      only[0]!.inFlight = i;
      expect(s.pick(only, contextFrom(mulberry32(i)))).toBe(only[0]);
      expect(s.pick(only, {})).toBe(only[0]);
    }
  });

  test('follows the set across updates: added, then removed backends', () => {
    const s = make(name);
    const [a, b, c, d, e] = backends('abcde');
    const first = [a!, b!, c!];
    s.update(first);
    expect(new Set(simulate(s, first, 300, 1))).toEqual(new Set(['a', 'b', 'c']));

    const grown = [a!, b!, c!, d!, e!];
    s.update(grown);
    expect(new Set(simulate(s, grown, 500, 2))).toEqual(new Set(['a', 'b', 'c', 'd', 'e']));

    const shrunk = [e!, a!]; // removed b, c, d; order changed too
    s.update(shrunk);
    expect(new Set(simulate(s, shrunk, 300, 3))).toEqual(new Set(['a', 'e']));

    const single = [d!];
    s.update(single);
    expect(new Set(simulate(s, single, 20, 4))).toEqual(new Set(['d']));
  });

  test('follows weight changes on the same backends', () => {
    const s = make(name);
    const all = backends('abc', [1, 1, 1]);
    s.update(all);
    simulate(s, all, 50, 5);
    all[0]!.weight = 10;
    all[2]!.weight = 0.5;
    s.update(all);
    // Greedy strategies (ewma, least-connections) may starve a light backend here; all must stay in the set.
    for (const n of simulate(s, all, 500, 6)) expect(['a', 'b', 'c']).toContain(n);
    all[0]!.weight = 1;
    all[2]!.weight = 1;
    s.update(all);
    expect(new Set(simulate(s, all, 500, 7))).toEqual(new Set(['a', 'b', 'c']));
  });

  test('with a subset of the last update (retry, full backends), picks within it and spreads over it', () => {
    const s = make(name);
    const all = backends('abcde', [1, 2, 1, 3, 1]);
    s.update(all);
    simulate(s, all, 50, 8);
    const subset = [all[1]!, all[3]!, all[4]!];
    expect(tally(simulate(s, all, 600, 9, subset)).size).toBe(3);
    const excludeOne = all.filter((b) => b.name !== 'd');
    expect(new Set(simulate(s, all, 600, 10, excludeOne))).toEqual(new Set(['a', 'b', 'c', 'e']));
    // And the full set afterwards still works.
    expect(new Set(simulate(s, all, 600, 11))).toEqual(new Set(['a', 'b', 'c', 'd', 'e']));
  });

  test('spreads picks over all backends when idle (equal weights)', () => {
    const s = make(name);
    const all = backends('abcde');
    s.update(all);
    const rng = mulberry32(12);
    const picks: string[] = [];
    for (let i = 0; i < 5000; i++) picks.push(s.pick(all, contextFrom(rng)).name);
    const counts = tally(picks);
    for (const b of all) expect(counts.get(b.name) ?? 0).toBeGreaterThan(5000 * 0.1);
  });

  test('spreads picks over all backends under load (requests held in flight)', () => {
    const s = make(name);
    const all = backends('abcde');
    s.update(all);
    const counts = tally(simulate(s, all, 5000, 13));
    for (const b of all) expect(counts.get(b.name) ?? 0).toBeGreaterThan(5000 * 0.05);
  });

  test.each([[1], [3], [0.001], [1e6]])('does not throw when all weights are equal (%p)', (w) => {
    const s = make(name);
    const all = backends('abcd', [w, w, w, w]);
    s.update(all);
    expect(() => simulate(s, all, 200, 14)).not.toThrow();
    expect(() => simulate(s, all, 200, 15, all.slice(1))).not.toThrow();
  });

  test('is deterministic given the same injected random', () => {
    const run = (): string[] => {
      const s = make(name, 99);
      const all = backends('abcdef', [1, 2, 3, 1, 1, 2]);
      s.update(all);
      const first = simulate(s, all, 500, 16);
      const subset = simulate(s, all, 100, 17, all.slice(2));
      s.update(all.slice(0, 4));
      return [...first, ...subset, ...simulate(s, all.slice(0, 4), 300, 18)];
    };
    expect(run()).toEqual(run());
  });

  test('pick before any update still returns a given backend', () => {
    const s = make(name);
    const all = backends('abc');
    for (let i = 0; i < 10; i++) expect(all).toContain(s.pick(all, contextFrom(mulberry32(i))));
  });
});

test('createStrategy rejects an unknown name at runtime', () => {
  expect(() => createStrategy('fastest' as StrategyName, depsWith(Math.random))).toThrow(/unknown balancing strategy/);
});
