import type { BackendView, BalancingStrategy, StrategyFactory } from './types';
/**
 * Smooth weighted round robin, nginx's algorithm (ngx_http_upstream_round_robin.c,
 * `ngx_http_upstream_get_peer`): every pick adds each backend's weight to its
 * current weight, takes the largest (first on ties) and subtracts the total from
 * it. Weights 5,1,1 give a a b a c a a rather than a a a a a b c.
 *
 * The pick is O(n), as in nginx: the schedule has no cheaper exact form, and
 * pools are small. No allocation on either path.
 */
export declare class SmoothWeightedRoundRobin<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    update(available: readonly B[]): void;
    pick(available: readonly B[]): B;
}
export declare const createWeightedRoundRobin: StrategyFactory;
