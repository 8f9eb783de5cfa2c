import type { BackendView, BalancingStrategy, StrategyFactory } from './types';
/**
 * Each available backend in turn, ignoring weights. Stateless apart from a
 * counter, so `update` has nothing to precompute; a subset (retry) is walked
 * with the same counter, which keeps the rotation going.
 */
export declare class RoundRobin<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    pick(available: readonly B[]): B;
    update(): void;
}
export declare const createRoundRobin: StrategyFactory;
