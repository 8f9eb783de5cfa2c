import net, { type Socket } from 'node:net';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { RESPONSE_DROP, connectionTokens } from './headers';
import { HTTPParser, consume, createParser, methods, readStart, readStop, releaseParser, type Parser as LlhttpParser, type ParserCallbacks } from './llhttp';
import { reportInternalError } from '../internal-errors';
import { LOCAL_MESSAGES } from './local-response';

/**
 * A lean HTTP/1.1 server for plain-HTTP listeners: node:net sockets read
 * straight into Node's own llhttp parser (the binding node:http uses, with the
 * same strict settings), without node:http's IncomingMessage and
 * ServerResponse streams. Per request it makes two small objects and, for a
 * response of one chunk, one write(2) of head and body together; a body
 * stream exists only for requests that have a body.
 *
 * On the wire it answers as node:http does (tests/proxy/http1-differential
 * compares the two byte for byte): keep-alive and HTTP/1.0 rules, chunked or
 * close-delimited bodies, 100-continue and 417, 400 without Host, the
 * 'clientError' event for parse errors (431 for headers over 16 KiB) and for
 * headersTimeout, keepAliveTimeout, 'upgrade' with the bytes after the
 * headers. One difference by design: pipelined requests are served one after
 * the other (as HAProxy does), not handed to the handler all at once.
 *
 * The parser binding is internal to Node; `llhttpAvailable` is false when it is
 * not what this code expects, and listeners then use node:http.
 */

type Parser = LlhttpParser<Connection>;

/**
 * Method names by llhttp's method code. The binding's `methods` list is by
 * position, not by code (QUERY is code 46 but 35th in the list), so the codes
 * are learnt once, here, from the parser itself: each name is parsed in a
 * request line and the code it reports noted. A code with no name here (an
 * RTSP method on an "RTSP/1.0" line) reaches the handler as an undefined
 * method, which it refuses (501): a method is never rewritten into another.
 */
const METHOD_BY_CODE: readonly (string | undefined)[] = methodCodes();

