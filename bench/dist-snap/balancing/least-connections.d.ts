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
export declare class LeastConnections<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    pick(available: readonly B[]): B;
    update(): void;
}
export declare const createLeastConnections: StrategyFactory;
