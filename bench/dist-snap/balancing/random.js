"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createRandom = exports.WeightedRandom = void 0;
/**
 * Uniform when all weights are equal, weighted otherwise. `update` precomputes
 * cumulative weights; a weighted pick is one random draw and a binary search
 * for the first cumulative weight above `r * total`.
 */
class WeightedRandom {
    #random;
    #last;
    #cumulative = new Float64Array(0);
    #total = 0;
    #uniform = true;
    constructor(random) {
        this.#random = random;
    }
    update(available) {
        const n = available.length;
        if (this.#cumulative.length !== n)
            this.#cumulative = new Float64Array(n);
        let total = 0;
        let uniform = true;
        for (let i = 0; i < n; i++) {
            const w = available[i].weight;
            if (w !== available[0].weight)
                uniform = false;
            total += w;
            this.#cumulative[i] = total;
        }
        this.#total = total;
        this.#uniform = uniform;
        this.#last = available;
    }
    pick(available) {
        const n = available.length;
        const r = this.#random();
        if (available === this.#last) {
            if (this.#uniform)
                return available[Math.min(Math.floor(r * n), n - 1)];
            const target = r * this.#total;
            const cumulative = this.#cumulative;
            let lo = 0;
            let hi = n - 1;
            while (lo < hi) {
                const mid = (lo + hi) >>> 1;
                if (cumulative[mid] > target)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            return available[lo];
        }
        // Subset (rare): compute over the given array, two passes, no allocation.
        let total = 0;
        let uniform = true;
        for (let i = 0; i < n; i++) {
            total += available[i].weight;
            if (available[i].weight !== available[0].weight)
                uniform = false;
        }
        if (uniform)
            return available[Math.min(Math.floor(r * n), n - 1)];
        const target = r * total;
        let sum = 0;
        for (let i = 0; i < n - 1; i++) {
            sum += available[i].weight;
            if (sum > target)
                return available[i];
        }
        return available[n - 1];
    }
}
exports.WeightedRandom = WeightedRandom;
const createRandom = (deps) => new WeightedRandom(deps.random);
exports.createRandom = createRandom;
//# sourceMappingURL=random.js.map