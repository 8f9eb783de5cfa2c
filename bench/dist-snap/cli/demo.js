"use strict";
var __importDefault = (this && this.__importDefault) || function (mod) {
    return (mod && mod.__esModule) ? mod : { "default": mod };
};
Object.defineProperty(exports, "__esModule", { value: true });
exports.startDemoBackend = startDemoBackend;
const node_http_1 = __importDefault(require("node:http"));
/**
 * The demo's backends: tiny services that say who they are, echo what they
 * received (so the forwarded headers can be seen) and answer health probes.
 */
function startDemoBackend(name, host, port) {
    const server = node_http_1.default.createServer((req, res) => {
        if (req.url === '/healthz') {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('ok\n');
            return;
        }
        const body = JSON.stringify({
            backend: name,
            method: req.method,
            url: req.url,
            headers: {
                host: req.headers.host,
                'x-forwarded-for': req.headers['x-forwarded-for'],
                'x-forwarded-proto': req.headers['x-forwarded-proto'],
                'x-forwarded-host': req.headers['x-forwarded-host'],
                'x-request-id': req.headers['x-request-id'],
            },
        }, null, 2);
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'x-backend': name });
        res.end(`${body}\n`);
    });
    return new Promise((resolve, reject) => {
        server.once('error', (err) => reject(new Error(`demo backend ${name} cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)));
        server.listen(port, host, () => resolve(server));
    });
}
//# sourceMappingURL=demo.js.map