"use strict";
/**
 * The validated, normalised, frozen configuration. Durations are milliseconds,
 * sizes are bytes, maps from the YAML file become arrays in file order with the
 * key as `name`. Nothing downstream ever sees raw YAML.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.STRATEGY_NAMES = void 0;
exports.STRATEGY_NAMES = [
    'round-robin',
    'weighted-round-robin',
    'least-connections',
    'random',
    'power-of-two',
    'ewma',
    'consistent-hash',
];
//# sourceMappingURL=types.js.map