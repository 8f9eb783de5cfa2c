import net, { type Socket } from 'node:net';
import { HTTPParser, consume, createParser, methods, readStart, readStop, releaseParser, type Parser as LlhttpParser } from './parser';
import { reportInternalError } from '../internal-errors';
import { LOCAL_MESSAGES } from '../proxy/local-response';
import { Http1Request } from './request';
import { Http1Response } from './response';

export { Http1Request } from './request';
export { Http1Response } from './response';

/**
 * A lean HTTP/1.1 server for plain-HTTP listeners: node:net sockets read
 * straight into Node's own llhttp parser (the binding node:http uses, with the
 * same strict settings), without node:http's IncomingMessage and
 * ServerResponse streams. Per request it makes two small objects and, for a
 * response of one chunk, one write(2) of head and body together; a body
 * stream exists only for requests that have a body.
 *
 * On the wire it answers as node:http does (tests/http1/server-differential
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

// node:http's own pattern for this header value.
const CONTINUE_TOKEN = /(?:^|\W)100-continue(?:$|\W)/i;

/** Why a connection's socket is not being read (bits; reading resumes when none is left). */
const PAUSED_PIPELINE = 1;
const PAUSED_BODY = 2;

/**
 * Pipelined requests held behind the one in flight before reading pauses.
 * Reading goes on below it, so a client that hangs up is noticed at once.
 */
const PIPELINE_MAX = 16;

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

  /** A connection whose first bytes were already read off it (a cleartext HTTP/2 listener's sniffing: src/http2/h2c.ts). */
  accept(socket: Socket, head: Buffer): void {
    const conn = new Connection(this, socket);
    this.#connections.add(conn);
    conn.feed(head);
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
//
// Each runs its body inside the connection boundary: the binding calls them
// from a socket read, where an exception would reach the process; a bug ends
// its own connection (Connection.fault) instead.

function onMessageBegin(this: Parser): void {
  try {
    const c = this.conn;
    if (c === null) return;
    c.inMessage = true;
    c.idleSince = 0;
    c.headersStart = c.server.tick;
  } catch (err) {
    this.conn?.fault(err);
  }
}

/** Headers too long for one callback (or split over reads) arrive in pieces first. */
function onHeaders(this: Parser, headers: string[], url: string): void {
  try {
    const c = this.conn;
    if (c === null) return;
    for (let i = 0; i < headers.length; i++) c.headerPieces.push(headers[i]);
    c.urlPiece += url;
  } catch (err) {
    this.conn?.fault(err);
  }
}

function onHeadersComplete(
  this: Parser, major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
  _status: unknown, _message: unknown, upgrade: boolean, keepAlive: boolean,
): number {
  try {
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
  } catch (err) {
    this.conn?.fault(err);
    return 0;
  }
}

function onBody(this: Parser, chunk: Buffer): void {
  try {
    this.conn?.receiving?.pushBody(chunk);
  } catch (err) {
    this.conn?.fault(err);
  }
}

function onMessageComplete(this: Parser): void {
  try {
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
  } catch (err) {
    this.conn?.fault(err);
  }
}

function onExecute(this: Parser, ret: number | Error): void {
  try {
    const c = this.conn;
    if (c === null) return;
    // Not `instanceof Error`: the binding's errors come from Node's own realm (not jest's, say).
    if (typeof ret !== 'number') c.failed(ret);
    else if (c.upgrading !== null) c.upgrade(ret);
  } catch (err) {
    this.conn?.fault(err);
  }
}

/** Every callback runs inside the connection boundary (a try in its own body: no extra call per callback on the request path). */
const CALLBACKS = { onMessageBegin, onHeaders, onHeadersComplete, onBody, onMessageComplete, onExecute };

/** One client connection: its parser, the request being answered and those waiting behind it. */
export class Connection {
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
    const parser = createParser('REQUEST', this, CALLBACKS);
    // What was read before the server got the socket: the bytes after a PROXY
    // protocol header (src/proxy-protocol/accept.ts), which paused it.
    const early = socket.readableLength > 0 ? (socket.read() as Buffer | null) : null;
    // Bytes go from the socket to the parser inside Node, never through a 'data' event.
    consume(parser, socket);
    this.#parser = parser;
    socket.on('error', noop);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
    if (early !== null || socket.isPaused()) readStart(socket);
    if (early !== null) onExecute.call(parser, parser.execute(early));
  }

  /** Parse bytes read off the socket before it was handed here, as if the socket had just delivered them. */
  feed(head: Buffer): void {
    const parser = this.#parser;
    if (parser === null || head.length === 0) return;
    onExecute.call(parser, parser.execute(head));
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
    // An upgrade waits for every request before it (active and queued), not only the one in flight.
    if (this.#pendingUpgrade !== null && this.queue.length === 0) {
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
    // RFC 9112 §9.3.2: answers go out in request order. Pipelined requests
    // still queued behind the one in flight come before the upgrade too (the
    // wire fuzz campaign found their answers replaced by the upgrade's 400).
    if (this.active !== null || this.queue.length > 0) this.#pendingUpgrade = { req, head };
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

