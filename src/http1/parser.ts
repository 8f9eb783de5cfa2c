import { Socket } from 'node:net';

/**
 * Node's own llhttp binding (`_http_common.HTTPParser`), the parser node:http
 * uses on both sides, with the same strict settings. Http1Server reads client
 * requests with it and UpstreamClient reads backend responses.
 *
 * The binding is internal to Node (`node:_http_*` is deprecated, DEP0199), so
 * it is not trusted on its shape alone: at load, `selfTest` drives it through
 * the same callback protocol the server and the client use. When it is
 * missing, fails that test, or `FULCRUM_HTTP1=node` asks for it,
 * `llhttpAvailable` is false and both fall back: plain listeners to
 * node:http, `http://` backends to undici. `http1Engine` says which was taken
 * and why; the server logs it at start (see README, "Supported Node.js").
 *
 * Why not undici's WebAssembly llhttp: scripts/parser-bench.mjs and the
 * README's design notes.
 */

/** Callbacks are called with `this` = the parser; `conn` is whatever owns it. */
export interface Parser<Conn = unknown> {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  consume(handle: unknown): void;
  unconsume(): void;
  getCurrentBuffer(): Buffer;
  execute(data: Buffer): Error | number;
  finish(): Error | number | undefined | null;
  /** Parse bytes read in JS (the rest of a read a PROXY protocol header began: src/proxy-protocol/accept.ts). */
  execute(data: Buffer): Error | number;
  remove(): void;
  close(): void;
  [callback: number]: unknown;
  conn: Conn | null;
}

export interface ParserModule {
  HTTPParser: (new () => Parser) & Record<string, number>;
  methods: string[];
}

const BINDING_MEMBERS = ['consume', 'unconsume', 'getCurrentBuffer', 'initialize', 'execute', 'finish', 'remove', 'close'];
const BINDING_CONSTANTS = ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'];

function loadParser(): { module: ParserModule } | { reason: string } {
  let m: Partial<ParserModule>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    m = require('_http_common') as Partial<ParserModule>;
  } catch (err) {
    return { reason: `require('_http_common') failed: ${(err as Error).message}` };
  }
  const P = m.HTTPParser;
  if (typeof P !== 'function' || !Array.isArray(m.methods)) return { reason: '_http_common has no HTTPParser or methods' };
  const proto = P.prototype as Record<string, unknown>;
  const member = BINDING_MEMBERS.find((f) => typeof proto[f] !== 'function');
  if (member !== undefined) return { reason: `HTTPParser has no ${member}()` };
  const constant = BINDING_CONSTANTS.find((k) => typeof P[k] !== 'number');
  if (constant !== undefined) return { reason: `HTTPParser has no ${constant}` };
  // consume() and readStart() below reach the socket's libuv handle.
  if (!('_handle' in new Socket())) return { reason: 'net.Socket has no _handle' };
  return { module: m as ParserModule };
}

// ---- the self-test ---------------------------------------------------------

/** What the callbacks saw of one message, collected the way http1.ts and upstream.ts collect it. */
interface Seen {
  major: number;
  minor: number;
  headers: string[];
  method: string | undefined;
  url: string;
  status: number;
  upgrade: boolean;
  keepAlive: boolean;
  body: string;
  /** Trailer fields: the binding hands them to onHeaders just before onMessageComplete. */
  trailers: string[];
  complete: boolean;
}

/**
 * Feed `pieces` (one execute() each, as reads would come) to a fresh parser
 * and record each message. `answer` is what onHeadersComplete returns for a
 * message (0: read its body; 1: it has none, as HEAD and 1xx; 2: stop, an
 * upgrade). Returns the messages, and what the last execute() returned.
 */
