import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CertificateJson } from './admin/api-json';
import { describeCertificate } from './tls/certificates';
import { createServer, type Server as NetServer, type AddressInfo } from 'node:net';
import type { Config, ListenerConfig } from './config/types';
import { loadConfig } from './config';
import type { BackendPool } from './pool/pool';
import { ProxyListener, type ListenerEdge } from './proxy/listener';
import { AcmeManager, type AcmeOptions } from './acme/manager';
import { AdminServer } from './admin/server';
import { FulcrumError, isFulcrumError, ConfigError } from './errors';
import { accessLogObserver, combineObservers, type Logger } from './log';
import type { RequestObserver, RequestRecord } from './proxy/exchange';
import { Ejections, type RemoteEjector } from './health/ejections';
import { Metrics } from './metrics';
import { describeChanges } from './reload';
import { logInternalErrors } from './internal-errors';
import { ResourceAlarm } from './resources';
import { isLocalResourceError } from './upstream/errors';
import { http1FallbackNotice, http1SettingProblem } from './http1/parser';
import { http2SettingProblem } from './http2/engine';
import { Connections, close, closeGracefully, formatAddress, listen, sameAddress, sameListenerSocket, sameProtocol } from './listen';
import { buildGeneration, reusedBackends, type Generation, type GenerationDeps } from './generation';
import type { SharedBuckets } from './proxy/rate-limit';
import { Replica, applyAction, configHash, fulcrumVersion, type AdminAction, type ClusterJson } from './replicas';
import { EXPORT_TIMEOUT_MS, makeTracer, swapTracer, type Tracing } from './tracing';
import { isDeepStrictEqual } from 'node:util';
import { TrafficHistory, type TrafficSnapshot } from './metrics/history';

/**
 * `single`: one process does everything. With `workers` > 1 the `primary`
 * owns the config, health checks and the admin API and binds no listener;
 * each `worker` serves the listeners and follows the primary's backend states.
 */
export type FulcrumRole = 'single' | 'primary' | 'worker';

export interface FulcrumOptions {
  readonly logger: Logger;
  readonly role?: FulcrumRole;
  /**
   * Worker: hand an outlier ejection to the primary (which owns its timer);
   * resolves with whether the primary ejected it. `onReturn` is for when the
   * primary lets it back.
   */
  readonly ejector?: RemoteEjector;
  /** Primary with workers: how to see what the workers see. */
  readonly cluster?: {
    /** Bring each backend's counters up to the workers' sums. */
    refreshStats(): Promise<void>;
    /** Prometheus text summed over the primary and every worker. */
    metrics(): Promise<{ contentType: string; text: string }>;
    /** Every worker is serving. */
    workersReady(): boolean;
    /** The workers' request figures, summed (the dashboard's history). */
    traffic(): Promise<TrafficSnapshot>;
  };
  /** Extra observers of finished requests (tests). */
  readonly onRequestEnd?: (r: RequestRecord) => void;
  /** The key of sticky cookie tokens for pools without `sticky.secret` (a worker gets its primary's); random by default. */
  readonly stickyKey?: Buffer;
  /** Worker: the cluster's rate-limit buckets, through the primary (which holds the Redis connection). */
  readonly sharedBuckets?: SharedBuckets;
  /** How often the dashboard's history is sampled (tests make it short); HISTORY_INTERVAL_MS by default. */
  readonly historyIntervalMs?: number;
  /** ACME's timing (tests shorten the first retry). */
  readonly acme?: AcmeOptions;
}

export interface ReloadResult {
  readonly ok: boolean;
  /** What changed, one line each ("pool web: backend 10.0.0.13:8080 added"). */
  readonly changes: string[];
  /** Why the new config was refused. */
  readonly errors: string[];
}

/**
 * The composition root: builds pools, listeners and the admin API from one
 * config and wires them together. Nothing else knows how the parts connect.
 */
