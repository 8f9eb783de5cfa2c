import type { RequestRecord } from './proxy/exchange';

/**
 * The access log line (SPEC section 1), in pino's format, two ways that give
 * the same bytes:
 *
 * - `accessLine`: the line as a string, for any line and any stream.
 * - `encodeAccessLine`: the same line written straight into the log sink's
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
const METHOD = bytes('","method":"');
const URL_KEY = bytes('","url":"');
const STATUS = bytes('","status":');
const POOL = bytes(',"pool":"');
const BACKEND = bytes('","backend":"');
const DURATION = bytes('","durationMs":');
const BYTES = bytes(',"bytes":');
const REQUEST_ID = bytes(',"requestId":"');
const TRACE_ID = bytes('","traceId":"');
const REMOTE = bytes('","remoteAddress":"');
const RETRIES = bytes('","retries":');
const GRPC = bytes(',"grpcStatus":"');
const ERROR = bytes('","error":');
const QUOTE_MSG = bytes('","msg":"request"}\n');
const MSG = bytes(',"msg":"request"}\n');
/** ".001" ... ".999" without trailing zeros, "" for 0: a duration's thousandths as `String(x / 1000)` writes them. */
const THOUSANDTHS = Array.from({ length: 1000 }, (_, f) => bytes(f === 0 ? '' : `.${String(f).padStart(3, '0')}`.replace(/0+$/, '')));
/** The constant part of every line and the longest each number can be written: what `accessLineBound` adds to the strings. */
const FIXED = TIME.length + METHOD.length + URL_KEY.length + STATUS.length + POOL.length + BACKEND.length + DURATION.length
  + BYTES.length + REQUEST_ID.length + TRACE_ID.length + REMOTE.length + RETRIES.length + GRPC.length + ERROR.length
  + QUOTE_MSG.length + 6 * 20;

/** The pid and listener key, fixed per process. */
export function pidPart(pid: number): Buffer {
  return bytes(`,"pid":${pid},"listener":"`);
}

/** At most how many bytes `encodeAccessLine` writes for `r` (`pid`: pidPart's). */
export function accessLineBound(r: RequestRecord, pid: Buffer): number {
  return FIXED + pid.length + r.listener.length + r.method.length + r.url.length + r.pool.length + r.backend.length
    + r.requestId.length + r.remoteAddress.length + (r.grpcStatus?.length ?? 0) + (r.trace?.traceId.length ?? 0)
    + (r.error === undefined ? 0 : 6 * r.error.length + 2);
}

/** The last time written and its digits: requests finishing in the same millisecond share them. */
let lastTime = -1;
let lastTimeDigits: Buffer = Buffer.alloc(0);

/**
 * `accessLine(r, time, pid)`'s bytes, written into `buf` from `at` (room for
 * accessLineBound(r) bytes); returns where they end, or -1 when the line must
 * go the string way (buf may then hold a partial line past `at`: nothing the
 * caller counts).
 */
export function encodeAccessLine(buf: Buffer, at: number, r: RequestRecord, time: number, pid: Buffer): number {
  at = put(buf, at, TIME);
  if (time !== lastTime) {
    if (!isCount(time)) return -1;
    lastTimeDigits = bytes(String(time));
    lastTime = time;
  }
  at = put(buf, at, lastTimeDigits);
  at = put(buf, at, pid);
  at = ascii(buf, at, r.listener);
  if (at < 0) return -1;
  at = put(buf, at, METHOD);
  at = ascii(buf, at, r.method);
  if (at < 0) return -1;
  at = put(buf, at, URL_KEY);
  at = plain(buf, at, r.url);
  if (at < 0) return -1;
  at = put(buf, at, STATUS);
  at = count(buf, at, r.status);
  if (at < 0) return -1;
  at = put(buf, at, POOL);
  at = ascii(buf, at, r.pool);
  if (at < 0) return -1;
  at = put(buf, at, BACKEND);
  at = ascii(buf, at, r.backend);
  if (at < 0) return -1;
  at = put(buf, at, DURATION);
  at = milliseconds(buf, at, r.durationMs);
  if (at < 0) return -1;
  at = put(buf, at, BYTES);
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
