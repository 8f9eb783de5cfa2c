import type { StrategyName } from '../config/types';

/**
 * What a strategy may see of a backend: read-only. The pool owns the state;
 * in-flight counts and latency averages are kept by the pool around each
 * backend (as Traefik's p2c wrapper does), never by the algorithm.
 */
export interface BackendView {
  /** Stable within the pool; unique. Consistent hashing hashes this, so two processes agree. */
  readonly name: string;
  /** Effective weight (> 0): configured weight, scaled down during slow start. */
  readonly weight: number;
  /** Requests currently in flight to this backend. */
  readonly inFlight: number;
  /** Exponentially weighted moving average of response time in ms; 0 before the first sample. */
  readonly latencyEwmaMs: number;
}

/** Per-request input to a pick. Built by the proxy only with what the strategy asks for. */
export interface PickContext {
  /** consistent-hash: the value of `hashOn` for this request; undefined when absent. */
  readonly hashKey?: string;
}

export interface BalancingStrategy<B extends BackendView = BackendView> {
  /**
   * Pick one of `available`. Never called with an empty list. `available` is the
   * pool's precomputed set (already filtered by state), or a subset of it when the
   * proxy excludes backends (retries, full backends).
   */
  pick(available: readonly B[], ctx: PickContext): B;
  /** Rebuild schedules when the available set or the weights change. */
  update(available: readonly B[]): void;
}

/** Injected so that tests pin exact pick orders. */
export interface StrategyDeps {
  /** Uniform in [0, 1). */
  readonly random: () => number;
}

/** consistent-hash reads its key from PickContext.hashKey: the proxy extracts `hashOn` before the pick. */
export type StrategyFactory = <B extends BackendView>(deps: StrategyDeps) => BalancingStrategy<B>;

export type { StrategyName };
