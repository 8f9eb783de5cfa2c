"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.Backend = void 0;
const undici_1 = require("undici");
const HISTORY_LIMIT = 20;
/**
 * One backend of one pool. Strategies see it through `BackendView` (read-only);
 * the pool is the only writer of its state, weight and in-flight count.
 */
class Backend {
    name;
    url;
    backup;
    dispatcher;
    /** Weight from the config or the admin API. */
    configuredWeight;
    /** What strategies read: the configured weight, scaled during slow start. */
    weight;
    inFlight = 0;
    latencyEwmaMs = 0;
    lastLatencyAt = 0;
    /** Requests sent here (each retry counts where it went). */
    requests = 0;
    /** Requests here that ended in a connect error, a reset, a timeout or a 5xx. */
    failures = 0;
    state = 'up';
    history = [];
    // The conditions the state is derived from (see StateEvent).
    healthy = true;
    ejected = false;
    drained = false;
    constructor(config, timeouts, maxConnections) {
        this.name = config.name;
        this.url = config.url;
        this.backup = config.backup;
        this.configuredWeight = config.weight;
        this.weight = config.weight;
        this.dispatcher = new undici_1.Pool(config.url, {
            // null = as many connections as there are concurrent requests.
            connections: maxConnections > 0 ? maxConnections : null,
            pipelining: 1,
            // Idle sockets close before the backend's own keep-alive timeout would, so
            // a reused socket never races the backend's close (Node servers default to 5s).
            keepAliveTimeout: timeouts.idleMs,
            keepAliveMaxTimeout: timeouts.idleMs,
            headersTimeout: timeouts.responseMs,
            // Streams (SSE, downloads) may be quiet for long; a stall before headers is
            // what `timeouts.response` is for.
            bodyTimeout: 0,
            connect: { timeout: timeouts.connectMs },
        });
    }
    /** Derived state; see StateEvent for the precedence. */
    deriveState() {
        if (this.drained)
            return 'draining';
        if (this.ejected)
            return 'ejected';
        if (!this.healthy)
            return 'down';
        return 'up';
    }
    recordStateChange(from, to, reason, time) {
        this.history.push({ time, from, to, reason });
        if (this.history.length > HISTORY_LIMIT)
            this.history.shift();
    }
}
exports.Backend = Backend;
//# sourceMappingURL=backend.js.map