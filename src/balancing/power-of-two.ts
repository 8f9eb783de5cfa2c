import type { BackendView, BalancingStrategy, StrategyDeps, StrategyFactory } from './types';

/**
 * Power of two choices (Mitzenmacher; Traefik's p2c/p2c.go, Envoy's least
 * request with choice_count 2): draw two distinct backends uniformly and take
 * the one with fewer requests in flight; on a tie, the first drawn. O(1).
 */
export class PowerOfTwo<B extends BackendView = BackendView> implements BalancingStrategy<B> {
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  pick(available: readonly B[]): B {
    const n = available.length;
    if (n === 1) return available[0];
    const i = Math.min(Math.floor(this.#random() * n), n - 1);
    // Second draw over the n - 1 others, skipping i, so the two are distinct.
    let j = Math.min(Math.floor(this.#random() * (n - 1)), n - 2);
    if (j >= i) j++;
    const first = available[i];
    const second = available[j];
    return second.inFlight < first.inFlight ? second : first;
  }

  update(): void {
    // Nothing to precompute: in-flight counts are read live.
  }
}

export const createPowerOfTwo: StrategyFactory = <B extends BackendView>(deps: StrategyDeps) => new PowerOfTwo<B>(deps.random);
