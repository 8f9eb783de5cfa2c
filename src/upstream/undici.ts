import { Pool as UndiciPool, errors as undiciErrors, type Dispatcher } from 'undici';
import type { Upstream, UpstreamCall, UpstreamHandler, UpstreamRequest } from './types';
import { reportInternalError } from '../internal-errors';
import { fulcrumError } from '../errors';

/**
 * undici checks `headersTimeout` with its coarse timers (ticks of about half a
 * second), so a response timeout fires up to a second late. Below this, where
 * that second is more than a tenth of the timeout, each request gets a native
 * timer of its own.
 */
const PRECISE_RESPONSE_TIMEOUT_BELOW_MS = 10_000;

/**
 * The Upstream for https:// backends (and for http:// ones if this Node's
 * parser binding is not supported): undici's Pool behind the same interface
 * as UpstreamClient.
 */
export class UndiciUpstream implements Upstream {
  readonly pool: UndiciPool;
  readonly #responseMs: number;

  constructor(pool: UndiciPool, responseMs: number) {
    this.pool = pool;
    this.#responseMs = responseMs < PRECISE_RESPONSE_TIMEOUT_BELOW_MS ? responseMs : 0;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    // A route's response timeout (SPEC 8.1) replaces the pool's for this request.
    const ms = request.responseMs;
    const call = new UndiciCall(handler, ms === undefined ? this.#responseMs : ms < PRECISE_RESPONSE_TIMEOUT_BELOW_MS ? ms : 0);
    this.pool.dispatch({
      path: request.path,
      method: request.method as Dispatcher.HttpMethod,
      headers: request.headers as string[],
      body: request.body,
      ...(ms !== undefined ? { headersTimeout: ms } : {}),
    }, call);
    return call;
  }

  close(): Promise<void> {
    return this.pool.close();
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

  constructor(handler: UpstreamHandler, responseMs: number) {
    this.#handler = handler;
    this.#ms = responseMs;
  }

  abort(err: Error): void {
    if (this.#abort !== null) this.#abort(err);
    else this.#pendingAbort = err;
  }

  resume(): void {
    this.#resume?.();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  onConnect(abort: (err?: Error) => void): void {
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

  onComplete(): void {
    this.#clear();
    try {
      this.#handler.onComplete();
    } catch (err) {
      reportInternalError(err, 'upstream call');
    }
  }

  onError(err: Error): void {
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
