import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Connection } from './server';
import type { Http1Response } from './response';

/** Body bytes held for a request whose handler has not taken its body yet, before reading pauses. */
const PENDING_BODY_MAX = 64 * 1024;

/** Headers whose repeats node:http drops (the first one wins); every other repeat is joined. */
const SINGLE_VALUED = new Set([
  'content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization', 'proxy-authorization',
  'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards', 'retry-after', 'etag',
  'last-modified', 'server', 'age', 'expires',
]);

/** The object node:http builds from raw headers, with the same rules for repeats. */
function headerObject(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    const seen = out[name];
    if (name === 'set-cookie') {
      if (seen === undefined) out[name] = [value];
      else (seen as string[]).push(value);
    } else if (seen === undefined) {
      out[name] = value;
    } else if (name === 'cookie') {
      out[name] = `${seen as string}; ${value}`;
    } else if (!SINGLE_VALUED.has(name)) {
      out[name] = `${seen as string}, ${value}`;
    }
  }
  return out as IncomingHttpHeaders;
}

/** The request body as a stream, made only when the handler asks for it. */
class RequestBody extends Readable {
  readonly #conn: Connection;

  constructor(conn: Connection) {
    super();
    this.#conn = conn;
  }

  override _read(): void {
    this.#conn.resumeBody();
  }

  /**
   * As node:http's IncomingMessage: an error (the client went away mid-body)
   * is emitted only to someone listening. A body that a local answer left
   * unread has no reader, and its abort must not become an unhandled 'error'
   * that ends the process (issue 20, F4 and the fuzz's chunked-body finding).
   */
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    callback(this.listenerCount('error') === 0 ? null : err);
  }
}

export class Http1Request {
  /** Undefined for a method the parser knows by a code this server cannot name (the listener answers 501). */
  readonly method: string | undefined;
  readonly url: string;
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: Socket;
  /** The whole message, body included, has been read. */
  complete = false;
  /** @internal */
  res: Http1Response | null = null;
  /** @internal the client's wish, from the parser (HTTP version and Connection). */
  readonly keepAlive: boolean;
  readonly #conn: Connection;
  #headers: IncomingHttpHeaders | undefined;
  #body: RequestBody | null = null;
  #pending: Buffer[] | null = null;
  #pendingBytes = 0;
  #dumped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(conn: Connection, method: string | undefined, url: string, rawHeaders: string[], major: number, minor: number, keepAlive: boolean) {
    this.#conn = conn;
    this.socket = conn.socket;
    this.method = method;
    this.url = url;
    this.rawHeaders = rawHeaders;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.keepAlive = keepAlive;
  }

  /** Lower-cased names, repeats joined as node:http joins them; built on first use. */
  get headers(): IncomingHttpHeaders {
    return (this.#headers ??= headerObject(this.rawHeaders));
  }

  /** The body as a stream with backpressure (reading the socket pauses while it is full). */
  body(): Readable {
    if (this.#body !== null) return this.#body;
    const body = new RequestBody(this.#conn);
    this.#body = body;
    if (this.#pending !== null) {
      for (const chunk of this.#pending) body.push(chunk);
      this.#pending = null;
      this.#conn.resumeBody();
    }
    if (this.complete && !this.#dumped) body.push(null);
    return body;
  }

  /** Calls `onTimeout` when no body byte arrives for `ms` (until the body is complete). */
  watchBody(ms: number, onTimeout: () => void): void {
    if (this.complete || this.#dumped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(onTimeout, ms);
  }

  /** @internal */
  pushBody(chunk: Buffer): void {
    if (this.#dumped) return;
    this.#timer?.refresh();
    if (this.#body !== null) {
      if (!this.#body.push(chunk)) this.#conn.pauseBody();
      return;
    }
    (this.#pending ??= []).push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes > PENDING_BODY_MAX) this.#conn.pauseBody();
  }

  /** @internal */
  endBody(): void {
    this.complete = true;
    clearTimeout(this.#timer);
    if (!this.#dumped) this.#body?.push(null);
  }

  /** @internal the client went away mid-body. */
  abortBody(err: Error): void {
    // Dumped: answered before the body was read, and its stream (if any) already ended; nobody is left to hear an error.
    if (this.complete || this.#dumped) return;
    clearTimeout(this.#timer);
    this.#dumped = true;
    this.#pending = null;
    this.#body?.destroy(err);
  }

  /** @internal answered before the body was read: the rest of it is read and dropped. */
  dump(): void {
    clearTimeout(this.#timer);
    this.#dumped = true;
    this.#pending = null;
    this.#body?.push(null);
    this.#conn.resumeBody();
  }
}
