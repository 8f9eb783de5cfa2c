import { Pool as UndiciPool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { BackendConfig, TimeoutsConfig } from '../config/types';
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

/**
 * undici checks `headersTimeout` with its coarse timers (ticks of about half a
 * second), so a response timeout fires up to a second late: `response: 300ms`
 * answered its 504 after about 1 s. Below this, where that second is more than
 * a tenth of the timeout, each request gets a native timer of its own; above,
 * no per-request timer is paid for.
 */
const PRECISE_RESPONSE_TIMEOUT_BELOW_MS = 10_000;

/**
 * Passes every call on to `inner`, and ends the attempt with undici's own
 * HeadersTimeoutError (so it is classified as a timeout, 504) when no response
 * headers came within `ms` of the request being written.
 */
class ResponseDeadline implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(inner: Dispatcher.DispatchHandler, ms: number) {
    this.#inner = inner;
    this.#ms = ms;
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** undici calls it when the request is about to be written on a connection. */
  onConnect(abort: (err?: Error) => void): void {
    this.#clear();
    this.#timer = setTimeout(() => abort(new undiciErrors.HeadersTimeoutError()), this.#ms);
    this.#timer.unref();
    this.#inner.onConnect?.(abort);
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode >= 200) this.#clear(); // 1xx is not the response yet
    return this.#inner.onHeaders?.(statusCode, headers, resume, statusText) ?? true;
  }

  onData(chunk: Buffer): boolean {
    return this.#inner.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.#clear();
    this.#inner.onComplete?.(trailers);
  }

  onError(err: Error): void {
    this.#clear();
    this.#inner.onError?.(err);
  }

  onUpgrade(statusCode: number, headers: Buffer[] | string[] | null, socket: import('node:stream').Duplex): void {
    this.#clear();
    this.#inner.onUpgrade?.(statusCode, headers, socket);
  }

  onBodySent(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onBodySent']>>): void {
    this.#inner.onBodySent?.(...args);
  }

  onResponseStarted(): void {
    this.#inner.onResponseStarted?.();
  }
}

/** An undici Pool whose requests each get a ResponseDeadline (see PRECISE_RESPONSE_TIMEOUT_BELOW_MS). */
class DeadlinePool extends UndiciPool {
  readonly #ms: number;

  constructor(url: string, options: UndiciPool.Options, ms: number) {
    super(url, options);
    this.#ms = ms;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return super.dispatch(options, new ResponseDeadline(handler, this.#ms));
  }
}

/**
 * One backend of one pool. Strategies see it through `BackendView` (read-only);
 * the pool is the only writer of its state, weight and in-flight count.
 */
export class Backend implements BackendView {
  readonly name: string;
  readonly url: string;
  readonly backup: boolean;
  readonly dispatcher: UndiciPool;
  /** What the dispatcher was built with (a reload with other values needs a new one). */
  readonly timeouts: TimeoutsConfig;
  readonly maxConnections: number;
  /** Weight from the config or the admin API. */
  configuredWeight: number;
  /** What strategies read: the configured weight, scaled during slow start. */
  weight: number;
  inFlight = 0;
  latencyEwmaMs = 0;
  lastLatencyAt = 0;
  /** Requests sent here (each retry counts where it went). */
  requests = 0;
  /** Requests here that ended in a connect error, a reset, a timeout or a 5xx. */
  failures = 0;
  state: BackendState = 'up';
  readonly history: StateChange[] = [];
  readonly probes: ProbeRecord[] = [];
  /** Ring of the last LATENCY_WINDOW times to response headers (ms), for p50/p99 in the API. */
  readonly #latencies = new Float64Array(LATENCY_WINDOW);
  #latencyCount = 0;
  readonly recentFailures: FailureRecord[] = [];

  // The conditions the state is derived from (see StateEvent).
  healthy = true;
  ejected = false;
  drained = false;

  constructor(config: BackendConfig, timeouts: TimeoutsConfig, maxConnections: number) {
    this.name = config.name;
    this.url = config.url;
    this.backup = config.backup;
    this.configuredWeight = config.weight;
    this.weight = config.weight;
    this.timeouts = timeouts;
    this.maxConnections = maxConnections;
    const options: UndiciPool.Options = {
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
      connect: { timeout: timeouts.connectMs },
    };
    this.dispatcher = timeouts.responseMs < PRECISE_RESPONSE_TIMEOUT_BELOW_MS
      ? new DeadlinePool(config.url, options, timeouts.responseMs)
      : new UndiciPool(config.url, options);
  }

  /**
   * Take over what `previous` (the backend of the same name in the config
   * before a reload) knew: its conditions, state, counters and history. Used
   * when the new config needs a new connection pool (other timeouts, say).
   */
  inherit(previous: Backend): void {
    this.healthy = previous.healthy;
    this.ejected = previous.ejected;
    this.drained = previous.drained;
    this.state = previous.state;
    this.requests = previous.requests;
    this.failures = previous.failures;
    this.latencyEwmaMs = previous.latencyEwmaMs;
    this.lastLatencyAt = previous.lastLatencyAt;
    this.history.push(...previous.history);
    this.probes.push(...previous.probes);
    this.recentFailures.push(...previous.recentFailures);
    this.#latencies.set(previous.#latencies);
    this.#latencyCount = previous.#latencyCount;
  }

  /** Derived state; see StateEvent for the precedence. */
  deriveState(): BackendState {
    if (this.drained) return 'draining';
    if (this.ejected) return 'ejected';
    if (!this.healthy) return 'down';
    return 'up';
  }

  recordStateChange(from: BackendState, to: BackendState, reason: string, time: number): void {
    pushBounded(this.history, { time, from, to, reason }, HISTORY_LIMIT);
  }

  recordLatency(ms: number): void {
    this.#latencies[this.#latencyCount++ % LATENCY_WINDOW] = ms;
  }

  /** p50 and p99 of the recent window (null before the first response). */
  /** Set in a primary with workers: the workers' view (the primary serves no traffic). */
  externalLatency: { p50: number; p99: number } | null | undefined;

  latencyQuantiles(): { p50: number; p99: number } | null {
    if (this.externalLatency !== undefined) return this.externalLatency;
    const n = Math.min(this.#latencyCount, LATENCY_WINDOW);
    if (n === 0) return null;
    const sorted = this.#latencies.slice(0, n).sort();
    const at = (q: number) => Math.round(sorted[Math.min(n - 1, Math.floor(q * n))] * 1000) / 1000;
    return { p50: at(0.5), p99: at(0.99) };
  }

  recordProbe(probe: ProbeRecord): void {
    pushBounded(this.probes, probe, PROBE_LIMIT);
  }

  recordFailure(failure: FailureRecord): void {
    pushBounded(this.recentFailures, failure, FAILURE_LIMIT);
  }
}
