import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ProxyRequest, ProxyResponse } from '../proxy/message';
import { connectionTokens, HTTP2_FORBIDDEN, RESPONSE_DROP } from '../proxy/headers';
import { H2Connection, H2ConnectionError, H2Stream } from './connection';
import { CANCEL, ENHANCE_YOUR_CALM, INTERNAL_ERROR, NO_ERROR, PREFACE, PROTOCOL_ERROR, REFUSED_STREAM, rstStreamFrame } from './frames';

/**
 * The listener side of Fulcrum's own HTTP/2 (src/http2/connection.ts): one
 * client connection, whose streams are served as the proxy's requests and
 * responses. A stream is both (ServerStream implements ProxyRequest and
 * ProxyResponse): one object per request, no Duplex, no event relays. The
 * request body becomes a Readable only when the proxy asks for it.
 *
 * It behaves as node:http2's server did for the proxy (src/http2/stream.ts,
 * still used with FULCRUM_HTTP2=node): Expect answered with 100 or 417,
 * CONNECT handed to its own handler, HEAD, 204 and 304 ended with their
 * headers, malformed requests (RFC 9113 §8.1.1: upper-case names,
 * connection-specific fields, missing or repeated pseudo-headers) reset
 * with PROTOCOL_ERROR before the proxy sees them.
 */

/** Response headers HTTP/2 forbids (TE means nothing in a response). */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([...HTTP2_FORBIDDEN, 'te']);
/** A backend's response head: the hop-by-hop headers of every response, and what HTTP/2 forbids. */
const BACKEND_SKIP: ReadonlySet<string> = new Set([...RESPONSE_DROP, ...CONNECTION_SPECIFIC]);
/** Request fields an HTTP/2 request must not carry (RFC 9113 §8.2.2). */
const REQUEST_FORBIDDEN: ReadonlySet<string> = new Set(HTTP2_FORBIDDEN);

/** Streams a client may have open at once (nginx's default is 128, Envoy's unlimited). */
export const MAX_CONCURRENT_STREAMS = 1000;
/** Header bytes a request may have (name + value + 32 per field, RFC 9113 §6.5.2), as node:http2's default; more gets a 431. */
export const MAX_HEADER_LIST_SIZE = 65_535;
/**
 * Streams a client may reset before their responses before the connection
 * is closed (ENHANCE_YOUR_CALM): the "rapid reset" attack (CVE-2023-44487)
 * opens and cancels streams to make the proxy start backend requests for
 * nothing. Counted only while resets outnumber the streams that completed.
 */
const MAX_EARLY_RESETS = 200;
/** Body bytes held for a request whose body the proxy has not asked for yet. */
const PENDING_BODY_MAX = 1 << 20;

/** What the listener does with each stream. */
export type OwnStreamHandler = (req: ServerStream, res: ServerStream) => void;

export interface ListenerOptions {
  /** A connection that opens no stream within this many ms is closed (HTTP/1.1's headersTimeout); 0 = never. */
  readonly headersTimeoutMs: number;
}

/** Headers whose repeats are dropped in the header object, as node:http2 does (the first one wins). */
const SINGLE_VALUED = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires', ':method', ':path', ':scheme', ':authority', ':status', ':protocol',
]);

export class ListenerConnection extends H2Connection {
  readonly #handler: OwnStreamHandler;
  readonly #connect: OwnStreamHandler;
  #prefaceSeen = false;
  #timer: NodeJS.Timeout | undefined;
  #closeListeners: (() => void)[] = [];
  /** Client resets of streams still being answered, less the streams that completed. */
  #resets = 0;

  constructor(socket: Socket, head: Buffer, handler: OwnStreamHandler, connect: OwnStreamHandler, options: ListenerOptions) {
    const local = { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: MAX_HEADER_LIST_SIZE };
    super(socket, local);
    this.#handler = handler;
    this.#connect = connect;
    this.sendPreface(undefined, local);
    if (options.headersTimeoutMs > 0) {
      this.#timer = setTimeout(() => this.destroy(), options.headersTimeoutMs);
      this.#timer.unref();
    }
    socket.resume();
    if (head.length > 0) this.feed(head);
  }

