import { isDeepStrictEqual } from 'node:util';
import type { BackendConfig, PoolConfig } from '../config/types';
import type { BalancingStrategy, PickContext } from '../balancing/types';
import { createStrategy, defaultStrategyDeps } from '../balancing';
import { updateEwma } from '../balancing/ewma';
import { Backend, type BackendState, type BackendStats, type Conditions, type ProbeRecord, type StateEvent } from './backend';

export type StateListener = (backend: Backend, from: BackendState, to: BackendState, reason: string) => void;

/**
 * Told the outcome of every request on live traffic (outlier detection).
 * `failure` is undefined on success, else "connect-failure", "reset", "timeout", "502", ...
 */
export type ResultListener = (backend: Backend, failure: string | undefined) => void;

/** Can backend `b` of a previous config serve `bc` in pool `pc` as it is (reload)? */
export function canReuse(b: Backend, bc: BackendConfig, pc: PoolConfig): boolean {
  const t = pc.timeouts;
  return b.url === bc.url && b.backup === bc.backup && b.maxConnections === pc.maxConnectionsPerBackend && b.protocol === pc.protocol
    && b.timeouts.connectMs === t.connectMs && b.timeouts.responseMs === t.responseMs && b.timeouts.idleMs === t.idleMs
    // Certificates read again at reload: new ones need new connections.
    && b.edge.proxyProtocol === pc.proxyProtocol && isDeepStrictEqual(b.edge.tls, pc.tls);
}

/**
 * A pool: a set of backends and a strategy. It owns every backend's state,
 * weight and in-flight count, and recomputes the available set only when one of
 * them changes, so a pick is a lookup plus the strategy's own work.
 */
export class BackendPool {
  readonly name: string;
  readonly config: PoolConfig;
  readonly backends: Backend[];
  readonly #byName = new Map<string, Backend>();
  readonly #strategy: BalancingStrategy<Backend>;
  readonly #maxConnections: number;
  readonly #listeners: StateListener[] = [];
  readonly #weightListeners: ((b: Backend, weight: number) => void)[] = [];
  readonly #membership: ((b: Backend, change: 'added' | 'removed') => void)[] = [];
  readonly #now: () => number;
  /** Backends added by the admin API (SPEC section 11), with what they were added with; they outlive a reload that keeps the pool. */
  readonly #runtime = new Map<Backend, BackendConfig>();
  /** Backends deleted by the admin API: draining until their in-flight requests end. */
  readonly #retiring = new Set<Backend>();
  #available: readonly Backend[] = [];
  /** null when nothing listens: the hot path pays one null check. */
  #onResult: ResultListener | null = null;

