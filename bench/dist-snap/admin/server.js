"use strict";
var __importDefault = (this && this.__importDefault) || function (mod) {
    return (mod && mod.__esModule) ? mod : { "default": mod };
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.AdminServer = void 0;
const node_http_1 = __importDefault(require("node:http"));
const node_crypto_1 = require("node:crypto");
function backendJson(b) {
    return {
        name: b.name,
        url: b.url,
        state: b.state,
        weight: b.configuredWeight,
        backup: b.backup,
        activeRequests: b.inFlight,
        requests: b.requests,
        failures: b.failures,
    };
}
function send(res, status, body) {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
}
function sendError(res, status, message, extra) {
    if (extra !== undefined)
        for (const [k, v] of Object.entries(extra))
            res.setHeader(k, v);
    send(res, status, { error: message });
}
/** Constant-time token check; hashing first makes lengths equal, so length leaks nothing either. */
function tokenMatches(header, token) {
    if (header === undefined || !header.startsWith('Bearer '))
        return false;
    const a = (0, node_crypto_1.createHash)('sha256').update(header.slice(7)).digest();
    const b = (0, node_crypto_1.createHash)('sha256').update(token).digest();
    return (0, node_crypto_1.timingSafeEqual)(a, b);
}
const MAX_BODY = 64 * 1024;
function readJson(req) {
    return new Promise((resolve, reject) => {
        let size = 0;
        const chunks = [];
        req.on('data', (c) => {
            size += c.length;
            if (size > MAX_BODY) {
                reject(new Error('body too large'));
                req.destroy();
                return;
            }
            chunks.push(c);
        });
        req.on('end', () => {
            try {
                resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            }
            catch {
                reject(new Error('body is not valid JSON'));
            }
        });
        req.on('error', reject);
    });
}
/**
 * The admin listener (SPEC section 5). Separate from every proxy listener, so
 * the API is never reachable through a route.
 */
class AdminServer {
    server;
    #config;
    #target;
    constructor(config, target) {
        this.#config = config;
        this.#target = target;
        this.server = node_http_1.default.createServer((req, res) => {
            this.#handle(req, res).catch((err) => {
                if (!res.headersSent)
                    sendError(res, 500, err.message);
                else
                    res.destroy();
            });
        });
    }
    async #handle(req, res) {
        const path = (req.url ?? '/').split('?')[0];
        const method = req.method ?? 'GET';
        if (path === '/healthz') {
            send(res, 200, { status: 'ok' });
            return;
        }
        const token = this.#config.token;
        if (token !== undefined && !tokenMatches(req.headers.authorization, token)) {
            sendError(res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="fulcrum"' });
            return;
        }
        if (path === '/readyz') {
            const ok = this.#target.ready();
            send(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' });
            return;
        }
        if (path === '/api/pools') {
            if (method !== 'GET')
                return sendError(res, 405, 'use GET');
            send(res, 200, {
                pools: this.#target.pools().map((p) => ({
                    name: p.name,
                    strategy: p.config.strategy,
                    backends: p.backends.map(backendJson),
                })),
            });
            return;
        }
        const m = /^\/api\/pools\/([^/]+)\/backends\/([^/]+?)(\/drain|\/enable)?$/.exec(path);
        if (m !== null) {
            const poolName = decodeURIComponent(m[1]);
            const backendName = decodeURIComponent(m[2]);
            const pool = this.#target.pools().find((p) => p.name === poolName);
            if (pool === undefined)
                return sendError(res, 404, `unknown pool "${poolName}"`);
            const backend = pool.get(backendName);
            if (backend === undefined)
                return sendError(res, 404, `unknown backend "${backendName}" in pool "${poolName}"`);
            const action = m[3];
            if (action !== undefined) {
                if (method !== 'POST')
                    return sendError(res, 405, 'use POST');
                if (action === '/drain')
                    pool.transition(backend, 'drain', 'drained by the admin API');
                else
                    pool.transition(backend, 'enable', 'enabled by the admin API');
                send(res, 200, backendJson(backend));
                return;
            }
            if (method === 'PUT') {
                let body;
                try {
                    body = await readJson(req);
                }
                catch (err) {
                    return sendError(res, 400, err.message);
                }
                const weight = body?.weight;
                if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 10000) {
                    return sendError(res, 400, 'weight must be an integer from 1 to 10000');
                }
                pool.setWeight(backend, weight);
                send(res, 200, backendJson(backend));
                return;
            }
            if (method !== 'GET')
                return sendError(res, 405, 'use GET or PUT');
            send(res, 200, { ...backendJson(backend), stateChanges: backend.history });
            return;
        }
        sendError(res, 404, `no such admin endpoint: ${method} ${path}`);
    }
}
exports.AdminServer = AdminServer;
//# sourceMappingURL=server.js.map