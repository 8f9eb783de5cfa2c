import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { SecureContextOptions } from 'node:tls';
import { UPSTREAM_ERRORS, upstreamError, type Upstream, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from '../upstream/types';
import { fulcrumError } from '../errors';
import { reportInternalError } from '../internal-errors';
import { HTTP2_FORBIDDEN } from '../proxy/headers';

/**
 * The Upstream of a pool with `protocol: http2` (SPEC 9.1): node:http2's
 * ClientHttp2Session, h2c with prior knowledge for http:// backends and ALPN
 * h2 for https:// ones. Streams share one session per backend and process;
 * another is opened only while every open one is at the backend's
 * SETTINGS_MAX_CONCURRENT_STREAMS. The pool's maxConnectionsPerBackend caps
 * the streams in flight (BackendPool counts them as it counts HTTP/1.1
 * requests), not sessions.
 *
 * Why node:http2 and not undici: undici 7 speaks HTTP/2 only after ALPN on
 * TLS (`allowH2`); it has no prior-knowledge h2c, which is what gRPC
 * backends inside a network speak, and its h2 client does not hand trailers
 * to a dispatch handler the way a proxy needs them.
 *
 * Failures become the codes of the one failure table (src/upstream/errors.ts):
 * a stream the backend refused or never processed (REFUSED_STREAM, or past
 * a GOAWAY's last stream id) is FULCRUM_STREAM_REFUSED (safe to send
 * elsewhere, as a connect failure); a stream reset, a session that died or
 * a GOAWAY with an error under a stream it was processing is
 * FULCRUM_STREAM_RESET (a reset).
 *
 * Connect timeouts are the streams', not the session's: each request waits
 * for a session that is still connecting for at most its own connect timeout
 * (a route's timeouts.connect, SPEC 8, else the pool's), and fails alone when
 * that passes; the session is given up when no request waits for it any
 * more. So a route may ask for less or more time than the pool, as with
 * HTTP/1.1 backends (a connection there is opened for one request).
 */

export interface Http2UpstreamOptions {
  /** ms a request waits for its session to connect (TCP, and TLS for https://); 0 = no limit. */
  readonly connectMs: number;
  /** ms from the end of the request body to the response headers; 0 = no limit. */
  readonly responseMs: number;
  /** ms a session without streams is kept; 0 = closed when its last stream ends. */
  readonly idleMs: number;
  /** https:// backends: what to trust and present (default: Node's roots). */
  readonly tls?: SecureContextOptions & { rejectUnauthorized?: boolean; servername?: string };
}

/** Streams per session before the backend's SETTINGS arrive (RFC 9113 §6.5.2 suggests no less than 100). */
const DEFAULT_STREAM_LIMIT = 100;

/**
 * Flow-control windows towards backends: a stream may have 1 MiB unread, a
 * session 16 MiB, so a fast download is not throttled by one round trip per
 * 64 KiB (the RFC's default window); backpressure still holds since a paused
 * stream stops its WINDOW_UPDATEs.
 */
const STREAM_WINDOW = 1 << 20;
const SESSION_WINDOW = 16 << 20;

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** Request headers HTTP/2 forbids (RFC 9113 §8.2.2), besides those the header passes already dropped. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([...HTTP2_FORBIDDEN, 'host']);

class Session {
  readonly h2: ClientHttp2Session;
  active = 0;
  limit = DEFAULT_STREAM_LIMIT;
  /** Why the session ended, for the streams it takes with it. */
  failure: Error | undefined;
  /** GOAWAY's last stream id: streams above it were never processed. */
  lastStreamId = -1;
  dead = false;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(h2: ClientHttp2Session) {
    this.h2 = h2;
  }
}

export class Http2Upstream implements Upstream {
  readonly #origin: string;
  readonly #scheme: 'http' | 'https';
  /** :authority for requests that came without a Host. */
  readonly #authority: string;
  readonly #options: Http2UpstreamOptions;
  readonly #sessions: Session[] = [];
  #closed = false;
  /** Sessions opened so far (tests and the benchmark read it). */
  opened = 0;

  constructor(url: string, options: Http2UpstreamOptions) {
    const u = new URL(url);
    this.#origin = u.origin;
    this.#scheme = u.protocol === 'https:' ? 'https' : 'http';
    this.#authority = u.host;
    this.#options = options;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    // A route's timeouts (SPEC 8.1) win over the pool's.
    const call = new Http2Call(handler, request.responseMs ?? this.#options.responseMs);
    if (this.#closed) {
      process.nextTick(() => call.fail(upstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the backend is being closed')));
      return call;
    }
    let headers: OutgoingHttpHeaders;
    try {
      headers = this.#headers(request);
    } catch (err) {
      process.nextTick(() => call.fail(upstreamError(UPSTREAM_ERRORS.INVALID_REQUEST, (err as Error).message)));
      return call;
    }
    // node:http2 emits nothing on the stream before dispatch returns; start() defers its own failures.
    call.start(this, this.#session(), headers, request.body, request.connectMs ?? this.#options.connectMs);
    return call;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.all(this.#sessions.map((s) => new Promise<void>((resolve) => {
      if (s.h2.destroyed) return resolve();
      s.h2.once('close', () => resolve());
      s.h2.close();
    }))).then(() => undefined);
  }

  /** The flat header list as HTTP/2 wants it: lower-case names, pseudo-headers, no connection-specific fields. */
  #headers(request: UpstreamRequest): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {
      ':method': request.method,
      ':scheme': this.#scheme,
      ':path': request.path,
    };
    const raw = request.headers;
    let authority: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'host') {
        authority ??= value;
        continue;
      }
      if (CONNECTION_SPECIFIC.has(name) || name.charCodeAt(0) === 58 /* : */) continue;
      // RFC 9113 §8.2.2: TE may only say "trailers" (the listener passes nothing else).
      if (name === 'te' && value.toLowerCase() !== 'trailers') continue;
      const had = out[name];
      if (had === undefined) out[name] = value;
      else if (Array.isArray(had)) had.push(value);
      else out[name] = [had as string, value];
    }
    out[':authority'] = authority ?? this.#authority;
    return out;
  }

  /** A session with room for one more stream, or a new one. */
  #session(): Session {
    for (let i = 0; i < this.#sessions.length; i++) {
      const s = this.#sessions[i]!;
      if (!s.dead && s.active < s.limit) {
        s.active++;
        if (s.idleTimer !== undefined) {
          clearTimeout(s.idleTimer);
          s.idleTimer = undefined;
        }
        return s;
      }
    }
    const s = this.#connect();
    s.active++;
    return s;
  }

  #connect(): Session {
    const { tls } = this.#options;
    this.opened++;
    const h2 = http2.connect(this.#origin, {
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
      ...(this.#scheme === 'https' ? { ALPNProtocols: ['h2'], ...tls } : {}),
    });
    const s = new Session(h2);
    this.#sessions.push(s);
    h2.on('error', (err) => {
      s.failure ??= err;
    });
    h2.once('connect', (_session, socket) => {
      // node:http2 leaves Nagle on: a small HEADERS frame would wait for the ACK of the one before (40 ms and more).
      socket.setNoDelay(true);
      try {
        h2.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        // The session died in the meantime: its 'close' tells the streams.
      }
    });
    h2.on('remoteSettings', (settings) => {
      s.limit = Math.max(1, settings.maxConcurrentStreams ?? DEFAULT_STREAM_LIMIT);
    });
    h2.on('goaway', (errorCode: number, lastStreamID: number) => {
      // No new streams here; those above lastStreamID were never processed.
      s.dead = true;
      s.lastStreamId = lastStreamID;
      if (errorCode !== NGHTTP2_NO_ERROR) s.failure ??= fulcrumError('FULCRUM_STREAM_RESET', `the backend sent GOAWAY (error ${errorCode})`);
      if (s.active === 0) h2.close();
    });
    h2.once('close', () => {
      s.dead = true;
      clearTimeout(s.idleTimer);
      const i = this.#sessions.indexOf(s);
      if (i !== -1) this.#sessions.splice(i, 1);
    });
    // A session holds the process open only while it carries streams.
    h2.unref();
    return s;
  }

  /** @internal a stream of `s` ended. */
  released(s: Session): void {
    s.active--;
    if (s.active > 0) return;
    if (s.h2.connecting) {
      // Every request that waited for it gave up (its connect timeout, or its client left).
      s.dead = true;
      s.h2.destroy();
      return;
    }
    // A session that got GOAWAY (or is closing) ends with its last stream.
    if (s.dead || this.#closed || this.#options.idleMs === 0) {
      s.dead = true;
      s.h2.close();
      return;
    }
    s.idleTimer = setTimeout(() => {
      s.dead = true;
      s.h2.close();
    }, this.#options.idleMs);
    s.idleTimer.unref();
  }
}