export class Fulcrum {
  readonly admin: AdminServer;
  readonly metrics: Metrics;
  readonly #logger: Logger;
  readonly #role: FulcrumRole;
  readonly #cluster: FulcrumOptions['cluster'];
  readonly #applied: (() => void)[] = [];
  readonly #observer: RequestObserver;
  readonly #alarm: ResourceAlarm;
  /** log.access, which a reload may flip. */
  #accessLog: boolean;
  readonly #listeners = new Map<string, ProxyListener>();
  readonly #connections = new Map<NetServer, Connections>();
  /** Outlier ejections in progress and their timers; they outlive reloads. */
  readonly ejections: Ejections;
  #gen: Generation;
  #bound = false;
  #stopping = false;
  /** A drain has been asked for (SIGTERM): /readyz fails from now on, even while the listeners still accept (shutdownDelay). */
  #draining = false;
  #reloading: Promise<ReloadResult> | undefined;
  readonly #unlogInternalErrors: () => void;
  /** Kept across reloads, so a reload does not unstick every client. */
  readonly stickyKey: Buffer;
  /** With `cluster` (single or primary): this replica's link to the others through Redis. */
  #replica: Replica | undefined;
  /** Where `rateLimit.scope: cluster` settles: this process's replica, or the primary's (worker). */
  readonly #sharedBuckets: SharedBuckets;
  readonly #actionListeners: ((a: AdminAction) => void)[] = [];
  #configHash: string;
  /** The current tracer, shared by every listener (null without `tracing`, and in a primary, which serves no request). */
  readonly #tracing: Tracing = { tracer: null };
  /** The dashboard's charts, where the admin API is (not in a worker). */
  readonly #history: TrafficHistory | undefined;
  /** Certificates of listeners with tls.acme, and the challenges plain listeners answer for them. */
  readonly acme: AcmeManager;
  readonly #edge: ListenerEdge;