function methodCodes(): (string | undefined)[] {
  const byCode: (string | undefined)[] = [];
  if (HTTPParser === undefined) return byCode;
  let seen = -1;
  const probe = createParser<null>('REQUEST', null, {
    onHeaders: noop,
    onHeadersComplete(...args: never[]) {
      seen = args[3] as number;
      return 0;
    },
    onBody: noop,
    onMessageComplete: noop,
    onExecute: noop,
  });
  for (const name of methods) {
    seen = -1;
    probe.initialize(HTTPParser.REQUEST, {}, 0, 0);
    (probe as unknown as { execute(b: Buffer): unknown }).execute(Buffer.from(`${name} / HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1'));
    if (seen >= 0) byCode[seen] = name;
  }
  probe.close();
  return byCode;
}

const CONNECT = METHOD_BY_CODE.indexOf('CONNECT');

// node:http's own patterns for these header values.
const CLOSE_TOKEN = /(?:^|\W)close(?:$|\W)/i;
const CHUNKED_TOKEN = /(?:^|\W)chunked(?:$|\W)/i;
const CONTINUE_TOKEN = /(?:^|\W)100-continue(?:$|\W)/i;

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

/** Why a connection's socket is not being read (bits; reading resumes when none is left). */
const PAUSED_PIPELINE = 1;
const PAUSED_BODY = 2;

/**
 * Pipelined requests held behind the one in flight before reading pauses.
 * Reading goes on below it, so a client that hangs up is noticed at once.
 */
const PIPELINE_MAX = 16;
/** Head and body up to this size go out in one buffer, one write(2). */
const COALESCE_MAX = 16 * 1024;
/** Body bytes held for a request whose handler has not taken its body yet, before reading pauses. */
const PENDING_BODY_MAX = 64 * 1024;

export interface Http1Options {
  /** ms from the first byte of a request (or the connection) to the end of its headers; 0 = none. */
  readonly headersTimeout: number;
  /** ms an idle keep-alive connection is kept. */
  readonly keepAliveTimeout: number;
  /** How often timeouts are checked (ms); default min(1000, headersTimeout). */
  readonly connectionsCheckingInterval?: number;
  readonly noDelay?: boolean;
  /** Answer an HTTP/1.1 request without Host with 400 here, as node:http does (default true). */
  readonly requireHostHeader?: boolean;
}

export type Http1Handler = (req: Http1Request, res: Http1Response) => void;

export class Http1Server extends net.Server {
  headersTimeout: number;
  readonly requireHostHeader: boolean;
  #keepAliveTimeout = 0;
  /** "Connection: keep-alive" and the Keep-Alive line node:http sends with it, made when the timeout is set. */
  keepAliveLines = '';
  /**
   * Timeout checks so far. A request's start and a connection's idle time are
   * noted as this count, not read off a clock per request: a timeout of T
   * fires once more than ceil(T / interval) checks have passed since, which
   * takes at least T (checks are never closer than the interval, even on a
   * busy loop) and at most about two intervals more.
   */
  tick = 1;
  readonly #connections = new Set<Connection>();
  readonly #interval: number;
  #sweep: NodeJS.Timeout | undefined;

  constructor(options: Http1Options, handler: Http1Handler) {
    if (HTTPParser === undefined) throw new Error('the HTTP/1.1 parser binding of this Node version is not supported');
    // Half-open like node:http: a client's FIN is handled below, not by net.
    super({ allowHalfOpen: true, noDelay: options.noDelay ?? true });
    this.headersTimeout = options.headersTimeout;
    this.requireHostHeader = options.requireHostHeader ?? true;
    this.keepAliveTimeout = options.keepAliveTimeout;
    this.#interval = options.connectionsCheckingInterval ?? Math.min(1000, options.headersTimeout || 1000);
    this.on('request', handler);
    this.on('connection', (socket: Socket) => this.#connections.add(new Connection(this, socket)));
    this.on('listening', () => {
      clearInterval(this.#sweep);
      this.#sweep = setInterval(() => this.#checkTimeouts(), this.#interval);
      this.#sweep.unref();
    });
  }

  get keepAliveTimeout(): number {
    return this.#keepAliveTimeout;
  }

  set keepAliveTimeout(ms: number) {
    this.#keepAliveTimeout = ms;
    const seconds = Math.floor(ms / 1000);
    this.keepAliveLines = `Connection: keep-alive\r\n${seconds > 0 ? `Keep-Alive: timeout=${seconds}\r\n` : ''}`;
  }

  /** Close connections with no request in flight or arriving (as node:http's closeIdleConnections). */
  closeIdleConnections(): void {
    for (const c of this.#connections) if (c.idle()) c.socket.destroy();
  }

  override close(callback?: (err?: Error) => void): this {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    this.closeIdleConnections();
    return super.close(callback);
  }

  /** @internal */
  forget(c: Connection): void {
    this.#connections.delete(c);
  }

  #checkTimeouts(): void {
    const tick = ++this.tick;
    const headers = this.headersTimeout > 0 ? Math.ceil(this.headersTimeout / this.#interval) : 0;
    const idle = this.keepAliveTimeout > 0 ? Math.ceil(this.keepAliveTimeout / this.#interval) : 0;
    for (const c of this.#connections) {
      try {
        c.checkTimeouts(tick, headers, idle);
      } catch (err) {
        c.fault(err);
      }
    }
  }
}

// ---- parser callbacks: called by the binding with `this` = the parser ------

function onMessageBegin(this: Parser): void {
  const c = this.conn;
  if (c === null) return;
  c.inMessage = true;
  c.idleSince = 0;
  c.headersStart = c.server.tick;
}

/** Headers too long for one callback (or split over reads) arrive in pieces first. */
function onHeaders(this: Parser, headers: string[], url: string): void {
  const c = this.conn;
  if (c === null) return;
  for (let i = 0; i < headers.length; i++) c.headerPieces.push(headers[i]);
  c.urlPiece += url;
}

function onHeadersComplete(
  this: Parser, major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
  _status: unknown, _message: unknown, upgrade: boolean, keepAlive: boolean,
): number {
  const c = this.conn;
  if (c === null) return 0;
  if (headers === undefined) {
    headers = c.headerPieces;
    c.headerPieces = [];
  }
  if (url === undefined) {
    url = c.urlPiece;
    c.urlPiece = '';
  }
  c.headersStart = 0;
  const req = new Http1Request(c, METHOD_BY_CODE[method], url, headers, major, minor, keepAlive);
  c.receiving = req;
  if (upgrade && (method === CONNECT || c.server.listenerCount('upgrade') > 0)) {
    c.upgrading = req;
    return 2; // llhttp stops after this message; the rest of the bytes are the tunnel's
  }
  c.enqueue(req);
  return 0;
}

function onBody(this: Parser, chunk: Buffer): void {
  this.conn?.receiving?.pushBody(chunk);
}

function onMessageComplete(this: Parser): void {
  const c = this.conn;
  if (c === null) return;
  const req = c.receiving;
  c.receiving = null;
  c.inMessage = false;
  // Trailers came to onHeaders: dropped, never the next request's headers or URL.
  c.headerPieces = [];
  c.urlPiece = '';
  req?.endBody();
  if (c.active === null && c.queue.length === 0) c.idleSince = c.server.tick;
}

function onExecute(this: Parser, ret: number | Error): void {
  const c = this.conn;
  if (c === null) return;
  // Not `instanceof Error`: the binding's errors come from Node's own realm (not jest's, say).
  if (typeof ret !== 'number') c.failed(ret);
  else if (c.upgrading !== null) c.upgrade(ret);
}

/*
 * The same callbacks inside the connection boundary: the binding calls them
 * from a socket read, where an exception would reach the process. A bug ends
 * its own connection (Connection.fault) instead. Fixed arity and .call, so
 * nothing is allocated per call.
 */
const GUARDED: ParserCallbacks<Connection> = {
  onMessageBegin(this: Parser): void {
    try {
      onMessageBegin.call(this);
    } catch (err) {
      this.conn?.fault(err);
    }
  },
  onHeaders(this: Parser, headers: string[], url: string): void {
    try {
      onHeaders.call(this, headers, url);
    } catch (err) {
      this.conn?.fault(err);
    }
  },
  onHeadersComplete(
    this: Parser, major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
    status: unknown, message: unknown, upgrade: boolean, keepAlive: boolean,
  ): number {
    try {
      return onHeadersComplete.call(this, major, minor, headers, method, url, status, message, upgrade, keepAlive);
    } catch (err) {
      this.conn?.fault(err);
      return 0;
    }
  },
  onBody(this: Parser, chunk: Buffer): void {
    try {
      onBody.call(this, chunk);
    } catch (err) {
      this.conn?.fault(err);
    }
  },
  onMessageComplete(this: Parser): void {
    try {
      onMessageComplete.call(this);
    } catch (err) {
      this.conn?.fault(err);
    }
  },
  onExecute(this: Parser, ret: number | Error): void {
    try {
      onExecute.call(this, ret);
    } catch (err) {
      this.conn?.fault(err);
    }
  },
} as ParserCallbacks<Connection>;

/** One client connection: its parser, the request being answered and those waiting behind it. */
class Connection {
  readonly server: Http1Server;
  readonly socket: Socket;
  #parser: Parser | null;
  headerPieces: string[] = [];
  urlPiece = '';
  /** The check (Http1Server.tick) during which the headers of the request being received started, or the connection opened; 0 once they are in. */
  headersStart: number;
  /** The check since which nothing is being answered or received; 0 while busy. */
  idleSince = 0;
  /** Between a message's first byte and its end. */
  inMessage = false;
  /** The request whose body the parser is reading. */
  receiving: Http1Request | null = null;
  /** The request being answered. */
  active: Http1Request | null = null;
  /** Pipelined requests, answered in order after `active`. */
  readonly queue: Http1Request[] = [];
  upgrading: Http1Request | null = null;
  /** No further request on this connection is served. */
  #closing = false;
  /** A parse error or timeout to report once the response in flight is out. */
  #pendingError: Error | null = null;
  #pendingUpgrade: { req: Http1Request; head: Buffer } | null = null;
  #paused = 0;
  #starting = false;
  /** Set once a bug ended this connection (see fault). */
  #faulted = false;
  readonly #onEnd = () => {
    try {
      this.#ended();
    } catch (err) {
      this.fault(err);
    }
  };
  readonly #onClose = () => {
    try {
      this.#closed();
    } catch (err) {
      this.fault(err);
    }
  };
  readonly #onDrain = () => {
    try {
      this.active?.res?.drained();
    } catch (err) {
      this.fault(err);
    }
  };

  constructor(server: Http1Server, socket: Socket) {
    this.server = server;
    this.socket = socket;
    this.headersStart = server.tick;
    const parser = createParser('REQUEST', this, GUARDED);
    // Bytes go from the socket to the parser inside Node, never through a 'data' event.
    consume(parser, socket);
    this.#parser = parser;
    socket.on('error', noop);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
  }

  /** Served at least one request and waits for the next (a fresh connection is not idle, as in node:http). */
  idle(): boolean {
    return this.idleSince > 0 && this.active === null && this.queue.length === 0 && !this.inMessage && this.#parser !== null;
  }

  enqueue(req: Http1Request): void {
    if (this.#closing) return;
    this.queue.push(req);
    if (this.active === null) this.#next();
    else if (this.queue.length >= PIPELINE_MAX) this.#pause(PAUSED_PIPELINE);
  }

  /** Start the next waiting request; a loop, so answers given at once do not recurse. */
  #next(): void {
    if (this.#starting) return;
    this.#starting = true;
    while (this.active === null && this.queue.length > 0 && !this.#closing) this.#start(this.queue.shift()!);
    this.#starting = false;
    if (this.#closing) return;
    // Nothing waits: read on (the request in flight may have a body to receive).
    if (this.queue.length < PIPELINE_MAX) this.#resume(PAUSED_PIPELINE);
    if (this.active === null && !this.inMessage) this.idleSince = this.server.tick;
  }

  #start(req: Http1Request): void {
    this.active = req;
    const res = new Http1Response(this, req);
    req.res = res;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
      const h = req.headers;
      // RFC 9112 §3.2, and node:http's requireHostHeader.
      if (h.host === undefined && this.server.requireHostHeader) {
        res.writeHead(400, ['Connection', 'close']);
        res.end();
        return;
      }
      if (h.expect !== undefined) {
        if (!CONTINUE_TOKEN.test(h.expect)) {
          res.writeHead(417, []);
          res.end();
          return;
        }
        this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
      }
    }
    this.server.emit('request', req, res);
  }

  /** The response to `active` is out. */
  responseDone(res: Http1Response): void {
    const req = this.active;
    if (req === null || req.res !== res) return;
    this.active = null;
    if (!req.complete) req.dump();
    if (!res.keepAlive) {
      // Said "Connection: close": nothing more goes out, not even an error for what followed.
      this.#stop();
      this.socket.destroySoon();
      return;
    }
    if (this.#pendingError !== null && this.queue.length === 0) {
      const err = this.#pendingError;
      this.#stop();
      this.server.emit('clientError', err, this.socket);
      return;
    }
    if (this.#pendingUpgrade !== null) {
      const { req: up, head } = this.#pendingUpgrade;
      this.#pendingUpgrade = null;
      this.#emitUpgrade(up, head);
      return;
    }
    this.#next();
  }

  /** A parse error or a headers timeout: answered (by 'clientError') once nothing is in flight. */
  failed(err: Error): void {
    // The parser repeats its error for every later read.
    if (this.#closing || this.#pendingError !== null) return;
    const broken = this.receiving !== null && !this.receiving.complete ? this.receiving : null;
    if (broken !== null && broken === this.active) {
      // The body of the request in flight broke mid-way: the client gets its
      // 400 if no answer has started, and the exchange learns the client is gone.
      this.#stop();
      const started = broken.res?.headersSent === true;
      this.#abandon();
      if (started) this.socket.destroy();
      else this.server.emit('clientError', err, this.socket);
    } else if (this.active !== null) {
      // Requests read in full before the bad bytes are answered first, in
      // order (as HAProxy does); the one whose body broke is never served.
      // The error is answered once the last of them is out (responseDone).
      const at = broken === null ? -1 : this.queue.indexOf(broken);
      if (at >= 0) this.queue.splice(at, 1);
      this.#pendingError = err;
      this.headersStart = 0;
    } else {
      this.#stop();
      this.server.emit('clientError', err, this.socket);
    }
  }

  /**
   * A bug in this connection's handling (the seat belt of issue 20): reported
   * once; the client gets a 500 if nothing of an answer went out yet, else
   * the connection is cut. The parser is let go, so nothing more of this
   * connection is read as requests.
   */
  fault(err: unknown): void {
    reportInternalError(err, 'http1 connection');
    if (this.#faulted) return;
    this.#faulted = true;
    this.#closing = true;
    this.queue.length = 0;
    this.server.forget(this);
    const started = this.active?.res?.headersSent === true;
    try {
      this.#detachParser();
    } catch {
      // the socket goes below either way
    }
    const s = this.socket;
    if (!started && s.writable && !s.destroyed) {
      const body = `${LOCAL_MESSAGES[500]}\n`;
      s.end(`HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`, 'latin1');
      s.setTimeout(1000, () => s.destroy());
    } else {
      s.destroy();
    }
  }

  /** `headers`, `idle`: the timeouts in checks (0 = none). */
  checkTimeouts(tick: number, headers: number, idle: number): void {
    if (this.headersStart > 0 && headers > 0 && tick - this.headersStart > headers && !this.#closing) {
      this.headersStart = 0;
      this.failed(Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }));
    } else if (this.idleSince > 0 && idle > 0 && tick - this.idleSince > idle) {
      this.socket.destroy();
    }
  }

  upgrade(ret: number): void {
    const req = this.upgrading!;
    this.upgrading = null;
    const head = this.#parser!.getCurrentBuffer().subarray(ret);
    this.#detachParser();
    this.server.forget(this);
    if (req.method === 'CONNECT' && this.server.listenerCount('connect') === 0) {
      // As node:http with no 'connect' listener: the connection is closed.
      this.socket.destroy();
      return;
    }
    if (this.active !== null) this.#pendingUpgrade = { req, head };
    else this.#emitUpgrade(req, head);
  }

  #emitUpgrade(req: Http1Request, head: Buffer): void {
    const s = this.socket;
    s.off('error', noop);
    s.off('end', this.#onEnd);
    s.off('close', this.#onClose);
    s.off('drain', this.#onDrain);
    this.#resume(PAUSED_PIPELINE | PAUSED_BODY);
    (s as { readableFlowing: boolean | null }).readableFlowing = null;
    // As node:http: CONNECT is 'connect' (after the responses before it, here), anything else 'upgrade'.
    this.server.emit(req.method === 'CONNECT' ? 'connect' : 'upgrade', req, s, head);
  }

  /**
   * Serve nothing more: drop the waiting requests. Reading goes on (and is
   * dropped), as node:http does: unread bytes at close would turn our FIN
   * into a reset, and the client could lose the answer.
   */
  #stop(): void {
    this.#closing = true;
    this.queue.length = 0;
    this.headersStart = 0;
    // A client that never closes its side is cut off after keepAliveTimeout.
    this.idleSince = this.active === null ? this.server.tick : 0;
    this.#resume(PAUSED_PIPELINE);
  }

  /** The client's FIN. As node:http without allowHalfOpen: whatever is pending is abandoned. */
  #ended(): void {
    const ret = this.#parser?.finish();
    if (typeof ret === 'object' && ret !== null && this.active === null && !this.#closing) {
      this.#stop();
      this.server.emit('clientError', ret, this.socket);
    }
    this.#abandon();
    if (this.socket.writable) this.socket.end();
  }

  #closed(): void {
    this.server.forget(this);
    this.#closing = true;
    this.queue.length = 0;
    this.#abandon();
    this.receiving = null;
    this.#detachParser();
  }

  /** The client is gone: the response in flight hears it first, then the body being received. */
  #abandon(): void {
    this.active?.res?.clientClosed();
    this.receiving?.abortBody(aborted());
  }

  #detachParser(): void {
    const parser = this.#parser;
    if (parser === null) return;
    this.#parser = null;
    releaseParser(parser, this.socket);
  }

  pauseBody(): void {
    this.#pause(PAUSED_BODY);
  }

  resumeBody(): void {
    this.#resume(PAUSED_BODY);
  }

  #pause(why: number): void {
    if (this.#paused === 0) readStop(this.socket);
    this.#paused |= why;
  }

  #resume(why: number): void {
    if (this.#paused === 0) return;
    this.#paused &= ~why;
    if (this.#paused === 0) readStart(this.socket);
  }
}

function noop(): void {}

function aborted(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
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
   * caller then uses forwardResponseHeaders and writeHead.
   */
  writeBackendHead(status: number, raw: readonly string[], extra: readonly string[] | undefined): boolean {
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
    const last = this.#chunked ? '0\r\n\r\n' : '';
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
