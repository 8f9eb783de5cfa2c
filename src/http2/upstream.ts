import net from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import { UPSTREAM_ERRORS, upstreamError, type Upstream, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from '../upstream/types';
import { fulcrumError } from '../errors';
import { reportInternalError } from '../internal-errors';
import { HTTP2_FORBIDDEN } from '../proxy/headers';
import { H2Connection, H2ConnectionError, H2Stream } from './connection';
import { CANCEL, NO_ERROR, PREFACE, PROTOCOL_ERROR, REFUSED_STREAM } from './frames';
import type { Http2UpstreamOptions } from './client';

/**
 * The Upstream of a pool with `protocol: http2` (SPEC 9.1) on Fulcrum's own
 * HTTP/2 connections (src/http2/connection.ts): h2c with prior knowledge for
 * http:// backends, ALPN h2 for https:// ones. The same rules as the
 * node:http2 client it replaces (src/http2/client.ts, still used with
 * FULCRUM_HTTP2=node): streams share one connection per backend and
 * process, another is opened only while every open one is at the backend's
 * SETTINGS_MAX_CONCURRENT_STREAMS; maxConnectionsPerBackend caps streams in
 * flight (BackendPool counts them). Failures take the failure table's codes:
 * a stream the backend refused or never processed (REFUSED_STREAM, or above
 * a GOAWAY's last stream id) is FULCRUM_STREAM_REFUSED, any other reset or a
 * connection that died under a stream FULCRUM_STREAM_RESET, a connection
 * that never came up its socket's error (ECONNREFUSED...). Each request
 * waits for a connection that is still connecting for at most its own
 * connect timeout.
 */

/** Streams per connection before the backend's SETTINGS arrive (RFC 9113 §6.5.2 suggests no less than 100). */
const DEFAULT_STREAM_LIMIT = 100;
/** Stream ids are 31 bits; a connection that has used them up takes no new streams. */
const LAST_STREAM_ID = 2 ** 31 - 1;

/** Request headers HTTP/2 forbids (RFC 9113 §8.2.2), besides those the header passes already dropped. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([...HTTP2_FORBIDDEN, 'host']);

class BackendConnection extends H2Connection {
  readonly upstream: Http2OwnUpstream;
  /** Streams counted against it, including those waiting for it to connect. */
  active = 0;
  limit = DEFAULT_STREAM_LIMIT;
  connecting = true;
  /** GOAWAY's last stream id: streams above it were never processed. */
  lastStreamId = -1;
  nextId = 1;
  idleTimer: NodeJS.Timeout | undefined;
  /** Calls waiting for the connection to come up. */
  waiting: Http2OwnCall[] = [];

  constructor(upstream: Http2OwnUpstream, socket: net.Socket) {
    super(socket, {});
    this.upstream = upstream;
  }

  /** The socket is up (and TLS agreed on h2): the preface, then the waiting streams. */
  up(): void {
    if (this.dead) return;
    this.connecting = false;
    this.sendPreface(PREFACE, { enablePush: false });
    const waiting = this.waiting;
    this.waiting = [];
    for (const call of waiting) call.begin();
  }

  /** A new stream id, or undefined when the connection has no more. */
  open(call: Http2OwnCall): CallStream | undefined {
    if (this.nextId > LAST_STREAM_ID || this.dead || this.goingAway) return undefined;
    const s = new CallStream(this, this.nextId, call);
    this.nextId += 2;
    this.streams.set(s.id, s);
    return s;
  }

  protected openStream(id: number): void {
    // A server opens no streams here (no push): one on an id we never used is the backend's error.
    if (this.isIdle(id)) throw new H2ConnectionError(PROTOCOL_ERROR, `the backend opened stream ${id}`);
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 0 || id >= this.nextId;
  }

  protected override onSettings(): void {
    this.limit = Math.max(1, Math.min(this.peerMaxStreams, 1_000_000));
  }

  protected onGoaway(lastStreamId: number, code: number): void {
    this.lastStreamId = lastStreamId;
    if (code !== NO_ERROR) this.failure ??= fulcrumError('FULCRUM_STREAM_RESET', `the backend sent GOAWAY (error ${code})`);
    // Streams above its last id were never processed: they may go elsewhere.
    for (const s of [...this.streams.values()]) {
      if (s.id > lastStreamId) this.reset(s, REFUSED_STREAM);
    }
    if (this.active === 0) this.destroy();
  }

  protected onConnectionClose(): void {
    clearTimeout(this.idleTimer);
    // Calls still waiting for a connection that never came up.
    const waiting = this.waiting;
    this.waiting = [];
    for (const call of waiting) call.closed(undefined, CANCEL, this.failure);
    this.upstream.gone(this);
  }
}

