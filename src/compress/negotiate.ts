import type { CompressionAlgorithm } from '../config/types';

/** Accept-Encoding values seen, with what they chose; browsers send a handful of distinct ones. */
const MAX_REMEMBERED = 512;

/**
 * The algorithm an Accept-Encoding value asks for (RFC 9110 §12.5.3): the
 * highest q-value among `algorithms` wins, their order breaks ties; `*`
 * stands for any coding not named; q=0 refuses; `x-gzip` is gzip (§8.4.1.3).
 * Undefined: none is acceptable. Results are remembered per value, so a
 * request costs one Map lookup.
 */
export class Negotiator {
  readonly #algorithms: readonly CompressionAlgorithm[];
  readonly #seen = new Map<string, CompressionAlgorithm | null>();

  constructor(algorithms: readonly CompressionAlgorithm[]) {
    this.#algorithms = algorithms;
  }

  choose(acceptEncoding: string | undefined): CompressionAlgorithm | undefined {
    if (acceptEncoding === undefined || acceptEncoding === '') return undefined;
    let chosen = this.#seen.get(acceptEncoding);
    if (chosen === undefined) {
      chosen = pick(acceptEncoding, this.#algorithms) ?? null;
      if (this.#seen.size >= MAX_REMEMBERED) this.#seen.clear();
      this.#seen.set(acceptEncoding, chosen);
    }
    return chosen ?? undefined;
  }
}

export function pick(acceptEncoding: string, algorithms: readonly CompressionAlgorithm[]): CompressionAlgorithm | undefined {
  const q = new Map<string, number>();
  for (const part of acceptEncoding.split(',')) {
    const [rawName, ...params] = part.split(';');
    let name = rawName!.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m !== null) weight = Math.min(1, Number(m[1]) || 0);
    }
    // A coding named twice keeps its best weight.
    q.set(name, Math.max(weight, q.get(name) ?? 0));
  }
  const star = q.get('*');
  let best: CompressionAlgorithm | undefined;
  let bestQ = 0;
  for (const a of algorithms) {
    const weight = q.get(a) ?? star ?? 0;
    if (weight > bestQ) {
      best = a;
      bestQ = weight;
    }
  }
  return best;
}
