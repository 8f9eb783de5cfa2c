/**
 * `pools` (SPEC 8.1): one of several targets per request, by whole-number
 * weight (0 takes nothing). Cumulative weights are computed once; a pick is
 * one random number and a scan of a handful of entries. Randomness is
 * injected (tests pin it).
 */
export class WeightedChoice<T> {
  readonly #targets: readonly T[];
  readonly #cumulative: readonly number[];
  readonly #total: number;
  readonly #random: () => number;

  constructor(entries: readonly { readonly target: T; readonly weight: number }[], random: () => number = Math.random) {
    const targets: T[] = [];
    const cumulative: number[] = [];
    let total = 0;
    for (const e of entries) {
      if (e.weight <= 0) continue;
      total += e.weight;
      targets.push(e.target);
      cumulative.push(total);
    }
    this.#targets = targets;
    this.#cumulative = cumulative;
    this.#total = total;
    this.#random = random;
  }

  pick(): T {
    const r = Math.floor(this.#random() * this.#total);
    const c = this.#cumulative;
    for (let i = 0; i < c.length - 1; i++) if (r < c[i]) return this.#targets[i];
    return this.#targets[c.length - 1];
  }
}