class CallStream extends H2Stream {
  readonly call: Http2OwnCall;

  constructor(conn: BackendConnection, id: number, call: Http2OwnCall) {
    super(conn, id);
    this.call = call;
  }

  onHeaders(flat: string[], endStream: boolean): void {
    this.call.headers(flat, endStream);
  }

  onData(chunk: Buffer, endStream: boolean): void {
    this.call.data(this, chunk, endStream);
  }

  onClose(code: number, err: Error | undefined): void {
    this.call.closed(this, code, err);
  }

  override onDrain(): void {
    this.call.drained();
  }
}

export class Http2OwnUpstream implements Upstream {
  readonly #host: string;
  readonly #port: number;
  readonly #scheme: 'http' | 'https';
  /** :authority for requests that came without a Host. */
  readonly #authority: string;
  readonly #options: Http2UpstreamOptions;
  readonly #connections: BackendConnection[] = [];
  #closed = false;
  /** Connections opened so far (tests and the benchmark read it). */
  opened = 0;

  constructor(url: string, options: Http2UpstreamOptions) {
    const u = new URL(url);
    this.#scheme = u.protocol === 'https:' ? 'https' : 'http';
    this.#host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.#port = Number(u.port) || (this.#scheme === 'https' ? 443 : 80);
    this.#authority = u.host;
    this.#options = options;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    // A route's timeouts (SPEC 8.1) win over the pool's.
    const call = new Http2OwnCall(handler, request.responseMs ?? this.#options.responseMs, request.body);
    if (this.#closed) {
      process.nextTick(() => call.fail(upstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the backend is being closed')));
      return call;
    }
    let headers: string[];
    try {
      headers = this.#headers(request);
    } catch (err) {
      process.nextTick(() => call.fail(upstreamError(UPSTREAM_ERRORS.INVALID_REQUEST, (err as Error).message)));
      return call;
    }
    const conn = this.#connection();
    call.start(this, conn, headers, request.connectMs ?? this.#options.connectMs);
    return call;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.all(this.#connections.map((c) => new Promise<void>((resolve) => {
      if (c.dead) return resolve();
      c.socket.once('close', () => resolve());
      if (c.active === 0) c.destroy();
      else c.goaway();
    }))).then(() => undefined);
  }

  /** The request's head as HTTP/2 wants it: pseudo-headers, lower-case names, no connection-specific fields. */
  #headers(request: UpstreamRequest): string[] {
    const out = [':method', request.method, ':scheme', this.#scheme, ':authority', '', ':path', request.path];
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
      checkField(name, value);
      out.push(name, value);
    }
    out[5] = authority ?? this.#authority;
    if (request.path.length === 0 || hasBadByte(request.path)) throw new Error(`an invalid :path ${JSON.stringify(request.path)}`);
    return out;
  }