/** One request on a stream; the UpstreamCall the exchange holds. */
class Http2Call implements UpstreamCall {
  readonly #handler: UpstreamHandler;
  readonly #responseMs: number;
  #upstream: Http2Upstream | undefined;
  #session: Session | undefined;
  #stream: ClientHttp2Stream | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Runs while the session is connecting: this request's connect timeout. */
  #connectTimer: NodeJS.Timeout | undefined;
  #responded = false;
  #done = false;
  /** Why the exchange aborted: what its handler hears, whatever the stream says after. */
  #abortedWith: Error | null = null;

  constructor(handler: UpstreamHandler, responseMs: number) {
    this.#handler = handler;
    this.#responseMs = responseMs;
  }

  start(upstream: Http2Upstream, session: Session, headers: OutgoingHttpHeaders, body: UpstreamRequest['body'], connectMs: number): void {
    this.#upstream = upstream;
    this.#session = session;
    let stream: ClientHttp2Stream;
    try {
      stream = session.h2.request(headers, { endStream: body === null });
    } catch (err) {
      upstream.released(session);
      const code = (err as { code?: string }).code;
      const why = code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_HTTP2_GOAWAY_SESSION'
        ? fulcrumError('FULCRUM_STREAM_REFUSED', 'the backend connection is closing')
        : upstreamError(UPSTREAM_ERRORS.INVALID_REQUEST, (err as Error).message);
      // The handler hears nothing before dispatch returns.
      process.nextTick(() => this.fail(why));
      return;
    }
    this.#stream = stream;
    // One set of listeners for every stream, finding their call on it: no closures per request.
    (stream as CallStream)[CALL] = this;
    stream.on('response', onResponse);
    stream.on('data', onData);
    stream.on('trailers', onTrailers);
    stream.on('end', onEnd);
    stream.on('error', ignore); // 'close' decides, with the session's and the reset's reasons
    stream.on('close', onClose);
    if (connectMs > 0 && session.h2.connecting) this.#armConnectTimer(stream, connectMs);
    if (body === null) this.#armResponseTimer();
    else {
      body.once('end', () => this.#armResponseTimer());
      // Not a byte of the body before the session is up: a backend that
      // cannot be reached leaves it unread, so the request may go elsewhere.
      if (session.h2.connecting) session.h2.once('connect', () => body.pipe(stream));
      else body.pipe(stream);
    }
  }

  abort(err: Error): void {
    if (this.#done) return;
    if (this.#stream === undefined) {
      // start() failed and its failure is on its way.
      return;
    }
    this.#abortedWith = err;
    // A stream still waiting for its session closes only when destroyed (close() would wait for the connect).
    if (this.#stream.pending) this.#stream.destroy();
    else this.#stream.close(NGHTTP2_CANCEL);
    // 'close' follows and reports #abortedWith.
  }

  resume(): void {
    this.#stream?.resume();
  }

  /** End the call with `err` (once). */
  fail(err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#clear();
    try {
      this.#handler.onError(err);
    } catch (bug) {
      reportInternalError(bug, 'upstream call');
    }
  }

  /** No session within `ms`: this request fails with a connect timeout (others on the session wait on with their own). */
  #armConnectTimer(stream: ClientHttp2Stream, ms: number): void {
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      this.abort(upstreamError(UPSTREAM_ERRORS.CONNECT_TIMEOUT, `no connection within ${ms}ms`));
    }, ms);
    // 'ready': the session is up and the stream has its id.
    stream.once('ready', onReady);
  }

