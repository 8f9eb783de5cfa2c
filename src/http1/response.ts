import { STATUS_CODES } from 'node:http';
import { RESPONSE_DROP, connectionTokens } from '../proxy/headers';
import type { Connection } from './server';
import type { Http1Request } from './request';

// node:http's own patterns for these header values.
const CLOSE_TOKEN = /(?:^|\W)close(?:$|\W)/i;
const CHUNKED_TOKEN = /(?:^|\W)chunked(?:$|\W)/i;

/** Head and body up to this size go out in one buffer, one write(2). */
const COALESCE_MAX = 16 * 1024;

const STATUS_LINES: string[] = [];
/** "HTTP/1.1 200 OK\r\n", as node:http words it; made once per status. */
function statusLine(status: number): string {
  return (STATUS_LINES[status] ??= `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'unknown'}\r\n`);
}

/** RESPONSE_DROP (the one list of hop-by-hop response headers) by name length. */
const DROP_BY_LENGTH: (string[] | undefined)[] = [];
for (const name of RESPONSE_DROP) (DROP_BY_LENGTH[name.length] ??= []).push(name);

/** The RESPONSE_DROP name that `name` spells, if any; lower-cases only names of a dropped length. */
function droppedName(name: string): string | undefined {
  const candidates = DROP_BY_LENGTH[name.length];
  if (candidates === undefined) return undefined;
  const lower = name.toLowerCase();
  for (const c of candidates) if (c === lower) return c;
  return undefined;
}

let dateSecond = -1;
let dateText = '';
/** The Date header's value, formatted once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

type Listener = () => void;

/** Buffer's own latin1 writer (what buf.write(s, 0, 'latin1') ends up calling, without the argument parsing). */
type Latin1Writable = Buffer & { latin1Write(s: string, offset: number): number };

export class Http1Response {
  statusCode = 200;
  headersSent = false;
  /** end() was called: everything is handed to the socket. */
  writableFinished = false;
  /** False: "Connection: close", and the connection closes after this response. */
  shouldKeepAlive: boolean;
  readonly #conn: Connection;
  readonly #req: Http1Request;
  /** The head, until it goes out with the first body bytes (or at end). */
  #head: string | null = null;
  #chunked = false;
  #hasBody = true;
  /** Close after this response (decided by writeHead). */
  #last = false;
  /** The client left before this response ended. */
  #gone = false;
  /** end(data) without writeHead: the length node:http would announce; -1 otherwise. */
  #implicitLength = -1;
  /** The trailer section's lines (writeTrailers), '' for none. */
  #trailers = '';
  #onClose: Listener[] | null = null;
  #onFinish: Listener[] | null = null;
  #onDrain: Listener[] | null = null;

  constructor(conn: Connection, req: Http1Request) {
    this.#conn = conn;
    this.#req = req;
    this.shouldKeepAlive = req.keepAlive;
  }

  get destroyed(): boolean {
    return this.#gone || this.#conn.socket.destroyed;
  }

  /** @internal */
  get keepAlive(): boolean {
    return !this.#last && this.shouldKeepAlive;
  }

