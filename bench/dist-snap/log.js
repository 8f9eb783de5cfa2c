"use strict";
var __importDefault = (this && this.__importDefault) || function (mod) {
    return (mod && mod.__esModule) ? mod : { "default": mod };
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.createLogger = createLogger;
exports.accessLogObserver = accessLogObserver;
exports.combineObservers = combineObservers;
const pino_1 = __importDefault(require("pino"));
/** JSON lines on stdout (SPEC section 1). */
function createLogger(config, destination) {
    return (0, pino_1.default)({ level: config.level, base: { pid: process.pid } }, destination ?? pino_1.default.destination(1));
}
/** The access log: one line per request with the keys SPEC section 1 names. */
function accessLogObserver(logger) {
    return (r) => {
        logger.info({
            listener: r.listener,
            method: r.method,
            url: r.url,
            status: r.status,
            pool: r.pool,
            backend: r.backend,
            durationMs: Math.round(r.durationMs * 1000) / 1000,
            bytes: r.bytes,
            requestId: r.requestId,
            remoteAddress: r.remoteAddress,
            retries: r.retries,
            ...(r.error !== undefined ? { error: r.error } : {}),
        }, 'request');
    };
}
/** Fans each finished request out to whoever listens (access log, metrics). */
function combineObservers(onEnd, onRetry) {
    return {
        onRequestEnd(r) {
            for (let i = 0; i < onEnd.length; i++)
                onEnd[i](r);
        },
        onRetry(pool) {
            for (let i = 0; i < onRetry.length; i++)
                onRetry[i](pool);
        },
    };
}
//# sourceMappingURL=log.js.map