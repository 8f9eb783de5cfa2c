import { Pool as UndiciPool } from 'undici';
import { llhttpAvailable } from '../http1/parser';
import { UpstreamClient } from '../http1/client';
import type { Upstream } from '../upstream/types';
import { UndiciUpstream } from '../upstream/undici';
import type { BackendConfig, PoolTlsConfig, TimeoutsConfig } from '../config/types';
import { backendTlsOptions } from '../upstream/backend-tls';
import { PerClientUpstream, preludeConnector } from '../upstream/per-client';
import type { ProxyVersion } from '../proxy-protocol/header';
import { encodeHeader } from '../proxy-protocol/header';
import { connectionEnds } from '../proxy/peer';
import type { Socket } from 'node:net';

/** What a pool's edge settings ask of its backends' connections (SPEC 9.3, 9.4). */
export interface BackendEdge {
  readonly tls?: PoolTlsConfig;
  readonly proxyProtocol?: ProxyVersion;
}
import { Http2Upstream } from '../http2/client';
import { Http2OwnUpstream } from '../http2/upstream';
import { http2Engine } from '../http2/engine';
import type { PoolProtocol } from '../config/types';
import type { BackendView } from '../balancing/types';

export type BackendState = 'up' | 'down' | 'ejected' | 'draining';

/**
 * What may change a backend's state. Each source owns one condition; the state
 * is derived from all of them (draining > ejected > down > up), so a health
 * probe that passes never cancels an admin drain, and an admin "enable" hands
 * the backend back to the health checker's verdict.
 */
export type StateEvent =
  | 'health-up' // active health check passed `rise` times
  | 'health-down' // active health check failed `fall` times
  | 'eject' // outlier detection on live traffic
  | 'uneject' // ejection time over
  | 'drain' // admin API: no new requests
  | 'enable'; // admin API: back under the health checker's rule

export interface StateChange {
  /** Epoch ms. */
  readonly time: number;
  readonly from: BackendState;
  readonly to: BackendState;
  readonly reason: string;
}

/** One active health probe, for the explain view. */
export interface ProbeRecord {
  /** Epoch ms. */
  readonly time: number;
  readonly ok: boolean;
  /** HTTP status, when there was a response. */
  readonly status?: number;
  /** What went wrong, when there was no (acceptable) response. */
  readonly error?: string;
  readonly latencyMs: number;
}

/** One failure on live traffic, for the explain view. */
export interface FailureRecord {
  readonly time: number;
  /** "connect-failure", "reset", "timeout", "502", ... */
  readonly reason: string;
}

const HISTORY_LIMIT = 20;
const LATENCY_WINDOW = 512;
const PROBE_LIMIT = 10;
const FAILURE_LIMIT = 10;

function pushBounded<T>(list: T[], item: T, limit: number): void {
  list.push(item);
  if (list.length > limit) list.shift();
}

/** The conditions a backend's state is derived from (see StateEvent). */
export interface Conditions {
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly drained: boolean;
}

/** What one process saw of a backend on its own traffic (a worker answering its primary). */
export interface BackendStats {
  readonly requests: number;
  readonly failures: number;
  readonly inFlight: number;
  readonly latency: { p50: number; p99: number } | null;
  readonly recentFailures: readonly FailureRecord[];
}

/**
 * One backend of one pool. Strategies see it through `BackendView`, everyone
 * else through the read-only getters below. Its state, conditions, weights and
 * counters are private: the one way in is its pool (`BackendPool`: transition(),
 * setConditions(), setWeight(), acquire(), release(), applyStats()...), which
 * calls the writers at the end of this class and nothing else does.
 */
export class Backend implements BackendView {
  readonly name: string;
  readonly url: string;
  readonly backup: boolean;
  /** What proxied requests go through: our own HTTP/1.1 client for http://, undici for https://. */
  readonly upstream: Upstream;
  #dispatcher: UndiciPool | undefined;
  /** What the upstream was built with (a reload with other values needs a new one). */
  readonly timeouts: TimeoutsConfig;
  readonly maxConnections: number;
  readonly protocol: PoolProtocol;
  #configuredWeight: number;
  #weight: number;
  #inFlight = 0;
  #latencyEwmaMs = 0;
  #lastLatencyAt = 0;
  #requests = 0;
  #failures = 0;
  #state: BackendState = 'up';
  readonly #history: StateChange[] = [];
  readonly #probes: ProbeRecord[] = [];
  /** Ring of the last LATENCY_WINDOW times to response headers (ms), for p50/p99 in the API. */
  readonly #latencies = new Float64Array(LATENCY_WINDOW);
  #latencyCount = 0;
  readonly #recentFailures: FailureRecord[] = [];
  /** Set in a primary with workers: the workers' view (the primary serves no traffic). */
  #externalLatency: { p50: number; p99: number } | null | undefined;

  // The conditions the state is derived from (see StateEvent).
  #healthy = true;
  #ejected = false;
  #drained = false;

  /** Pool tls and proxyProtocol, as this backend's connections were built with (a reload with others needs a new one). */
  readonly edge: BackendEdge;

