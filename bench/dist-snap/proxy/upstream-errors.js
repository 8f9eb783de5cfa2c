"use strict";
/**
 * The one place where an upstream failure becomes a status code. Projects
 * disagree here (reply-from sends ENOTFOUND to 503, http-proxy-middleware sends
 * ECONNREFUSED to 504); ours follows SPEC section 4 and is pinned by a table test.
 */
Object.defineProperty(exports, "__esModule", { value: true });
exports.classifyUpstreamError = classifyUpstreamError;
const CONNECT_FAILURE = { kind: 'connect-failure', status: 502, message: 'bad gateway: could not connect to the backend' };
const CONNECT_TIMEOUT = { kind: 'connect-failure', status: 504, message: 'gateway timeout: the backend did not accept the connection in time' };
const RESET = { kind: 'reset', status: 502, message: 'bad gateway: the backend closed the connection' };
const RESPONSE_TIMEOUT = { kind: 'timeout', status: 504, message: 'gateway timeout: the backend did not answer in time' };
const UNAVAILABLE = { kind: 'unavailable', status: 503, message: 'service unavailable: the backend is shutting down' };
const OTHER = { kind: 'error', status: 502, message: 'bad gateway: the backend failed' };
const BY_CODE = {
    // Nothing reached the backend: always safe to try another one.
    ECONNREFUSED: CONNECT_FAILURE,
    EHOSTUNREACH: CONNECT_FAILURE,
    ENETUNREACH: CONNECT_FAILURE,
    EHOSTDOWN: CONNECT_FAILURE,
    ENOTFOUND: CONNECT_FAILURE,
    EAI_AGAIN: CONNECT_FAILURE,
    EADDRNOTAVAIL: CONNECT_FAILURE,
    UND_ERR_CONNECT_TIMEOUT: CONNECT_TIMEOUT,
    // The connection broke after the request (or part of it) went out.
    ECONNRESET: RESET,
    EPIPE: RESET,
    ECONNABORTED: RESET,
    UND_ERR_SOCKET: RESET,
    // No response headers within timeouts.response.
    UND_ERR_HEADERS_TIMEOUT: RESPONSE_TIMEOUT,
    ETIMEDOUT: RESPONSE_TIMEOUT,
    // Our own dispatcher was closed (reload, shutdown) under the request.
    UND_ERR_CLOSED: UNAVAILABLE,
    UND_ERR_DESTROYED: UNAVAILABLE,
};
function classifyUpstreamError(err) {
    const code = typeof err === 'object' && err !== null ? err.code : undefined;
    return (typeof code === 'string' && BY_CODE[code]) || OTHER;
}
//# sourceMappingURL=upstream-errors.js.map