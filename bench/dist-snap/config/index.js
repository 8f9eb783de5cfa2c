"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.STRATEGY_NAMES = exports.parseSize = exports.parseDuration = exports.parseConfig = exports.loadConfig = void 0;
/** The config module: read, validate, normalise and freeze the YAML config file. */
var load_1 = require("./load");
Object.defineProperty(exports, "loadConfig", { enumerable: true, get: function () { return load_1.loadConfig; } });
Object.defineProperty(exports, "parseConfig", { enumerable: true, get: function () { return load_1.parseConfig; } });
var units_1 = require("./units");
Object.defineProperty(exports, "parseDuration", { enumerable: true, get: function () { return units_1.parseDuration; } });
Object.defineProperty(exports, "parseSize", { enumerable: true, get: function () { return units_1.parseSize; } });
var types_1 = require("./types");
Object.defineProperty(exports, "STRATEGY_NAMES", { enumerable: true, get: function () { return types_1.STRATEGY_NAMES; } });
//# sourceMappingURL=index.js.map