  protected override skipPreface(buf: Buffer): number {
    if (this.#prefaceSeen) return 0;
    const n = Math.min(buf.length, PREFACE.length);
    if (buf.compare(PREFACE, 0, n, 0, n) !== 0) {
      this.fail(new H2ConnectionError(PROTOCOL_ERROR, 'no HTTP/2 connection preface'));
      return -1;
    }
    if (buf.length < PREFACE.length) return -1;
    this.#prefaceSeen = true;
    return PREFACE.length;
  }

  protected isIdle(id: number): boolean {
    return (id & 1) === 1 && id > this.lastPeerStream;
  }

  protected openStream(id: number, flat: string[] | null, endStream: boolean): void {
    if ((id & 1) === 0 || id <= this.lastPeerStream) {
      // A new stream must take an odd id above every one before (RFC 9113 §5.1.1).
      throw new H2ConnectionError(PROTOCOL_ERROR, `a stream id ${id} out of order`);
    }
    if (this.goingAway) {
      // After our GOAWAY: never processed, the client may send it again elsewhere.
      this.push(rstStreamFrame(id, REFUSED_STREAM));
      return;
    }
    this.lastPeerStream = id;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.streams.size >= MAX_CONCURRENT_STREAMS) {
      this.push(rstStreamFrame(id, REFUSED_STREAM));
      return;
    }
    const stream = new ServerStream(this, id);
    this.streams.set(id, stream);
    if (endStream) stream.remoteClosed = true;
    if (flat === null) {
      stream.writeHead(431, []);
      stream.end();
      return;
    }
    if (!stream.take(flat)) {
      this.reset(stream, PROTOCOL_ERROR);
      return;
    }
    if (stream.method === 'CONNECT') {
      this.#connect(stream, stream);
      return;
    }
    const expect = stream.headers.expect;
    if (expect !== undefined) {
      if (expect.toLowerCase() !== '100-continue') {
        stream.writeHead(417, []);
        stream.end();
        return;
      }
      this.writeHeaders(stream, CONTINUE, false);
    }
    this.#handler(stream, stream);
  }

  protected onGoaway(): void {
    // The client opens no more streams; those open finish, then it closes.
    if (this.streams.size === 0) this.destroy();
  }

  /**
   * The response is complete before the request: RST_STREAM NO_ERROR tells
   * the client to stop sending it (RFC 9113 §8.1), rather than leaving the
   * stream open until its window runs out.
   */
  protected override localEnded(stream: H2Stream): void {
    this.reset(stream, NO_ERROR);
  }

  protected override streamClosed(stream: H2Stream): void {
    if (stream.peerReset) {
      if (++this.#resets > MAX_EARLY_RESETS) {
        this.fail(new H2ConnectionError(ENHANCE_YOUR_CALM, 'too many streams reset by the client'));
        return;
      }
    } else if (this.#resets > 0) this.#resets--;
    if (this.goingAway && this.streams.size === 0) {
      this.flush();
      this.socket.end();
    }
  }

  protected onConnectionClose(): void {
    clearTimeout(this.#timer);
    const listeners = this.#closeListeners;
    this.#closeListeners = [];
    for (const fn of listeners) fn();
  }

  /** Graceful: GOAWAY, the open streams finish, then the connection closes (a drain, src/listen.ts). */
  close(): void {
    if (this.dead) return;
    this.goaway(NO_ERROR);
    if (this.streams.size === 0) {
      this.flush();
      this.socket.end();
    }
  }

  once(_event: 'close', fn: () => void): this {
    this.#closeListeners.push(fn);
    return this;
  }
}

const CONTINUE = [':status', '100'];

/** The request body as a stream, made only when the proxy asks for it. */
class StreamBody extends Readable {
  readonly #stream: ServerStream;

  constructor(stream: ServerStream) {
    super();
    this.#stream = stream;
  }

  override _read(): void {
    this.#stream.bodyWanted();
  }

  /** An error (the client reset the stream) goes only to someone listening, as node's streams do for a body nobody reads. */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    callback(this.listenerCount('error') === 0 ? null : err);
  }
}

export class ServerStream extends H2Stream implements ProxyRequest, ProxyResponse {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders = {};
  /** As received, pseudo-headers included (the header passes skip them). */
  rawHeaders: string[] = [];
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  headersSent = false;
  /** HEAD, 204 and 304: the response ended with its headers. */
  #noBody = false;
  #trailers: string[] | null = null;
  #trailersOk = true;
  #body: StreamBody | null = null;
  #pending: Buffer[] | null = null;
  /** Bytes handed to the body while it wanted no more: given back to the window when it reads on. */
  #owed = 0;
  #bodyTimer: NodeJS.Timeout | undefined;
  #declaredLength = -1;
  #received = 0;
  #onClose: (() => void)[] | null = null;
  #onFinish: (() => void)[] | null = null;
  #onDrain: (() => void)[] | null = null;

