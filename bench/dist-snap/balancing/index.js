"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.defaultStrategyDeps = exports.murmur3 = exports.updateEwma = void 0;
exports.createStrategy = createStrategy;
const consistent_hash_1 = require("./consistent-hash");
const ewma_1 = require("./ewma");
const least_connections_1 = require("./least-connections");
const power_of_two_1 = require("./power-of-two");
const random_1 = require("./random");
const round_robin_1 = require("./round-robin");
const weighted_round_robin_1 = require("./weighted-round-robin");
var ewma_2 = require("./ewma");
Object.defineProperty(exports, "updateEwma", { enumerable: true, get: function () { return ewma_2.updateEwma; } });
var consistent_hash_2 = require("./consistent-hash");
Object.defineProperty(exports, "murmur3", { enumerable: true, get: function () { return consistent_hash_2.murmur3; } });
/** The registry of names: the config's `strategy` key maps here, and nowhere else. */
const FACTORIES = {
    'round-robin': round_robin_1.createRoundRobin,
    'weighted-round-robin': weighted_round_robin_1.createWeightedRoundRobin,
    'least-connections': least_connections_1.createLeastConnections,
    random: random_1.createRandom,
    'power-of-two': power_of_two_1.createPowerOfTwo,
    ewma: ewma_1.createEwma,
    'consistent-hash': consistent_hash_1.createConsistentHash,
};
/** Real randomness and a monotonic clock; tests inject their own. */
exports.defaultStrategyDeps = Object.freeze({
    random: Math.random,
    now: () => performance.now(),
});
function createStrategy(name, deps, options) {
    const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
    // Config validation rejects unknown names; this guards callers that bypass it.
    if (factory === undefined)
        throw new TypeError(`unknown balancing strategy: ${String(name)}`);
    return factory(deps, options);
}
//# sourceMappingURL=index.js.map