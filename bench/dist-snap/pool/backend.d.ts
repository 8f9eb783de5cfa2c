import { Pool as UndiciPool } from 'undici';
import type { BackendConfig, TimeoutsConfig } from '../config/types';
import type { BackendView } from '../balancing/types';
export type BackendState = 'up' | 'down' | 'ejected' | 'draining';
/**
 * What may change a backend's state. Each source owns one condition; the state
 * is derived from all of them (draining > ejected > down > up), so a health
 * probe that passes never cancels an admin drain, and an admin "enable" hands
 * the backend back to the health checker's verdict.
 */
export type StateEvent = 'health-up' | 'health-down' | 'eject' | 'uneject' | 'drain' | 'enable';
export interface StateChange {
    /** Epoch ms. */
    readonly time: number;
    readonly from: BackendState;
    readonly to: BackendState;
    readonly reason: string;
}
/**
 * One backend of one pool. Strategies see it through `BackendView` (read-only);
 * the pool is the only writer of its state, weight and in-flight count.
 */
export declare class Backend implements BackendView {
    readonly name: string;
    readonly url: string;
    readonly backup: boolean;
    readonly dispatcher: UndiciPool;
    /** Weight from the config or the admin API. */
    configuredWeight: number;
    /** What strategies read: the configured weight, scaled during slow start. */
    weight: number;
    inFlight: number;
    latencyEwmaMs: number;
    lastLatencyAt: number;
    /** Requests sent here (each retry counts where it went). */
    requests: number;
    /** Requests here that ended in a connect error, a reset, a timeout or a 5xx. */
    failures: number;
    state: BackendState;
    readonly history: StateChange[];
    healthy: boolean;
    ejected: boolean;
    drained: boolean;
    constructor(config: BackendConfig, timeouts: TimeoutsConfig, maxConnections: number);
    /** Derived state; see StateEvent for the precedence. */
    deriveState(): BackendState;
    recordStateChange(from: BackendState, to: BackendState, reason: string, time: number): void;
}
