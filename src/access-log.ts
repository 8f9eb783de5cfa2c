import type { RequestRecord } from './proxy/exchange';

/**
 * The access log line (SPEC section 1), in pino's format, two ways that give
 * the same bytes:
 *
 * - `accessLine`: the line as a string, for any line and any stream.
 * - `AccessLineEncoder`: the same line written straight into the log sink's
 *   chunk, byte by byte, with no string in between. A template of thirty
 *   pieces made a rope per request that the sink then flattened and encoded,
 *   and the URL and request id each went through JSON.stringify: together
 *   most of the log's cost per request (bench/RESULTS-session6.md). It takes
 *   only lines whose every character is ASCII and whose URL and request id
 *   need no JSON escape (what nearly every request has); any other line gets
 *   -1 and goes the string way.
 *
 * Listener, pool and backend names and methods are validated token
 * characters, addresses are digits/hex/colons/dots; only the URL, the request
 * id and errors can hold anything, and go through JSON.stringify.
 */
export function accessLine(r: RequestRecord, time: number, pid: number): string {
  const error = r.error === undefined ? '' : `,"error":${JSON.stringify(r.error)}`;
  // With tracing only: without it the line is byte for byte what it was.
  const trace = r.trace === undefined ? '' : `,"traceId":"${r.trace.traceId}"`;
  return `{"level":30,"time":${time},"pid":${pid},"listener":"${r.listener}","method":"${r.method}","url":${JSON.stringify(r.url)},"status":${r.status},"pool":"${r.pool}","backend":"${r.backend}","durationMs":${Math.round(r.durationMs * 1000) / 1000},"bytes":${r.bytes},"requestId":${JSON.stringify(r.requestId)}${trace},"remoteAddress":"${r.remoteAddress}","retries":${r.retries},"grpcStatus":"${r.grpcStatus ?? ''}"${error},"msg":"request"}\n`;
}

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const TIME = bytes('{"level":30,"time":');
const DURATION_END = bytes(',"bytes":');
const REQUEST_ID = bytes(',"requestId":"');
const TRACE_ID = bytes('","traceId":"');
const REMOTE = bytes('","remoteAddress":"');
const RETRIES = bytes('","retries":');
const GRPC = bytes(',"grpcStatus":"');
const ERROR = bytes('","error":');
const MSG = bytes(',"msg":"request"}\n');
const QUOTE_MSG = bytes('","msg":"request"}\n');
/** ".001" ... ".999" without trailing zeros, "" for 0: a duration's thousandths as `String(x / 1000)` writes them. */
const THOUSANDTHS = Array.from({ length: 1000 }, (_, f) => bytes(f === 0 ? '' : `.${String(f).padStart(3, '0')}`.replace(/0+$/, '')));
/** What the kept parts hold besides names, status and address. */
const HEAD_KEYS = ',"pid":,"listener":"","method":"","url":"';
const MIDDLE_KEYS = '","status":,"pool":"","backend":"","durationMs":';
/**
 * Every constant part of a line, and the longest each number can be (pid,
 * time, status, the duration's two parts, bytes, retries): what
 * accessLineBound adds to the strings.
 */
const FIXED = TIME.length + HEAD_KEYS.length + MIDDLE_KEYS.length + DURATION_END.length + REQUEST_ID.length + TRACE_ID.length
  + REMOTE.length + RETRIES.length + GRPC.length + ERROR.length + QUOTE_MSG.length + 7 * 20;
/** Client addresses whose line ending is kept (a client inventing addresses cannot grow it past this). */
const MAX_ENDINGS = 1024;

/** At most how many bytes `AccessLineEncoder.encode` writes for `r`. */
export function accessLineBound(r: RequestRecord): number {
  return FIXED + r.listener.length + r.method.length + r.url.length + r.pool.length + r.backend.length
    + r.requestId.length + r.remoteAddress.length + (r.grpcStatus?.length ?? 0) + (r.trace?.traceId.length ?? 0)
    + (r.error === undefined ? 0 : 6 * r.error.length + 2);
}

/**
 * `accessLine(r, time, pid)`'s bytes, written into a buffer. The parts that
 * repeat from line to line are kept as bytes: the time (many requests end in
 * the same millisecond), what runs from the pid to the URL (listener and
 * method), from the status to the duration (status, pool, backend), and the
 * end of an ordinary line from the client address on. Each is made again
 * when what it was made from differs.
 */
export class AccessLineEncoder {
  readonly #pid: number;
  #time = -1;
  #timeDigits: Buffer = Buffer.alloc(0);
  #listener = '';
  #method = '';
  /** `,"pid":P,"listener":"L","method":"M","url":"` for #listener and #method; null before the first line. */
  #head: Buffer | null = null;
  /** By backend: its pool, the status, and `,"pool":"P","backend":"B","durationMs":` with the status before it. */
  readonly #middles = new Map<string, { pool: string; status: number; bytes: Buffer }>();
  /** By client address: `","remoteAddress":"R","retries":0,"grpcStatus":"","msg":"request"}\n`. */
  readonly #endings = new Map<string, Buffer>();

  constructor(pid: number) {
    this.#pid = pid;
  }

