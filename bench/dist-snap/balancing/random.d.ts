import type { BackendView, BalancingStrategy, StrategyFactory } from './types';
/**
 * Uniform when all weights are equal, weighted otherwise. `update` precomputes
 * cumulative weights; a weighted pick is one random draw and a binary search
 * for the first cumulative weight above `r * total`.
 */
export declare class WeightedRandom<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    constructor(random: () => number);
    update(available: readonly B[]): void;
    pick(available: readonly B[]): B;
}
export declare const createRandom: StrategyFactory;
