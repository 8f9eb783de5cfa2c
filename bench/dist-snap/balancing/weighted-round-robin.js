"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createWeightedRoundRobin = exports.SmoothWeightedRoundRobin = void 0;
/**
 * Smooth weighted round robin, nginx's algorithm (ngx_http_upstream_round_robin.c,
 * `ngx_http_upstream_get_peer`): every pick adds each backend's weight to its
 * current weight, takes the largest (first on ties) and subtracts the total from
 * it. Weights 5,1,1 give a a b a c a a rather than a a a a a b c.
 *
 * The pick is O(n), as in nginx: the schedule has no cheaper exact form, and
 * pools are small. No allocation on either path.
 */
class SmoothWeightedRoundRobin {
    #last;
    #names = [];
    #index = new Map();
    #weights = new Float64Array(0);
    #current = new Float64Array(0);
    #total = 0;
    /** Rotation used only when a subset shares no backend with the last update. */
    #fallback = 0;
    update(available) {
        const n = available.length;
        let same = n === this.#names.length;
        for (let i = 0; same && i < n; i++)
            same = available[i].name === this.#names[i];
        if (!same) {
            // A different set restarts the schedule from a fresh state (all current weights 0).
            this.#names = available.map((b) => b.name);
            this.#index = new Map(this.#names.map((name, i) => [name, i]));
            this.#weights = new Float64Array(n);
            this.#current = new Float64Array(n);
        }
        // Same names in the same order (e.g. slow start moving a weight): keep the position.
        let total = 0;
        for (let i = 0; i < n; i++) {
            const w = available[i].weight;
            this.#weights[i] = w;
            total += w;
        }
        this.#total = total;
        this.#last = available;
    }
    pick(available) {
        if (this.#last === undefined)
            this.update(available);
        const current = this.#current;
        const weights = this.#weights;
        if (available === this.#last) {
            let best = 0;
            let bestCurrent = -Infinity;
            for (let i = 0; i < weights.length; i++) {
                const c = (current[i] = current[i] + weights[i]);
                if (c > bestCurrent) {
                    bestCurrent = c;
                    best = i;
                }
            }
            current[best] = bestCurrent - this.#total;
            return available[best];
        }
        // Subset (retry / full backends): like nginx skipping tried peers, run the same
        // step over the subset only, subtracting the subset's total, so the schedule's
        // sum stays zero and the full set resumes where it was.
        let best = -1;
        let bestIndex = -1;
        let bestCurrent = -Infinity;
        let total = 0;
        for (let j = 0; j < available.length; j++) {
            const i = this.#index.get(available[j].name);
            if (i === undefined)
                continue; // not in the last update: cannot be scheduled
            total += weights[i];
            const c = (current[i] = current[i] + weights[i]);
            if (c > bestCurrent) {
                bestCurrent = c;
                best = j;
                bestIndex = i;
            }
        }
        if (best < 0) {
            let k = this.#fallback;
            if (k >= available.length)
                k = 0;
            this.#fallback = k + 1;
            return available[k];
        }
        current[bestIndex] = bestCurrent - total;
        return available[best];
    }
}
exports.SmoothWeightedRoundRobin = SmoothWeightedRoundRobin;
const createWeightedRoundRobin = () => new SmoothWeightedRoundRobin();
exports.createWeightedRoundRobin = createWeightedRoundRobin;
//# sourceMappingURL=weighted-round-robin.js.map