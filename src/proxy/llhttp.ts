import type { Socket } from 'node:net';

/**
 * Node's own llhttp binding (`_http_common.HTTPParser`), the parser node:http
 * uses on both sides, with the same strict settings. Http1Server reads client
 * requests with it and UpstreamClient reads backend responses.
 *
 * The binding is internal to Node; `llhttpAvailable` is false when it is not
 * what this code expects, and both fall back (listeners to node:http,
 * backends to undici).
 */

/** Callbacks are called with `this` = the parser; `conn` is whatever owns it. */
export interface Parser<Conn = unknown> {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  consume(handle: unknown): void;
  unconsume(): void;
  getCurrentBuffer(): Buffer;
  finish(): Error | number | undefined | null;
  remove(): void;
  close(): void;
  [callback: number]: unknown;
  conn: Conn | null;
}

interface ParserModule {
  HTTPParser: (new () => Parser) & Record<string, number>;
  methods: string[];
}

function loadParser(): ParserModule | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require('_http_common') as Partial<ParserModule>;
    const P = m.HTTPParser;
    const ok = typeof P === 'function' && Array.isArray(m.methods)
      && ['consume', 'unconsume', 'getCurrentBuffer', 'initialize', 'finish', 'remove', 'close'].every((f) => typeof (P.prototype as Record<string, unknown>)[f] === 'function')
      && ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'].every((k) => typeof P[k] === 'number');
    return ok ? (m as ParserModule) : undefined;
  } catch {
    return undefined;
  }
}

const parserModule = loadParser();
/** False when this Node's parser binding is not the one this code was written for. */
export const llhttpAvailable = parserModule !== undefined;
export const HTTPParser = parserModule?.HTTPParser;
/** Method names by the parser's method number. */
export const methods: readonly string[] = parserModule?.methods ?? [];

/** The binding's callbacks, called with `this` = the parser (module functions: no closure per parser). */
export interface ParserCallbacks<Conn> {
  onMessageBegin?(this: Parser<Conn>): void;
  onHeaders(this: Parser<Conn>, headers: string[], url: string): void;
  onHeadersComplete(this: Parser<Conn>, ...args: never[]): number;
  onBody(this: Parser<Conn>, chunk: Buffer): void;
  onMessageComplete(this: Parser<Conn>): void;
  onExecute(this: Parser<Conn>, ret: number | Error): void;
}

/** A parser for requests or responses (strict, default header size limit) owned by `conn`. */
export function createParser<Conn>(type: 'REQUEST' | 'RESPONSE', conn: Conn, callbacks: ParserCallbacks<Conn>): Parser<Conn> {
  const P = HTTPParser!;
  const parser = new P() as Parser<Conn>;
  parser.initialize(P[type], {}, 0, 0);
  parser.conn = conn;
  if (callbacks.onMessageBegin !== undefined) parser[P.kOnMessageBegin] = callbacks.onMessageBegin;
  parser[P.kOnHeaders] = callbacks.onHeaders;
  parser[P.kOnHeadersComplete] = callbacks.onHeadersComplete;
  parser[P.kOnBody] = callbacks.onBody;
  parser[P.kOnMessageComplete] = callbacks.onMessageComplete;
  parser[P.kOnExecute] = callbacks.onExecute;
  return parser;
}

interface StreamHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

function handleOf(socket: Socket): StreamHandle | null {
  return (socket as unknown as { _handle: StreamHandle | null })._handle;
}

/**
 * Feed the socket's bytes to `parser` inside Node: no 'data' event, no
 * Buffer per read in JS.
 */
export function consume(parser: Parser, socket: Socket): void {
  parser.consume(handleOf(socket));
}

/** Undo `consume` (if the socket still has its handle) and free the parser once the binding is off the stack. */
export function releaseParser(parser: Parser, socket: Socket): void {
  parser.conn = null;
  if (handleOf(socket)) parser.unconsume();
  parser.remove();
  // The binding may still be on the stack (this can run inside a callback).
  setImmediate(closeParser, parser);
}

function closeParser(parser: Parser): void {
  parser.close();
}

/** Stop reading a consumed socket (socket.pause() does not reach the parser). */
export function readStop(socket: Socket): void {
  const handle = handleOf(socket);
  if (handle !== null && handle.reading) {
    handle.reading = false;
    handle.readStop();
  }
}

export function readStart(socket: Socket): void {
  const handle = handleOf(socket);
  if (handle !== null && !handle.reading && !socket.destroyed) {
    handle.reading = true;
    handle.readStart();
  }
}
