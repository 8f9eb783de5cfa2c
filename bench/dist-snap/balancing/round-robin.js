"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createRoundRobin = exports.RoundRobin = void 0;
/**
 * Each available backend in turn, ignoring weights. Stateless apart from a
 * counter, so `update` has nothing to precompute; a subset (retry) is walked
 * with the same counter, which keeps the rotation going.
 */
class RoundRobin {
    #next = 0;
    pick(available) {
        let i = this.#next;
        if (i >= available.length)
            i = 0;
        this.#next = i + 1;
        return available[i];
    }
    update() {
        // Nothing to precompute: the counter wraps on the next pick if the set shrank.
    }
}
exports.RoundRobin = RoundRobin;
const createRoundRobin = () => new RoundRobin();
exports.createRoundRobin = createRoundRobin;
//# sourceMappingURL=round-robin.js.map