  /** What the proxy's HTTP/2 checks look for on a request (isHttp2) and response: the stream itself. */
  get stream(): this {
    return this;
  }

  get socket(): Socket {
    return this.conn.socket;
  }

  /** The client sent all of its request (or the stream is gone). */
  get complete(): boolean {
    return this.remoteClosed;
  }

  /** The request had no body: END_STREAM came with its headers. */
  endAfterHeaders = false;

  /** A reset stream, or one that ended before the client's request did. */
  get aborted(): boolean {
    return this.rstCode !== 0;
  }

  get writableFinished(): boolean {
    return this.localClosed;
  }

  get destroyed(): boolean {
    return this.closed;
  }

  /** The first header block: pseudo-headers checked, the header object built. False: a malformed request. */
  take(flat: string[]): boolean {
    this.rawHeaders = flat;
    this.endAfterHeaders = this.remoteClosed;
    const headers: Record<string, string | string[]> = {};
    let regular = false;
    let method: string | undefined;
    let path: string | undefined;
    let scheme = false;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!;
      const value = flat[i + 1]!;
      if (!validName(name) || !validValue(value)) return false;
      if (name.charCodeAt(0) === 58 /* : */) {
        if (regular || headers[name] !== undefined) return false; // after a regular field, or repeated
        if (name === ':method') method = value;
        else if (name === ':path') path = value;
        else if (name === ':scheme') scheme = true;
        else if (name !== ':authority' && name !== ':protocol') return false;
        headers[name] = value;
        continue;
      }
      regular = true;
      if (REQUEST_FORBIDDEN.has(name) || (name === 'te' && value !== 'trailers')) return false;
      const seen = headers[name];
      if (seen === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
      else if (name === 'set-cookie') (seen as string[]).push(value);
      else if (name === 'cookie') headers[name] = `${seen as string}; ${value}`;
      else if (!SINGLE_VALUED.has(name)) headers[name] = `${seen as string}, ${value}`;
    }
    if (method === undefined) return false;
    // CONNECT carries :authority alone (RFC 9113 §8.5); every other request :method, :scheme and :path.
    if (method !== 'CONNECT' && (!scheme || path === undefined || path.length === 0)) return false;
    const length = headers['content-length'];
    if (typeof length === 'string') {
      if (!/^\d{1,15}$/.test(length)) return false;
      this.#declaredLength = Number(length);
      if (this.remoteClosed && this.#declaredLength !== 0) return false;
    }
    this.method = method;
    this.url = path;
    this.headers = headers as IncomingHttpHeaders;
    return true;
  }

  // ---- the request body ----

  body(): Readable {
    if (this.#body !== null) return this.#body;
    const body = (this.#body = new StreamBody(this));
    const pending = this.#pending;
    this.#pending = null;
    if (pending !== null) for (const chunk of pending) this.#toBody(chunk);
    if (this.remoteClosed && !this.aborted) body.push(null);
    return body;
  }

  watchBody(ms: number, onTimeout: () => void): void {
    if (this.remoteClosed) return;
    this.#bodyTimer = setTimeout(onTimeout, ms);
    this.#bodyTimer.unref();
  }

  onData(chunk: Buffer, endStream: boolean): void {
    this.#bodyTimer?.refresh();
    this.#received += chunk.length;
    if (this.#declaredLength >= 0 && (this.#received > this.#declaredLength || (endStream && this.#received !== this.#declaredLength))) {
      // RFC 9113 §8.1.1: DATA that disagrees with content-length is a malformed request.
      this.conn.reset(this, PROTOCOL_ERROR);
      return;
    }
    if (chunk.length > 0) {
      if (this.#body !== null) this.#toBody(chunk);
      else {
        // Not asked for yet: held (and not given back to the window) until the proxy takes the body.
        (this.#pending ??= []).push(Buffer.from(chunk));
        this.#owed += chunk.length;
        if (this.#owed > PENDING_BODY_MAX) this.conn.reset(this, REFUSED_STREAM);
      }
    }
    if (endStream) this.#bodyEnd();
  }

  #toBody(chunk: Buffer): void {
    // A copy only when it must outlive the socket's chunk (the body's reader keeps it).
    if (this.#body!.push(chunk) && this.#owed === 0) this.conn.consumed(this, chunk.length);
    else this.#owed += chunk.length;
  }

  /** @internal the body's reader wants more. */
  bodyWanted(): void {
    if (this.#owed === 0) return;
    const n = this.#owed;
    this.#owed = 0;
    this.conn.consumed(this, n);
  }

  #bodyEnd(): void {
    clearTimeout(this.#bodyTimer);
    this.#body?.push(null);
  }

  onHeaders(_trailers: string[], endStream: boolean): void {
    // Trailers of the request: RFC 9113 §8.1 wants them to end the stream; the proxy forwards none.
    if (!endStream) {
      this.conn.reset(this, PROTOCOL_ERROR);
      return;
    }
    this.onData(EMPTY, true);
  }

  onClose(code: number, err: Error | undefined): void {
    clearTimeout(this.#bodyTimer);
    if (code !== 0 || err !== undefined) {
      if (code === 0) this.rstCode = CANCEL;
      const body = this.#body;
      if (body !== null && !body.readableEnded) {
        body.emit('aborted');
        body.destroy(Object.assign(new Error('the client reset the stream'), { code: 'ECONNRESET' }));
      }
    }
    this.#pending = null;
    const listeners = this.#onClose;
    this.#onClose = null;
    if (listeners !== null) for (const fn of listeners) fn();
  }

  override onDrain(): void {
    const listeners = this.#onDrain;
    this.#onDrain = null;
    if (listeners !== null) for (const fn of listeners) fn();
  }

  #emit(listeners: (() => void)[]): void {
    this.#onFinish = null;
    for (const fn of listeners) fn();
  }

  // ---- the response ----

  writeHead(status: number, flat: readonly string[]): this {
    if (this.headersSent || this.closed) return this;
    const out = [':status', String(status)];
    this.#respond(status, out, addFields(out, flat, CONNECTION_SPECIFIC, undefined));
    return this;
  }

  /**
   * A backend's response head in one pass from its raw list: hop-by-hop
   * headers go, then those `drop` names; `extra` follows. False, nothing
   * written, when a Connection header names more headers to drop.
   */
  writeBackendHead(status: number, raw: readonly string[], extra: readonly string[] | undefined, drop?: ReadonlySet<string>): boolean {
    if (this.headersSent || this.closed) return true;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection' && connectionTokens(raw[i + 1]) !== undefined) return false;
    }
    const out = [':status', String(status)];
    let trailers = addFields(out, raw, BACKEND_SKIP, drop);
    if (extra !== undefined) trailers = addFields(out, extra, CONNECTION_SPECIFIC, undefined) || trailers;
    this.#respond(status, out, trailers);
    return true;
  }

  #respond(status: number, flat: string[], trailers: boolean): void {
    this.headersSent = true;
    this.#trailersOk = trailers || this.headers.te === 'trailers';
    this.#noBody = this.method === 'HEAD' || status === 204 || status === 304;
    this.conn.writeHeaders(this, flat, this.#noBody);
    if (this.#noBody) this.#finished();
  }

  /** node:http2's respond(), for gRPC's trailers-only answer (src/grpc/grpc.ts): a header object, END_STREAM with it when asked. */
  respond(headers: OutgoingHttpHeaders, options?: { endStream?: boolean }): void {
    if (this.headersSent || this.closed) return;
    const flat: string[] = [':status', String(headers[':status'] ?? 200)];
    for (const name in headers) {
      if (name === ':status') continue;
      const v = headers[name];
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const x of v) flat.push(name, x);
      else flat.push(name, String(v));
    }
    this.headersSent = true;
    const end = options?.endStream === true;
    this.conn.writeHeaders(this, flat, end);
    if (end) this.#finished();
  }

  /**
   * Trailers for the end of the response, flat (a backend's, gRPC's
   * grpc-status). Sent when the client can take them (it said `TE:
   * trailers`, as every gRPC client does) or the response is gRPC or
   * announced them with a Trailer field; otherwise dropped, as RFC 9110
   * §6.5.1 lets a recipient do (node:http2's server did the same).
   */
  writeTrailers(fields: readonly string[]): void {
    if (this.headersSent && !this.#trailersOk) return;
    const out = (this.#trailers ??= []);
    addFields(out, fields, CONNECTION_SPECIFIC, undefined);
  }

  write(chunk: Buffer): boolean {
    if (this.localClosed || this.closed) return true;
    if (!this.headersSent) this.writeHead(200, []);
    if (this.#noBody) return true;
    return this.conn.writeData(this, chunk, false);
  }

  end(data?: string | Buffer): this {
    if (this.closed || this.localClosed || this.endQueued) return this;
    if (!this.headersSent) {
      const status = [':status', '200'];
      this.headersSent = true;
      if (data === undefined && this.#trailers === null) {
        this.conn.writeHeaders(this, status, true);
        this.#finished();
        return this;
      }
      this.conn.writeHeaders(this, status, false);
    }
    if (this.#noBody) return this;
    const chunk = data === undefined ? EMPTY : typeof data === 'string' ? Buffer.from(data) : data;
    if (this.#trailers !== null && this.#trailers.length > 0) {
      if (chunk.length > 0) this.conn.writeData(this, chunk, false);
      this.conn.writeTrailers(this, this.#trailers);
    } else this.conn.writeData(this, chunk, true);
    this.#finished();
    return this;
  }

  /** The response is all written: 'finish', once its end has been queued. */
  #finished(): void {
    if (this.#onFinish === null) return;
    const listeners = this.#onFinish;
    process.nextTick(() => this.#emit(listeners));
  }

  destroy(err?: Error): this {
    if (!this.closed) this.conn.reset(this, err !== undefined ? INTERNAL_ERROR : CANCEL);
    return this;
  }

  on(event: 'close', listener: () => void): this {
    if (event === 'close') (this.#onClose ??= []).push(listener);
    return this;
  }

  once(event: 'finish' | 'drain' | 'close', listener: () => void): this {
    if (event === 'close') (this.#onClose ??= []).push(listener);
    else if (event === 'drain') (this.#onDrain ??= []).push(listener);
    else (this.#onFinish ??= []).push(listener);
    return this;
  }
}

const EMPTY = Buffer.alloc(0);

/** RFC 9113 §8.2.1: lower-case tokens (pseudo-headers start with one ':'). */
function validName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = name.charCodeAt(0) === 58 ? 1 : 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || (c >= 0x41 && c <= 0x5a) || c === 58) return false;
  }
  return true;
}

/**
 * RFC 9113 §8.2.1: no NUL, CR or LF in a field value. Such a value forwarded
 * to an HTTP/1.1 backend would split its header block (request smuggling).
 */
function validValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) return false;
  }
  return true;
}

/**
 * Adds a flat [name, value, ...] list to an HTTP/2 one (names lower-cased),
 * leaving out the names in `skip` and `drop`. True when the list says
 * trailers may follow: a Trailer field (dropped or not), or a gRPC content-type.
 */
function addFields(out: string[], flat: readonly string[], skip: ReadonlySet<string>, drop: ReadonlySet<string> | undefined): boolean {
  let trailers = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (name === 'trailer' || (name === 'content-type' && value.startsWith('application/grpc'))) trailers = true;
    if (skip.has(name) || (drop !== undefined && drop.has(name))) continue;
    out.push(name, value);
  }
  return trailers;
}