  /**
   * `previous` names the backends of the config before a reload: one that
   * stays is taken over with its state and counters (see #takeOver).
   */
  constructor(config: PoolConfig, options: {
    strategy?: BalancingStrategy<Backend>;
    now?: () => number;
    previous?: (name: string) => Backend | undefined;
    /** The previous config's pool of this name: its runtime backends stay (SPEC section 11) unless the file now has one of that name. */
    runtimeFrom?: BackendPool;
  } = {}) {
    this.name = config.name;
    this.config = config;
    this.#maxConnections = config.maxConnectionsPerBackend;
    this.#now = options.now ?? Date.now;
    this.#strategy = options.strategy
      ?? createStrategy<Backend>(config.strategy, defaultStrategyDeps);
    this.backends = config.backends.map((bc) => this.#takeOver(bc, options.previous?.(bc.name)));
    for (const b of this.backends) this.#byName.set(b.name, b);
    const from = options.runtimeFrom;
    for (const [b, bc] of from !== undefined ? from.#runtime : []) {
      if (this.#byName.has(bc.name) || from!.#retiring.has(b)) continue;
      const kept = this.#takeOver(bc, b);
      this.backends.push(kept);
      this.#byName.set(kept.name, kept);
      this.#runtime.set(kept, bc);
    }
    this.#recompute();
  }

  /**
   * SPEC section 11: a backend added by the admin API. It takes traffic at
   * once; in a pool with a healthCheck it starts down, and its first passing
   * probe brings it up (see HealthChecker.watch).
   */
  addRuntime(bc: BackendConfig, reason: string): Backend {
    const b = this.#create(bc);
    if (this.config.healthCheck !== undefined) {
      b.setConditions({ healthy: false });
      b.settle(`${reason}: down until its first passing health check`, this.#now());
    }
    this.#runtime.set(b, bc);
    this.backends.push(b);
    this.#byName.set(b.name, b);
    this.#recompute();
    for (const l of this.#membership) l(b, 'added');
    return b;
  }

  /** Added by the admin API (not by the file or discovery). */
  isRuntime(backend: Backend): boolean {
    return this.#runtime.has(backend);
  }

  /** The backends the admin API added, with what they were added with. */
  runtimeBackends(): readonly [Backend, BackendConfig][] {
    return [...this.#runtime];
  }

  /** Deleted by the admin API, still finishing its in-flight requests. */
  isRetiring(backend: Backend): boolean {
    return this.#retiring.has(backend);
  }

  /**
   * SPEC section 11 DELETE: the backend drains at once and leaves the pool
   * when its in-flight requests have ended (`wait` false: at once, for a
   * primary whose workers carry the traffic). Polled rather than counted in
   * release(), so the request path pays nothing for it.
   */
  retire(backend: Backend, reason: string, wait = true): void {
    if (this.#retiring.has(backend) || !this.backends.includes(backend)) return;
    this.#retiring.add(backend);
    this.transition(backend, 'drain', reason);
    const check = () => {
      if (!this.#retiring.has(backend)) return;
      if (wait && backend.inFlight > 0) {
        setTimeout(check, 50).unref();
        return;
      }
      this.#retiring.delete(backend);
      this.#runtime.delete(backend);
      this.remove(backend);
    };
    check();
  }

  /** Add a backend at run time (DNS discovery); `previous` is the same backend before a reload. */
  add(bc: BackendConfig, previous?: Backend): Backend {
    const existing = this.#byName.get(bc.name);
    if (existing !== undefined) return existing;
    const b = this.#takeOver(bc, previous);
    this.backends.push(b);
    this.#byName.set(b.name, b);
    this.#recompute();
    for (const l of this.#membership) l(b, 'added');
    return b;
  }

  /**
   * Remove a backend at run time (DNS discovery): it takes no new requests at
   * once, and its connections close when its in-flight requests are done.
   */
  remove(backend: Backend): void {
    const i = this.backends.indexOf(backend);
    if (i === -1) return;
    this.backends.splice(i, 1);
    this.#byName.delete(backend.name);
    this.#recompute();
    for (const l of this.#membership) l(backend, 'removed');
    void backend.close();
  }

  /** Subscribe to backends added or removed at run time. */
  onMembership(listener: (b: Backend, change: 'added' | 'removed') => void): void {
    this.#membership.push(listener);
  }

  #create(bc: BackendConfig): Backend {
    return new Backend(bc, this.config.timeouts, this.config.maxConnectionsPerBackend, {
      ...(this.config.tls !== undefined ? { tls: this.config.tls } : {}),
      ...(this.config.proxyProtocol !== undefined ? { proxyProtocol: this.config.proxyProtocol } : {}),
    }, this.config.protocol);
  }

  /**
   * SPEC section 6: a backend that stays across a reload keeps its health
   * state and counters. The same object (and its connections) when the new
   * config allows, else a new one that inherits them. A condition whose source
   * the new config turns off is lifted: without healthCheck backends count as
   * up, without outlierDetection nothing is ejected.
   */
  #takeOver(bc: BackendConfig, previous: Backend | undefined): Backend {
    if (previous === undefined) return this.#create(bc);
    let b = previous;
    if (canReuse(previous, bc, this.config)) {
      b.setConfiguredWeight(bc.weight);
      b.setWeight(bc.weight);
    } else {
      b = this.#create(bc);
      b.inherit(previous);
    }
    if (this.config.healthCheck === undefined) b.setConditions({ healthy: true });
    if (this.config.outlierDetection === undefined) b.setConditions({ ejected: false });
    b.settle('reload: its health checks or outlier detection are off', this.#now());
    return b;
  }


  /** Backends a strategy may pick from now: up primaries; backups only when no primary is up. */
  get available(): readonly Backend[] {
    return this.#available;
  }

  get(name: string): Backend | undefined {
    return this.#byName.get(name);
  }

  /** Subscribe to state changes (metrics, logs, workers). */
  onStateChange(listener: StateListener): void {
    this.#listeners.push(listener);
  }

  /** Set the one listener for request outcomes (outlier detection). */
  onResult(listener: ResultListener | null): void {
    this.#onResult = listener;
  }

  /** The pool's clock (epoch ms); injected in tests. */
  now(): number {
    return this.#now();
  }

  /**
   * The one way a backend's state changes. Health checks, outlier detection and
   * the admin API each send their event; the pool derives the state, records why,
   * and rebuilds the available set if it changed. Returns whether the state changed.
   */
  transition(backend: Backend, event: StateEvent, reason: string): boolean {
    switch (event) {
      case 'health-up': backend.setConditions({ healthy: true }); break;
      case 'health-down': backend.setConditions({ healthy: false }); break;
      case 'eject': backend.setConditions({ ejected: true }); break;
      case 'uneject': backend.setConditions({ ejected: false }); break;
      case 'drain': backend.setConditions({ drained: true }); break;
      case 'enable': backend.setConditions({ drained: false }); break;
    }
    return this.#derive(backend, reason);
  }

  #derive(backend: Backend, reason: string): boolean {
    const from = backend.settle(reason, this.#now());
    if (from === undefined) return false;
    const to = backend.state;
    this.#recompute();
    for (const l of this.#listeners) l(backend, from, to, reason);
    return true;
  }

  /** Set the configured weight (admin API, reload). */
  setWeight(backend: Backend, weight: number): void {
    backend.setConfiguredWeight(weight);
    this.setEffectiveWeight(backend, weight);
    for (const l of this.#weightListeners) l(backend, weight);
  }

  /** Subscribe to configured-weight changes (workers follow the primary's). */
  onWeightChange(listener: (b: Backend, weight: number) => void): void {
    this.#weightListeners.push(listener);
  }

  /**
   * Take over another process's view of a backend's conditions (a worker
   * following the primary). Goes through the same derivation as transition().
   */
  setConditions(backend: Backend, conditions: Conditions, reason: string): void {
    backend.setConditions(conditions);
    this.#derive(backend, reason);
  }

  /**
   * A primary with workers serves no traffic: before it answers about a
   * backend, its counters become what the workers saw (cluster/primary.ts sums them).
   */
  applyStats(backend: Backend, stats: BackendStats): void {
    backend.applyStats(stats);
  }

  /** One active health probe's outcome, for the explain view (the verdict goes through transition()). */
  recordProbe(backend: Backend, probe: ProbeRecord): void {
    backend.recordProbe(probe);
  }

  /** Set the weight strategies see (slow start ramps it). */
  setEffectiveWeight(backend: Backend, weight: number): void {
    if (backend.weight === weight) return;
    backend.setWeight(weight);
    this.#recompute();
  }

  /**
   * Pick a backend for one request, or undefined when none can take it (503).
   * `exclude` holds backends already tried by this request (retries go elsewhere
   * when another backend is available).
   */
  pick(ctx: PickContext, exclude?: ReadonlySet<Backend>): Backend | undefined {
    const available = this.#available;
    if (available.length === 0) return undefined;
    if (exclude === undefined || exclude.size === 0) {
      const b = this.#strategy.pick(available, ctx);
      if (this.#maxConnections === 0 || b.inFlight < this.#maxConnections) return b;
    }
    // Rare path: retries and full backends pick from a filtered copy.
    const max = this.#maxConnections;
    let candidates = available.filter((b) => (max === 0 || b.inFlight < max) && !exclude?.has(b));
    if (candidates.length === 0 && exclude !== undefined) {
      // Every available backend was tried: a retry may go back to one of them.
      candidates = available.filter((b) => max === 0 || b.inFlight < max);
    }
    if (candidates.length === 0) return undefined;
    return this.#strategy.pick(candidates, ctx);
  }

  /** A request starts on `backend`. */
  acquire(backend: Backend): void {
    backend.countStart();
  }

  /**
   * A request on `backend` ended. `latencyMs` is time to response headers
   * (undefined when there was no response). `failure` names a backend failure
   * ("connect-failure", "reset", "timeout", "502", ...), undefined otherwise;
   * `counted` false means the outcome says nothing about the backend (the
   * client left, our own dispatcher closed).
   */
  release(backend: Backend, latencyMs: number | undefined, failure: string | undefined, counted = true): void {
    // One clock reading for both (Date.now() is not free on every VM).
    const now = failure !== undefined || latencyMs !== undefined ? this.#now() : 0;
    backend.countEnd(failure === undefined ? undefined : { time: now, reason: failure });
    if (counted && this.#onResult !== null) this.#onResult(backend, failure);
    if (latencyMs !== undefined) {
      backend.recordLatency(latencyMs, updateEwma(backend.latencyEwmaMs, latencyMs, now - backend.lastLatencyAt), now);
    }
  }

  /** Close every backend's connections once their in-flight requests are done. */
  async close(keep: ReadonlySet<Backend> = new Set()): Promise<void> {
    await Promise.all(this.backends.filter((b) => !keep.has(b)).map((b) => b.close()));
  }

  /** Envoy's refresh(): the available set and the strategy's schedule, rebuilt on change only. */
  #recompute(): void {
    const primaries = this.backends.filter((b) => !b.backup);
    let available = primaries.filter((b) => b.state === 'up');
    const panic = this.config.panicThreshold;
    if (panic > 0 && primaries.length > 0 && (available.length / primaries.length) * 100 < panic
      && !(available.length === 0 && this.backends.some((b) => b.backup && b.state === 'up'))) {
      // Envoy's panic mode: too few primaries left to carry the load, so spread
      // over all of them (but never onto one an operator drained) rather than
      // overload the survivors. Backups, when up, still take over from zero.
      available = primaries.filter((b) => b.state !== 'draining');
    } else if (available.length === 0) {
      available = this.backends.filter((b) => b.backup && b.state === 'up');
    }
    this.#available = Object.freeze(available);
    if (available.length > 0) this.#strategy.update(available);
  }
}
