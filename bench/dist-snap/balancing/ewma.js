"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createEwma = exports.Ewma = void 0;
exports.updateEwma = updateEwma;
/**
 * Time-decayed exponentially weighted moving average of response times, as in
 * Finagle's and Linkerd's peak-EWMA balancers: the weight of the old average is
 * `exp(-elapsed / decay)`, so a backend that has been quiet for a while is
 * judged mostly on its next sample, and a burst of samples in quick succession
 * moves the average slowly. Pure; the pool calls it when a response arrives.
 *
 * @param prevMs    the current average; 0 means no sample yet
 * @param sampleMs  the response time just measured
 * @param elapsedMs time since the previous sample
 * @param decayMs   time constant of the decay
 */
function updateEwma(prevMs, sampleMs, elapsedMs, decayMs = 10_000) {
    if (!Number.isFinite(sampleMs) || sampleMs < 0)
        return prevMs;
    if (!(prevMs > 0) || !(decayMs > 0))
        return sampleMs; // first sample, or no memory
    const elapsed = elapsedMs > 0 ? elapsedMs : 0; // a clock that went backwards counts as no time
    const w = Math.exp(-elapsed / decayMs);
    return prevMs * w + sampleMs * (1 - w);
}
/**
 * Lowest `latencyEwmaMs * (inFlight + 1)`, divided by the weight when weights
 * differ. Backends without a sample yet have an average of 0, so they win until
 * their first response arrives: new backends get tried. Ties are broken in turn
 * (the scan starts after the previous winner). O(n), no allocation.
 */
class Ewma {
    #last;
    #weighted = false;
    #start = 0;
    update(available) {
        this.#weighted = weightsDiffer(available);
        this.#last = available;
    }
    pick(available) {
        const n = available.length;
        const weighted = available === this.#last ? this.#weighted : weightsDiffer(available);
        let start = this.#start;
        if (start >= n)
            start %= n;
        let best = start;
        let bestScore = score(available[start], weighted);
        for (let k = 1; k < n; k++) {
            let i = start + k;
            if (i >= n)
                i -= n;
            const s = score(available[i], weighted);
            if (s < bestScore) {
                bestScore = s;
                best = i;
            }
        }
        this.#start = best + 1;
        return available[best];
    }
}
exports.Ewma = Ewma;
function score(b, weighted) {
    const cost = b.latencyEwmaMs * (b.inFlight + 1);
    return weighted ? cost / b.weight : cost;
}
function weightsDiffer(available) {
    for (let i = 1; i < available.length; i++)
        if (available[i].weight !== available[0].weight)
            return true;
    return false;
}
const createEwma = () => new Ewma();
exports.createEwma = createEwma;
//# sourceMappingURL=ewma.js.map