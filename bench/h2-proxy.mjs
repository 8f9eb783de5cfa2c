#!/usr/bin/env node
/**
 * HTTP/2 through Fulcrum against HTTP/2 through nginx, in the same runs
 * (issue 16): h2load with prior knowledge (h2c) at each proxy, each proxy
 * speaking h2c to the same backends.
 *
 *   npm run build
 *   node bench/h2-proxy.mjs                       # 5 runs x 5 s, 10 connections x 10 streams
 *   node bench/h2-proxy.mjs --runs 7 --duration 5 --conns 10 --streams 10 [--cli OTHER/dist/cli.js]
 *
 * Backends: one nginx (1 worker) with two h2c ports answering `return 200 "ok\n"`.
 * Proxies, each started fresh per measurement, warmed up 1 s, then loaded:
 *   nginx    1 worker, `listen ... http2` (h2c), `grpc_pass` to an upstream
 *            of the two backends with keepalive (nginx's h2 proxying), access_log off
 *   bare     bench/h2-bare-proxy.mjs: node:http2's core API on both sides and
 *            nothing else, the floor of any proxy on node:http2 (same Node)
 *   fulcrum  node dist/cli.js, workers: 1, a listener with http2: true (h2c),
 *            a pool with protocol: http2 over the two backends, access log off
 * The order of the three is rotated from run to run. Per measurement:
 * requests/s and succeeded requests from h2load, and the proxy's CPU time
 * (utime+stime of its process tree from /proc, all nginx processes or the
 * Fulcrum process) per succeeded request, in µs. Prints each run, then
 * medians and the median and range of the per-run ratios Fulcrum ÷ nginx
 * and Fulcrum ÷ bare.
 *
 * Pinning (taskset): h2load on CPU 0, proxies and backends on CPU 1 (as
 * scripts/bench.mjs --pin split). Loopback only; every child stopped by PID;
 * the temp folder removed. Linux only. Not part of `npm test`.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : process.argv[i + 1];
}

const RUNS = Number(arg('runs', '5'));
const DURATION = Number(arg('duration', '5'));
const CONNS = Number(arg('conns', '10'));
const STREAMS = Number(arg('streams', '10'));
const CLI = path.resolve(arg('cli', path.join(ROOT, 'dist', 'cli.js')));
const TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const PIN = fs.existsSync('/usr/bin/taskset') && os.cpus().length >= 2;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-h2-proxy-'));
const children = new Set();

function pinned(cpu, cmd, args) {
  return PIN ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

function start(cpu, cmd, args, opts = {}) {
  const [c, a] = pinned(cpu, cmd, args);
  const child = spawn(c, a, { stdio: ['ignore', 'ignore', 'inherit'], ...opts });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  await gone;
  clearTimeout(t);
}

function cleanup() {
  for (const c of children) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU seconds (user+system) of `pid` and all its descendants. */
function treeCpu(pid) {
  const byParent = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      if (!byParent.has(ppid)) byParent.set(ppid, []);
      byParent.get(ppid).push({ pid: Number(name), cpu: (Number(f[11]) + Number(f[12])) / TICKS });
    } catch {
      // gone meanwhile
    }
  }
  let total = 0;
  const walk = (p) => {
    for (const c of byParent.get(p) ?? []) {
      total += c.cpu;
      walk(c.pid);
    }
  };
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return 0;
  }
  walk(pid);
  return total;
}