  /** A connection with room for one more stream, or a new one. */
  #connection(): BackendConnection {
    for (let i = 0; i < this.#connections.length; i++) {
      const c = this.#connections[i]!;
      if (!c.dead && !c.goingAway && c.active < c.limit && c.nextId <= LAST_STREAM_ID) {
        c.active++;
        if (c.idleTimer !== undefined) {
          clearTimeout(c.idleTimer);
          c.idleTimer = undefined;
        }
        return c;
      }
    }
    const c = this.#connect();
    c.active++;
    return c;
  }

  #connect(): BackendConnection {
    this.opened++;
    let socket: net.Socket;
    let conn: BackendConnection;
    if (this.#scheme === 'https') {
      const o = this.#options.tls ?? {};
      const servername = o.servername ?? (net.isIP(this.#host) === 0 ? this.#host : undefined);
      const t = tls.connect({ ...o, host: this.#host, port: this.#port, ALPNProtocols: ['h2'], ...(servername !== undefined ? { servername } : {}) });
      socket = t;
      conn = new BackendConnection(this, socket);
      t.once('secureConnect', () => {
        if (t.alpnProtocol !== 'h2') {
          conn.destroy(fulcrumError('FULCRUM_STREAM_REFUSED', 'the backend did not agree to HTTP/2 (ALPN)'));
          return;
        }
        conn.up();
      });
    } else {
      socket = net.connect({ host: this.#host, port: this.#port });
      conn = new BackendConnection(this, socket);
      socket.once('connect', () => conn.up());
    }
    // A connection holds the process open only while it carries streams.
    socket.unref();
    this.#connections.push(conn);
    return conn;
  }

  /** @internal the connection closed. */
  gone(c: BackendConnection): void {
    const i = this.#connections.indexOf(c);
    if (i !== -1) this.#connections.splice(i, 1);
  }

  /** @internal a stream of `c` ended (or its call gave up waiting). */
  released(c: BackendConnection): void {
    c.active--;
    if (c.active > 0 || c.dead) return;
    if (c.connecting) {
      // Every request that waited for it gave up (its connect timeout, or its client left).
      c.destroy();
      return;
    }
    // A connection that got GOAWAY ends with its last stream.
    if (c.goingAway || this.#closed || this.#options.idleMs === 0) {
      c.destroy();
      return;
    }
    c.idleTimer = setTimeout(() => {
      c.goaway();
      c.destroy();
    }, this.#options.idleMs);
    c.idleTimer.unref();
  }
}

/** One request on a stream; the UpstreamCall the exchange holds. */
class Http2OwnCall implements UpstreamCall {
  readonly #handler: UpstreamHandler;
  readonly #responseMs: number;
  readonly #body: Readable | null;
  #upstream: Http2OwnUpstream | undefined;
  #conn: BackendConnection | undefined;
  #stream: CallStream | undefined;
  #headers: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Runs while the connection is connecting: this request's connect timeout. */
  #connectTimer: NodeJS.Timeout | undefined;
  #responded = false;
  #done = false;
  #released = false;
  #paused = false;
  /** Bytes handed to the handler while paused: given back to the window on resume. */
  #owed = 0;
  /** Why the exchange aborted: what its handler hears, whatever the stream says after. */
  #abortedWith: Error | null = null;

  constructor(handler: UpstreamHandler, responseMs: number, body: Readable | null) {
    this.#handler = handler;
    this.#responseMs = responseMs;
    this.#body = body;
  }

  start(upstream: Http2OwnUpstream, conn: BackendConnection, headers: string[], connectMs: number): void {
    this.#upstream = upstream;
    this.#conn = conn;
    this.#headers = headers;
    if (!conn.connecting) {
      // The handler hears nothing before dispatch returns: a stream that cannot open fails on the next tick.
      this.begin();
      return;
    }
    conn.waiting.push(this);
    if (connectMs > 0) {
      this.#connectTimer = setTimeout(() => {
        this.#connectTimer = undefined;
        this.abort(upstreamError(UPSTREAM_ERRORS.CONNECT_TIMEOUT, `no connection within ${connectMs}ms`));
      }, connectMs);
    }
  }

  /** The connection is up: the stream opens, the head goes, then the body. */
  begin(): void {
    if (this.#done) return;
    this.#clearConnectTimer();
    const conn = this.#conn!;
    const stream = conn.open(this);
    if (stream === undefined) {
      this.#release();
      process.nextTick(() => this.fail(fulcrumError('FULCRUM_STREAM_REFUSED', 'the backend connection is closing')));
      return;
    }
    this.#stream = stream;
    const body = this.#body;
    conn.writeHeaders(stream, this.#headers, body === null);
    this.#headers = [];
    if (body === null) {
      this.#armResponseTimer();
      return;
    }
    body.on('data', (chunk: Buffer) => {
      if (!conn.writeData(stream, chunk, false)) body.pause();
    });
    body.once('end', () => {
      conn.writeData(stream, EMPTY, true);
      this.#armResponseTimer();
    });
    body.once('error', () => {
      // The exchange hears of a broken client body on its own and aborts the call.
      if (!stream.closed) conn.reset(stream, CANCEL);
    });
  }

  /** @internal the stream's queue went out: the body may flow again. */
  drained(): void {
    this.#body?.resume();
  }

  /** Ends the call with `err`; its stream is reset with `code` (PROTOCOL_ERROR for a malformed response, RFC 9113 §8.1.1). */
  abort(err: Error, code = CANCEL): void {
    if (this.#done) return;
    this.#abortedWith = err;
    const stream = this.#stream;
    if (stream === undefined) {
      // Still waiting for the connection: out of its queue.
      const conn = this.#conn;
      if (conn === undefined) return; // start() failed and its failure is on its way
      const i = conn.waiting.indexOf(this);
      if (i !== -1) conn.waiting.splice(i, 1);
      this.#release();
      this.fail(err);
      return;
    }
    if (!stream.closed) this.#conn!.reset(stream, code);
    // The reset closed the stream: closed() reported #abortedWith.
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const stream = this.#stream;
    if (stream !== undefined && this.#owed > 0) this.#conn!.consumed(stream, this.#owed);
    this.#owed = 0;
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

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#upstream!.released(this.#conn!);
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

  /** @internal a header block: the response (1xx skipped) or, after it, the trailers. */
  headers(flat: string[], endStream: boolean): void {
    if (this.#done) return;
    try {
      if (this.#responded) {
        this.#handler.onTrailers?.(withoutPseudo(flat));
        if (endStream) this.#complete();
        return;
      }
      let status = 0;
      for (let i = 0; i < flat.length; i += 2) {
        if (flat[i] === ':status') status = Number(flat[i + 1]);
      }
      if (!(status >= 100 && status <= 999)) {
        this.abort(fulcrumError('FULCRUM_STREAM_RESET', 'the backend sent a response without a valid :status'), PROTOCOL_ERROR);
        return;
      }
      if (status < 200) return; // 1xx: not the response yet
      this.#responded = true;
      this.#clear();
      this.#handler.onHeaders(status, withoutPseudo(flat), endStream);
      if (endStream) this.#complete();
    } catch (err) {
      this.#bug(err);
    }
  }

  /** @internal body bytes */
  data(stream: CallStream, chunk: Buffer, endStream: boolean): void {
    if (this.#done) return;
    if (!this.#responded) {
      this.abort(fulcrumError('FULCRUM_STREAM_RESET', 'the backend sent DATA before its response headers'), PROTOCOL_ERROR);
      return;
    }
    try {
      if (chunk.length > 0) {
        if (this.#handler.onData(chunk) && !this.#paused) this.#conn!.consumed(stream, chunk.length);
        else {
          this.#paused = true;
          this.#owed += chunk.length;
        }
      }
      if (endStream) this.#complete();
    } catch (err) {
      this.#bug(err);
    }
  }

  #complete(): void {
    if (this.#done) return;
    this.#done = true;
    this.#clear();
    try {
      this.#handler.onComplete();
    } catch (bug) {
      reportInternalError(bug, 'upstream call');
    }
  }

  /** @internal the stream closed (it ended, was reset, or its connection went). */
  closed(stream: CallStream | undefined, code: number, err: Error | undefined): void {
    this.#release();
    if (this.#done) return;
    if (this.#abortedWith !== null) this.fail(this.#abortedWith);
    else this.fail(this.#why(stream, code, err));
  }

  /** Why a stream closed before its response ended, in the failure table's codes. */
  #why(stream: CallStream | undefined, code: number, err: Error | undefined): Error {
    const conn = this.#conn!;
    // Nothing reached the backend: the connection never came up (ECONNREFUSED, a TLS failure...).
    if (stream === undefined || conn.connecting) {
      return conn.failure ?? err ?? fulcrumError('FULCRUM_STREAM_REFUSED', 'bad gateway: the backend refused the stream');
    }
    if (code === REFUSED_STREAM || (conn.lastStreamId >= 0 && stream.id > conn.lastStreamId)) {
      return fulcrumError('FULCRUM_STREAM_REFUSED', 'bad gateway: the backend refused the stream');
    }
    // The socket broke under the stream (ECONNRESET...): its own error, as for HTTP/1.1 backends.
    const failure = conn.failure;
    if (failure !== undefined && !(failure instanceof H2ConnectionError) && (failure as { code?: string }).code !== 'FULCRUM_STREAM_RESET') return failure;
    return fulcrumError('FULCRUM_STREAM_RESET', code !== 0 && code !== NO_ERROR && err === undefined
      ? `the backend reset the stream (error ${code})` : 'the backend closed the stream before the response ended');
  }

  /** A bug in the handler costs this call (reported), never the connection. */
  #bug(err: unknown): void {
    reportInternalError(err, 'upstream call');
    this.abort(fulcrumError('FULCRUM_INTERNAL_ERROR', 'internal error'));
  }
}

const EMPTY = Buffer.alloc(0);

/** The flat list the proxy speaks: pseudo-headers left out. */
function withoutPseudo(flat: string[]): string[] {
  if (flat.length === 0 || flat[0]!.charCodeAt(0) !== 58) return flat;
  let i = 0;
  while (i < flat.length && flat[i]!.charCodeAt(0) === 58 /* : */) i += 2;
  return flat.slice(i);
}

/** RFC 9113 §8.2.1: field names and values that cannot go into HTTP/2. */
function checkField(name: string, value: string): void {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a)) throw new Error(`an invalid header name ${JSON.stringify(name)}`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13 || c > 0xff) throw new Error(`an invalid value for ${name}`);
  }
}

function hasBadByte(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return true;
  }
  return false;
}
