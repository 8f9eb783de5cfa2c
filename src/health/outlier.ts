import type { OutlierDetectionConfig } from '../config/types';
import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';

/** Envoy's max_ejection_time default: however often a backend fails, it is back within this. */
const MAX_EJECTION_MS = 300_000;

interface Track {
  consecutive: number;
  /** Reasons of the current run of failures, for the explain history. */
  lastReason: string;
  /** Times ejected; multiplies the ejection time. Forgotten after a quiet spell. */
  ejections: number;
  /** Epoch ms the last ejection ended (0 = never ejected). */
  lastReturn: number;
}

export type EjectionListener = (pool: BackendPool, backend: Backend) => void;

/**
 * Carries out an ejection: ejects `backend` for `ms`, then lets it back and
 * calls `onReturn`. The timer is not the detector's: it must outlive a reload
 * (which replaces the detector), and a worker process hands the ejection to
 * the primary, so that it ends even if the worker that decided it has died.
 */
export type Ejector = (backend: Backend, ms: number, reason: string, onReturn: () => void) => void;

/**
 * Passive outlier detection (Envoy's consecutive-5xx detector): counts
 * consecutive failures on live traffic per backend, ejects at the threshold
 * for baseEjectionTime × times ejected (capped), never more than
 * maxEjectionPercent of the pool at once, and lets the backend back by itself.
 */
export class OutlierDetector {
  readonly #pool: BackendPool;
  readonly #config: OutlierDetectionConfig;
  readonly #tracks = new Map<Backend, Track>();
  readonly #onEject: EjectionListener | undefined;
  readonly #ejector: Ejector;

  constructor(pool: BackendPool, config: OutlierDetectionConfig, options: { onEject?: EjectionListener; ejector: Ejector }) {
    this.#pool = pool;
    this.#config = config;
    this.#onEject = options.onEject;
    this.#ejector = options.ejector;
    pool.onResult(this.record);
  }

  /** Called by the pool with every request outcome. */
  record = (backend: Backend, failure: string | undefined): void => {
    let t = this.#tracks.get(backend);
    if (failure === undefined) {
      if (t !== undefined) t.consecutive = 0;
      return;
    }
    if (t === undefined) {
      t = { consecutive: 0, lastReason: '', ejections: 0, lastReturn: 0 };
      this.#tracks.set(backend, t);
    }
    t.consecutive++;
    t.lastReason = failure;
    if (t.consecutive >= this.#config.consecutiveFailures && !backend.ejected) this.#eject(backend, t);
  };

  stop(): void {
    this.#pool.onResult(null);
  }

  #eject(backend: Backend, t: Track): void {
    const pool = this.#pool;
    const total = pool.backends.length;
    const ejected = pool.backends.filter((b) => b.ejected).length;
    // Envoy's rule: eject only while the share already ejected is below the cap,
    // so at least one backend can be ejected whenever the cap is above 0.
    if (this.#config.maxEjectionPercent === 0 || (ejected / total) * 100 >= this.#config.maxEjectionPercent) return;
    const now = pool.now();
    const base = this.#config.baseEjectionTimeMs;
    // A backend that stayed in for as long as its last ejection lasted starts over.
    if (t.lastReturn !== 0 && now - t.lastReturn > base * Math.max(1, t.ejections)) t.ejections = 0;
    t.ejections++;
    const ms = Math.min(base * t.ejections, Math.max(MAX_EJECTION_MS, base));
    const reason = `ejected after ${t.consecutive} consecutive failures (last: ${t.lastReason}) for ${ms}ms`;
    t.consecutive = 0;
    this.#onEject?.(pool, backend);
    const onReturn = () => {
      t.lastReturn = pool.now();
    };
    this.#ejector(backend, ms, reason, onReturn);
  }
}
