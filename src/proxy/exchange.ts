import { ERRORS, fulcrumError } from '../errors';
import type { ProxyRequest, ProxyResponse } from './message';
import type { Backend } from '../pool/backend';
import type { UpstreamCall, UpstreamHandler } from '../upstream/types';
import type { BackendPool } from '../pool/pool';
import type { PickContext } from '../balancing/types';
import { blamesBackend, classifyUpstreamError, type FailureKind } from '../upstream/errors';
import { forwardResponseHeaders } from './headers';
import { LOCAL_MESSAGES, sendLocal } from './local-response';
import type { Sticky } from '../pool/sticky';
import type { Readable } from 'node:stream';
import { BODY_TOO_LARGE } from './body-limit';
import { GrpcCall } from '../grpc/call';
import { isGrpc as isGrpcRequest, sendGrpcLocal } from '../grpc/grpc';
import { sendTrailers } from './trailers';
import type { RetriesConfig } from '../config/types';
import type { HeaderRules } from '../routes/header-rules';
import type { MirrorResult } from '../routes/mirror';
import type { ClientSpan, ServerTrace } from '../tracing/tracer';

/** The client stopped sending its body for `limits.bodyTimeout`. */
export const BODY_TIMEOUT = 'FULCRUM_BODY_TIMEOUT';

/** What the access log and metrics learn about each finished request. */
export interface RequestRecord {
  readonly listener: string;
  readonly method: string;
  readonly url: string;
  readonly requestId: string;
  readonly remoteAddress: string;
  /** "" when Fulcrum answered itself. */
  readonly pool: string;
  /** Backend that gave the final answer; "" when Fulcrum answered itself. */
  readonly backend: string;
  /** 499 when the client went away first (as nginx logs it). */
  readonly status: number;
  readonly durationMs: number;
  /** Response body bytes sent to the client. */
  readonly bytes: number;
  readonly retries: number;
  /** Why Fulcrum answered with an error, or why the response broke. */
  readonly error?: string;
  /** With `tracing`: the request's trace (the access log's traceId; its server span ends with the record). */
  readonly trace?: ServerTrace;
  /** gRPC calls only: the grpc-status the client got (SPEC 9.1). */
  readonly grpcStatus?: string;
}

/**
 * How one attempt on a backend failed: the failure table's kinds, with every
 * 5xx answer as "5xx". "local-resource" is Fulcrum's own failure (EMFILE...),
 * never the backend's.
 */
export type AttemptFailure = 'connect-failure' | 'reset' | 'timeout' | '5xx' | 'error' | 'local-resource';

export interface RequestObserver {
  onRequestEnd(record: RequestRecord): void;
  onRetry(pool: string): void;
  /** One attempt failed (retried or not); not called for a client that left or a refused body. */
  onAttemptFailed(pool: string, backend: string, kind: AttemptFailure): void;
  /** A route's mirror copied a request, or skipped it (SPEC 8.2); not a client request. */
  onMirror?(pool: string, result: MirrorResult): void;
}

/** RFC 9110 §9.2.2: safe to send twice. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** SPEC section 4: a 503 says when to come back. */
const RETRY_AFTER = ['retry-after', '1'] as const;

const CLIENT_GONE = fulcrumError('FULCRUM_CLIENT_GONE', ERRORS.FULCRUM_CLIENT_GONE.message);

