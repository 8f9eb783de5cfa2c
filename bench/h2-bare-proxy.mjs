#!/usr/bin/env node
/**
 * The least an HTTP/2-to-HTTP/2 proxy on node:http2 can do per request, the
 * floor under Fulcrum in bench/h2-proxy.mjs (as the bare undici proxy is
 * for HTTP/1.1 in the shared benchmark): core API on both sides, one session
 * per backend, round robin, the method, path, authority and status passed on
 * and nothing else (no headers, no timeouts, no logging, no metrics).
 *
 *   node bench/h2-bare-proxy.mjs PORT BACKEND_PORT...
 */
import http2 from 'node:http2';

const [port, ...backends] = process.argv.slice(2);
const sessions = backends.map((b) => http2.connect(`http://127.0.0.1:${b}`).on('error', (err) => {
  console.error(`backend ${b}: ${err.message}`);
  process.exit(1);
}));
let next = 0;
const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const session = sessions[next++ % sessions.length];
  const up = session.request({ ':method': headers[':method'], ':path': headers[':path'], ':authority': headers[':authority'] ?? 'localhost' }, { endStream: true });
  // A client that went away (h2load resets its streams when it stops) takes the backend stream with it.
  up.on('response', (h) => {
    if (!stream.destroyed) stream.respond({ ':status': h[':status'], 'content-type': h['content-type'] ?? 'text/plain' });
  });
  up.on('data', (chunk) => {
    if (!stream.destroyed) stream.write(chunk);
  });
  up.on('end', () => stream.end());
  up.on('error', () => stream.destroy());
  stream.on('error', () => up.destroy());
  stream.on('close', () => up.destroy());
});
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