function drive(mod: ParserModule, type: 'REQUEST' | 'RESPONSE', pieces: string[], answer: (m: Seen) => number): { seen: Seen[]; ret: unknown } {
  const P = mod.HTTPParser;
  const parser = new P();
  parser.initialize(P[type], {}, 0, 0);
  const seen: Seen[] = [];
  let pieceHeaders: string[] = [];
  let pieceUrl = '';
  let current: Seen | undefined;
  parser[P.kOnHeaders] = (headers: string[], url: string) => {
    pieceHeaders.push(...headers);
    pieceUrl += url;
  };
  parser[P.kOnHeadersComplete] = (
    major: number, minor: number, headers: string[] | undefined, method: number, url: string | undefined,
    status: number, _message: unknown, upgrade: boolean, keepAlive: boolean,
  ): number => {
    current = {
      major, minor, headers: headers ?? pieceHeaders, method: type === 'REQUEST' ? mod.methods[method] : undefined,
      url: url ?? pieceUrl, status, upgrade: upgrade === true, keepAlive: keepAlive === true, body: '', trailers: [], complete: false,
    };
    pieceHeaders = [];
    pieceUrl = '';
    seen.push(current);
    return answer(current);
  };
  // Nothing thrown from a callback: how the binding passes an exception on differs between lines.
  let notBuffer = false;
  parser[P.kOnBody] = (chunk: unknown) => {
    if (Buffer.isBuffer(chunk)) current!.body += chunk.toString('latin1');
    else notBuffer = true;
  };
  parser[P.kOnMessageComplete] = () => {
    current!.complete = true;
    // Trailers (the callers drop them) must not become the next message's headers.
    current!.trailers = pieceHeaders;
    pieceHeaders = [];
    pieceUrl = '';
  };
  let ret: unknown;
  try {
    for (const piece of pieces) {
      ret = (parser as unknown as { execute(b: Buffer): unknown }).execute(Buffer.from(piece, 'latin1'));
      if (typeof ret !== 'number') break;
    }
  } finally {
    parser.close();
  }
  if (notBuffer) throw new Error('a body chunk is not a Buffer');
  return { seen, ret };
}

const CANNED_REQUESTS = 'POST /a?b=1 HTTP/1.1\r\nHost: t\r\nX-Two: 1\r\nX-Two: 2\r\nTransfer-Encoding: chunked\r\n\r\n'
  + '5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'
  + 'GET /next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
const CANNED_UPGRADE = 'GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
const CANNED_RESPONSES = 'HTTP/1.1 100 Continue\r\n\r\n'
  + 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n'
  + 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n' // the answer to a HEAD: no body follows
  + 'HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno';

/**
 * Parse canned requests and responses through the binding with the callback
 * protocol Http1Server and UpstreamClient rely on (argument positions,
 * headers as a flat list, return values 1 and 2, Buffer body chunks, keep-alive
 * as the binding decides it, headers split over reads) and compare with what
 * that code expects. Returns why it differs, or undefined.
 */
export function selfTest(mod: ParserModule): string | undefined {
  try {
    const want: Seen[] = [
      { major: 1, minor: 1, headers: ['Host', 't', 'X-Two', '1', 'X-Two', '2', 'Transfer-Encoding', 'chunked'], method: 'POST', url: '/a?b=1', status: 0, upgrade: false, keepAlive: true, body: 'hello world', trailers: ['X-Trailer', 't'], complete: true },
      { major: 1, minor: 1, headers: ['Host', 't', 'Connection', 'close'], method: 'GET', url: '/next', status: 0, upgrade: false, keepAlive: false, body: '', trailers: [], complete: true },
    ];
    // Whole, then split inside the headers and inside a chunk (two reads).
    for (const at of [CANNED_REQUESTS.length, 30, 80]) {
      const { seen, ret } = drive(mod, 'REQUEST', [CANNED_REQUESTS.slice(0, at), CANNED_REQUESTS.slice(at)].filter((p) => p !== ''), () => 0);
      if (typeof ret !== 'number') return `a canned request was refused: execute() returned ${String((ret as Error)?.message ?? ret)}`;
      for (const s of seen) s.status = 0; // not a response: whatever the binding passes
      if (JSON.stringify(seen) !== JSON.stringify(want)) return `canned requests (split at ${at}): got ${JSON.stringify(seen)}`;
    }
    const up = drive(mod, 'REQUEST', [`${CANNED_UPGRADE}tunnel bytes`], () => 2);
    if (up.seen.length !== 1 || !up.seen[0].upgrade || up.seen[0].url !== '/ws') return `a canned upgrade: got ${JSON.stringify(up.seen)}`;
    if (up.ret !== CANNED_UPGRADE.length) return `a canned upgrade: execute() returned ${String(up.ret)}, not where the tunnel starts (${CANNED_UPGRADE.length})`;
    // 1 for the 100 (no body, the final response follows) and for the answer to HEAD.
    const answers = [1, 0, 1, 0];
    let n = 0;
    const res = drive(mod, 'RESPONSE', [CANNED_RESPONSES], () => answers[n++] ?? 0);
    if (typeof res.ret !== 'number') return `a canned response was refused: execute() returned ${String((res.ret as Error)?.message ?? res.ret)}`;
    const got = res.seen.map((m) => `${m.major}.${m.minor} ${m.status} [${m.headers.join(',')}] keepAlive=${m.keepAlive} body=${JSON.stringify(m.body)} complete=${m.complete}`);
    const expected = [
      '1.1 100 [] keepAlive=true body="" complete=true',
      '1.1 200 [Content-Type,text/plain,Transfer-Encoding,chunked] keepAlive=true body="abcdefg" complete=true',
      '1.1 200 [Content-Length,5] keepAlive=true body="" complete=true',
      '1.0 404 [Content-Length,2] keepAlive=false body="no" complete=true',
    ];
    if (got.join('\n') !== expected.join('\n')) return `canned responses: got ${JSON.stringify(got)}`;
    return undefined;
  } catch (err) {
    return `the self-test threw: ${(err as Error).message}`;
  }
}

