/**
 * Durations and sizes as written in the config file. Both return undefined for
 * anything they do not accept, so the caller decides how to word the error.
 */
/** "250ms", "5s", "1.5s", "1m", "1h", "0" → milliseconds (rounded to an integer). */
export declare function parseDuration(s: string | number): number | undefined;
/** "512kb", "10mb", "1gb", "100b", "0" → bytes (powers of 1024, case-insensitive). */
export declare function parseSize(s: string | number): number | undefined;
/** The hint shared by every duration error, so the wording is the same everywhere. */
export declare function durationError(value: unknown): string;
export declare function sizeError(value: unknown): string;
