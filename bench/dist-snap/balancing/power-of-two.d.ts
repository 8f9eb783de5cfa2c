import type { BackendView, BalancingStrategy, StrategyFactory } from './types';
/**
 * Power of two choices (Mitzenmacher; Traefik's p2c/p2c.go, Envoy's least
 * request with choice_count 2): draw two distinct backends uniformly and take
 * the one with fewer requests in flight; on a tie, the first drawn. O(1).
 */
export declare class PowerOfTwo<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    constructor(random: () => number);
    pick(available: readonly B[]): B;
    update(): void;
}
export declare const createPowerOfTwo: StrategyFactory;
