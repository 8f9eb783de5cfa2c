import net, { type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { HTTPParser, consume, createParser, readStart, readStop, releaseParser, type Parser as LlhttpParser } from './parser';
import { UPSTREAM_ERRORS, upstreamError, type Upstream, type UpstreamCall, type UpstreamHandler, type UpstreamOptions, type UpstreamRequest } from '../upstream/types';
import { reportInternalError } from '../internal-errors';

/**
 * The HTTP/1.1 client that carries proxied requests to one plain-HTTP
 * backend: a pool of keep-alive connections, each read by Node's llhttp
 * binding (the one node:http uses) straight from the socket. Per request it
 * makes one small object and one string for the request head; response
 * headers arrive as the flat [name, value, ...] list the binding builds.
 *
 * What it does, and what undici's Pool did before it (tests/http1/client.test.ts
 * holds the two side by side):
 * - at most `connections` sockets (0 = one per concurrent request); requests
 *   beyond wait in order for the next free one;
 * - one request at a time per connection (no pipelining); a connection is
 *   reused only after a complete response the backend did not mark
 *   `Connection: close`, and closed after `idleMs` unused (0 = never reused);
 * - `connectMs` to connect, `responseMs` from the end of the request (its
 *   body included) to the response headers; both checked by a shared
 *   interval, never early;
 * - request bodies stream with backpressure: Content-Length when the client
 *   gave one (and held to it), chunked otherwise;
 * - response bodies stream with backpressure (`onData` false stops reading
 *   until `resume()`); HEAD, 1xx, 204, 304 and close-delimited bodies as
 *   RFC 9112 §6.3 says.
 */


type Parser = LlhttpParser<Connection>;

/**
 * What a request target may not hold: anything but visible ASCII (undici
 * allows bytes up to 0xff, which llhttp-based backends refuse). HTTP/1.1
 * clients' targets are already held to it by the server's parser; the
 * listener holds HTTP/2 clients' :path to it too.
 */
const INVALID_TARGET = /[^\u0021-\u007e]/;

/** Methods whose requests carry a body by definition: an empty one is sent as Content-Length: 0 (as undici does). */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH', 'QUERY']);

const enum Phase {
  /** Not yet connected (a request may already be written: the socket holds it). */
  Connecting,
  /** The request body is going out (no response timeout yet: the client's pace is bodyTimeout's concern). */
  Sending,
  /** Request out, response headers not yet in. */
  Waiting,
  /** Reading the response body. */
  Receiving,
  /** Connected, no request. */
  Idle,
}

export class UpstreamClient implements Upstream {
  readonly #host: string;
  readonly #port: number;
  /** Host header for requests that came without one. */
  readonly #authority: string;
  readonly #max: number;
  readonly #keepAlive: boolean;
  readonly #connectTicks: number;
  readonly #responseTicks: number;
  readonly #idleTicks: number;
  readonly #interval: number;
  readonly #connections = new Set<Connection>();
  /** Unused connections, most recently used last (reused first: the rest age out). */
  readonly #idle: Connection[] = [];
  readonly #queue: Call[] = [];
  #sweep: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #onClosed: (() => void) | null = null;
  /** Timeout checks so far; phases start at a tick, not a clock reading (see Http1Server.tick). */
  tick = 1;

  /** Written first on every new connection (pool proxyProtocol's PROXY header); empty for none. */
  readonly #prelude: Buffer | undefined;

  constructor(url: string, options: UpstreamOptions, prelude?: Buffer) {
    this.#prelude = prelude !== undefined && prelude.length > 0 ? prelude : undefined;
    const u = new URL(url);
    if (u.protocol !== 'http:') throw new Error(`UpstreamClient speaks http:, not ${u.protocol}`);
    if (HTTPParser === undefined) throw new Error('the HTTP/1.1 parser binding of this Node version is not supported');
    this.#host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    this.#port = u.port === '' ? 80 : Number(u.port);
    this.#authority = u.host;
    this.#max = options.connections;
    this.#keepAlive = options.idleMs > 0;
    // A check every twentieth of the shortest timeout (10..250 ms): a timeout fires at most about a tenth late.
    const shortest = Math.min(...[options.connectMs, options.responseMs, options.idleMs].filter((ms) => ms > 0), 5000);
    this.#interval = Math.max(10, Math.min(250, Math.floor(shortest / 20)));
    const ticks = (ms: number) => (ms > 0 ? Math.ceil(ms / this.#interval) : 0);
    this.#connectTicks = ticks(options.connectMs);
    this.#responseTicks = ticks(options.responseMs);
    this.#idleTicks = ticks(options.idleMs);
  }

  /** Open connections (for tests and the explain view). */
  get connectionCount(): number {
    return this.#connections.size;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Call(this, request, handler);
    if (this.#closed || INVALID_TARGET.test(request.path)) {
      call.done = true;
      const err = this.#closed
        ? upstreamError(UPSTREAM_ERRORS.POOL_CLOSED, 'the connection pool to this backend is closed')
        : upstreamError(UPSTREAM_ERRORS.INVALID_REQUEST, 'the request target holds characters HTTP/1.1 does not allow');
      queueMicrotask(() => handler.onError(err));
      return call;
    }
    const conn = this.#takeIdle() ?? (this.#max === 0 || this.#connections.size < this.#max ? this.#open() : undefined);
    if (conn === undefined) this.#queue.push(call);
    else conn.start(call);
    return call;
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    for (const conn of this.#idle) conn.socket.destroy();
    this.#idle.length = 0;
    this.#closing = this.#connections.size === 0 && this.#queue.length === 0 ? Promise.resolve() : new Promise((resolve) => {
      this.#onClosed = resolve;
    });
    return this.#closing;
  }

  #takeIdle(): Connection | undefined {
    for (let conn = this.#idle.pop(); conn !== undefined; conn = this.#idle.pop()) {
      if (!conn.socket.destroyed) return conn;
    }
    return undefined;
  }

  #open(): Connection {
    const socket = net.connect({ host: this.#host, port: this.#port, noDelay: true });
    if (this.#prelude !== undefined) socket.write(this.#prelude);
    const conn = new Connection(this, socket);
    this.#connections.add(conn);
    if (this.#sweep === undefined) {
      this.#sweep = setInterval(() => this.#check(), this.#interval);
      this.#sweep.unref();
    }
    return conn;
  }

  /** @internal the connection's request ended: the next waiting request, the idle list, or closed. */
  release(conn: Connection, reusable: boolean): void {
    if (reusable && this.#keepAlive) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        conn.start(next);
        return;
      }
      if (!this.#closed) {
        conn.phase = Phase.Idle;
        conn.since = this.tick;
        this.#idle.push(conn);
        return;
      }
    }
    conn.socket.destroy();
  }

  /** @internal the connection's socket closed. */
  forget(conn: Connection): void {
    this.#connections.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    // A slot is free: the longest-waiting request gets a new connection (also while closing: close() lets them finish).
    const next = this.#queue.shift();
    if (next !== undefined) this.#open().start(next);
    if (this.#connections.size === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
      this.#onClosed?.();
      this.#onClosed = null;
    }
  }

  /** @internal a waiting request was aborted. */
  dequeue(call: Call): void {
    const i = this.#queue.indexOf(call);
    if (i !== -1) this.#queue.splice(i, 1);
  }

  /** @internal the head of a request, framing included. */
  head(request: UpstreamRequest): string {
    const { headers, body } = request;
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    let host = false;
    let length: string | undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (isContentLength(name)) {
        length = headers[i + 1];
        continue;
      }
      if (name.length === 4 && !host && name.toLowerCase() === 'host') host = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    if (!host) head += `host: ${this.#authority}\r\n`;
    if (body !== null) head += length !== undefined ? `content-length: ${length}\r\n` : 'transfer-encoding: chunked\r\n';
    else if (length !== undefined || PAYLOAD_METHODS.has(request.method)) head += 'content-length: 0\r\n';
    return head + (this.#keepAlive ? 'connection: keep-alive\r\n\r\n' : 'connection: close\r\n\r\n');
  }

  /**
   * @internal a route's own timeout (SPEC 8.1) in this client's ticks; undefined: the client's.
   * Checked at the client's pace: at most one interval (10..250 ms) late.
   */
  ticksOf(ms: number | undefined): number | undefined {
    return ms === undefined ? undefined : Math.max(1, Math.ceil(ms / this.#interval));
  }

  #check(): void {
    const tick = ++this.tick;
    for (const conn of this.#connections) {
      const call = conn.call;
      const ticks = conn.phase === Phase.Connecting ? call?.connectTicks ?? this.#connectTicks
        : conn.phase === Phase.Waiting ? call?.responseTicks ?? this.#responseTicks
          : conn.phase === Phase.Idle ? this.#idleTicks : 0;
      if (ticks === 0 || tick - conn.since <= ticks) continue;
      try {
        if (conn.phase === Phase.Connecting) conn.fail(upstreamError(UPSTREAM_ERRORS.CONNECT_TIMEOUT, 'connect timeout'));
        else if (conn.phase === Phase.Waiting) conn.fail(upstreamError(UPSTREAM_ERRORS.RESPONSE_TIMEOUT, 'no response headers in time'));
        else conn.socket.destroy();
      } catch (err) {
        conn.fault(err);
      }
    }
  }
}

/** One request: what the proxy holds to abort or resume it. */
class Call implements UpstreamCall {
  readonly client: UpstreamClient;
  readonly request: UpstreamRequest;
  readonly handler: UpstreamHandler;
  conn: Connection | null = null;
  done = false;
  /** A route's timeouts in ticks; undefined: the client's. */
  readonly connectTicks: number | undefined;
  readonly responseTicks: number | undefined;

  constructor(client: UpstreamClient, request: UpstreamRequest, handler: UpstreamHandler) {
    this.client = client;
    this.request = request;
    this.handler = handler;
    this.connectTicks = client.ticksOf(request.connectMs);
    this.responseTicks = client.ticksOf(request.responseMs);
  }

  abort(err: Error): void {
    if (this.done) return;
    if (this.conn !== null) {
      this.conn.fail(err);
      return;
    }
    this.client.dequeue(this);
    this.fail(err);
  }

  resume(): void {
    if (!this.done && this.conn !== null) readStart(this.conn.socket);
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onError(err);
  }
}

// ---- parser callbacks: called by the binding with `this` = the parser ------
//
// Each runs its body inside the connection boundary: the binding calls them
// from a socket read, where an exception would reach the process; a bug ends
// its own connection (Connection.fault) instead.

function onHeaders(this: Parser, headers: string[]): void {
  try {
    const c = this.conn;
    if (c !== null) for (let i = 0; i < headers.length; i++) c.headerPieces.push(headers[i]);
  } catch (err) {
    this.conn?.fault(err);
  }
}

function onHeadersComplete(
  this: Parser, _major: number, _minor: number, headers: string[] | undefined, _method: unknown, _url: unknown,
  status: number, _message: unknown, _upgrade: boolean, keepAlive: boolean,
): number {
  try {
    const c = this.conn;
    if (c === null) return 0;
    if (headers === undefined) {
      headers = c.headerPieces;
      c.headerPieces = [];
    }
    const call = c.call;
    if (call === null || (c.phase !== Phase.Waiting && c.phase !== Phase.Sending)) {
      // A response nobody asked for.
      c.fail(upstreamError(UPSTREAM_ERRORS.BAD_RESPONSE, 'the backend sent a response to no request'));
      return 0;
    }
    if (status < 200) {
      if (status === 101) {
        c.fail(upstreamError(UPSTREAM_ERRORS.BAD_RESPONSE, 'the backend switched protocols unasked'));
        return 0;
      }
      c.informational = true;
      return 1; // 1xx has no body; the final response follows
    }
    c.phase = Phase.Receiving;
    c.keepAlive = keepAlive;
    call.handler.onHeaders(status, headers);
    // A response to HEAD has no body, whatever its Content-Length says.
    return c.head ? 1 : 0;
  } catch (err) {
    this.conn?.fault(err);
    return 0;
  }
}

function onBody(this: Parser, chunk: Buffer): void {
  try {
    const c = this.conn;
    const call = c?.call;
    if (call == null) return; // aborted inside an earlier callback for these same bytes
    if (!call.handler.onData(chunk)) readStop(c!.socket);
  } catch (err) {
    this.conn?.fault(err);
  }
}

function onMessageComplete(this: Parser): void {
  try {
    const c = this.conn;
    if (c === null) return;
    // Trailers came to onHeaders (a chunked body's trailer section): the
    // handler's, never the next response's headers.
    const trailers = c.headerPieces;
    if (trailers.length !== 0) c.headerPieces = [];
    if (c.informational) {
      c.informational = false;
      return;
    }
    // Aborted inside an earlier callback for these same bytes.
    const call = c.call;
    if (call === null) return;
    if (trailers.length !== 0) call.handler.onTrailers?.(trailers);
    if (c.call !== null) c.complete();
  } catch (err) {
    this.conn?.fault(err);
  }
}

/** After the parser has gone through one read's bytes. */
function onExecute(this: Parser, ret: number | Error): void {
  try {
    const c = this.conn;
    if (c === null) return;
    // Not `instanceof Error`: the binding's errors come from Node's own realm.
    if (typeof ret !== 'number') {
      const reason = (ret as { code?: string }).code ?? ret.message;
      c.fail(upstreamError(UPSTREAM_ERRORS.BAD_RESPONSE, `the backend's response is not valid HTTP/1.1 (${reason})`));
    } else if (c.reusable) {
      c.reusable = false;
      c.client.release(c, true);
    }
  } catch (err) {
    this.conn?.fault(err);
  }
}

/** Every callback runs inside the connection boundary (a try in its own body: no extra call per callback on the request path). */
const CALLBACKS = { onHeaders, onHeadersComplete, onBody, onMessageComplete, onExecute };

/** One connection to the backend. */
class Connection {
  readonly client: UpstreamClient;
  readonly socket: Socket;
  #parser: Parser | null;
  phase = Phase.Connecting;
  /** The tick this phase began. */
  since: number;
  call: Call | null = null;
  headerPieces: string[] = [];
  /** A 1xx response is being read. */
  informational = false;
  /** The request is HEAD: its response has no body. */
  head = false;
  /** What the response said about reuse (HTTP version and Connection). */
  keepAlive = false;
  /**
   * A response ended and the connection may serve the next request, once the
   * rest of this read is parsed: bytes after the response (a backend's bug)
   * must not be taken for the next request's answer.
   */
  reusable = false;
  /** The request body is still going out. */
  #body: BodyWriter | null = null;

  constructor(client: UpstreamClient, socket: Socket) {
    this.client = client;
    this.socket = socket;
    this.since = client.tick;
    this.#parser = createParser('RESPONSE', this, CALLBACKS);
    socket.on('connect', this.#onConnect);
    socket.on('error', this.#onError);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
  }

  // Socket events are entry points too: each runs inside the boundary (see fault).
  readonly #onConnect = (): void => {
    try {
      // The handle exists only now.
      if (this.#parser !== null) consume(this.#parser, this.socket);
      if (this.phase === Phase.Connecting) {
        this.phase = this.call === null ? Phase.Idle : this.#body !== null ? Phase.Sending : Phase.Waiting;
        this.since = this.client.tick;
      }
    } catch (err) {
      this.fault(err);
    }
  };

  readonly #onError = (err: Error): void => {
    try {
      this.fail(err);
    } catch (bug) {
      this.fault(bug);
    }
  };

  /** The backend's FIN: the end of a close-delimited body, or of the connection. */
  readonly #onEnd = (): void => {
    try {
      // Completes a body that runs to the end of the connection; anything else
      // still in flight was cut short (finish's own error says only "EOF").
      if (this.#parser !== null && this.call !== null) this.#parser.finish();
      this.fail(upstreamError(UPSTREAM_ERRORS.CLOSED, 'the backend closed the connection'));
    } catch (err) {
      this.fault(err);
    }
  };

  readonly #onClose = (): void => {
    try {
      this.fail(upstreamError(UPSTREAM_ERRORS.CLOSED, 'the backend closed the connection'));
    } catch (err) {
      this.fault(err);
    }
    if (this.#parser !== null) {
      releaseParser(this.#parser, this.socket);
      this.#parser = null;
    }
    this.client.forget(this);
  };

  start(call: Call): void {
    call.conn = this;
    this.call = call;
    const { request } = call;
    this.head = request.method === 'HEAD';
    const head = this.client.head(request);
    if (this.phase !== Phase.Connecting) {
      this.phase = request.body === null ? Phase.Waiting : Phase.Sending;
      this.since = this.client.tick;
    }
    if (request.body === null) {
      this.socket.write(head, 'latin1');
      return;
    }
    this.socket.cork();
    this.socket.write(head, 'latin1');
    this.#body = new BodyWriter(this, request.body, declaredLength(request.headers));
    process.nextTick(uncork, this.socket);
  }

  /** The response is complete. */
  complete(): void {
    const call = this.call!;
    this.call = null;
    call.conn = null;
    call.done = true;
    // Still sending the body: the connection is no longer in step. It closes.
    const reusable = this.keepAlive && this.#body === null;
    this.#body?.stop();
    this.#body = null;
    if (reusable) {
      readStart(this.socket);
      this.reusable = true; // released by onExecute
    } else {
      this.client.release(this, false);
    }
    call.handler.onComplete();
  }

  /** @internal the request body is all out. */
  bodySent(): void {
    this.#body = null;
    // The response timeout counts from the end of the request (as Envoy's route timeout does).
    if (this.phase === Phase.Sending) {
      this.phase = Phase.Waiting;
      this.since = this.client.tick;
    }
  }

  /** A bug while this connection's response was handled: reported; the connection and its call end (see CALLBACKS). */
  fault(err: unknown): void {
    reportInternalError(err, 'upstream connection');
    if (this.#parser !== null) {
      releaseParser(this.#parser, this.socket);
      this.#parser = null;
    }
    try {
      this.fail(upstreamError(UPSTREAM_ERRORS.INTERNAL, 'internal error'));
    } catch (again) {
      // The call's own error handling is what failed: the connection is gone, that is all that can be done.
      reportInternalError(again, 'upstream connection');
      this.socket.destroy();
    }
  }

  /** End the request in flight with `err` (if any) and this connection. */
  fail(err: Error): void {
    const call = this.call;
    this.call = null;
    this.reusable = false;
    this.#body?.stop();
    this.#body = null;
    this.socket.destroy();
    if (call !== null) {
      call.conn = null;
      call.fail(err);
    }
  }
}

/** Lower-cases only names of the right length. */
function isContentLength(name: string): boolean {
  return name.length === 14 && name.toLowerCase() === 'content-length';
}

/** The body's Content-Length from the headers; -1 when there is none (chunked). */
function declaredLength(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) if (isContentLength(headers[i])) return Number(headers[i + 1]);
  return -1;
}

function uncork(socket: Socket): void {
  socket.uncork();
}

/** Streams a request body onto the connection, with backpressure both ways. */
class BodyWriter {
  readonly #conn: Connection;
  readonly #body: Readable;
  /** Content-Length to hold the body to; -1 = chunked. */
  readonly #length: number;
  #sent = 0;

  constructor(conn: Connection, body: Readable, length: number) {
    this.#conn = conn;
    this.#body = body;
    this.#length = length;
    body.on('data', this.#onData);
    body.on('end', this.#onEnd);
    body.on('error', this.#onError);
    conn.socket.on('drain', this.#onDrain);
    // A 'data' listener does not restart a stream paused before.
    body.resume();
  }

  stop(): void {
    this.#body.off('data', this.#onData);
    this.#body.off('end', this.#onEnd);
    this.#body.off('error', this.#onError);
    // A body stream must always have an error listener: one may still come.
    this.#body.on('error', noop);
    this.#conn.socket.off('drain', this.#onDrain);
  }

  readonly #onData = (data: Buffer | string): void => {
    const chunk = typeof data === 'string' ? Buffer.from(data) : data;
    const socket = this.#conn.socket;
    this.#sent += chunk.length;
    if (this.#length >= 0 && this.#sent > this.#length) {
      this.#conn.fail(upstreamError(UPSTREAM_ERRORS.BODY_LENGTH, `request body longer than its Content-Length (${this.#length})`));
      return;
    }
    let ok: boolean;
    if (this.#length >= 0) {
      ok = socket.write(chunk);
    } else {
      if (chunk.length === 0) return;
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      ok = socket.write('\r\n', 'latin1');
    }
    if (!ok) this.#body.pause();
  };

  readonly #onDrain = (): void => {
    this.#body.resume();
  };

  readonly #onEnd = (): void => {
    if (this.#length >= 0 && this.#sent !== this.#length) {
      this.#conn.fail(upstreamError(UPSTREAM_ERRORS.BODY_LENGTH, `request body shorter than its Content-Length (${this.#sent} of ${this.#length})`));
      return;
    }
    if (this.#length < 0) this.#conn.socket.write('0\r\n\r\n', 'latin1');
    this.stop();
    this.#conn.bodySent();
  };

  readonly #onError = (err: Error): void => {
    this.#conn.fail(err);
  };
}

function noop(): void {}
