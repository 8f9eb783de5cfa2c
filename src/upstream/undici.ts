import { Pool as UndiciPool, errors as undiciErrors, type Dispatcher } from 'undici';
import { UPSTREAM_ERRORS, upstreamError, type Upstream, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './types';
import { reportInternalError } from '../internal-errors';
import { fulcrumError } from '../errors';

/**
 * undici checks `headersTimeout` and its connect timeout with its coarse
 * timers (ticks of about half a second), so they fire up to a second late.
 * Below this, where that second is more than a tenth of the timeout, each
 * request gets a native timer of its own (for the connect timeout: a route's
 * only, see UndiciUpstream).
 */
const PRECISE_RESPONSE_TIMEOUT_BELOW_MS = 10_000;

/** How an UndiciUpstream makes a Pool for another connect timeout: `ms` is the one of its own Pool. */
export interface ConnectPools {
  readonly ms: number;
  pool(connectMs: number): UndiciPool;
}

/**
 * The Upstream for https:// backends (and for http:// ones if this Node's
 * parser binding is not supported): undici's Pool behind the same interface
 * as UpstreamClient.
 *
 * undici's connect timeout belongs to the Pool's connector, not to a
 * request; so a route's timeouts.connect (SPEC 8) gets a Pool of its own to
 * the same backend (`poolFor`, made at its first request), whose
 * connections are opened with that timeout, shorter or longer than the
 * pool's, as our own HTTP/1.1 client opens a connection with the timeout of
 * the request it is for. Requests without one use `pool`; nothing extra
 * exists unless a route sets it. Such a request also times its own wait for
 * a connection (until undici hands it one), so that a short route timeout
 * is not a second late.
 */
export class UndiciUpstream implements Upstream {
  readonly pool: UndiciPool;
  readonly #responseMs: number;
  readonly #connect: ConnectPools | undefined;
  /** The Pools for routes' connect timeouts, by their value. */
  #byConnect: Map<number, UndiciPool> | undefined;

  constructor(pool: UndiciPool, responseMs: number, connect?: ConnectPools) {
    this.pool = pool;
    this.#responseMs = responseMs < PRECISE_RESPONSE_TIMEOUT_BELOW_MS ? responseMs : 0;
    this.#connect = connect;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    // A route's response timeout (SPEC 8.1) replaces the pool's for this request.
    const ms = request.responseMs;
    const call = new UndiciCall(handler, ms === undefined ? this.#responseMs : ms < PRECISE_RESPONSE_TIMEOUT_BELOW_MS ? ms : 0);
    const connect = this.#connect;
    const connectMs = request.connectMs;
    let pool = this.pool;
    if (connectMs !== undefined && connect !== undefined) {
      if (connectMs !== connect.ms) pool = this.#connectPool(connectMs, connect);
      if (connectMs > 0 && connectMs < PRECISE_RESPONSE_TIMEOUT_BELOW_MS) call.waitConnect(connectMs);
    }
    pool.dispatch({
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers as string[],
      body: request.body,
      ...(ms !== undefined ? { headersTimeout: ms } : {}),
    }, call);
    return call;
  }

  #connectPool(connectMs: number, connect: ConnectPools): UndiciPool {
    const pools = (this.#byConnect ??= new Map());
    let pool = pools.get(connectMs);
    if (pool === undefined) pools.set(connectMs, (pool = connect.pool(connectMs)));
    return pool;
  }

  close(): Promise<void> {
    const extra = this.#byConnect === undefined ? [] : [...this.#byConnect.values()];
    return Promise.all([this.pool.close(), ...extra.map((p) => p.close().catch(() => undefined))]).then(() => undefined);
  }
}

/**
 * undici's original handler shape (onConnect/onHeaders/...), which undici 7's
 * core calls directly, turned into UpstreamHandler calls.
 */
class UndiciCall implements Dispatcher.DispatchHandler, UpstreamCall {
  readonly #handler: UpstreamHandler;
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;
  #abort: ((err?: Error) => void) | null = null;
  /** An abort asked for before undici handed us its abort function. */
  #pendingAbort: Error | null = null;
  #resume: (() => void) | null = null;
  /** A route's connect timeout, until undici hands the request a connection. */
  #connectTimer: NodeJS.Timeout | undefined;
  /** The handler heard its end already (the connect timeout): what undici says after is not passed on. */
  #ended = false;

  constructor(handler: UpstreamHandler, responseMs: number) {
    this.#handler = handler;
    this.#ms = responseMs;
  }

  abort(err: Error): void {
    if (this.#abort !== null) this.#abort(err);
    else this.#pendingAbort = err;
  }

  /** No connection within `ms`: the handler hears a connect timeout; the request is dropped when undici gets to it. */
  waitConnect(ms: number): void {
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      const err = upstreamError(UPSTREAM_ERRORS.CONNECT_TIMEOUT, `no connection within ${ms}ms`);
      this.#pendingAbort = err;
      this.onError(err);
      this.#ended = true;
    }, ms);
  }

  resume(): void {
    this.#resume?.();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    if (this.#pendingAbort !== null) {
      abort(this.#pendingAbort);
      return;
    }
    this.#abort = abort;
    if (this.#ms > 0) {
      this.#clear();
      this.#timer = setTimeout(() => abort(new undiciErrors.HeadersTimeoutError()), this.#ms);
      this.#timer.unref();
    }
  }

  // undici calls these from its socket code: each runs inside the connection
  // boundary, as our own client's callbacks do (a bug ends this call only).
  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    try {
      if (statusCode < 200) return true; // 1xx: not the response yet
      this.#clear();
      this.#resume = resume;
      const headers: string[] = new Array(raw.length);
      for (let i = 0; i < raw.length; i++) headers[i] = raw[i].toString('latin1');
      this.#handler.onHeaders(statusCode, headers);
      return true;
    } catch (err) {
      return this.#fault(err);
    }
  }

  onData(chunk: Buffer): boolean {
    try {
      return this.#handler.onData(chunk);
    } catch (err) {
      return this.#fault(err);
    }
  }

  /** `trailers`: a chunked body's trailer section, flat (Buffers, as undici's parser hands them, whatever its types say). */
  onComplete(trailers: (string | Buffer)[] | null): void {
    this.#clear();
    try {
      if (trailers !== null && trailers.length !== 0) this.#handler.onTrailers?.(trailers.map(latin1));
      this.#handler.onComplete();
    } catch (err) {
      reportInternalError(err, 'upstream call');
    }
  }

  onError(err: Error): void {
    if (this.#ended) return;
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#clear();
    try {
      this.#handler.onError(err);
    } catch (bug) {
      reportInternalError(bug, 'upstream call');
    }
  }

  /** A bug in the handler: reported; the call is aborted (its handler hears an internal error). */
  #fault(err: unknown): false {
    reportInternalError(err, 'upstream call');
    this.abort(fulcrumError('FULCRUM_INTERNAL_ERROR', 'internal error'));
    return false;
  }
}

function latin1(piece: string | Buffer): string {
  return typeof piece === 'string' ? piece : piece.toString('latin1');
}
