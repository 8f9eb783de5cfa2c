"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.Fulcrum = void 0;
const pool_1 = require("./pool/pool");
const listener_1 = require("./proxy/listener");
const server_1 = require("./admin/server");
const errors_1 = require("./errors");
const log_1 = require("./log");
function listen(server, host, port, what) {
    return new Promise((resolve, reject) => {
        const onError = (err) => {
            const why = err.code === 'EADDRINUSE' ? 'address already in use'
                : err.code === 'EACCES' ? 'permission denied'
                    : err.code === 'EADDRNOTAVAIL' ? 'address not available on this machine'
                        : err.message;
            reject(new errors_1.FulcrumError('FULCRUM_LISTEN_FAILED', `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port} (${what}): ${why}`));
        };
        server.once('error', onError);
        server.listen(port, host, () => {
            server.off('error', onError);
            resolve();
        });
    });
}
function close(server) {
    return new Promise((resolve) => server.close(() => resolve()));
}
/**
 * The composition root: builds pools, listeners and the admin API from one
 * config and wires them together. Nothing else knows how the parts connect.
 */
class Fulcrum {
    config;
    pools;
    listeners;
    admin;
    #logger;
    #bound = false;
    #stopping = false;
    constructor(config, options) {
        this.config = config;
        this.#logger = options.logger;
        const pools = new Map();
        const targets = new Map();
        for (const pc of config.pools) {
            const pool = new pool_1.BackendPool(pc);
            pool.onStateChange((b, from, to, reason) => {
                this.#logger.info({ pool: pool.name, backend: b.name, from, to, reason }, 'backend state changed');
            });
            pools.set(pc.name, pool);
            targets.set(pc.name, (0, listener_1.poolTarget)(pool));
        }
        this.pools = pools;
        const onEnd = [];
        if (config.log.access)
            onEnd.push((0, log_1.accessLogObserver)(this.#logger));
        if (options.onRequestEnd !== undefined)
            onEnd.push(options.onRequestEnd);
        const observer = (0, log_1.combineObservers)(onEnd, []);
        this.listeners = config.listeners.map((lc) => new listener_1.ProxyListener(lc, targets, observer));
        this.admin = new server_1.AdminServer(config.admin, {
            pools: () => [...this.pools.values()],
            ready: () => this.#bound && !this.#stopping && [...this.pools.values()].every((p) => p.available.length > 0),
        });
    }
    /** Bind every listener and the admin API; on failure nothing stays bound. */
    async start() {
        try {
            await listen(this.admin.server, this.config.admin.host, this.config.admin.port, 'admin');
            for (const l of this.listeners)
                await listen(l.server, l.config.host, l.config.port, `listener ${l.name}`);
        }
        catch (err) {
            await this.#closeServers();
            await Promise.all([...this.pools.values()].map((p) => p.close()));
            throw err;
        }
        this.#bound = true;
        for (const l of this.listeners) {
            this.#logger.info({ listener: l.name, address: this.address(l.name) }, 'listening');
        }
        this.#logger.info({ address: this.adminAddress() }, 'admin API listening');
    }
    /** host:port a listener is bound to (port 0 in the config gives the real one). */
    address(listener) {
        const l = this.listeners.find((x) => x.name === listener);
        if (l === undefined)
            throw new Error(`unknown listener ${listener}`);
        return formatAddress(l.server.address());
    }
    adminAddress() {
        return formatAddress(this.admin.server.address());
    }
    /**
     * Graceful stop: readiness fails, listeners stop accepting, idle keep-alive
     * connections close, in-flight requests get up to `timeoutMs` to finish.
     */
    async stop(timeoutMs = this.config.shutdownTimeoutMs) {
        if (this.#stopping)
            return;
        this.#stopping = true;
        const closing = Promise.all(this.listeners.map((l) => {
            const done = close(l.server);
            l.server.closeIdleConnections();
            return done;
        }));
        let timer;
        const deadline = new Promise((resolve) => {
            timer = setTimeout(() => {
                for (const l of this.listeners)
                    l.server.closeAllConnections();
                resolve();
            }, timeoutMs);
            timer.unref();
        });
        await Promise.race([closing, deadline]);
        clearTimeout(timer);
        await Promise.all([...this.pools.values()].map((p) => p.close()));
        this.admin.server.closeAllConnections();
        await close(this.admin.server);
    }
    async #closeServers() {
        const all = [this.admin.server, ...this.listeners.map((l) => l.server)];
        await Promise.all(all.filter((s) => s.listening).map((s) => {
            s.closeAllConnections();
            return close(s);
        }));
    }
}
exports.Fulcrum = Fulcrum;
function formatAddress(a) {
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
//# sourceMappingURL=server.js.map