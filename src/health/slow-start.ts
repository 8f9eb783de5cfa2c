import type { Backend } from '../pool/backend';
import type { BackendPool } from '../pool/pool';

/** Share of the full weight a backend starts its ramp with. */
const START_SHARE = 0.1;
/** Steps per ramp; each step rebuilds the strategy's schedule once. */
const STEPS = 20;

/** Effective weight `elapsedMs` into a ramp of `durationMs`: linear from 10% to 100%. */
export function rampWeight(fullWeight: number, elapsedMs: number, durationMs: number): number {
  if (elapsedMs >= durationMs) return fullWeight;
  const share = START_SHARE + (1 - START_SHARE) * Math.max(0, elapsedMs) / durationMs;
  return fullWeight * share;
}

/**
 * Slow start: a backend that comes back (to `up` from any other state) has its
 * effective weight ramp linearly from 10% to its full weight over `durationMs`,
 * so a cold cache or JIT is not hit with a full share at once. It acts through
 * the weight only, so it shapes the weight-aware strategies (not round-robin or power-of-two,
 * which ignore weights).
 */
export class SlowStart {
  readonly #pool: BackendPool;
  readonly #durationMs: number;
  readonly #ramps = new Map<Backend, NodeJS.Timeout>();

  constructor(pool: BackendPool, durationMs: number) {
    this.#pool = pool;
    this.#durationMs = durationMs;
    pool.onStateChange((backend, _from, to) => {
      if (to === 'up') this.#start(backend);
      else this.#cancel(backend, false);
    });
  }

  stop(): void {
    for (const b of [...this.#ramps.keys()]) this.#cancel(b, true);
  }

  #start(backend: Backend): void {
    this.#cancel(backend, false);
    const pool = this.#pool;
    const started = pool.now();
    const step = Math.max(50, Math.round(this.#durationMs / STEPS));
    pool.setEffectiveWeight(backend, rampWeight(backend.configuredWeight, 0, this.#durationMs));
    const timer = setInterval(() => {
      const elapsed = pool.now() - started;
      pool.setEffectiveWeight(backend, rampWeight(backend.configuredWeight, elapsed, this.#durationMs));
      if (elapsed >= this.#durationMs) this.#cancel(backend, false);
    }, step);
    timer.unref();
    this.#ramps.set(backend, timer);
  }

  #cancel(backend: Backend, restore: boolean): void {
    const t = this.#ramps.get(backend);
    if (t === undefined) return;
    clearInterval(t);
    this.#ramps.delete(backend);
    if (restore) this.#pool.setEffectiveWeight(backend, backend.configuredWeight);
  }
}
