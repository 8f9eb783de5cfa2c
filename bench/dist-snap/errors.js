"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.ConfigError = exports.FulcrumError = void 0;
exports.formatProblem = formatProblem;
exports.isFulcrumError = isFulcrumError;
class FulcrumError extends Error {
    code;
    constructor(code, message) {
        super(message);
        this.name = 'FulcrumError';
        this.code = code;
    }
}
exports.FulcrumError = FulcrumError;
function formatProblem(p) {
    return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}
class ConfigError extends FulcrumError {
    problems;
    constructor(problems) {
        super('FULCRUM_CONFIG_INVALID', problems.map(formatProblem).join('\n'));
        this.problems = problems;
    }
}
exports.ConfigError = ConfigError;
function isFulcrumError(err) {
    return typeof err === 'object' && err !== null && typeof err.code === 'string'
        && err.code.startsWith('FULCRUM_');
}
//# sourceMappingURL=errors.js.map