  on(event: 'close' | 'finish' | 'drain', fn: Listener): this {
    if (event === 'close') (this.#onClose ??= []).push(fn);
    else if (event === 'finish') (this.#onFinish ??= []).push(fn);
    else (this.#onDrain ??= []).push(fn);
    return this;
  }

  /** The same as `on`: each of these events fires at most once per listener here ('drain' listeners are dropped once run). */
  once(event: 'close' | 'finish' | 'drain', fn: Listener): this {
    return this.on(event, fn);
  }

  /** `headers`: flat [name, value, ...], sent as given, in order. */
  writeHead(status: number, headers: readonly string[]): this {
    this.#begin(status);
    let head = statusLine(status);
    let length = false;
    let date = false;
    let connection = false;
    let te = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      const value = headers[i + 1];
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'date') date = true;
          break;
        case 10:
          if (name.toLowerCase() === 'connection') {
            connection = true;
            if (CLOSE_TOKEN.test(value)) this.#last = true;
            else this.shouldKeepAlive = true;
          }
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') length = true;
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            te = true;
            if (CHUNKED_TOKEN.test(value)) this.#chunked = true;
          }
          break;
      }
      head += `${name}: ${value}\r\n`;
    }
    this.#head = head + this.#closingLines(length, date, connection, te);
    return this;
  }

  /**
   * A backend's answer as the upstream parser hands it (flat latin1 strings),
   * written in one pass, without node:http's per-header checks (the parser
   * already held them to RFC 9112). Hop-by-hop headers go, as forwardResponseHeaders drops them;
   * `extra` ([name, value, ...]) follows. Returns false, having written
   * nothing, when a Connection header names further headers to drop: the
   * (`drop`: lower-cased names a route's responseHeaders remove or replace)
   * caller then uses forwardResponseHeaders and writeHead.
   */
  writeBackendHead(status: number, raw: readonly string[], extra: readonly string[] | undefined, drop?: ReadonlySet<string>): boolean {
    let length = false;
    let date = false;
    let text = statusLine(status);
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
      const dropped = droppedName(name);
      if (dropped !== undefined) {
        if (dropped === 'connection' && connectionTokens(raw[i + 1]) !== undefined) return false;
        continue;
      }
      // A route's responseHeaders: what it removes or sets (set replaces) goes.
      if (drop !== undefined && drop.has(name.toLowerCase())) continue;
      if (name.length === 4) date ||= name.toLowerCase() === 'date';
      else if (name.length === 14) length ||= name.toLowerCase() === 'content-length';
      text += `${name}: ${raw[i + 1]}\r\n`;
    }
    this.#begin(status);
    if (extra !== undefined) for (let i = 0; i < extra.length; i += 2) text += `${extra[i]}: ${extra[i + 1]}\r\n`;
    this.#head = text + this.#closingLines(length, date, false, false);
    return true;
  }

  #begin(status: number): void {
    if (this.headersSent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    this.statusCode = status;
    this.headersSent = true;
    this.#hasBody = this.#req.method !== 'HEAD' && status !== 204 && status !== 304 && !(status >= 100 && status < 200);
  }

  /** What node:http adds after the handler's headers (Date, Connection, framing), and the blank line. */
  #closingLines(length: boolean, date: boolean, connection: boolean, te: boolean): string {
    const req = this.#req;
    const chunkedByDefault = (req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) || CHUNKED_TOKEN.test(String(req.headers.te ?? ''));
    let lines = date ? '' : `Date: ${httpDate()}\r\n`;
    if (!connection) {
      if (this.shouldKeepAlive && (length || chunkedByDefault)) {
        lines += this.#conn.server.keepAliveLines;
      } else {
        this.#last = true;
        lines += 'Connection: close\r\n';
      }
    }
    if (!length && !te && this.#hasBody) {
      if (!chunkedByDefault) {
        this.#last = true; // the body ends when the connection does
      } else if (this.#implicitLength >= 0) {
        lines += `Content-Length: ${this.#implicitLength}\r\n`;
      } else {
        lines += 'Transfer-Encoding: chunked\r\n';
        this.#chunked = true;
      }
    }
    if (!this.#hasBody) this.#chunked = false;
    return `${lines}\r\n`;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableFinished) return true;
    if (!this.headersSent) this.writeHead(this.statusCode, []);
    const socket = this.#conn.socket;
    if (!this.#hasBody || !socket.writable) return true;
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const n = data.length;
    if (n === 0) return true;
    const head = this.#head;
    this.#head = null;
    const sizeLine = this.#chunked ? `${n.toString(16)}\r\n` : '';
    const suffix = this.#chunked ? 2 : 0;
    if (n <= COALESCE_MAX) {
      const buf = Buffer.allocUnsafe((head === null ? 0 : head.length) + sizeLine.length + n + suffix) as Latin1Writable;
      let at = head === null ? 0 : buf.latin1Write(head, 0);
      if (suffix !== 0) at += buf.latin1Write(sizeLine, at);
      at += data.copy(buf, at);
      if (suffix !== 0) {
        buf[at] = 13;
        buf[at + 1] = 10;
      }
      return socket.write(buf);
    }
    socket.cork();
    if (head !== null) socket.write(head, 'latin1');
    if (suffix !== 0) socket.write(sizeLine, 'latin1');
    socket.write(data);
    const ok = suffix === 0 ? !socket.writableNeedDrain : socket.write('\r\n', 'latin1');
    socket.uncork();
    return ok;
  }

  /**
   * Fields for the trailer section of a chunked body (RFC 9112 §7.1.2),
   * written by end(); a body framed otherwise (Content-Length, HTTP/1.0,
   * none) has no place for them and they are dropped (proxy/trailers.ts).
   */
  writeTrailers(fields: readonly string[]): void {
    let lines = this.#trailers;
    for (let i = 0; i < fields.length; i += 2) lines += `${fields[i]}: ${fields[i + 1]}\r\n`;
    this.#trailers = lines;
  }

  end(data?: string | Buffer): this {
    if (this.writableFinished) return this;
    if (!this.headersSent) {
      this.#implicitLength = data === undefined ? 0 : typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      this.writeHead(this.statusCode, []);
    }
    if (data !== undefined && data.length > 0) this.write(data);
    this.writableFinished = true;
    const head = this.#head;
    this.#head = null;
    const last = !this.#chunked ? '' : this.#trailers === '' ? '0\r\n\r\n' : `0\r\n${this.#trailers}\r\n`;
    const tail = head === null ? last : head + last;
    const socket = this.#conn.socket;
    const finish = this.#onFinish;
    if (tail.length > 0 && socket.writable) {
      if (finish === null) socket.write(tail, 'latin1');
      else socket.write(tail, 'latin1', () => run(finish));
    } else if (finish !== null) {
      process.nextTick(run, finish);
    }
    this.#conn.responseDone(this);
    return this;
  }

  /** Cut the connection (a response that broke half-way). */
  destroy(err?: Error): void {
    this.#conn.socket.destroy(err);
  }

  /** @internal */
  drained(): void {
    const waiting = this.#onDrain;
    if (waiting === null) return;
    this.#onDrain = null;
    run(waiting);
  }

  /** @internal the connection closed before this response ended. */
  clientClosed(): void {
    if (this.writableFinished) return;
    this.#gone = true;
    const listeners = this.#onClose;
    this.#onClose = null;
    if (listeners !== null) run(listeners);
  }
}

function run(listeners: readonly Listener[]): void {
  for (const fn of listeners) fn();
}