  constructor(config: BackendConfig, timeouts: TimeoutsConfig, maxConnections: number, edge: BackendEdge = {}, protocol: PoolProtocol = 'http1') {
    this.edge = edge;
    this.name = config.name;
    this.url = config.url;
    this.backup = config.backup;
    this.#configuredWeight = config.weight;
    this.#weight = config.weight;
    this.timeouts = timeouts;
    this.maxConnections = maxConnections;
    this.protocol = protocol;
    if (protocol === 'http2') {
      // maxConnectionsPerBackend caps streams in flight here, which the pool's pick enforces.
      const options = { connectMs: timeouts.connectMs, responseMs: timeouts.responseMs, idleMs: timeouts.idleMs, tls: backendTlsOptions(edge.tls) };
      this.upstream = http2Engine === 'node' ? new Http2Upstream(config.url, options) : new Http2OwnUpstream(config.url, options);
    } else {
      this.upstream = edge.proxyProtocol !== undefined
        ? new PerClientUpstream(edge.proxyProtocol, (prelude) => this.#upstream(prelude))
        : this.#upstream(undefined);
    }
  }

  /** Our own client for http://, undici for https://; `prelude` starts each connection (a PROXY header). */
  #upstream(prelude: Buffer | undefined): Upstream {
    const { timeouts, maxConnections } = this;
    if (this.url.startsWith('http:') && llhttpAvailable) {
      return new UpstreamClient(this.url, {
        connections: maxConnections, idleMs: timeouts.idleMs, connectMs: timeouts.connectMs, responseMs: timeouts.responseMs,
      }, prelude);
    }
    // A route's timeouts.connect (SPEC 8): a Pool whose connections are opened with it (upstream/undici.ts).
    const connect = { ms: timeouts.connectMs, pool: (connectMs: number) => this.#undiciPool(prelude, connectMs) };
    return new UndiciUpstream(prelude === undefined ? this.dispatcher : this.#undiciPool(prelude), timeouts.responseMs, connect);
  }

  /**
   * The dispatcher a WebSocket upgrade from `client` goes through: the
   * shared one, or (proxyProtocol) one of its own whose connection begins
   * with that client's PROXY header; `done` when the upgrade has its answer.
   */
  upgradeDispatcher(client: Socket): { dispatcher: UndiciPool; done: () => void } {
    if (this.edge.proxyProtocol === undefined) return { dispatcher: this.dispatcher, done: noop };
    const pool = this.#undiciPool(encodeHeader(this.edge.proxyProtocol, connectionEnds(client)));
    return { dispatcher: pool, done: () => void pool.close().catch(noop) };
  }

  /**
   * An undici Pool to this backend, made when first needed: WebSocket
   * upgrades go through it, and every request to an https:// backend.
   */
  get dispatcher(): UndiciPool {
    return (this.#dispatcher ??= this.#undiciPool(undefined));
  }

  #undiciPool(prelude: Buffer | undefined, connectMs = this.timeouts.connectMs): UndiciPool {
    const { timeouts, maxConnections } = this;
    const tls = backendTlsOptions(this.edge.tls);
    return new UndiciPool(this.url, {
      // null = as many connections as there are concurrent requests.
      connections: maxConnections > 0 ? maxConnections : null,
      // Idle sockets close before the backend's own keep-alive timeout would, so
      // a reused socket never races the backend's close (Node servers default to 5s).
      // `idle: 0` keeps none: pipelining 0 is undici's "no keep-alive".
      ...(timeouts.idleMs > 0
        ? { pipelining: 1, keepAliveTimeout: timeouts.idleMs, keepAliveMaxTimeout: timeouts.idleMs }
        : { pipelining: 0 }),
      headersTimeout: timeouts.responseMs,
      // Streams (SSE, downloads) may be quiet for long; a stall before headers is
      // what `timeouts.response` is for.
      bodyTimeout: 0,
      connect: prelude !== undefined ? preludeConnector(prelude, tls, connectMs) : { timeout: connectMs, ...tls },
    });
  }

  /** Close every connection once the requests on it are done. */
  async close(): Promise<void> {
    const undici = this.#dispatcher;
    await Promise.all([
      this.upstream.close().catch(() => undefined),
      undici !== undefined && !(this.upstream instanceof UndiciUpstream) ? undici.close().catch(() => undefined) : undefined,
    ]);
  }

  /** Weight from the config or the admin API. */
  get configuredWeight(): number { return this.#configuredWeight; }
  /** What strategies read: the configured weight, scaled during slow start. */
  get weight(): number { return this.#weight; }
  get inFlight(): number { return this.#inFlight; }
  get latencyEwmaMs(): number { return this.#latencyEwmaMs; }
  /** Epoch ms of the last latency sample (the EWMA's decay). */
  get lastLatencyAt(): number { return this.#lastLatencyAt; }
  /** Requests sent here (each retry counts where it went). */
  get requests(): number { return this.#requests; }
  /** Requests here that ended in a connect error, a reset, a timeout or a 5xx. */
  get failures(): number { return this.#failures; }
  get state(): BackendState { return this.#state; }
  get healthy(): boolean { return this.#healthy; }
  get ejected(): boolean { return this.#ejected; }
  get drained(): boolean { return this.#drained; }
  get conditions(): Conditions {
    return { healthy: this.#healthy, ejected: this.#ejected, drained: this.#drained };
  }
  get history(): readonly StateChange[] { return this.#history; }
  get probes(): readonly ProbeRecord[] { return this.#probes; }
  get recentFailures(): readonly FailureRecord[] { return this.#recentFailures; }

  /** Derived state; see StateEvent for the precedence. */
  deriveState(): BackendState {
    if (this.#drained) return 'draining';
    if (this.#ejected) return 'ejected';
    if (!this.#healthy) return 'down';
    return 'up';
  }

  /** p50 and p99 of the recent window (null before the first response). */
  latencyQuantiles(): { p50: number; p99: number } | null {
    if (this.#externalLatency !== undefined) return this.#externalLatency;
    const n = Math.min(this.#latencyCount, LATENCY_WINDOW);
    if (n === 0) return null;
    const sorted = this.#latencies.slice(0, n).sort();
    const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.floor(q * n))] * 1000) / 1000;
    return { p50: at(0.5), p99: at(0.99) };
  }

  /** What this process saw of the backend, for a primary that sums its workers' (see applyStats). */
  stats(): BackendStats {
    return { requests: this.#requests, failures: this.#failures, inFlight: this.#inFlight, latency: this.latencyQuantiles(), recentFailures: this.#recentFailures };
  }

  // ------------------------------------------------------------------
  // Writers. BackendPool's alone: every other module changes a backend
  // through its pool, which keeps the available set and listeners in step.

  /** @internal BackendPool: set some conditions; the state follows in settle(). */
  setConditions(c: Partial<Conditions>): void {
    if (c.healthy !== undefined) this.#healthy = c.healthy;
    if (c.ejected !== undefined) this.#ejected = c.ejected;
    if (c.drained !== undefined) this.#drained = c.drained;
  }

  /**
   * @internal BackendPool: derive the state from the conditions and record
   * why it changed. Returns the state it had, or undefined when it stays.
   */
  settle(reason: string, time: number): BackendState | undefined {
    const from = this.#state;
    const to = this.deriveState();
    if (from === to) return undefined;
    this.#state = to;
    pushBounded(this.#history, { time, from, to, reason }, HISTORY_LIMIT);
    return from;
  }

  /** @internal BackendPool: the configured weight (admin API, reload). */
  setConfiguredWeight(weight: number): void {
    this.#configuredWeight = weight;
  }

  /** @internal BackendPool: the weight strategies see (slow start ramps it). */
  setWeight(weight: number): void {
    this.#weight = weight;
  }

  /** @internal BackendPool: a request starts here. */
  countStart(): void {
    this.#inFlight++;
    this.#requests++;
  }

  /** @internal BackendPool: a request here ended; `failure` when it failed. */
  countEnd(failure: FailureRecord | undefined): void {
    this.#inFlight--;
    if (failure !== undefined) {
      this.#failures++;
      pushBounded(this.#recentFailures, failure, FAILURE_LIMIT);
    }
  }

  /** @internal BackendPool: a time to response headers, and the average it moved to. */
  recordLatency(ms: number, ewmaMs: number, time: number): void {
    this.#latencies[this.#latencyCount++ % LATENCY_WINDOW] = ms;
    this.#latencyEwmaMs = ewmaMs;
    this.#lastLatencyAt = time;
  }

  /** @internal BackendPool: one active health probe, for the explain view. */
  recordProbe(probe: ProbeRecord): void {
    pushBounded(this.#probes, probe, PROBE_LIMIT);
  }

  /**
   * @internal BackendPool: a primary with workers serves no traffic; its
   * counters are what its workers saw, summed (see cluster/primary.ts).
   */
  applyStats(stats: BackendStats): void {
    this.#requests = stats.requests;
    this.#failures = stats.failures;
    this.#inFlight = stats.inFlight;
    this.#externalLatency = stats.latency;
    this.#recentFailures.splice(0, this.#recentFailures.length, ...stats.recentFailures.slice(-FAILURE_LIMIT));
  }

  /**
   * @internal BackendPool: take over what `previous` (the backend of the same
   * name in the config before a reload) knew: its conditions, state, counters
   * and history. Used when the new config needs a new connection pool (other
   * timeouts, say).
   */
  inherit(previous: Backend): void {
    this.#healthy = previous.#healthy;
    this.#ejected = previous.#ejected;
    this.#drained = previous.#drained;
    this.#state = previous.#state;
    this.#requests = previous.#requests;
    this.#failures = previous.#failures;
    this.#latencyEwmaMs = previous.#latencyEwmaMs;
    this.#lastLatencyAt = previous.#lastLatencyAt;
    this.#history.push(...previous.#history);
    this.#probes.push(...previous.#probes);
    this.#recentFailures.push(...previous.#recentFailures);
    this.#latencies.set(previous.#latencies);
    this.#latencyCount = previous.#latencyCount;
  }
}

function noop(): void {}
