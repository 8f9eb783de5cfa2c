#!/usr/bin/env node
/**
 * Upload over HTTP/2 against HTTP/1.1 on the same TLS port (issue 16: a 1 GiB
 * upload over an h2 listener took 17.6 s against 7.4 s over HTTP/1.1; it must
 * stay within 1.3x).
 *
 *   npm run build
 *   node bench/h2-upload.mjs                 # 3 runs of 1 GiB each way
 *   node bench/h2-upload.mjs --runs 5 --size 512mb [--cli OTHER/dist/cli.js]
 *
 * Starts a sink backend (node:http, counts the bytes, one child process) and
 * Fulcrum (`node dist/cli.js`, one listener with tls and http2: true, a
 * self-signed certificate made with openssl), then per run uploads SIZE
 * bytes with POST once over HTTP/1.1 (https, Content-Length) and once over
 * HTTP/2 (ALPN h2, one stream, Content-Length), in alternating order, each
 * writer respecting backpressure. Prints the seconds of each, their ratio
 * per run, and the median and range of the ratios. Loopback only; children
 * stopped by PID; the temp folder removed.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
}

if (arg('role') === 'sink') {
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d) => { n += d.length; });
    req.on('end', () => res.end(String(n)));
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  await main();
}

function size(s) {
  const m = /^(\d+)(kb|mb|gb)?$/i.exec(s);
  if (!m) throw new Error(`bad --size ${s}`);
  return Number(m[1]) * { kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase()] || Number(m[1]);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Write `total` bytes to `w` in 1 MiB pieces, waiting for 'drain' when told to. */
function pump(w, total) {
  const piece = Buffer.alloc(1 << 20, 0x61);
  let left = total;
  const next = () => {
    while (left > 0) {
      const n = Math.min(left, piece.length);
      left -= n;
      if (left === 0) {
        w.end(n === piece.length ? piece : piece.subarray(0, n));
        return;
      }
      if (!w.write(n === piece.length ? piece : piece.subarray(0, n))) {
        w.once('drain', next);
        return;
      }
    }
  };
  next();
}

function uploadH1(port, total) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = https.request({
      host: '127.0.0.1', port, method: 'POST', path: '/up', rejectUnauthorized: false, agent: false,
      headers: { 'content-length': String(total), host: 'bench' },
    }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => (Number(body) === total ? resolve((performance.now() - started) / 1000) : reject(new Error(`h1: backend got ${body}`))));
    });
    req.on('error', reject);
    pump(req, total);
  });
}

function uploadH2(port, total) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': '/up', 'content-length': String(total) });
    let body = '';
    stream.on('data', (d) => { body += d; });
    stream.on('end', () => {
      session.close();
      if (Number(body) === total) resolve((performance.now() - started) / 1000);
      else reject(new Error(`h2: backend got ${body}`));
    });
    stream.on('error', reject);
    pump(stream, total);
  });
}

async function main() {
  const runs = Number(arg('runs', '3'));
  const total = size(arg('size', '1gb'));
  const cli = path.resolve(arg('cli', path.join(ROOT, 'dist', 'cli.js')));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-h2-upload-'));
  const children = [];
  const stop = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'),
      '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const sink = spawn(process.execPath, [SELF, '--role', 'sink'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(sink);
    const sinkPort = await new Promise((resolve) => sink.once('message', resolve));
    const port = await freePort();
    fs.writeFileSync(path.join(dir, 'f.yaml'), `
log: { access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  tls:
    listen: 127.0.0.1:${port}
    tls: { cert: c.pem, key: k.pem }
    http2: true
    routes: [{ pool: sink }]
pools:
  sink: { backends: [{ url: http://127.0.0.1:${sinkPort} }], timeouts: { response: 10m } }
`);
    const fulcrum = spawn(process.execPath, [cli, '--config', path.join(dir, 'f.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(fulcrum);
    await waitListening(port);
    process.stderr.write(`${runs} runs of ${total} bytes each way through ${path.relative(process.cwd(), cli)}\n`);
    const ratios = [];
    const rows = [];
    for (let r = 0; r < runs; r++) {
      let h1;
      let h2;
      if (r % 2 === 0) {
        h1 = await uploadH1(port, total);
        h2 = await uploadH2(port, total);
      } else {
        h2 = await uploadH2(port, total);
        h1 = await uploadH1(port, total);
      }
      ratios.push(h2 / h1);
      rows.push({ run: r + 1, h1, h2 });
      process.stderr.write(`run ${r + 1}: HTTP/1.1 ${h1.toFixed(2)} s, HTTP/2 ${h2.toFixed(2)} s, h2/h1 ${(h2 / h1).toFixed(2)}\n`);
    }
    const h1s = rows.map((x) => x.h1);
    const h2s = rows.map((x) => x.h2);
    console.log(`HTTP/1.1 median ${median(h1s).toFixed(2)} s (${Math.min(...h1s).toFixed(2)}..${Math.max(...h1s).toFixed(2)})`);
    console.log(`HTTP/2   median ${median(h2s).toFixed(2)} s (${Math.min(...h2s).toFixed(2)}..${Math.max(...h2s).toFixed(2)})`);
    console.log(`h2 / h1  median ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})`);
  } finally {
    stop();
  }
}

function freePort() {
  return new Promise((resolve) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitListening(port) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const req = https.get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('Fulcrum did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}
