// RSS of a Fulcrum process while GB gibibytes (default 1) stream through it,
// upload then download: `npm run build && GB=1 node scripts/stream-rss.mjs`.
// Memory must stay flat (streams with backpressure), not grow with the body.
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const GB = Number(process.env.GB || 1) * 1024 ** 3;
const CHUNK = Buffer.alloc(1024 * 1024, 7);
const backend = http.createServer((req, res) => {
  if (req.method === 'POST') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => res.end(String(n)));
    return;
  }
  res.writeHead(200, { 'content-length': GB });
  let sent = 0;
  const pump = () => {
    while (sent < GB) {
      sent += CHUNK.length;
      if (!res.write(CHUNK)) { res.once('drain', pump); return; }
    }
    res.end();
  };
  pump();
});
await new Promise((r) => backend.listen(0, '127.0.0.1', r));
const bport = backend.address().port;
const probe = net.createServer();
await new Promise((r) => probe.listen(0, '127.0.0.1', r));
const port = probe.address().port;
await new Promise((r) => probe.close(r));
const dir = mkdtempSync(path.join(tmpdir(), 'gb-'));
const file = path.join(dir, 'f.yaml');
writeFileSync(file, `log: { level: warn, access: true }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:${port}, routes: [ { pool: p } ] } }
pools: { p: { backends: [ { url: http://127.0.0.1:${bport} } ] } }
`);
const child = spawn(process.execPath, [fileURLToPath(new URL('../dist/cli.js', import.meta.url)), '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
await new Promise((r) => setTimeout(r, 1500));
const base = rss();
let max = base;
const timer = setInterval(() => { max = Math.max(max, rss()); }, 100);
const t0 = Date.now();
// Upload 1 GB.
const up = await new Promise((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/up', headers: { 'content-length': GB } }, (res) => {
    let s = ''; res.on('data', (c) => { s += c; }); res.on('end', () => resolve(s));
  });
  req.on('error', reject);
  let sent = 0;
  const pump = () => {
    while (sent < GB) { sent += CHUNK.length; if (!req.write(CHUNK)) { req.once('drain', pump); return; } }
    req.end();
  };
  pump();
});
const upMax = max; const upSecs = (Date.now() - t0) / 1000;
max = rss();
const t1 = Date.now();
const down = await new Promise((resolve, reject) => {
  http.get({ host: '127.0.0.1', port, path: '/down' }, (res) => {
    let n = 0; res.on('data', (c) => { n += c.length; }); res.on('end', () => resolve(n));
  }).on('error', reject);
});
const downMax = max; const downSecs = (Date.now() - t1) / 1000;
clearInterval(timer);
console.log(JSON.stringify({ baselineMB: +base.toFixed(1), upload: { bytesAtBackend: Number(up), seconds: upSecs, maxRssMB: +upMax.toFixed(1), growthMB: +(upMax - base).toFixed(1) }, download: { bytes: down, seconds: downSecs, maxRssMB: +downMax.toFixed(1), growthMB: +(downMax - base).toFixed(1) } }));
child.kill('SIGTERM');
backend.close();
