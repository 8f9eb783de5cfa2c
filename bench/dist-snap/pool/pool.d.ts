import type { PoolConfig } from '../config/types';
import type { BalancingStrategy, PickContext } from '../balancing/types';
import { Backend, type BackendState, type StateEvent } from './backend';
export type StateListener = (backend: Backend, from: BackendState, to: BackendState, reason: string) => void;
/**
 * A pool: a set of backends and a strategy. It owns every backend's state,
 * weight and in-flight count, and recomputes the available set only when one of
 * them changes, so a pick is a lookup plus the strategy's own work.
 */
export declare class BackendPool {
    #private;
    readonly name: string;
    readonly config: PoolConfig;
    readonly backends: Backend[];
    constructor(config: PoolConfig, options?: {
        strategy?: BalancingStrategy<Backend>;
        now?: () => number;
    });
    /** Backends a strategy may pick from now: up primaries; backups only when no primary is up. */
    get available(): readonly Backend[];
    get(name: string): Backend | undefined;
    /** Subscribe to state changes (metrics, logs, workers). */
    onStateChange(listener: StateListener): void;
    /**
     * The one way a backend's state changes. Health checks, outlier detection and
     * the admin API each send their event; the pool derives the state, records why,
     * and rebuilds the available set if it changed. Returns whether the state changed.
     */
    transition(backend: Backend, event: StateEvent, reason: string): boolean;
    /** Set the configured weight (admin API, reload). */
    setWeight(backend: Backend, weight: number): void;
    /** Set the weight strategies see (slow start ramps it). */
    setEffectiveWeight(backend: Backend, weight: number): void;
    /**
     * Pick a backend for one request, or undefined when none can take it (503).
     * `exclude` holds backends already tried by this request (retries go elsewhere
     * when another backend is available).
     */
    pick(ctx: PickContext, exclude?: ReadonlySet<Backend>): Backend | undefined;
    /** A request starts on `backend`. */
    acquire(backend: Backend): void;
    /**
     * A request on `backend` ended. `latencyMs` is time to response headers
     * (undefined when there was no response); `failed` marks backend failures.
     */
    release(backend: Backend, latencyMs: number | undefined, failed: boolean): void;
    close(): Promise<void>;
}
