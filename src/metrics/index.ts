import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BackendPool } from '../pool/pool';
import type { Backend } from '../pool/backend';
import type { AttemptFailure, RequestRecord } from '../proxy/exchange';
import { CounterFamily, HistogramFamily, type CounterSeries, type HistogramSeries } from './series';
import { internalErrorCount } from '../internal-errors';
import type { BackendTraffic, TrafficSnapshot } from './history';

/** Proxy latency from 1 ms to 10 s (SPEC section 7). */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** `kind` of fulcrum_backend_failures_total (SPEC section 13, and the failure table's "error"). */
export const BACKEND_FAILURE_KINDS = ['connect-failure', 'reset', 'timeout', '5xx', 'error'] as const;
export type BackendFailureKind = (typeof BACKEND_FAILURE_KINDS)[number];

/**
 * Series of one (listener, pool, backend): resolved the first time that
 * triple answers, then reused, so a request costs a few small Map lookups
 * and two additions (see series.ts).
 */
interface Children {
  readonly duration: HistogramSeries;
  /** method → status → counter series. */
  readonly requests: Map<string, Map<number | string, CounterSeries>>;
  readonly labels: { listener: string; pool: string; backend: string };
}

/**
 * Which process a registry belongs to. With workers, each series comes from
 * exactly one kind of process, so summing all registries (the primary's and
 * every worker's) gives the figures SPEC asks for: traffic from the workers,
 * backend state, probes and reloads from the primary.
 */
export type MetricsRole = 'single' | 'primary' | 'worker';

/**
 * Every metric name is defined here, once (SPEC section 7). The proxy reports
 * finished requests; gauges that mirror pool state are read at scrape time,
 * so the request path never touches them.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #requests: CounterFamily;
  readonly #duration: HistogramFamily;
  readonly #healthChecks: Counter<'pool' | 'backend' | 'result'>;
  readonly #retries: Counter<'pool'>;
  readonly #ejections: Counter<'pool' | 'backend'>;
  readonly #reloads: Counter<'result'>;
  readonly #mirrors: Counter<'pool' | 'result'>;
  readonly #backendFailures: CounterFamily;
  readonly #spansDropped: Counter;
  /** pool → backend name → kind → series; made once per backend name (a reload may replace the Backend object). */
  readonly #failureSeries = new Map<string, Map<string, Record<BackendFailureKind, CounterSeries>>>();
  /** listener → pool → backend name → children. */
  readonly #children = new Map<string, Map<string, Map<string, Children>>>();
  readonly #pools: () => Iterable<BackendPool>;

  constructor(pools: () => Iterable<BackendPool>, options: { defaultMetrics?: boolean; role?: MetricsRole } = {}) {
    this.#pools = pools;
    const role = options.role ?? 'single';
    const traffic = role !== 'primary' ? [this.registry] : [];
    const control = role !== 'worker' ? [this.registry] : [];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const registers = traffic;
    // Labels (SPEC section 7): listener, pool, backend, method, code; and listener, pool, backend.
    this.#requests = new CounterFamily('fulcrum_requests_total',
      'Client requests, by the backend that gave the final answer ("" when Fulcrum answered itself).', registers);
    this.#duration = new HistogramFamily('fulcrum_request_duration_seconds',
      'Time from request received to response finished, in seconds.', DURATION_BUCKETS, registers);
    const self = this;
    new Gauge({
      name: 'fulcrum_backend_up',
      help: '1 when the backend state is up, else 0.',
      labelNames: ['pool', 'backend'],
      registers: control,
      collect() {
        this.reset();
        for (const p of self.#pools()) for (const b of p.backends) this.set({ pool: p.name, backend: b.name }, b.state === 'up' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fulcrum_backend_active_requests',
      help: 'Requests in flight to the backend.',
      labelNames: ['pool', 'backend'],
      registers,
      collect() {
        this.reset();
        for (const p of self.#pools()) for (const b of p.backends) this.set({ pool: p.name, backend: b.name }, b.inFlight);
      },
    });
    this.#healthChecks = new Counter({
      name: 'fulcrum_health_checks_total',
      help: 'Active health probes, by result.',
      labelNames: ['pool', 'backend', 'result'],
      registers: control,
    });
    this.#retries = new Counter({
      name: 'fulcrum_retries_total',
      help: 'Extra attempts sent to another backend.',
      labelNames: ['pool'],
      registers,
    });
    this.#ejections = new Counter({
      name: 'fulcrum_outlier_ejections_total',
      help: 'Backends ejected by outlier detection.',
      labelNames: ['pool', 'backend'],
      registers,
    });
    this.#reloads = new Counter({
      name: 'fulcrum_config_reloads_total',
      help: 'Config reloads, by result.',
      labelNames: ['result'],
      registers: control,
    });
    new Counter({
      name: 'fulcrum_internal_errors_total',
      help: 'Bugs caught at the connection boundary (the connection ended, the process went on); should stay 0.',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(internalErrorCount());
      },
    });
    this.#mirrors = new Counter({
      name: 'fulcrum_mirror_requests_total',
      help: 'Copies of requests sent to a mirror pool (SPEC 8.2), by result: sent (answered), failed (no answer), skipped (body too large, no backend, limit).',
      labelNames: ['pool', 'result'],
      registers,
    });
    this.#backendFailures = new CounterFamily('fulcrum_backend_failures_total',
      'Failed attempts on a backend (each retry counts where it went), by kind: connect-failure, reset, timeout, 5xx, error.', registers);
    // A worker's spans are its own (each exports them): counted where traffic is.
    this.#spansDropped = new Counter({
      name: 'fulcrum_tracing_spans_dropped_total',
      help: 'Spans not exported: the queue was full (tracing.maxQueueSize), or their export failed.',
      registers,
    });
    this.#spansDropped.inc(0);
    // Series exist from the start, so rate() works from the first scrape.
    this.#reloads.inc({ result: 'success' }, 0);
    this.#reloads.inc({ result: 'failure' }, 0);
  }

  #clusterView: (() => { redisUp: boolean; replicas: number } | undefined) | undefined;

  /**
   * SPEC section 10: fulcrum_cluster_redis_up and fulcrum_cluster_replicas,
   * from the process that holds the Redis connection (single or primary, so
   * never summed over workers); registered once a cluster is configured, and
   * empty again if a reload takes it away.
   */
  registerCluster(view: () => { redisUp: boolean; replicas: number } | undefined): void {
    const first = this.#clusterView === undefined;
    this.#clusterView = view;
    if (!first) return;
    const self = this;
    new Gauge({
      name: 'fulcrum_cluster_redis_up',
      help: '1 when this replica reaches Redis, else 0.',
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        this.reset();
        const v = self.#clusterView?.();
        if (v !== undefined) this.set(v.redisUp ? 1 : 0);
      },
    });
    new Gauge({
      name: 'fulcrum_cluster_replicas',
      help: 'Replicas of this cluster alive (heart-beating), this one included.',
      registers: [this.registry],
      aggregator: 'max',
      collect() {
        this.reset();
        const v = self.#clusterView?.();
        if (v !== undefined) this.set(v.replicas);
      },
    });
  }

  /** Make every backend's series visible at zero before it has traffic. */
  registerPool(pool: BackendPool): void {
    for (const b of pool.backends) this.registerBackend(pool, b);
    this.#retries.inc({ pool: pool.name }, 0);
  }

  registerBackend(pool: BackendPool, b: Backend): void {
    this.#ejections.inc({ pool: pool.name, backend: b.name }, 0);
    let byBackend = this.#failureSeries.get(pool.name);
    if (byBackend === undefined) this.#failureSeries.set(pool.name, (byBackend = new Map()));
    if (!byBackend.has(b.name)) {
      const series = {} as Record<BackendFailureKind, CounterSeries>;
      for (const kind of BACKEND_FAILURE_KINDS) series[kind] = this.#backendFailures.series({ pool: pool.name, backend: b.name, kind });
      byBackend.set(b.name, series);
    }
    if (pool.config.healthCheck !== undefined) {
      this.#healthChecks.inc({ pool: pool.name, backend: b.name, result: 'success' }, 0);
      this.#healthChecks.inc({ pool: pool.name, backend: b.name, result: 'failure' }, 0);
    }
  }

  onRequestEnd = (r: RequestRecord): void => {
    const c = this.#childrenOf(r.listener, r.pool, r.backend);
    c.duration.observe(r.durationMs / 1000);
    let byStatus = c.requests.get(r.method);
    if (byStatus === undefined) {
      byStatus = new Map();
      c.requests.set(r.method, byStatus);
    }
    // gRPC calls (SPEC 9.1) are keyed by status and grpc-status; every other request by its status alone.
    const key = r.grpcStatus === undefined ? r.status : `${r.status}/${r.grpcStatus}`;
    let counter = byStatus.get(key);
    if (counter === undefined) {
      counter = this.#requests.series({ ...c.labels, method: r.method, code: String(r.status), grpc_status: r.grpcStatus ?? '' });
      byStatus.set(key, counter);
    }
    counter.inc();
  };

  /** A route mirrors to `pool`: its series exist from the start, at zero. */
  registerMirror(pool: string): void {
    for (const result of ['sent', 'failed', 'skipped'] as const) this.#mirrors.inc({ pool, result }, 0);
  }

  onMirror = (pool: string, result: 'sent' | 'failed' | 'skipped'): void => {
    this.#mirrors.inc({ pool, result });
  };

  onRetry = (pool: string): void => {
    this.#retries.inc({ pool });
  };

  /** A failed attempt on a backend (Exchange); Fulcrum's own local failures are not the backend's. */
  onAttemptFailed = (pool: string, backend: string, kind: AttemptFailure): void => {
    if (kind === 'local-resource') return;
    this.#failureSeries.get(pool)?.get(backend)?.[kind].inc();
  };

  /** Spans the exporter could not send (a full queue, a failed or timed-out export). */
  onSpansDropped = (n: number): void => {
    this.#spansDropped.inc(n);
  };

  onProbe = (pool: BackendPool, backend: Backend, ok: boolean): void => {
    this.#healthChecks.inc({ pool: pool.name, backend: backend.name, result: ok ? 'success' : 'failure' });
  };

  onEject = (pool: BackendPool, backend: Backend): void => {
    this.#ejections.inc({ pool: pool.name, backend: backend.name });
  };

  onReload(ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'success' : 'failure' });
  }

  /** The request metrics' figures since start, for the dashboard's history (src/metrics/history.ts). */
  traffic(): TrafficSnapshot {
    const backends = new Map<string, { pool: string; backend: string; requests: number; errors: number; buckets: number[] }>();
    const listeners: { listener: string; codes: number[] }[] = [];
    for (const [listener, byPool] of this.#children) {
      const codes = [0, 0, 0, 0, 0];
      for (const [pool, byBackend] of byPool) {
        for (const [backend, c] of byBackend) {
          const key = `${pool}\n${backend}`;
          let acc = backends.get(key);
          if (acc === undefined) backends.set(key, (acc = { pool, backend, requests: 0, errors: 0, buckets: Array<number>(c.duration.counts.length).fill(0) }));
          for (let i = 0; i < c.duration.counts.length; i++) acc.buckets[i]! += c.duration.counts[i]!;
          for (const byStatus of c.requests.values()) {
            for (const [key, counter] of byStatus) {
              // gRPC calls are keyed "status/grpc-status" (see onRequestEnd).
              const status = typeof key === 'number' ? key : parseInt(key, 10);
              acc.requests += counter.value;
              if (status >= 500) acc.errors += counter.value;
              const cls = Math.floor(status / 100) - 1;
              if (cls >= 0 && cls < 5) codes[cls]! += counter.value;
            }
          }
        }
      }
      listeners.push({ listener, codes });
    }
    return { backends: [...backends.values()] satisfies BackendTraffic[], listeners };
  }

  async text(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  #childrenOf(listener: string, pool: string, backend: string): Children {
    let byPool = this.#children.get(listener);
    if (byPool === undefined) this.#children.set(listener, (byPool = new Map()));
    let byBackend = byPool.get(pool);
    if (byBackend === undefined) byPool.set(pool, (byBackend = new Map()));
    let c = byBackend.get(backend);
    if (c === undefined) {
      const labels = { listener, pool, backend };
      c = { labels, duration: this.#duration.series(labels), requests: new Map() };
      byBackend.set(backend, c);
    }
    return c;
  }
}