function h2load(port, seconds, warmup) {
  const [c, a] = pinned(0, 'h2load', ['-D', String(seconds), ...(warmup ? ['--warm-up-time', String(warmup)] : []),
    '-c', String(CONNS), '-m', String(STREAMS), '-t', '1', `http://127.0.0.1:${port}/`]);
  const out = execFileSync(c, a, { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(out)?.[1]);
  const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  if (!m || !Number.isFinite(rps)) throw new Error(`cannot read h2load's output:\n${out}`);
  return { rps, succeeded: Number(m[1]), failed: Number(m[2]) };
}

const NGINX_COMMON = `daemon off;
master_process on;
worker_processes 1;
events { worker_connections 4096; }
`;

function nginxConf(name, body) {
  const d = path.join(dir, name);
  fs.mkdirSync(path.join(d, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(d, 'nginx.conf'), `${NGINX_COMMON}pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
http {
  access_log off;
  client_body_temp_path ${d}/tmp/body;
  proxy_temp_path ${d}/tmp/proxy;
  fastcgi_temp_path ${d}/tmp/fastcgi;
  uwsgi_temp_path ${d}/tmp/uwsgi;
  scgi_temp_path ${d}/tmp/scgi;
  http2_max_requests 1000000;
  keepalive_requests 1000000;
${body}
}
`);
  return d;
}

async function startNginx(name, body, port) {
  const d = nginxConf(name, body);
  const child = start(1, 'nginx', ['-p', d, '-c', path.join(d, 'nginx.conf'), '-e', path.join(d, 'error.log')]);
  await waitPort(port);
  return child;
}

async function measure(name, startProxy, port) {
  const proxy = await startProxy();
  try {
    h2load(port, 1, 0); // warm-up, not counted
    const before = treeCpu(proxy.pid);
    const r = h2load(port, DURATION, 0);
    const cpu = treeCpu(proxy.pid) - before;
    if (r.failed > 0 || r.succeeded === 0) throw new Error(`${name}: ${r.failed} failed, ${r.succeeded} succeeded`);
    return { rps: r.rps, usPerReq: (cpu * 1e6) / r.succeeded };
  } finally {
    await stop(proxy);
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const [b1, b2, nginxPort, fulcrumPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const backends = await startNginx('backends', `  server {
    listen 127.0.0.1:${b1} http2;
    listen 127.0.0.1:${b2} http2;
    location / { return 200 "ok\\n"; }
  }`, b1);
  await waitPort(b2);
  const nginxProxy = () => startNginx('proxy', `  upstream backends {
    server 127.0.0.1:${b1};
    server 127.0.0.1:${b2};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${nginxPort} http2;
    location / { grpc_pass grpc://backends; grpc_set_header Host $host; }
  }`, nginxPort);
  fs.writeFileSync(path.join(dir, 'fulcrum.yaml'), `
log: { access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c:
    listen: 127.0.0.1:${fulcrumPort}
    http2: true
    routes: [{ pool: backends }]
pools:
  backends:
    protocol: http2
    backends: [{ url: http://127.0.0.1:${b1} }, { url: http://127.0.0.1:${b2} }]
`);
  const barePort = await freePort();
  const bare = async () => {
    const child = start(1, process.execPath, [path.join(ROOT, 'bench', 'h2-bare-proxy.mjs'), String(barePort), String(b1), String(b2)]);
    await waitPort(barePort);
    return child;
  };
  const fulcrum = async () => {
    const child = start(1, process.execPath, [CLI, '--config', path.join(dir, 'fulcrum.yaml')]);
    await waitPort(fulcrumPort);
    return child;
  };
  process.stderr.write(`Node ${process.version}, ${RUNS} runs x ${DURATION} s, h2load -c ${CONNS} -m ${STREAMS}, pinning ${PIN ? 'h2load CPU 0, the rest CPU 1' : 'none'}; Fulcrum ${path.relative(process.cwd(), CLI)}\n`);
  const rows = [];
  for (let r = 0; r < RUNS; r++) {
    const targets = { nginx: [nginxProxy, nginxPort], bare: [bare, barePort], fulcrum: [fulcrum, fulcrumPort] };
    const names = Object.keys(targets);
    const order = names.map((_, i) => names[(i + r) % names.length]);
    const row = {};
    for (const name of order) row[name] = await measure(name, ...targets[name]);
    rows.push(row);
    process.stderr.write(`run ${r + 1}: ${names.map((n) => `${n} ${row[n].rps.toFixed(0)} req/s ${row[n].usPerReq.toFixed(1)} µs/req`).join('; ')}; fulcrum ÷ nginx ${(row.fulcrum.usPerReq / row.nginx.usPerReq).toFixed(2)}, ÷ bare ${(row.fulcrum.usPerReq / row.bare.usPerReq).toFixed(2)}\n`);
  }
  await stop(backends);
  const col = (name, key) => rows.map((x) => x[name][key]);
  const range = (xs, d = 2) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)})`;
  console.log('| proxy | req/s | µs/req (CPU of the proxy per request) |');
  console.log('|---|---:|---:|');
  for (const name of ['nginx', 'bare', 'fulcrum']) console.log(`| ${name} | ${median(col(name, 'rps')).toFixed(0)} | ${median(col(name, 'usPerReq')).toFixed(1)} |`);
  console.log(`\nNode ${process.version}. Medians of the per-run ratios:`);
  for (const anchor of ['nginx', 'bare']) {
    console.log(`- Fulcrum ÷ ${anchor}: µs/req ${range(rows.map((x) => x.fulcrum.usPerReq / x[anchor].usPerReq))}, req/s ${range(rows.map((x) => x.fulcrum.rps / x[anchor].rps))}`);
  }
  console.log(`- bare ÷ nginx: µs/req ${range(rows.map((x) => x.bare.usPerReq / x.nginx.usPerReq))}`);
}

try {
  await main();
} finally {
  cleanup();
}