  /** @internal the stream's 'ready' (its session connected). */
  connected(): void {
    this.#clearConnectTimer();
  }

  #clearConnectTimer(): void {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  #armResponseTimer(): void {
    if (this.#responseMs === 0 || this.#responded || this.#done) return;
    this.#timer = setTimeout(() => {
      this.abort(upstreamError(UPSTREAM_ERRORS.RESPONSE_TIMEOUT, `no response headers within ${this.#responseMs}ms`));
    }, this.#responseMs);
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#connectTimer !== undefined) this.#clearConnectTimer();
  }

  /** @internal the stream's listeners (below) */
  response(headers: IncomingHttpHeaders, flags: number): void {
    const status = Number(headers[':status']);
    if (status < 200) return; // 1xx: not the response yet
    this.#responded = true;
    this.#clear();
    try {
      // The flags, not stream.endAfterHeaders: that is set only after this event.
      this.#handler.onHeaders(status, flatten(headers), (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
    } catch (err) {
      this.#bug(err);
    }
  }

  data(chunk: Buffer): void {
    try {
      if (!this.#handler.onData(chunk)) this.#stream!.pause();
    } catch (err) {
      this.#bug(err);
    }
  }

  trailers(trailers: IncomingHttpHeaders): void {
    try {
      this.#handler.onTrailers?.(flatten(trailers));
    } catch (err) {
      this.#bug(err);
    }
  }

  end(): void {
    if (this.#done || !this.#responded) return; // no response: 'close' says why
    this.#done = true;
    this.#clear();
    try {
      this.#handler.onComplete();
    } catch (bug) {
      reportInternalError(bug, 'upstream call');
    }
  }

  close(): void {
    const session = this.#session!;
    this.#upstream!.released(session);
    if (this.#done) return;
    if (this.#abortedWith !== null) this.fail(this.#abortedWith);
    // A stream the session took down with it closes before the session says why (ECONNREFUSED...).
    else if (session.failure === undefined && session.h2.destroyed) setImmediate(() => this.fail(this.#why(session)));
    else this.fail(this.#why(session));
  }

  /** Why a stream closed before its response ended, in the failure table's codes. */
  #why(session: Session): Error {
    const stream = this.#stream!;
    const rst = stream.rstCode ?? 0;
    const id = stream.id ?? 0;
    if (rst === NGHTTP2_REFUSED_STREAM || (session.lastStreamId >= 0 && id > session.lastStreamId) || (id === 0 && !this.#responded && session.failure === undefined)) {
      return fulcrumError('FULCRUM_STREAM_REFUSED', 'bad gateway: the backend refused the stream');
    }
    const failure = session.failure;
    // Nothing reached the backend: the session never connected (ECONNREFUSED, a connect timeout...).
    if (failure !== undefined && (failure as { code?: string }).code !== 'FULCRUM_STREAM_RESET') return failure;
    return fulcrumError('FULCRUM_STREAM_RESET', rst !== 0 && rst !== NGHTTP2_NO_ERROR
      ? `the backend reset the stream (error ${rst})` : 'the backend closed the stream before the response ended');
  }

  /** A bug in the handler costs this call (reported), never the session. */
  #bug(err: unknown): void {
    reportInternalError(err, 'upstream call');
    this.abort(fulcrumError('FULCRUM_INTERNAL_ERROR', 'internal error'));
  }
}

const CALL = Symbol('fulcrum.http2Call');
type CallStream = ClientHttp2Stream & { [CALL]: Http2Call };

function onResponse(this: CallStream, headers: IncomingHttpHeaders, flags: number): void {
  this[CALL].response(headers, flags);
}
function onData(this: CallStream, chunk: Buffer): void {
  this[CALL].data(chunk);
}
function onTrailers(this: CallStream, trailers: IncomingHttpHeaders): void {
  this[CALL].trailers(trailers);
}
function onEnd(this: CallStream): void {
  this[CALL].end();
}
function onClose(this: CallStream): void {
  this[CALL].close();
}
function onReady(this: CallStream): void {
  this[CALL].connected();
}
function ignore(): void {}

/** node:http2's header object as the flat [name, value, ...] list the proxy speaks; pseudo-headers left out. */
function flatten(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* : */) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, String(v));
  }
  return out;
}
