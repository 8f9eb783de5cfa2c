"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createLeastConnections = exports.LeastConnections = void 0;
/**
 * Fewest in-flight requests per unit of weight (inFlight / weight). In-flight
 * counts are read live from the views, so there is nothing to precompute and the
 * pick is one O(n) scan with no allocation.
 *
 * Ties are broken in turn: the scan starts just after the previous winner, and
 * the first minimum found wins, so equal backends alternate instead of the first
 * one taking every tie.
 */
class LeastConnections {
    #start = 0;
    pick(available) {
        const n = available.length;
        let start = this.#start;
        if (start >= n)
            start %= n;
        let best = start;
        let bestScore = available[start].inFlight / available[start].weight;
        for (let k = 1; k < n; k++) {
            let i = start + k;
            if (i >= n)
                i -= n;
            const b = available[i];
            const score = b.inFlight / b.weight;
            if (score < bestScore) {
                bestScore = score;
                best = i;
            }
        }
        this.#start = best + 1;
        return available[best];
    }
    update() {
        // Nothing to precompute: the counts change per request and are read live.
    }
}
exports.LeastConnections = LeastConnections;
const createLeastConnections = () => new LeastConnections();
exports.createLeastConnections = createLeastConnections;
//# sourceMappingURL=least-connections.js.map