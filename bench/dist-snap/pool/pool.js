"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.BackendPool = void 0;
const balancing_1 = require("../balancing");
const ewma_1 = require("../balancing/ewma");
const backend_1 = require("./backend");
/**
 * A pool: a set of backends and a strategy. It owns every backend's state,
 * weight and in-flight count, and recomputes the available set only when one of
 * them changes, so a pick is a lookup plus the strategy's own work.
 */
class BackendPool {
    name;
    config;
    backends;
    #byName = new Map();
    #strategy;
    #maxConnections;
    #listeners = [];
    #now;
    #available = [];
    constructor(config, options = {}) {
        this.name = config.name;
        this.config = config;
        this.#maxConnections = config.maxConnectionsPerBackend;
        this.#now = options.now ?? Date.now;
        this.#strategy = options.strategy
            ?? (0, balancing_1.createStrategy)(config.strategy, balancing_1.defaultStrategyDeps, { hashOn: config.hashOn });
        this.backends = config.backends.map((b) => new backend_1.Backend(b, config.timeouts, config.maxConnectionsPerBackend));
        for (const b of this.backends)
            this.#byName.set(b.name, b);
        this.#recompute();
    }
    /** Backends a strategy may pick from now: up primaries; backups only when no primary is up. */
    get available() {
        return this.#available;
    }
    get(name) {
        return this.#byName.get(name);
    }
    /** Subscribe to state changes (metrics, logs, workers). */
    onStateChange(listener) {
        this.#listeners.push(listener);
    }
    /**
     * The one way a backend's state changes. Health checks, outlier detection and
     * the admin API each send their event; the pool derives the state, records why,
     * and rebuilds the available set if it changed. Returns whether the state changed.
     */
    transition(backend, event, reason) {
        switch (event) {
            case 'health-up':
                backend.healthy = true;
                break;
            case 'health-down':
                backend.healthy = false;
                break;
            case 'eject':
                backend.ejected = true;
                break;
            case 'uneject':
                backend.ejected = false;
                break;
            case 'drain':
                backend.drained = true;
                break;
            case 'enable':
                backend.drained = false;
                break;
        }
        const from = backend.state;
        const to = backend.deriveState();
        if (from === to)
            return false;
        backend.state = to;
        backend.recordStateChange(from, to, reason, this.#now());
        this.#recompute();
        for (const l of this.#listeners)
            l(backend, from, to, reason);
        return true;
    }
    /** Set the configured weight (admin API, reload). */
    setWeight(backend, weight) {
        backend.configuredWeight = weight;
        this.setEffectiveWeight(backend, weight);
    }
    /** Set the weight strategies see (slow start ramps it). */
    setEffectiveWeight(backend, weight) {
        if (backend.weight === weight)
            return;
        backend.weight = weight;
        this.#recompute();
    }
    /**
     * Pick a backend for one request, or undefined when none can take it (503).
     * `exclude` holds backends already tried by this request (retries go elsewhere
     * when another backend is available).
     */
    pick(ctx, exclude) {
        const available = this.#available;
        if (available.length === 0)
            return undefined;
        if (exclude === undefined || exclude.size === 0) {
            const b = this.#strategy.pick(available, ctx);
            if (this.#maxConnections === 0 || b.inFlight < this.#maxConnections)
                return b;
        }
        // Rare path: retries and full backends pick from a filtered copy.
        const max = this.#maxConnections;
        let candidates = available.filter((b) => (max === 0 || b.inFlight < max) && !exclude?.has(b));
        if (candidates.length === 0 && exclude !== undefined) {
            // Every available backend was tried: a retry may go back to one of them.
            candidates = available.filter((b) => max === 0 || b.inFlight < max);
        }
        if (candidates.length === 0)
            return undefined;
        return this.#strategy.pick(candidates, ctx);
    }
    /** A request starts on `backend`. */
    acquire(backend) {
        backend.inFlight++;
        backend.requests++;
    }
    /**
     * A request on `backend` ended. `latencyMs` is time to response headers
     * (undefined when there was no response); `failed` marks backend failures.
     */
    release(backend, latencyMs, failed) {
        backend.inFlight--;
        if (failed)
            backend.failures++;
        if (latencyMs !== undefined) {
            const now = this.#now();
            backend.latencyEwmaMs = (0, ewma_1.updateEwma)(backend.latencyEwmaMs, latencyMs, now - backend.lastLatencyAt);
            backend.lastLatencyAt = now;
        }
    }
    async close() {
        await Promise.all(this.backends.map((b) => b.dispatcher.close().catch(() => undefined)));
    }
    /** Envoy's refresh(): the available set and the strategy's schedule, rebuilt on change only. */
    #recompute() {
        const primaries = this.backends.filter((b) => !b.backup);
        let available = primaries.filter((b) => b.state === 'up');
        const panic = this.config.panicThreshold;
        if (panic > 0 && primaries.length > 0 && (available.length / primaries.length) * 100 < panic
            && !(available.length === 0 && this.backends.some((b) => b.backup && b.state === 'up'))) {
            // Envoy's panic mode: too few primaries left to carry the load, so spread
            // over all of them (but never onto one an operator drained) rather than
            // overload the survivors. Backups, when up, still take over from zero.
            available = primaries.filter((b) => b.state !== 'draining');
        }
        else if (available.length === 0) {
            available = this.backends.filter((b) => b.backup && b.state === 'up');
        }
        this.#available = Object.freeze(available);
        if (available.length > 0)
            this.#strategy.update(available);
    }
}
exports.BackendPool = BackendPool;
//# sourceMappingURL=pool.js.map