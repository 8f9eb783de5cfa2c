import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config/types';
import { BackendPool } from './pool/pool';
import { ProxyListener, poolTarget, type PoolTarget } from './proxy/listener';
import { AdminServer } from './admin/server';
import { FulcrumError } from './errors';
import { accessLogObserver, combineObservers, type Logger } from './log';
import type { RequestRecord } from './proxy/exchange';
import { HealthChecker } from './health/active';
import { OutlierDetector } from './health/outlier';
import { SlowStart } from './health/slow-start';
import { Metrics } from './metrics';

export interface FulcrumOptions {
  readonly logger: Logger;
  /** Extra observers of finished requests (tests, metrics). */
  readonly onRequestEnd?: (r: RequestRecord) => void;
}

function listen(server: Server, host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use'
        : err.code === 'EACCES' ? 'permission denied'
          : err.code === 'EADDRNOTAVAIL' ? 'address not available on this machine'
            : err.message;
      reject(new FulcrumError('FULCRUM_LISTEN_FAILED', `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port} (${what}): ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * The composition root: builds pools, listeners and the admin API from one
 * config and wires them together. Nothing else knows how the parts connect.
 */
export class Fulcrum {
  readonly config: Config;
  readonly pools: ReadonlyMap<string, BackendPool>;
  readonly listeners: readonly ProxyListener[];
  readonly admin: AdminServer;
  readonly metrics: Metrics;
  readonly #logger: Logger;
  /** Health checkers, outlier detectors, slow starts: stopped with the process. */
  readonly #health: { start?(): void; stop(): void }[] = [];
  #bound = false;
  #stopping = false;

  constructor(config: Config, options: FulcrumOptions) {
    this.config = config;
    this.#logger = options.logger;
    const pools = new Map<string, BackendPool>();
    const targets = new Map<string, PoolTarget>();
    const metrics = new Metrics(() => pools.values());
    this.metrics = metrics;
    for (const pc of config.pools) {
      const pool = new BackendPool(pc);
      metrics.registerPool(pool);
      pool.onStateChange((b, from, to, reason) => {
        this.#logger.info({ pool: pool.name, backend: b.name, from, to, reason }, 'backend state changed');
      });
      if (pc.healthCheck !== undefined) {
        this.#health.push(new HealthChecker(pool, pc.healthCheck, { onProbe: (p, b, o) => metrics.onProbe(p, b, o.ok) }));
      }
      if (pc.outlierDetection !== undefined) {
        this.#health.push(new OutlierDetector(pool, pc.outlierDetection, { onEject: metrics.onEject }));
      }
      if (pc.slowStartMs > 0) this.#health.push(new SlowStart(pool, pc.slowStartMs));
      pools.set(pc.name, pool);
      targets.set(pc.name, poolTarget(pool));
    }
    this.pools = pools;
    const onEnd: ((r: RequestRecord) => void)[] = [metrics.onRequestEnd];
    if (config.log.access) onEnd.push(accessLogObserver(this.#logger));
    if (options.onRequestEnd !== undefined) onEnd.push(options.onRequestEnd);
    const observer = combineObservers(onEnd, [metrics.onRetry]);
    this.listeners = config.listeners.map((lc) => new ProxyListener(lc, targets, observer));
    this.admin = new AdminServer(config.admin, {
      pools: () => [...this.pools.values()],
      listeners: () => config.listeners,
      metrics: () => metrics.text(),
      ready: () => this.#bound && !this.#stopping && [...this.pools.values()].every((p) => p.available.length > 0),
    });
  }

  /** Bind every listener and the admin API; on failure nothing stays bound. */
  async start(): Promise<void> {
    try {
      await listen(this.admin.server, this.config.admin.host, this.config.admin.port, 'admin');
      for (const l of this.listeners) await listen(l.server, l.config.host, l.config.port, `listener ${l.name}`);
    } catch (err) {
      await this.#closeServers();
      await Promise.all([...this.pools.values()].map((p) => p.close()));
      throw err;
    }
    this.#bound = true;
    for (const h of this.#health) h.start?.();
    for (const l of this.listeners) {
      this.#logger.info({ listener: l.name, address: this.address(l.name) }, 'listening');
    }
    this.#logger.info({ address: this.adminAddress() }, 'admin API listening');
  }

  /** host:port a listener is bound to (port 0 in the config gives the real one). */
  address(listener: string): string {
    const l = this.listeners.find((x) => x.name === listener);
    if (l === undefined) throw new Error(`unknown listener ${listener}`);
    return formatAddress(l.server.address() as AddressInfo);
  }

  adminAddress(): string {
    return formatAddress(this.admin.server.address() as AddressInfo);
  }

  /**
   * Graceful stop: readiness fails, listeners stop accepting, idle keep-alive
   * connections close, in-flight requests get up to `timeoutMs` to finish.
   */
  async stop(timeoutMs = this.config.shutdownTimeoutMs): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const h of this.#health) h.stop();
    const closing = Promise.all(this.listeners.map((l) => {
      const done = close(l.server);
      l.server.closeIdleConnections();
      return done;
    }));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const l of this.listeners) l.server.closeAllConnections();
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

  async #closeServers(): Promise<void> {
    const all = [this.admin.server, ...this.listeners.map((l) => l.server)];
    await Promise.all(all.filter((s) => s.listening).map((s) => {
      s.closeAllConnections();
      return close(s);
    }));
  }
}

function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
