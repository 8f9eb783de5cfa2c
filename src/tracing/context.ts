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

/**
 * Random ids from a pool refilled 4 KiB at a time: one randomFillSync per 256
 * span ids instead of one per id (crypto.randomBytes costs about a microsecond
 * a call). Ids are unguessable as W3C recommends (§6.2), never all zero.
 */
export class IdSource {
  readonly #pool = Buffer.allocUnsafe(4096);
  #at = this.#pool.length;

  #take(bytes: number): string {
    if (this.#at + bytes > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#at = 0;
    }
    const id = this.#pool.toString('hex', this.#at, this.#at + bytes);
    this.#at += bytes;
    return id;
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
