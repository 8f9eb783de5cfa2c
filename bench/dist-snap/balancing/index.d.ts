import type { StrategyName } from '../config/types';
import type { BackendView, BalancingStrategy, StrategyDeps, StrategyOptions } from './types';
export type { BackendView, BalancingStrategy, PickContext, StrategyDeps, StrategyFactory, StrategyOptions } from './types';
export { updateEwma } from './ewma';
export { murmur3 } from './consistent-hash';
/** Real randomness and a monotonic clock; tests inject their own. */
export declare const defaultStrategyDeps: StrategyDeps;
export declare function createStrategy<B extends BackendView = BackendView>(name: StrategyName, deps: StrategyDeps, options: StrategyOptions): BalancingStrategy<B>;
