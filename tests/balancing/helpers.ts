import type { BackendView, StrategyDeps } from '../../src/balancing/types';

/** A view whose live fields the test (standing in for the pool) mutates. */
export interface TestBackend extends BackendView {
  name: string;
  weight: number;
  inFlight: number;
  latencyEwmaMs: number;
}

export function backend(name: string, weight = 1, inFlight = 0, latencyEwmaMs = 0): TestBackend {
  return { name, weight, inFlight, latencyEwmaMs };
}

/** Backends named by the letters of `names`, with optional weights in order. */
export function backends(names: string, weights: readonly number[] = []): TestBackend[] {
  return [...names].map((n, i) => backend(n, weights[i] ?? 1));
}

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). Deterministic across runs. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Returns the given values in order, then fails loudly (a test drew more than it scripted). */
export function scripted(values: readonly number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`scripted random exhausted after ${values.length} draws`);
    return values[i++]!;
  };
}

export function depsWith(random: () => number): StrategyDeps {
  return { random };
}

/** Counts picks per backend name. */
export function tally(names: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
}
