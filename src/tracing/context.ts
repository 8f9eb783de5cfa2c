import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): reading a
 * client's `traceparent` and making the ids of new spans and traces.
 */

/** What a valid `traceparent` says. */
export interface ParentContext {
  /** 32 lower-case hex digits, not all zero. */
  readonly traceId: string;
  /** The client's span: 16 lower-case hex digits, not all zero. */
  readonly spanId: string;
  readonly sampled: boolean;
}

/** version "00": 2 + 1 + 32 + 1 + 16 + 1 + 2 characters (§3.2.2). */
const VERSION_00_LENGTH = 55;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/**
 * A client's traceparent, or undefined when it is absent or malformed (then
 * Fulcrum starts a trace of its own, §4.3). Two traceparent fields reach here
 * joined by a comma, which no valid value holds: treated as absent too.
 * Versions after 00 may carry more fields after a dash (§4.3); "ff" is invalid.
 */
export function parseTraceparent(value: string | string[] | undefined): ParentContext | undefined {
  if (typeof value !== 'string' || value.length < VERSION_00_LENGTH) return undefined;
  const m = TRACEPARENT.exec(value);
  if (m === null) return undefined;
  const version = m[1]!;
  if (version === 'ff' || (version === '00' && value.length !== VERSION_00_LENGTH)) return undefined;
  const traceId = m[2]!;
  const spanId = m[3]!;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId, spanId, sampled: (parseInt(m[4]!, 16) & 1) === 1 };
}

/** The traceparent a backend receives: version 00, flag 01 (sampled) or 00. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * Random ids cut from a hex string of 4 KiB of random bytes, made again when
 * used up: one randomFillSync and one hex conversion per 256 span ids, and a
 * substring per id, instead of a call into C++ for each (crypto.randomBytes
 * costs about a microsecond a call). Ids are unguessable as W3C recommends
 * (§6.2), never all zero.
 *
 * Each refill is a new buffer, never written again: after each id,
 * `bytes` and `at` say where its bytes are, and a span keeps them so the
 * exporter copies them rather than decoding the hex (otlp.ts, SpanData).
 */
export class IdSource {
  /** The buffer the last id came from, and where its bytes start in it. */
  bytes: Buffer = NO_BYTES;
  at = 0;
  #pool: Buffer = NO_BYTES;
  #hex = '';
  /** The next unused byte of #pool. */
  #next = 0;

  #take(length: number): string {
    if (this.#next + length > this.#pool.length) {
      this.#pool = randomFillSync(Buffer.allocUnsafeSlow(4096));
      this.#hex = this.#pool.toString('hex');
      this.#next = 0;
    }
    const at = this.#next;
    this.#next = at + length;
    this.bytes = this.#pool;
    this.at = at;
    return this.#hex.substring(2 * at, 2 * (at + length));
  }

  traceId(): string {
    const id = this.#take(16);
    return id === ZERO_TRACE ? this.traceId() : id;
  }

  spanId(): string {
    const id = this.#take(8);
    return id === ZERO_SPAN ? this.spanId() : id;
  }
}