export interface ExchangeInit {
  readonly listener: string;
  readonly observer: RequestObserver;
  readonly pool: BackendPool;
  readonly req: ProxyRequest;
  readonly res: ProxyResponse;
  readonly path: string;
  readonly headers: string[];
  /** The request body as it goes upstream (the request itself, or a counting stream); null when there is none. */
  readonly body: Readable | null;
  readonly requestId: string;
  readonly remoteAddress: string;
  readonly pick: PickContext;
  /** Backend a sticky cookie pinned this request to, if it is available. */
  readonly preferred?: Backend;
  /** The pool's cookie affinity, when configured. */
  readonly sticky?: Sticky;
  readonly startedAt: number;
  /** The route's responseHeaders: on the backend's answer and on Fulcrum's own (502, 503, 504). */
  readonly responseRules?: HeaderRules | null;
  /** The route's retries, replacing the pool's. */
  readonly retries?: RetriesConfig;
  /** The route's timeouts, overriding the pool's key by key. */
  readonly timeouts?: { readonly connectMs?: number; readonly responseMs?: number };
  /** With `tracing`: each attempt gets a client span and its traceparent. */
  readonly trace?: ServerTrace;
}

/**
 * One client request on its way through a pool: picks a backend, forwards it
 * over the backend's Upstream (callbacks, no promise, no parsed header object
 * per response), streams both bodies with backpressure, retries where SPEC
 * allows, and reports once at the end.
 */
export class Exchange implements UpstreamHandler {
  readonly #init: ExchangeInit;
  #backend: Backend | undefined;
  #tried: Set<Backend> | undefined;
  #retries = 0;
  /** Sent again after a reset on a (most likely stale) keep-alive socket; see onError. */
  #resent = false;
  #attemptStart = 0;
  #latencyMs: number | undefined;
  /** The attempt in flight. */
  #call: UpstreamCall | null = null;
  /** Response headers went to the client: no retry, no error page any more. */
  #responding = false;
  /** A retryable 5xx is being read off the wire before trying elsewhere. */
  #discarding = 0;
  #clientGone = false;
  #done = false;
  #status = 0;
  #bytes = 0;
  /** With `tracing`: the attempt in flight's client span. */
  #span: ClientSpan | undefined;
  /** A gRPC call to an http2 pool (its deadline, trailers and status); null for everything else. */
  readonly #grpc: GrpcCall | null;
  /** The backend's trailers, passed on at the end. */
  #trailers: readonly string[] | undefined;
  /** The response was headers alone (HTTP/2 END_STREAM on HEADERS), already ended. */
  #endedWithHeaders = false;

  constructor(init: ExchangeInit) {
    this.#init = init;
    this.#grpc = init.pool.config.protocol === 'http2' ? GrpcCall.of(init.req, init.headers, init.startedAt, this) : null;
    // `on`, not `once`: 'close' fires once per response, and once() wraps every listener in a new closure.
    init.res.on('close', this.#onClientClose);
  }

  start(): void {
    const { pool, preferred } = this.#init;
    const max = pool.config.maxConnectionsPerBackend;
    // A sticky backend is preferred only while it has room (maxConnectionsPerBackend).
    const backend = preferred !== undefined && (max === 0 || preferred.inFlight < max) ? preferred : pool.pick(this.#init.pick);
    if (backend === undefined) {
      this.#local(503, LOCAL_MESSAGES[503], ['retry-after', '1']);
      return;
    }
    this.#send(backend);
  }

  #send(backend: Backend): void {
    const { pool, req } = this.#init;
    this.#backend = backend;
    this.#latencyMs = undefined;
    this.#attemptStart = performance.now();
    if (this.#init.trace !== undefined) this.#traceAttempt(this.#init.trace, backend);
    pool.acquire(backend);
    this.#grpc?.beforeAttempt();
    const t = this.#init.timeouts;
    this.#call = backend.upstream.dispatch({
      path: this.#init.path,
      method: req.method!,
      headers: this.#init.headers,
      body: this.#init.body,
      client: req.socket,
      // Always both keys (a spread of a conditional object cost an object and a copy per attempt).
      connectMs: t?.connectMs,
      responseMs: t?.responseMs,
    }, this);
  }

  // ---- upstream handler ----------------------------------------------------