  constructor(config: Config, options: FulcrumOptions) {
    const setting = http1SettingProblem() ?? http2SettingProblem();
    if (setting !== undefined) throw new FulcrumError('FULCRUM_ENV_INVALID', setting);
    this.#logger = options.logger;
    this.#unlogInternalErrors = logInternalErrors(this.#logger);
    this.stickyKey = options.stickyKey ?? randomBytes(32);
    this.#alarm = new ResourceAlarm(this.#logger);
    this.#role = options.role ?? 'single';
    this.ejections = new Ejections(() => this.#gen.pools, options.ejector);
    this.#cluster = options.cluster;
    this.metrics = new Metrics(() => this.#gen.pools.values(), { role: this.#role });
    this.#gen = buildGeneration(config, undefined, this.#deps());
    this.#configHash = configHash(config);
    this.#sharedBuckets = options.sharedBuckets ?? {
      settle: async (set, rate, burst, keys, used) => this.#replica?.settle(set, rate, burst, keys, used),
    };
    this.ejections.onLocalEject = (pool, b, until, reason) => {
      if (pool.config.outlierDetection?.scope === 'cluster') this.#replica?.shareEjection(pool.name, b.name, until, reason);
    };
    if (this.#role !== 'worker') this.#setCluster(config);
    this.acme = new AcmeManager(this.#logger, options.acme);
    this.#edge = { acme: this.acme };
    this.acme.expect(config);
    if (this.#role !== 'worker') warnUnverifiedPools(config, this.#logger);
    this.#accessLog = config.log.access;
    if (this.#role !== 'primary') this.#tracing.tracer = makeTracer(config.tracing, this.metrics.onSpansDropped);
    const access = accessLogObserver(this.#logger);
    const onEnd = [this.metrics.onRequestEnd, (r: RequestRecord) => {
      if (this.#accessLog) access(r);
      if (r.trace !== undefined) r.trace.end(r);
    }];
    if (options.onRequestEnd !== undefined) onEnd.push(options.onRequestEnd);
    const alarm = this.#alarm;
    this.#observer = {
      ...combineObservers(onEnd, [this.metrics.onRetry], (pool, backend, kind) => {
        if (kind === 'local-resource') alarm.raise('local-resource', 'backend connect');
        else this.metrics.onAttemptFailed(pool, backend, kind);
      }),
      onMirror: this.metrics.onMirror,
    };
    if (this.#role !== 'primary') for (const lc of config.listeners) this.#addListener(lc);
    if (this.#role !== 'worker') {
      const cluster = this.#cluster;
      this.#history = new TrafficHistory(
        cluster !== undefined ? () => cluster.traffic() : () => this.metrics.traffic(),
        () => ({
          pools: [...this.#gen.pools.values()].map((p) => ({ name: p.name, backends: p.backends.map((b) => b.name) })),
          listeners: this.#gen.config.listeners.map((l) => l.name),
        }),
        options.historyIntervalMs,
      );
    }
    this.admin = new AdminServer(config.admin, {
      pools: () => [...this.#gen.pools.values()],
      listeners: () => this.#gen.config.listeners,
      listenerAddress: (name) => (this.#listeners.get(name)?.server.listening ? this.address(name) : undefined),
      certificates: () => this.#certificates(),
      metrics: () => (this.#cluster !== undefined ? this.#cluster.metrics() : this.metrics.text()),
      refresh: this.#cluster?.refreshStats,
      ready: () => this.ready(),
      reload: () => this.reload(),
      act: (a) => this.act(a),
      cluster: () => this.#replica?.json(),
      history: () => this.#history!.json(),
    });
  }

  /**
   * An admin action taken here (the admin API): applied to this process's
   * pools, shared with the other replicas when there is a cluster, and told
   * to the listeners (a primary relays it to its workers). Returns the
   * backend it applied to.
   */
  act(a: AdminAction): ReturnType<typeof applyAction> {
    const b = applyAction(this.#gen.pools, a, undefined, this.#role !== 'primary');
    this.#replica?.share(a);
    for (const l of this.#actionListeners) l(a);
    return b;
  }

  /** Told every admin action applied here, this replica's or another's (a primary relays them to its workers). */
  onAction(listener: (a: AdminAction) => void): void {
    this.#actionListeners.push(listener);
  }

  /** A worker following its primary: an action that changes which backends exist. */
  follow(a: AdminAction): void {
    applyAction(this.#gen.pools, a);
  }

  /** Where `rateLimit.scope: cluster` settles its rounds (a primary answers its workers' with it). */
  get sharedBuckets(): SharedBuckets {
    return this.#sharedBuckets;
  }

  /** GET /api/cluster; undefined without a cluster. */
  clusterJson(): ClusterJson | undefined {
    return this.#replica?.json();
  }

  /**
   * Start, restart or stop this replica's link to its cluster (at start, and
   * on a reload that changes the cluster block).
   */
  #setCluster(config: Config): void {
    const before = this.#replica;
    if (isDeepStrictEqual(before?.config, config.cluster)) return;
    void before?.stop();
    this.#replica = undefined;
    if (config.cluster === undefined) return;
    const replica = new Replica(config.cluster, {
      logger: this.#logger,
      adminAddress: () => (this.admin.server.listening ? this.adminAddress() : `${this.#gen.config.admin.host}:${this.#gen.config.admin.port}`),
      configHash: () => this.#configHash,
      applyAction: (a, origin) => {
        applyAction(this.#gen.pools, a, origin ?? this.#replica?.name, this.#role !== 'primary');
        for (const l of this.#actionListeners) l(a);
      },
      applyEjection: (pool, backend, until, reason) => {
        this.ejections.applyRemote(pool, backend, until, reason);
      },
    }, fulcrumVersion());
    this.#replica = replica;
    this.metrics.registerCluster(() => (this.#replica === undefined ? undefined : { redisUp: this.#replica.redisUp, replicas: this.#replica.alive() }));
    if (this.#bound) replica.start();
  }

  get config(): Config {
    return this.#gen.config;
  }

  get pools(): ReadonlyMap<string, BackendPool> {
    return this.#gen.pools;
  }

  get listeners(): readonly ProxyListener[] {
    return [...this.#listeners.values()];
  }

  /** Listeners bound, not stopping (nor about to), and every pool has an available backend. */
  ready(): boolean {
    return this.#bound && !this.#stopping && !this.#draining && (this.#cluster?.workersReady() ?? true)
      && [...this.#gen.pools.values()].every((p) => p.available.length > 0);
  }

  /** Called after each config swap (the primary passes it on to its workers). */
  onApply(listener: () => void): void {
    this.#applied.push(listener);
  }

  /** Bind every listener and the admin API; on failure nothing stays bound. */
  async start(): Promise<void> {
    const config = this.#gen.config;
    try {
      if (this.#role !== 'worker') await listen(this.admin.server, config.admin.host, config.admin.port, 'admin');
      for (const l of this.#listeners.values()) await listen(l.server, l.config.host, l.config.port, `listener ${l.name}`);
    } catch (err) {
      await this.#closeServers();
      await Promise.all([...this.#gen.pools.values()].map((p) => p.close()));
      throw err;
    }
    this.#bound = true;
    if (this.#role !== 'worker') this.#watchErrors(this.admin.server, 'admin');
    for (const l of this.#listeners.values()) this.#watchErrors(l.server, `listener ${l.name}`);
    for (const h of this.#gen.health) h.start?.();
    this.#replica?.start();
    this.#history?.start();
    this.acme.start();
    for (const l of this.#listeners.values()) {
      this.#logger.info({ listener: l.name, address: this.address(l.name) }, 'listening');
    }
    if (this.#role !== 'worker') this.#logger.info({ address: this.adminAddress() }, 'admin API listening');
    const fallback = http1FallbackNotice();
    if (fallback !== undefined && this.#role !== 'worker') this.#logger[fallback.level]({ http1: 'node', reason: fallback.reason }, fallback.msg);
  }

  /** host:port a listener is bound to (port 0 in the config gives the real one). */
  address(listener: string): string {
    const l = this.#listeners.get(listener);
    if (l === undefined) throw new Error(`unknown listener ${listener}`);
    return formatAddress(l.server.address() as AddressInfo);
  }

  adminAddress(): string {
    return formatAddress(this.admin.server.address() as AddressInfo);
  }

  /**
   * SIGHUP and POST /api/reload: read the file again. A valid config is built
   * beside the running one (backends that stay are the same objects, with
   * their state, counters and connections), then swapped in at once; requests
   * in flight finish on what they started with. An invalid one changes nothing.
   */
  reload(): Promise<ReloadResult> {
    // Two reloads at once would race; the second waits for the first.
    const run = (this.#reloading ?? Promise.resolve()).then(() => this.#reload());
    this.#reloading = run.finally(() => {
      if (this.#reloading === run) this.#reloading = undefined;
    });
    return run;
  }

  async #reload(): Promise<ReloadResult> {
    let config: Config;
    try {
      config = loadConfig(this.#gen.config.file);
    } catch (err) {
      if (err instanceof ConfigError) return this.#refuse(err.message.split('\n'));
      if (isFulcrumError(err)) return this.#refuse([err.message]);
      throw err;
    }
    return this.apply(config);
  }

  #refuse(errors: string[]): ReloadResult {
    this.metrics.onReload(false);
    this.#logger.error({ errors }, 'reload refused: the running config stays');
    return { ok: false, changes: [], errors };
  }

  /**
   * Swap in a validated config (the second half of reload; a worker gets its
   * config from the primary this way).
   */
  async apply(config: Config): Promise<ReloadResult> {
    const old = this.#gen;
    const fail = (errors: string[]) => this.#refuse(errors);
    if (this.#stopping) return fail(['shutting down']);
    // A listener that keeps its address keeps its server; whether it speaks
    // TLS or HTTP/2 is fixed when that server is made, so such a change waits
    // for a restart (decided here, so a primary refuses before its workers see it).
    const fixed = config.listeners.flatMap((lc) => {
      const before = old.config.listeners.find((x) => x.name === lc.name);
      return before !== undefined && sameAddress(before, lc) && !sameProtocol(before, lc)
        ? [`listener ${lc.name}: turning tls or http2 on or off needs a restart (or a new address)`]
        : [];
    });
    if (fixed.length > 0) return fail(fixed);
    if (this.#role === 'primary') {
      // A primary binds no listener (its workers do, through it), yet a worker
      // that cannot bind refuses the whole config: try each new address here,
      // so such a reload is refused before anything is swapped, as it is in a
      // single process, and primary and workers never run different configs.
      for (const lc of config.listeners) {
        if (old.config.listeners.some((x) => sameAddress(x, lc))) continue;
        const trial = createServer();
        try {
          await listen(trial, lc.host, lc.port, `listener ${lc.name}`);
        } catch (err) {
          return fail([(err as Error).message]);
        }
        await close(trial);
      }
    }
    const changes = describeChanges(old.config, config);
    changes.push(...keptRuntimeBackends(old, config));
    if (!sameAddress(config.admin, old.config.admin)) {
      changes.push('admin.listen changed: takes effect after a restart');
    }
    let next: Generation;
    try {
      next = buildGeneration(config, old, this.#deps());
    } catch (err) {
      return fail([(err as Error).message]);
    }
    // New listeners bind first; if one cannot, nothing is swapped.
    const added: ProxyListener[] = [];
    this.acme.expect(config);
    for (const lc of this.#role === 'primary' ? [] : config.listeners) {
      const current = this.#listeners.get(lc.name);
      if (current !== undefined && sameListenerSocket(current.config, lc)) continue;
      const l = new ProxyListener(lc, next.targets, this.#observer, this.#edge, this.#tracing, undefined, this.#sharedBuckets);
      try {
        await listen(l.server, lc.host, lc.port, `listener ${lc.name}`);
      } catch (err) {
        await Promise.all(added.map((a) => close(a.server)));
        for (const h of next.health) h.stop();
        await Promise.all([...next.pools.values()].map((p) => p.close(reusedBackends(next, old))));
        return fail([(err as Error).message]);
      }
      added.push(l);
    }
    // The swap: synchronous, so no request sees half of each config.
    const retired: ProxyListener[] = [];
    for (const [name, l] of this.#listeners) {
      const lc = config.listeners.find((x) => x.name === name);
      if (lc !== undefined && sameListenerSocket(l.config, lc)) l.update(lc, next.targets);
      else retired.push(l);
    }
    for (const l of retired) this.#listeners.delete(l.name);
    for (const l of added) {
      this.#watchErrors(l.server, `listener ${l.name}`);
      this.#listeners.set(l.name, l);
      this.#track(l);
    }
    this.#gen = next;
    this.#configHash = configHash(config);
    if (this.#role !== 'worker') {
      this.#setCluster(config);
      this.#restoreFileValues(next);
    }
    if (this.#role !== 'primary' && !isDeepStrictEqual(old.config.tracing, config.tracing)) {
      swapTracer(this.#tracing, config.tracing, this.metrics.onSpansDropped, EXPORT_TIMEOUT_MS);
    }
    if (this.#role !== 'worker') warnUnverifiedPools(config, this.#logger);
    this.#applyLogConfig(config);
    this.admin.setConfig(config.admin);
    for (const h of old.health) h.stop();
    for (const h of next.health) h.start?.();
    // What is gone closes gracefully: in-flight requests finish first.
    const keep = reusedBackends(next, old);
    for (const p of old.pools.values()) void p.close(keep);
    for (const l of retired) void this.#closeListener(l, config.shutdownTimeoutMs);
    this.metrics.onReload(true);
    for (const l of this.#applied) l();
    this.#logger.info({ changes }, changes.length > 0 ? 'config reloaded' : 'config reloaded: nothing changed');
    return { ok: true, changes, errors: [] };
  }

  /**
   * SPEC section 11: a reload restores the file's weights and backends. In a
   * cluster the weights and deletions standing in Redis for this file's
   * backends are written over with "as the file says", so they stop standing
   * there too (a replica that restarts would apply them again).
   */
  #restoreFileValues(next: Generation): void {
    const replica = this.#replica;
    if (replica === undefined) return;
    for (const a of replica.standing()) {
      const inFile = next.pools.get(a.pool)?.config.backends.some((b) => b.name === a.backend) === true;
      if (!inFile || a.value === null) continue;
      if (a.kind === 'weight' || (a.kind === 'member' && a.value === 'removed')) this.act({ ...a, value: null });
    }
  }

  /** SIGTERM or SIGINT: readiness fails now; stop() follows after `shutdownDelay`. */
  startDrain(): void {
    this.#draining = true;
  }

  /**
   * Graceful stop: readiness fails, listeners stop accepting, idle keep-alive
   * connections close, in-flight requests get up to `timeoutMs` to finish.
   */
  async stop(timeoutMs = this.#gen.config.shutdownTimeoutMs): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const deadline = Date.now() + timeoutMs;
    for (const h of this.#gen.health) h.stop();
    this.#history?.stop();
    this.ejections.stop();
    void this.#replica?.stop();
    await Promise.all([...this.#listeners.values()].map((l) => this.#closeListener(l, timeoutMs)));
    await Promise.all([...this.#gen.pools.values()].map((p) => p.close()));
    // The last requests' spans go out too, within what is left of the drain's time.
    await this.#tracing.tracer?.close(Math.max(0, deadline - Date.now()));
    this.admin.server.closeAllConnections();
    await close(this.admin.server);
    this.acme.stop();
    this.#alarm.stop();
    this.#unlogInternalErrors();
  }

  /**
   * A bound server's errors after listen: accept failing for want of file
   * descriptors is shed and logged once (libuv mostly sheds such connections
   * itself, by accepting and closing them); nothing here ends the process.
   */
  #watchErrors(server: NetServer, what: string): void {
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (isLocalResourceError(err)) this.#alarm.raise(err.code!, 'accept');
      else this.#logger.error({ err, server: what }, 'server error');
    });
  }

  async #closeListener(l: ProxyListener, timeoutMs: number): Promise<void> {
    l.stop();
    await closeGracefully(l.server, this.#connections.get(l.server), timeoutMs);
    this.#connections.delete(l.server);
  }

  #addListener(lc: ListenerConfig): void {
    const l = new ProxyListener(lc, this.#gen.targets, this.#observer, this.#edge, this.#tracing, undefined, this.#sharedBuckets);
    this.#listeners.set(lc.name, l);
    this.#track(l);
  }

  #track(l: ProxyListener): void {
    this.#connections.set(l.server, new Connections(l.server, l.handshakes));
  }

  /** Each TLS listener's certificate: what it serves (in a primary, which binds none, what its files hold). */
  #certificates(): CertificateJson[] {
    return this.#gen.config.listeners.flatMap((lc) => {
      if (lc.tls === undefined) return [];
      let info = this.#listeners.get(lc.name)?.certificate;
      if (info === undefined && lc.tls.cert !== undefined) {
        try {
          info = describeCertificate(readFileSync(lc.tls.cert), 'file');
        } catch {
          return [];
        }
      }
      return info !== undefined ? [{ listener: lc.name, ...info }] : [];
    });
  }

  #applyLogConfig(config: Config): void {
    this.#logger.level = config.log.level;
    this.#accessLog = config.log.access;
  }

  /** What each generation is wired to. */
  #deps(): GenerationDeps {
    return { role: this.#role, logger: this.#logger, metrics: this.metrics, alarm: this.#alarm, ejections: this.ejections, stickyKey: this.stickyKey };
  }

  async #closeServers(): Promise<void> {
    const all: NetServer[] = [this.admin.server, ...[...this.#listeners.values()].map((l) => l.server)];
    await Promise.all(all.filter((s) => s.listening).map((s) => {
      this.#connections.get(s)?.destroyAll();
      return close(s);
    }));
  }
}

/** The reload's `changes` name the backends added at run time that stay (SPEC section 11). */
function keptRuntimeBackends(old: Generation, config: Config): string[] {
  const out: string[] = [];
  for (const pc of config.pools) {
    const before = old.pools.get(pc.name);
    for (const [b, bc] of before?.runtimeBackends() ?? []) {
      if (before!.isRetiring(b)) continue;
      out.push(pc.backends.some((x) => x.name === bc.name)
        ? `pool ${pc.name}: backend ${bc.name} (added at run time) replaced by the file's`
        : `pool ${pc.name}: backend ${bc.name} (added at run time) kept`);
    }
  }
  return out;
}

/** SPEC 9.4: a pool whose backends' certificates are not checked says so at start (and at each reload that keeps it). */
function warnUnverifiedPools(config: Config, logger: Logger): void {
  for (const p of config.pools) {
    if (p.tls?.verify === false) logger.warn({ pool: p.name }, `pool ${p.name}: tls.verify is false: backend certificates are not checked (anyone on the path can pose as them)`);
  }
}
