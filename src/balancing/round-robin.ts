import type { BackendView, BalancingStrategy, StrategyFactory } from './types';

/**
 * Each available backend in turn, ignoring weights. Stateless apart from a
 * counter, so `update` has nothing to precompute; a subset (retry) is walked
 * with the same counter, which keeps the rotation going.
 */
export class RoundRobin<B extends BackendView = BackendView> implements BalancingStrategy<B> {
  #next = 0;

  pick(available: readonly B[]): B {
    let i = this.#next;
    if (i >= available.length) i = 0;
    this.#next = i + 1;
    return available[i];
  }

  update(): void {
    // Nothing to precompute: the counter wraps on the next pick if the set shrank.
  }
}

export const createRoundRobin: StrategyFactory = <B extends BackendView>() => new RoundRobin<B>();
