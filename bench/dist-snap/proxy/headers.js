"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.clientAddress = clientAddress;
exports.forwardRequestHeaders = forwardRequestHeaders;
exports.forwardResponseHeaders = forwardResponseHeaders;
const node_crypto_1 = require("node:crypto");
/**
 * Header passes, in the order they run. Each is a small function over the flat
 * [name, value, name, value, ...] arrays node:http gives (`req.rawHeaders`) and
 * undici takes, so names keep their case and repeated headers stay repeated.
 *
 * Request:  1. drop hop-by-hop headers (RFC 9110 §7.6.1) and collect Connection's tokens
 *           2. drop every header Connection names (but never Host)
 *           3. append X-Forwarded-For, set X-Forwarded-Proto / -Host, keep or make X-Request-Id
 * Response: 1. drop hop-by-hop headers and those Connection names
 */
/** Hop-by-hop on both sides. `expect` is answered by node:http itself; `http2-settings` only rides with h2c upgrades. */
const REQUEST_DROP = new Set([
    'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
    'expect', 'http2-settings',
    // Set by us from what we saw, never trusted from the client.
    'x-forwarded-proto', 'x-forwarded-host',
]);
const RESPONSE_DROP = new Set([
    'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);
/** Connection's tokens other than close/keep-alive, lower-cased; undefined when there are none. */
function connectionTokens(value) {
    if (value === undefined)
        return undefined;
    let tokens;
    for (const raw of value.split(',')) {
        const t = raw.trim().toLowerCase();
        if (t === '' || t === 'close' || t === 'keep-alive')
            continue;
        (tokens ??= new Set()).add(t);
    }
    return tokens;
}
function dropNamed(headers, named, keep) {
    const out = [];
    for (let i = 0; i < headers.length; i += 2) {
        const lower = headers[i].toLowerCase();
        if (named.has(lower) && lower !== keep)
            continue;
        out.push(headers[i], headers[i + 1]);
    }
    return out;
}
/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) is written as "10.0.0.1". */
function clientAddress(remote) {
    if (remote === undefined)
        return '';
    return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}
function forwardRequestHeaders(raw, clientIp, proto) {
    let out = [];
    let connection;
    let xff;
    let requestId;
    let host = '';
    for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i];
        const value = raw[i + 1];
        const lower = name.toLowerCase();
        if (REQUEST_DROP.has(lower)) {
            if (lower === 'connection')
                connection = connection === undefined ? value : `${connection},${value}`;
            continue;
        }
        if (lower === 'x-forwarded-for') {
            xff = xff === undefined ? value : `${xff}, ${value}`;
            continue;
        }
        else if (lower === 'host') {
            host = value;
        }
        else if (lower === 'x-request-id' && requestId === undefined) {
            requestId = value;
        }
        out.push(name, value);
    }
    const named = connectionTokens(connection);
    if (named !== undefined)
        out = dropNamed(out, named, 'host');
    out.push('x-forwarded-for', xff === undefined ? clientIp : `${xff}, ${clientIp}`);
    out.push('x-forwarded-proto', proto);
    if (host !== '')
        out.push('x-forwarded-host', host);
    if (requestId === undefined || named?.has('x-request-id')) {
        requestId = (0, node_crypto_1.randomUUID)();
        out.push('x-request-id', requestId);
    }
    return { headers: out, requestId, host };
}
/** undici hands response headers as raw latin1 buffers; node:http takes a flat string list. */
function forwardResponseHeaders(raw) {
    let out = [];
    let connection;
    for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toString('latin1');
        const value = raw[i + 1].toString('latin1');
        const lower = name.toLowerCase();
        if (RESPONSE_DROP.has(lower)) {
            if (lower === 'connection')
                connection = connection === undefined ? value : `${connection},${value}`;
            continue;
        }
        out.push(name, value);
    }
    const named = connectionTokens(connection);
    if (named !== undefined)
        out = dropNamed(out, named, '');
    return out;
}
//# sourceMappingURL=headers.js.map