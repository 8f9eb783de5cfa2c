/**
 * The building blocks of the schema, each with the wording people editing
 * YAML read: leaf values, strict objects that say "did you mean", enums that
 * list their values, whole numbers and durations with their defaults.
 */
import { z } from 'zod';
import { show } from './units';
import { Invalid, durationValue } from './values';

/** Runs a leaf parser; its Invalid becomes a zod issue at this value's path. */
export function leaf<T>(parse: (v: unknown) => T | Invalid) {
  return z.unknown().transform((v, ctx): T => {
    const r = parse(v);
    if (r instanceof Invalid) {
      ctx.addIssue({ code: 'custom', message: r.message, input: v });
      return z.NEVER;
    }
    return r;
  });
}

export function duration(defaultMs: number, positive = false) {
  return leaf((v) => durationValue(v, positive)).default(defaultMs);
}

export function int(min: number, max?: number) {
  const n = z.number().int();
  return max === undefined ? n.min(min) : n.min(min).max(max);
}

/** Keys close to an unknown one, for "did you mean". */
function suggest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const near = suggest(key, allowed);
  return near !== undefined
    ? `unknown key ${JSON.stringify(key)} (did you mean ${JSON.stringify(near)}?)`
    : `unknown key ${JSON.stringify(key)}: expected one of ${allowed.join(', ')}`;
}

/**
 * A strict object. Zod reports all unknown keys of one object in one issue; the
 * message carries one line per key, in the order of `issue.keys`, so that load.ts
 * can point each at its own key in the file.
 */
export function strict<S extends z.ZodRawShape>(shape: S, options: { error?: string } = {}) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? issue.keys.map((k) => unknownKeyMessage(k, allowed)).join('\n')
        : issue.code === 'invalid_type' ? options.error : undefined,
  });
}

export function oneOf<T extends string>(what: string, values: readonly T[]) {
  return z.enum(values as readonly [T, ...T[]], {
    error: (issue) => `unknown ${what} ${show(issue.input)}: expected one of ${values.join(', ')}`,
  });
}