  /**
   * Writes the line into `buf` from `at` (room for accessLineBound(r) bytes);
   * returns where it ends, or -1 when the line must go the string way (buf
   * may then hold a partial line past `at`: nothing the caller counts).
   */
  encode(buf: Buffer, at: number, r: RequestRecord, time: number): number {
    at = put(buf, at, TIME);
    if (time !== this.#time) {
      if (!isCount(time)) return -1;
      this.#timeDigits = bytes(String(time));
      this.#time = time;
    }
    at = put(buf, at, this.#timeDigits);
    const head = this.#headFor(r.listener, r.method);
    if (head === null) return -1;
    at = put(buf, at, head);
    at = plain(buf, at, r.url);
    if (at < 0) return -1;
    const middle = this.#middleFor(r.status, r.pool, r.backend);
    if (middle === null) return -1;
    at = put(buf, at, middle);
    at = milliseconds(buf, at, r.durationMs);
    if (at < 0) return -1;
    at = put(buf, at, DURATION_END);
    at = count(buf, at, r.bytes);
    if (at < 0) return -1;
    at = put(buf, at, REQUEST_ID);
    at = plain(buf, at, r.requestId);
    if (at < 0) return -1;
    if (r.trace !== undefined) {
      at = put(buf, at, TRACE_ID);
      at = ascii(buf, at, r.trace.traceId);
      if (at < 0) return -1;
    }
    if (r.retries === 0 && r.grpcStatus === undefined && r.error === undefined) {
      const ending = this.#endingFor(r.remoteAddress);
      return ending === null ? -1 : put(buf, at, ending);
    }
    at = put(buf, at, REMOTE);
    at = ascii(buf, at, r.remoteAddress);
    if (at < 0) return -1;
    at = put(buf, at, RETRIES);
    at = count(buf, at, r.retries);
    if (at < 0) return -1;
    at = put(buf, at, GRPC);
    if (r.grpcStatus !== undefined) {
      at = ascii(buf, at, r.grpcStatus);
      if (at < 0) return -1;
    }
    if (r.error === undefined) return put(buf, at, QUOTE_MSG);
    at = put(buf, at, ERROR);
    at = ascii(buf, at, JSON.stringify(r.error));
    if (at < 0) return -1;
    return put(buf, at, MSG);
  }

  #headFor(listener: string, method: string): Buffer | null {
    if (this.#head !== null && listener === this.#listener && method === this.#method) return this.#head;
    const head = asciiBytes(`,"pid":${this.#pid},"listener":"${listener}","method":"${method}","url":"`);
    if (head === null) return null;
    this.#listener = listener;
    this.#method = method;
    this.#head = head;
    return head;
  }

  #middleFor(status: number, pool: string, backend: string): Buffer | null {
    const known = this.#middles.get(backend);
    if (known !== undefined && known.status === status && known.pool === pool) return known.bytes;
    if (!isCount(status)) return null;
    const middle = asciiBytes(`","status":${status},"pool":"${pool}","backend":"${backend}","durationMs":`);
    if (middle === null) return null;
    // Backends are few (a pool's, as the config names them); a runtime-added one replaces what was kept if they grow.
    if (this.#middles.size >= MAX_ENDINGS) this.#middles.clear();
    this.#middles.set(backend, { pool, status, bytes: middle });
    return middle;
  }

  #endingFor(remote: string): Buffer | null {
    const known = this.#endings.get(remote);
    if (known !== undefined) return known;
    const ending = asciiBytes(`","remoteAddress":"${remote}","retries":0,"grpcStatus":"","msg":"request"}\n`);
    if (ending === null) return null;
    if (this.#endings.size >= MAX_ENDINGS) this.#endings.clear();
    this.#endings.set(remote, ending);
    return ending;
  }
}

/** `s` as bytes when every character is ASCII; else null. */
function asciiBytes(s: string): Buffer | null {
  const out = Buffer.allocUnsafe(s.length);
  return ascii(out, 0, s) < 0 ? null : out;
}

function put(buf: Buffer, at: number, part: Buffer): number {
  buf.set(part, at);
  return at + part.length;
}

/** `s` as it is, when every character is ASCII (one UTF-8 byte each); else -1. */
function ascii(buf: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return -1;
    buf[at + i] = c;
  }
  return at + s.length;
}

/** `s` inside the quotes JSON.stringify puts around it, when it needs no escape and is ASCII; else -1. */
function plain(buf: Buffer, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7f || c === 0x22 /* " */ || c === 0x5c /* \ */) return -1;
    buf[at + i] = c;
  }
  return at + s.length;
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** A non-negative integer's decimal digits, as String(n); -1 for anything else. */
function count(buf: Buffer, at: number, n: number): number {
  if (!isCount(n)) return -1;
  if (n < 10) {
    buf[at] = 48 + n;
    return at + 1;
  }
  let end = at + 1;
  for (let p = 10; p <= n; p *= 10) end++;
  for (let i = end - 1; i >= at; i--) {
    // Exact for every integer below 2^53 (a Math.floor(n / 10) can round up near it).
    const digit = n % 10;
    buf[i] = 48 + digit;
    n = (n - digit) / 10;
  }
  return end;
}

/**
 * `String(Math.round(ms * 1000) / 1000)`: whole milliseconds, then the
 * thousandths without trailing zeros. The same digits: dividing an integer
 * by 1000 gives the double nearest that three-decimal number, and while the
 * double's step is below a thousandth, the shortest digits that read back as
 * it are those.
 */
function milliseconds(buf: Buffer, at: number, ms: number): number {
  const micros = Math.round(ms * 1000);
  // Up to 2^52 µs (142 years) a thousandth is wider than the double's step, as the argument needs.
  if (!(micros >= 0 && micros < 2 ** 52)) return -1;
  const thousandths = micros % 1000;
  at = count(buf, at, (micros - thousandths) / 1000);
  return put(buf, at, THOUSANDTHS[thousandths]!);
}
