/**
 * Durations and sizes as written in the config file. Both return undefined for
 * anything they do not accept, so the caller decides how to word the error.
 */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** "250ms", "5s", "1.5s", "1m", "1h", "0" → milliseconds (rounded to an integer). */
export function parseDuration(s: string | number): number | undefined {
  if (s === 0 || s === '0') return 0;
  if (typeof s !== 'string') return undefined;
  const m = DURATION.exec(s.trim());
  if (m === null) return undefined;
  const ms = Number(m[1]) * DURATION_MS[m[2]!]!;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

const SIZE = /^(\d+(?:\.\d+)?)(b|kb|mb|gb)$/i;
const SIZE_BYTES: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** "512kb", "10mb", "1gb", "100b", "0" → bytes (powers of 1024, case-insensitive). */
export function parseSize(s: string | number): number | undefined {
  if (s === 0 || s === '0') return 0;
  if (typeof s !== 'string') return undefined;
  const m = SIZE.exec(s.trim());
  if (m === null) return undefined;
  const bytes = Number(m[1]) * SIZE_BYTES[m[2]!.toLowerCase()]!;
  return Number.isFinite(bytes) ? Math.floor(bytes) : undefined;
}

/**
 * The longest duration Node's timers honour: setTimeout and setInterval turn
 * anything above 2^31-1 ms (about 24.8 days) into 1 ms, with only a warning
 * (https://nodejs.org/api/timers.html#settimeoutcallback-delay-args), so a
 * longer value would fire at once, not late.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** The hint shared by every duration error, so the wording is the same everywhere. */
export function durationError(value: unknown): string {
  return `invalid duration ${show(value)}: use a number with ms, s, m or h, e.g. 5s`;
}

export function durationTooLongError(value: unknown): string {
  return `duration ${show(value)} is too long: at most ${MAX_DURATION_MS}ms (about 24.8 days, the longest timer Node.js keeps)`;
}

export function sizeError(value: unknown): string {
  return `invalid size ${show(value)}: use a number with b, kb, mb or gb, e.g. 10mb`;
}

/** A value as a one-line quote for messages: strings quoted, maps and lists named, never "[object Object]". */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a map';
  return String(value);
}
