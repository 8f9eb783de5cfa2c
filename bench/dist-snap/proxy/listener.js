"use strict";
var __importDefault = (this && this.__importDefault) || function (mod) {
    return (mod && mod.__esModule) ? mod : { "default": mod };
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.ProxyListener = void 0;
exports.poolTarget = poolTarget;
const node_http_1 = __importDefault(require("node:http"));
const sticky_1 = require("../pool/sticky");
const router_1 = require("./router");
const headers_1 = require("./headers");
const exchange_1 = require("./exchange");
const local_response_1 = require("./local-response");
const node_crypto_1 = require("node:crypto");
const NO_KEY = {};
function poolTarget(pool) {
    const { config } = pool;
    return {
        pool,
        hashKey: config.strategy === 'consistent-hash' ? hashKeyExtractor(config.hashOn ?? { kind: 'ip' }) : null,
        sticky: config.sticky !== undefined ? new sticky_1.Sticky(pool, config.sticky.cookie) : undefined,
    };
}
function hashKeyExtractor(on) {
    switch (on.kind) {
        case 'ip': return (_req, ip) => ip;
        case 'path': return (_req, _ip, path) => {
            const q = path.indexOf('?');
            return q === -1 ? path : path.slice(0, q);
        };
        case 'header': {
            const name = on.name;
            return (req) => {
                const v = req.headers[name];
                return Array.isArray(v) ? v.join(',') : v;
            };
        }
        case 'cookie': {
            const name = on.name;
            return (req) => (req.headers.cookie === undefined ? undefined : (0, sticky_1.readCookie)(req.headers.cookie, name));
        }
    }
}
/**
 * One listener: a node:http server whose request handler matches the
 * precomputed routes and hands the request to an Exchange.
 */
class ProxyListener {
    name;
    config;
    server;
    #router;
    #observer;
    #proto;
    constructor(config, targets, observer) {
        this.name = config.name;
        this.config = config;
        this.#observer = observer;
        this.#proto = config.tls !== undefined ? 'https' : 'http';
        this.#router = new router_1.Router(config.routes, (name) => targets.get(name));
        this.server = node_http_1.default.createServer({
            headersTimeout: config.limits.headersTimeoutMs,
            // The whole-request timeout would cut off long uploads; slow headers are
            // what headersTimeout is for.
            requestTimeout: 0,
            // How often node:http looks for connections past headersTimeout (default 30s).
            connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
            keepAliveTimeout: 65_000,
            noDelay: true,
        }, this.#handle);
    }
    #handle = (req, res) => {
        const startedAt = performance.now();
        const ip = (0, headers_1.clientAddress)(req.socket.remoteAddress);
        let url = req.url;
        if (url.charCodeAt(0) !== 47 /* / */) {
            // RFC 9112 §3.2.2 absolute-form: route and forward on the path only, to
            // one of our own backends, whatever host the target names.
            const path = originForm(url);
            if (path === undefined) {
                this.#answer(req, res, ip, startedAt, 400, local_response_1.LOCAL_MESSAGES[400]);
                return;
            }
            url = path;
        }
        const route = this.#router.match(req.headers.host, url);
        if (route === undefined) {
            this.#answer(req, res, ip, startedAt, 404, local_response_1.LOCAL_MESSAGES[404]);
            return;
        }
        const target = route.pool;
        const fwd = (0, headers_1.forwardRequestHeaders)(req.rawHeaders, ip, this.#proto);
        const path = route.stripPrefix && route.pathPrefix !== undefined ? (0, router_1.stripPathPrefix)(url, route.pathPrefix) : url;
        new exchange_1.Exchange({
            listener: this.name,
            observer: this.#observer,
            pool: target.pool,
            req,
            res,
            path,
            headers: fwd.headers,
            requestId: fwd.requestId,
            remoteAddress: ip,
            pick: target.hashKey === null ? NO_KEY : { hashKey: target.hashKey(req, ip, url) },
            sticky: target.sticky,
            preferred: target.sticky?.preferred(req.headers.cookie),
            startedAt,
        }).start();
    };
    /** Fulcrum answers itself (404, 400): logged and counted like any request. */
    #answer(req, res, ip, startedAt, status, message) {
        const sent = req.headers['x-request-id'];
        const requestId = typeof sent === 'string' ? sent : (0, node_crypto_1.randomUUID)();
        const bytes = (0, local_response_1.sendLocal)(res, status, message);
        this.#observer.onRequestEnd({
            listener: this.name,
            method: req.method,
            url: req.url,
            requestId,
            remoteAddress: ip,
            pool: '',
            backend: '',
            status,
            durationMs: performance.now() - startedAt,
            bytes,
            retries: 0,
            error: message,
        });
    }
}
exports.ProxyListener = ProxyListener;
/** "http://host/a?b" → "/a?b"; "*" and anything unparsable → undefined. */
function originForm(target) {
    if (!/^https?:\/\//i.test(target))
        return undefined;
    try {
        const u = new URL(target);
        return u.pathname + u.search;
    }
    catch {
        return undefined;
    }
}
//# sourceMappingURL=listener.js.map