  /** Stop the upstream attempt with `err` (onError decides what the client gets). */
  abort(err: Error): void {
    if (this.#done) return;
    this.#call?.abort(err);
  }

  onHeaders(statusCode: number, rawHeaders: readonly string[], endStream?: boolean): void {
    this.#latencyMs = performance.now() - this.#attemptStart;
    if (this.#span !== undefined) this.#span.status = statusCode;
    if (statusCode >= 502 && statusCode <= 504 && this.#mayRetry(String(statusCode) as FailureKind, true)) {
      this.#discarding = statusCode;
      return;
    }
    const { res } = this.#init;
    const cookie = this.#init.sticky !== undefined && this.#backend !== this.#init.preferred
      ? ['set-cookie', this.#init.sticky.setCookie(this.#backend!)] : undefined;
    this.#status = statusCode;
    this.#responding = true;
    if (this.#grpc !== null) this.#grpc.onHeaders(rawHeaders);
    if (endStream === true && cookie === undefined && (this.#init.responseRules ?? null) === null && this.#grpc?.endWithHeaders(res, statusCode, rawHeaders) === true) {
      this.#endedWithHeaders = true;
      return;
    }
    // SPEC 8.1: the route's responseHeaders act here, after Fulcrum's own
    // passes; compress (8.5) comes after them, on what this writes.
    const rules = this.#init.responseRules ?? null;
    if (rules !== null) {
      // After Fulcrum's own passes (hop-by-hop, the sticky cookie): remove, set, add.
      const extra = cookie !== undefined && rules.keeps('set-cookie') ? [...cookie, ...rules.append] : rules.append;
      if (res.writeBackendHead !== undefined && res.writeBackendHead(statusCode, rawHeaders, extra, rules.drop)) return;
      const headers = forwardResponseHeaders(rawHeaders);
      if (cookie !== undefined) headers.push(...cookie);
      res.writeHead(statusCode, rules.apply(headers));
      return;
    }
    // Our own server writes the backend's headers in one pass; node:http takes a filtered list.
    if (res.writeBackendHead !== undefined && res.writeBackendHead(statusCode, rawHeaders, cookie)) return;
    const headers = forwardResponseHeaders(rawHeaders);
    if (cookie !== undefined) headers.push(...cookie);
    res.writeHead(statusCode, headers);
  }

  onData(chunk: Buffer): boolean {
    if (this.#discarding !== 0) return true;
    this.#bytes += chunk.length;
    if (this.#init.res.write(chunk)) return true;
    this.#init.res.once('drain', this.#onDrain);
    return false; // the backend socket is not read until `resume`
  }

  onTrailers(trailers: readonly string[]): void {
    if (this.#discarding === 0) this.#trailers = trailers;
  }

  onComplete(): void {
    const { pool } = this.#init;
    const backend = this.#backend!;
    if (this.#discarding !== 0) {
      const status = this.#discarding;
      this.#discarding = 0;
      pool.release(backend, this.#latencyMs, String(status));
      this.#init.observer.onAttemptFailed(pool.name, backend.name, '5xx');
      if (this.#clientGone) this.#finish('client closed the connection');
      else this.#retry(status);
      return;
    }
    if (this.#status >= 500) {
      pool.release(backend, this.#latencyMs, String(this.#status));
      this.#init.observer.onAttemptFailed(pool.name, backend.name, '5xx');
    } else {
      pool.release(backend, this.#latencyMs, undefined);
    }
    if (this.#trailers !== undefined) {
      this.#grpc?.onTrailers(this.#trailers);
      sendTrailers(this.#init.res, this.#trailers);
    }
    if (!this.#endedWithHeaders) this.#init.res.end();
    this.#finish(undefined);
  }

  onError(err: Error): void {
    const { pool } = this.#init;
    if (this.#span !== undefined) this.#span.fail(String((err as { code?: unknown }).code ?? err.name));
    const backend = this.#backend!;
    if (this.#clientGone || this.#init.res.destroyed || this.#init.req.socket?.destroyed === true) {
      // node-http-proxy's rule: a client that hung up is not the backend's fault.
      this.#clientGone = true;
      pool.release(backend, this.#latencyMs, undefined, false);
      this.#finish('client closed the connection');
      return;
    }
    const code = (err as { code?: unknown }).code;
    if (code === 'FULCRUM_DEADLINE') {
      // The client's own deadline: DEADLINE_EXCEEDED for it, nothing against the backend.
      pool.release(backend, this.#latencyMs, undefined, false);
      if (!this.#responding) this.#local(504, ERRORS.FULCRUM_DEADLINE.message, undefined, err.message);
      else {
        if (this.#grpc?.endBroken(this.#init.res, 504, ERRORS.FULCRUM_DEADLINE.message) !== true) this.#init.res.destroy(err);
        this.#finish(err.message);
      }
      return;
    }
    if (code === BODY_TOO_LARGE || code === BODY_TIMEOUT) {
      // The client's fault, not the backend's; the rest of its body is unread,
      // so the connection closes after the answer.
      pool.release(backend, this.#latencyMs, undefined, false);
      if (this.#responding) {
        this.#init.res.destroy();
        this.#finish(err.message);
        return;
      }
      const row = ERRORS[code];
      this.#local(row.status, row.message, ['connection', 'close'], err.message);
      return;
    }
    const failure = classifyUpstreamError(err);
    if (failure.kind === 'reset' && (err as { code?: string }).code !== 'FULCRUM_STREAM_RESET' && this.#mayResend()) {
      // Most likely a keep-alive socket the backend closed just as the request
      // went out on it. Sent again once, on another connection, whatever the
      // retry settings (HAProxy and Go's HTTP client do the same): not a
      // retry, and not the backend's failure. An HTTP/2 stream the backend
      // reset is its answer, not a stale socket (a closing HTTP/2 backend
      // says GOAWAY, and what it did not process is retried as refused).
      this.#resent = true;
      pool.release(backend, undefined, undefined, false);
      // Once the broken socket is let go of, or it may be picked again.
      setImmediate(() => this.#resend(backend));
      return;
    }
    if (blamesBackend(failure.kind)) {
      pool.release(backend, this.#latencyMs, failure.kind);
      this.#init.observer.onAttemptFailed(pool.name, backend.name, failure.kind as AttemptFailure);
    } else {
      pool.release(backend, this.#latencyMs, undefined, false);
      if (failure.kind === 'local-resource') this.#init.observer.onAttemptFailed(pool.name, backend.name, 'local-resource');
    }
    if (this.#responding) {
      // A gRPC call ends with its status in trailers (UNAVAILABLE, DEADLINE_EXCEEDED).
      if (this.#grpc?.endBroken(this.#init.res, failure.status, failure.message) === true) {
        this.#finish(`${failure.kind}: ${err.message}`);
        return;
      }
      // Headers are out: the only honest signal left is a broken response.
      this.#init.res.destroy(err);
      this.#finish(`${failure.kind}: ${err.message}`);
      return;
    }
    if (this.#discarding === 0 && this.#mayRetry(failure.kind, false)) {
      this.#retry(failure.status);
      return;
    }
    this.#discarding = 0;
    this.#local(failure.status, failure.message, failure.status === 503 ? RETRY_AFTER : undefined, `${failure.kind}: ${err.message}`);
  }

  // ---- retries -------------------------------------------------------------

  /**
   * SPEC: only on the listed conditions, only for idempotent requests or before
   * any byte was sent, and never once the client's body started flowing (it
   * cannot be replayed).
   */
  #mayRetry(kind: FailureKind, responded: boolean): boolean {
    const retries = this.#init.retries ?? this.#init.pool.config.retries;
    if (this.#retries >= retries.attempts || !retries.on.includes(kind as never)) return false;
    if (this.#grpc?.expired === true) return false;
    if (this.#init.body !== null && this.#init.body.readableDidRead) return false;
    if (kind === 'connect-failure' && !responded) return true;
    return IDEMPOTENT.has(this.#init.req.method!);
  }

  // A method, not an arrow field: no closure per request for a rare path.
  #resend(backend: Backend): void {
    if (this.#clientGone) this.#finish('client closed the connection');
    else this.#send(backend);
  }

  /** A reset before any answer, of a request without a body that is safe to send twice, the first time. */
  #mayResend(): boolean {
    return !this.#resent && !this.#responding && this.#discarding === 0 && this.#latencyMs === undefined
      && this.#init.body === null && IDEMPOTENT.has(this.#init.req.method!);
  }

  /** Try another backend; `status` is the answer if none is left. */
  #retry(status: number): void {
    const { pool } = this.#init;
    const tried = (this.#tried ??= new Set());
    tried.add(this.#backend!);
    const next = pool.pick(this.#init.pick, tried);
    if (next === undefined) {
      this.#local(status, LOCAL_MESSAGES[status], status === 503 ? ['retry-after', '1'] : undefined);
      return;
    }
    this.#retries++;
    this.#init.observer.onRetry(pool.name);
    this.#send(next);
  }

  /** The previous attempt's client span ends; this one's begins, and its traceparent goes in the headers. */
  #traceAttempt(trace: ServerTrace, backend: Backend): void {
    // One clock read for the attempt (#send's): the span before ends when this one starts.
    this.#span?.end(this.#attemptStart);
    this.#span = trace.attempt(backend, this.#init.req.method!, this.#init.path, this.#init.headers, this.#attemptStart);
  }

  // ---- the client side -----------------------------------------------------

  #onDrain = (): void => {
    this.#call?.resume();
  };

  /** A gRPC call's deadline passed: the attempt ends, DEADLINE_EXCEEDED. */
  deadline(err: Error): void {
    if (this.#done) return;
    if (this.#call !== null) this.#call.abort(err);
  }

  #onClientClose = (): void => {
    if (this.#done || this.#init.res.writableFinished) return;
    this.#clientGone = true;
    this.#call?.abort(CLIENT_GONE);
  };

  #local(status: number, message: string, headers?: readonly string[], error?: string): void {
    const { res } = this.#init;
    this.#status = status;
    if (this.#grpc !== null || isGrpcRequest(this.#init.req)) {
      // SPEC 9.1: a trailers-only gRPC answer, HTTP 200 on the wire.
      this.#status = 200;
      this.#bytes = 0;
      const grpc = res.headersSent ? undefined : sendGrpcLocal(res, status, message, this.#grpc?.expired === true);
      this.#finish(error ?? message, grpc === undefined ? undefined : String(grpc));
      return;
    }
    this.#bytes = res.headersSent ? 0 : sendLocal(res, status, message, headers, this.#init.responseRules ?? null);
    this.#finish(error ?? message);
  }

  #finish(error: string | undefined, grpcStatus?: string): void {
    if (this.#done) return;
    this.#done = true;
    const i = this.#init;
    const now = performance.now();
    this.#span?.end(now);
    const grpc = this.#grpc;
    if (grpc !== null) grpc.end();
    const viaBackend = this.#responding || this.#clientGone;
    i.observer.onRequestEnd({
      listener: i.listener,
      method: i.req.method!,
      url: i.req.url!,
      requestId: i.requestId,
      remoteAddress: i.remoteAddress,
      pool: i.pool.name,
      backend: viaBackend && this.#backend !== undefined ? this.#backend.name : '',
      status: this.#clientGone ? 499 : this.#status,
      durationMs: now - i.startedAt,
      bytes: this.#bytes,
      retries: this.#retries,
      error,
      trace: i.trace,
      // One shape for every record: grpcStatus undefined but for gRPC calls (no spread of a conditional object).
      grpcStatus: grpc !== null || grpcStatus !== undefined ? grpcStatus ?? grpc!.status(this.#clientGone, this.#status) : undefined,
    });
  }
}
