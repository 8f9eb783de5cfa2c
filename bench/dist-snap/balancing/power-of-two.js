"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createPowerOfTwo = exports.PowerOfTwo = void 0;
/**
 * Power of two choices (Mitzenmacher; Traefik's p2c/p2c.go, Envoy's least
 * request with choice_count 2): draw two distinct backends uniformly and take
 * the one with fewer requests in flight; on a tie, the first drawn. O(1).
 */
class PowerOfTwo {
    #random;
    constructor(random) {
        this.#random = random;
    }
    pick(available) {
        const n = available.length;
        if (n === 1)
            return available[0];
        const i = Math.min(Math.floor(this.#random() * n), n - 1);
        // Second draw over the n - 1 others, skipping i, so the two are distinct.
        let j = Math.min(Math.floor(this.#random() * (n - 1)), n - 2);
        if (j >= i)
            j++;
        const first = available[i];
        const second = available[j];
        return second.inFlight < first.inFlight ? second : first;
    }
    update() {
        // Nothing to precompute: in-flight counts are read live.
    }
}
exports.PowerOfTwo = PowerOfTwo;
const createPowerOfTwo = (deps) => new PowerOfTwo(deps.random);
exports.createPowerOfTwo = createPowerOfTwo;
//# sourceMappingURL=power-of-two.js.map