// ---- the choice ------------------------------------------------------------

export interface Http1Engine {
  /** `llhttp`: Node's binding (Http1Server, UpstreamClient); `node`: node:http and undici. */
  readonly engine: 'llhttp' | 'node';
  /** Why the fallback was taken (undefined for llhttp). */
  readonly reason?: string;
  /** The fallback was asked for (FULCRUM_HTTP1=node), not forced by the binding. */
  readonly forced: boolean;
  /** FULCRUM_HTTP1 holds a value Fulcrum does not know: refuse to start (see FulcrumServer). */
  readonly invalidSetting?: string;
}

function choose(setting: string | undefined): { engine: Http1Engine; module: ParserModule | undefined } {
  const loaded = loadParser();
  const module = 'module' in loaded ? loaded.module : undefined;
  const invalidSetting = setting !== undefined && setting !== '' && setting !== 'node' ? setting : undefined;
  if (setting === 'node') return { engine: { engine: 'node', forced: true, reason: 'FULCRUM_HTTP1=node' }, module };
  const reason = 'reason' in loaded ? loaded.reason : selfTest(loaded.module);
  return { engine: reason === undefined ? { engine: 'llhttp', forced: false, invalidSetting } : { engine: 'node', forced: false, reason, invalidSetting }, module };
}

const chosen = choose(process.env.FULCRUM_HTTP1);
const parserModule = chosen.module;
/** Which HTTP/1.1 code serves plain listeners and reaches http:// backends, and why. */
export const http1Engine: Http1Engine = chosen.engine;
/** True when Http1Server and UpstreamClient are used: the binding passed its self-test and no fallback was asked for. */
export const llhttpAvailable = http1Engine.engine === 'llhttp';
/** The binding (also when the fallback was asked for: tests drive Http1Server directly). */
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

/** The start-up refusal for an unknown FULCRUM_HTTP1 value, or undefined. */
export function http1SettingProblem(engine: Http1Engine = http1Engine): string | undefined {
  if (engine.invalidSetting === undefined) return undefined;
  return `FULCRUM_HTTP1=${JSON.stringify(engine.invalidSetting)} is not a value Fulcrum knows: use FULCRUM_HTTP1=node (node:http and undici for HTTP/1.1) or leave it unset`;
}

/** The one line logged at start when the fallback is in use (warn unless it was asked for), or undefined. */
export function http1FallbackNotice(engine: Http1Engine = http1Engine): { level: 'info' | 'warn'; reason: string; msg: string } | undefined {
  if (engine.engine === 'llhttp') return undefined;
  const msg = engine.forced
    ? 'HTTP/1.1 fallback (FULCRUM_HTTP1=node): plain listeners on node:http, http:// backends through undici'
    : "HTTP/1.1 fallback: Node's parser binding is not the one Fulcrum expects; plain listeners on node:http, http:// backends through undici";
  return { level: engine.forced ? 'info' : 'warn', reason: engine.reason ?? '', msg };
}
