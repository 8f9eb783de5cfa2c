import type { StrategyName } from '../config/types';
import { createConsistentHash } from './consistent-hash';
import { createEwma } from './ewma';
import { createLeastConnections } from './least-connections';
import { createPowerOfTwo } from './power-of-two';
import { createRandom } from './random';
import { createRoundRobin } from './round-robin';
import type { BackendView, BalancingStrategy, StrategyDeps, StrategyFactory } from './types';
import { createWeightedRoundRobin } from './weighted-round-robin';

export type { BackendView, BalancingStrategy, PickContext, StrategyDeps, StrategyFactory } from './types';
export { updateEwma } from './ewma';
export { murmur3 } from './consistent-hash';

/** The registry of names: the config's `strategy` key maps here, and nowhere else. */
const FACTORIES: Readonly<Record<StrategyName, StrategyFactory>> = {
  'round-robin': createRoundRobin,
  'weighted-round-robin': createWeightedRoundRobin,
  'least-connections': createLeastConnections,
  random: createRandom,
  'power-of-two': createPowerOfTwo,
  ewma: createEwma,
  'consistent-hash': createConsistentHash,
};

/** Real randomness; tests inject their own. */
export const defaultStrategyDeps: StrategyDeps = Object.freeze({ random: Math.random });

export function createStrategy<B extends BackendView = BackendView>(
  name: StrategyName,
  deps: StrategyDeps,
): BalancingStrategy<B> {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  // Config validation rejects unknown names; this guards callers that bypass it.
  if (factory === undefined) throw new TypeError(`unknown balancing strategy: ${String(name)}`);
  return factory<B>(deps);
}
