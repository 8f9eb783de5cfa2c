import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';
import { mayEject, type Ejector } from './outlier';

/**
 * A worker's way to hand an outlier ejection to its primary (which owns the
 * timer); resolves with whether the primary ejected it. `onReturn` is for
 * when the primary lets the backend back.
 */
export type RemoteEjector = (pool: BackendPool, backend: Backend, ms: number, reason: string, onReturn: () => void) => Promise<boolean>;

/**
 * Outlier ejections in progress, and their return timers: one per Fulcrum,
 * so they outlive reloads (which replace the pools and their detectors). A
 * timer that ends lets back the backend of that name in the pool of that name
 * in the config of the moment. In a worker, ejections are the primary's: its
 * detectors ask through the RemoteEjector instead, so an ejection ends even
 * if the worker that decided it has died.
 */
export class Ejections {
  readonly #pools: () => ReadonlyMap<string, BackendPool>;
  readonly #remote: RemoteEjector | undefined;
  /** By pool and backend name. */
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Told of each ejection decided here (not of those applied from other replicas): the cluster shares them. */
  onLocalEject: ((pool: BackendPool, backend: Backend, until: number, reason: string) => void) | undefined;

  /** `pools`: the pools of the config of the moment. */
  constructor(pools: () => ReadonlyMap<string, BackendPool>, remote?: RemoteEjector) {
    this.#pools = pools;
    this.#remote = remote;
  }

  /** What the OutlierDetector of `pool` carries its ejections out with: here, or in the primary. */
  ejectorFor(pool: BackendPool): Ejector {
    const remote = this.#remote;
    return remote === undefined
      ? (b, ms, reason, onReturn) => this.eject(pool.name, b.name, ms, reason, onReturn)
      : (b, ms, reason, onReturn) => remote(pool, b, ms, reason, onReturn);
  }

  /**
   * Eject a backend for `ms` (outlier detection here, or a worker's verdict in
   * the primary). Returns whether it ejected: not when the backend already is,
   * or when `maxEjectionPercent` is reached (two workers may each decide on a
   * different backend at the same time; the cap is checked here, once).
   */
  eject(poolName: string, backendName: string, ms: number, reason: string, onReturn?: () => void): boolean {
    const ok = this.#eject(poolName, backendName, ms, reason, onReturn);
    if (ok && this.onLocalEject !== undefined) {
      const pool = this.#pools().get(poolName)!;
      this.onLocalEject(pool, pool.get(backendName)!, Date.now() + ms, reason);
    }
    return ok;
  }

  /**
   * SPEC section 10, `outlierDetection.scope: cluster`: another replica
   * ejected this backend until `until` (epoch ms); it is ejected here until
   * the same time (under this replica's own maxEjectionPercent).
   */
  applyRemote(poolName: string, backendName: string, until: number, reason: string): boolean {
    const ms = until - Date.now();
    if (ms <= 0 || this.#pools().get(poolName)?.config.outlierDetection?.scope !== 'cluster') return false;
    return this.#eject(poolName, backendName, ms, reason);
  }

  #eject(poolName: string, backendName: string, ms: number, reason: string, onReturn?: () => void): boolean {
    const pool = this.#pools().get(poolName);
    const backend = pool?.get(backendName);
    const cap = pool?.config.outlierDetection?.maxEjectionPercent;
    if (pool === undefined || backend === undefined || backend.ejected || cap === undefined || !mayEject(pool, cap)) return false;
    const key = `${poolName}\n${backendName}`;
    pool.transition(backend, 'eject', reason);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      onReturn?.();
      const now = this.#pools().get(poolName);
      const b = now?.get(backendName);
      if (now !== undefined && b !== undefined) now.transition(b, 'uneject', `ejection time of ${ms}ms over`);
    }, ms);
    timer.unref();
    this.#timers.set(key, timer);
    return true;
  }

  /** Stop every return timer (the Fulcrum stops). */
  stop(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
  }
}
