import type { BackendView, BalancingStrategy, StrategyFactory } from './types';

/**
 * Fewest in-flight requests per unit of weight (inFlight / weight). In-flight
 * counts are read live from the views, so there is nothing to precompute and the
 * pick is one O(n) scan with no allocation.
 *
 * Ties are broken in turn: the scan starts just after the previous winner, and
 * the first minimum found wins, so equal backends alternate instead of the first
 * one taking every tie.
 */
export class LeastConnections<B extends BackendView = BackendView> implements BalancingStrategy<B> {
  #start = 0;

  pick(available: readonly B[]): B {
    const n = available.length;
    let start = this.#start;
    if (start >= n) start %= n;
    let best = start;
    let bestScore = available[start].inFlight / available[start].weight;
    for (let k = 1; k < n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      const b = available[i];
      const score = b.inFlight / b.weight;
      if (score < bestScore) {
        bestScore = score;
        best = i;
      }
    }
    this.#start = best + 1;
    return available[best];
  }

  update(): void {
    // Nothing to precompute: the counts change per request and are read live.
  }
}

export const createLeastConnections: StrategyFactory = <B extends BackendView>() => new LeastConnections<B>();
