#!/usr/bin/env node
/**
 * Compression of a 20 kB JSON answer: Fulcrum's `compress` beside nginx's
 * `gzip on` at the same level (6, zlib's default and Fulcrum's), both in
 * front of the same node:http backend, both one process, loaded with the
 * same wrk (`-H "Accept-Encoding: gzip"`). Each is also measured with
 * compression off, so the cost of compressing shows on its own.
 *
 *   npm run build && node bench/compress-vs-nginx.mjs [--runs 5] [--duration 5] [--conns 50]
 *
 * Per measurement: req/s and CPU µs per request of the proxy's process tree
 * (utime+stime from /proc, divided by wrk's request count). wrk on CPU 0, the
 * backend and the proxy on CPU 1 (taskset), as scripts/bench.mjs pins them.
 * The order of the targets is reversed every other run. Every child is
 * stopped by PID at the end; the temp folder is removed. Linux only.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const GZIP_LEVEL = 6;

function args() {
  const o = { runs: 5, duration: 5, conns: 50 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const key = a[i].replace(/^--/, '');
    if (!(key in o) || !Number.isInteger(Number(a[i + 1]))) {
      process.stderr.write('usage: node bench/compress-vs-nginx.mjs [--runs N] [--duration S] [--conns C]\n');
      process.exit(2);
    }
    o[key] = Number(a[i + 1]);
  }
  return o;
}

function ticksOf(pid) {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const s = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      total += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return total;
}

function descendants(pid) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d), ...descendants(Number(d)));
    } catch { /* gone */ }
  }
  return out;
}

async function freePort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const children = new Set();
function launch(cmd, argv, env = {}) {
  const child = spawn('taskset', ['-c', '1', cmd, ...argv], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
}
async function stopAll() {
  await Promise.all([...children].map(stop));
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stopAll().then(() => process.exit(130)));

function get(port) {
  return new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { 'accept-encoding': 'gzip' }, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    }).on('error', () => resolve(null));
  });
}

async function ready(port, expectGzip) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const res = await get(port);
    if (res?.statusCode === 200) {
      if ((res.headers['content-encoding'] === 'gzip') !== expectGzip) throw new Error(`:${port} answered with content-encoding ${res.headers['content-encoding']}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`:${port} not ready`);
}

function wrk(port, o) {
  const out = execFileSync('taskset', ['-c', '0', 'wrk', '-t1', `-c${o.conns}`, `-d${o.duration}s`, '-H', 'Accept-Encoding: gzip', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const errors = /Non-2xx|Socket errors/.test(out);
  return { requests, rps, errors };
}

async function main() {
  const o = args();
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-compress-bench-'));
  const backendPort = await freePort();
  const backend = launch(process.execPath, [SELF, '--role-backend', String(backendPort)]);
  const fulcrumYaml = (compress) => `workers: 1
log: { level: info, access: true }
admin: { listen: "127.0.0.1:${'${BENCH_ADMIN}'}" }
listeners:
  bench:
    listen: "127.0.0.1:${'${BENCH_PORT}'}"
    routes:
      - pool: backend
${compress ? '        compress: { algorithms: [gzip] }\n' : ''}pools:
  backend:
    backends: [ { url: "http://127.0.0.1:${backendPort}" } ]
`;
  const nginxConf = (port, gzip) => `worker_processes 1;
daemon off;
master_process off;
pid ${tmp}/nginx-${port}.pid;
error_log ${tmp}/nginx-${port}.error.log warn;
events { worker_connections 4096; }
http {
  access_log ${tmp}/nginx-${port}.access.log;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 64; }
  gzip ${gzip ? 'on' : 'off'};
  gzip_comp_level ${GZIP_LEVEL};
  gzip_min_length 1024;
  gzip_types application/json;
  gzip_proxied any;
  gzip_vary on;
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`;
  const targets = [
    { name: 'fulcrum gzip', kind: 'fulcrum', gzip: true },
    { name: 'nginx gzip', kind: 'nginx', gzip: true },
    { name: 'fulcrum plain', kind: 'fulcrum', gzip: false },
    { name: 'nginx plain', kind: 'nginx', gzip: false },
  ];
  const results = Object.fromEntries(targets.map((t) => [t.name, []]));
  console.log(`compress-vs-nginx ${new Date().toISOString()} node ${process.version}, ${execFileSync('nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || 'nginx'}; 20480-byte JSON, gzip level ${GZIP_LEVEL}; wrk -t1 -c${o.conns} -d${o.duration}s, ${o.runs} runs`);
  try {
    for (let run = 1; run <= o.runs; run++) {
      const order = run % 2 === 1 ? targets : [...targets].reverse();
      for (const t of order) {
        const port = await freePort();
        let child;
        if (t.kind === 'fulcrum') {
          const file = path.join(tmp, `fulcrum-${t.gzip}.yaml`);
          fs.writeFileSync(file, fulcrumYaml(t.gzip));
          child = launch(process.execPath, [CLI, '--config', file], { BENCH_PORT: String(port), BENCH_ADMIN: String(await freePort()) });
        } else {
          const file = path.join(tmp, `nginx-${port}.conf`);
          fs.writeFileSync(file, nginxConf(port, t.gzip));
          child = launch('nginx', ['-c', file, '-p', tmp]);
        }
        await ready(port, t.gzip);
        wrk(port, { ...o, duration: 1 }); // warm-up
        const before = ticksOf(child.pid);
        const r = wrk(port, o);
        const us = ((ticksOf(child.pid) - before) / hz) * 1e6 / r.requests;
        results[t.name].push({ ...r, us });
        console.log(`${run}  ${t.name.padEnd(14)} ${String(Math.round(r.rps)).padStart(7)} req/s  ${us.toFixed(1).padStart(7)} µs/req${r.errors ? '  (errors)' : ''}`);
        await stop(child);
      }
    }
  } finally {
    await stop(backend);
    await stopAll();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log('\n| target | req/s | µs/req |\n|---|---:|---:|');
  for (const t of targets) {
    const rs = results[t.name];
    console.log(`| ${t.name} | ${Math.round(median(rs.map((r) => r.rps)))} | ${median(rs.map((r) => r.us)).toFixed(1)} |`);
  }
  const ratio = (a, b) => {
    const xs = results[a].map((r, i) => r.us / results[b][i].us);
    return `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)})`;
  };
  console.log(`\nFulcrum gzip ÷ nginx gzip, µs/req (median of per-run ratios, min..max): ${ratio('fulcrum gzip', 'nginx gzip')}`);
  console.log(`Fulcrum gzip ÷ Fulcrum plain: ${ratio('fulcrum gzip', 'fulcrum plain')}; nginx gzip ÷ nginx plain: ${ratio('nginx gzip', 'nginx plain')}`);
}

// Last: main() uses the module's state declared above.
if (process.argv[2] === '--role-backend') {
  // 20 kB of JSON, the same bytes for every request, with a Content-Length.
  const items = [];
  for (let i = 0; items.length === 0 || JSON.stringify(items).length < 20_480; i++) {
    items.push({ id: i, name: `user-${i}`, email: `user${i}@example.com`, active: i % 3 !== 0, score: (i * 37) % 1000 / 10, tags: ['alpha', 'beta'] });
  }
  const body = Buffer.from(JSON.stringify(items)).subarray(0, 20_480);
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.argv[3]), '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
} else {
  await main();
}

