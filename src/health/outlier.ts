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
 * Answers whether the backend was ejected (false when another detector's
 * ejection came first, or the cap is reached); a worker answers once the
 * primary has.
 */
export type Ejector = (backend: Backend, ms: number, reason: string, onReturn: () => void) => boolean | Promise<boolean>;

/**
 * Envoy's rule: eject only while the share already ejected is below the cap,
 * so at least one backend can be ejected whenever the cap is above 0. The
 * detector asks before deciding; whoever carries the ejection out asks again,
 * as two workers may decide at the same time on different backends.
 */
export function mayEject(pool: BackendPool, maxEjectionPercent: number): boolean {
  const ejected = pool.backends.filter((b) => b.ejected).length;
  return maxEjectionPercent > 0 && (ejected / pool.backends.length) * 100 < maxEjectionPercent;
}

/**
 * Passive outlier detection (Envoy's consecutive-5xx detector): counts
 * consecutive failures on live traffic per backend, ejects at the threshold
 * for baseEjectionTime × times ejected (capped), while less than
 * maxEjectionPercent of the pool is ejected (Envoy's rule, see mayEject: the
 * ejection that crosses the cap is allowed, the next one is not), and lets
 * the backend back by itself.
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
    if (!mayEject(pool, this.#config.maxEjectionPercent)) return;
    const now = pool.now();
    const base = this.#config.baseEjectionTimeMs;
    // A backend that stayed in for as long as its last ejection lasted starts over.
    if (t.lastReturn !== 0 && now - t.lastReturn > base * Math.max(1, t.ejections)) t.ejections = 0;
    const nth = t.ejections + 1;
    const ms = Math.min(base * nth, Math.max(MAX_EJECTION_MS, base));
    const reason = `ejected after ${t.consecutive} consecutive failures (last: ${t.lastReason}) for ${ms}ms`;
    t.consecutive = 0;
    const onReturn = () => {
      t.lastReturn = pool.now();
    };
    // Counted only when it happened: with workers, two may decide on the same
    // backend at once, and the primary carries out the first only.
    const ejected = () => {
      t.ejections = nth;
      this.#onEject?.(pool, backend);
    };
    const done = this.#ejector(backend, ms, reason, onReturn);
    if (done === true) ejected();
    else if (done !== false) void done.then((ok) => ok && ejected());
  }
}
