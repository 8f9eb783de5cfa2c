#!/usr/bin/env node
/**
 * Loopback benchmark: what Fulcrum costs compared with a bare undici proxy and
 * with no proxy at all.
 *
 *   npm run build                                   # dist/ must be current
 *   npm run bench                                   # 3 runs x 5 s, 50 connections, PIN=split
 *   npm run bench -- --runs 5 --duration 5
 *   npm run bench -- --workers                      # + Fulcrum workers: 2 (implies --pin none)
 *   npm run bench -- --json > bench.json            # machine-readable (progress on stderr)
 *
 * Options: --runs N (3)  --duration S (5)  --conns C (50)  --warmup S (1)
 *          --workers  --pin split|none (split)  --json  --client wrk|node (wrk when installed)
 *          --header "Name: value" (repeatable: sent with every request, by wrk, the fallback generator and the probes)
 *
 * Starts 3 keep-alive node:http backends (`200 ok\n`, one process each), then for
 * each run measures, one after the other:
 *   direct      wrk straight at backend 1
 *   undici      a bare undici reverse proxy (one Pool per backend, round robin,
 *               pool.stream into res) - the same code as shared/bench/proxy-undici.mjs
 *   fulcrum     node dist/cli.js with workers: 1, metrics (admin API), access log on
 *               (stdout redirected to a temp file) and health checks every 2 s
 *   fulcrum-w2  the same with workers: 2 (only with --workers)
 * Every proxy is started fresh for each measurement, warmed up (--warmup s of
 * load), loaded with `wrk -t1 -cC -dS`, then stopped. The order of the proxies
 * is reversed every other run (the machine is noisy; paired ratios cancel drift).
 *
 * Per measurement: req/s, p50 and p99 (wrk's done() hook), CPU µs/req of the
 * proxy's process tree (utime+stime from /proc/PID/stat of the process and all
 * its descendants, divided by wrk's request count), the backends' µs/req, RSS of
 * the tree right after the load (sum of VmRSS), and "other CPU": busy time from
 * /proc/stat minus everything this benchmark ran, in % of one core (> ~10 means
 * something else was using the machine).
 *
 * --pin split (default, when taskset exists): wrk on CPU 0, backends and proxies
 * on CPU 1, so the proxy and the backends share one core and the load generator
 * never limits. The OTLP receiver (${BENCH_OTLP}) runs on CPU 0 too: a
 * collector is not the proxy's work. --pin none: no pinning (needed for workers: 2, which --workers
 * therefore implies).
 *
 * Bounded: the expected total time is printed up front and a hard limit aborts
 * the run. Loopback only, free ports (a port found busy is refused). Every child
 * is stopped by PID (TERM, then KILL) at the end, on Ctrl-C and on errors, and
 * the temp folder is removed. Linux only (/proc). Not part of `npm test`.
 *
 * Without wrk (or with --client node) a small closed-loop generator over undici
 * (this same file, `--role loadgen`) replaces it; numbers are then not comparable
 * with wrk's (the generator costs much more CPU per request).
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

// --- child roles (this file re-executed: backend, undici proxy, fallback load generator) ---

/** Tiny keep-alive backend: 200 "ok\n" (as shared/bench/backend.mjs). */
async function runBackend(port) {
  const body = Buffer.from('ok\n');
  const headers = { 'content-type': 'text/plain', 'content-length': body.length, 'x-backend': String(port) };
  const server = http.createServer((req, res) => {
    if (req.headers['content-length'] || req.headers['transfer-encoding']) req.resume();
    res.writeHead(200, headers);
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(port, '127.0.0.1', () => console.log(`backend pid ${process.pid} on 127.0.0.1:${port}`));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

/** A stand-in OpenTelemetry collector for configs with `tracing` (${BENCH_OTLP}): reads each export, answers 200. */
async function runOtlpReceiver(port) {
  let exports = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => {
      exports++;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`otlp receiver pid ${process.pid} on 127.0.0.1:${port}`));
  const bye = () => {
    console.log(`otlp receiver: ${exports} exports, ${bytes} bytes`);
    process.exit(0);
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

/** Bare undici reverse proxy: a copy of shared/bench/proxy-undici.mjs (single process). */
async function runUndiciProxy(port, backends) {
  const { Pool } = await import('undici');
  const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding',
    'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect']);
  const endToEnd = (h) => {
    const out = {};
    for (const k in h) if (!HOP.has(k)) out[k] = h[k];
    return out;
  };
  const pools = backends.map((b) =>
    new Pool(`http://${b}`, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 }));
  const factory = ({ statusCode, headers, opaque: res }) => {
    res.writeHead(statusCode, endToEnd(headers));
    return res;
  };
  let next = 0;
  const server = http.createServer((req, res) => {
    const pool = pools[next];
    next = (next + 1) % pools.length;
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool.stream(
      { path: req.url, method: req.method, headers: endToEnd(req.headers), body: hasBody ? req : null, opaque: res },
      factory,
      (err) => {
        if (!err) return;
        if (res.headersSent) return res.destroy(err);
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway\n');
      });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.listen(port, '127.0.0.1', () =>
    console.log(`undici proxy pid ${process.pid} on 127.0.0.1:${port} -> ${backends.join(' ')}`));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

/** Fallback closed-loop load generator (when wrk is missing): prints one RESULT line like report.lua. */
async function runLoadgen(url, conns, seconds, headers = []) {
  const { Pool } = await import('undici');
  const { createHistogram } = await import('node:perf_hooks');
  const hist = createHistogram({ lowest: 1, highest: 60e6, figures: 3 });
  const pool = new Pool(url, { connections: conns, pipelining: 1 });
  const e = { connect: 0, read: 0, write: 0, status: 0, timeout: 0 };
  let requests = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  const loop = async () => {
    while (process.hrtime.bigint() < end) {
      const t0 = process.hrtime.bigint();
      try {
        const { statusCode, body } = await pool.request({ path: '/', method: 'GET', headers, headersTimeout: 5000, bodyTimeout: 5000 });
        await body.dump();
        if (statusCode > 399) e.status++;
        requests++;
        hist.record(Math.max(1, Number((process.hrtime.bigint() - t0) / 1000n)));
      } catch (err) {
        if (/timeout/i.test(err.code ?? '')) e.timeout++; else if (err.code === 'ECONNREFUSED') e.connect++; else e.read++;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: conns }, loop));
  const duration = Number((process.hrtime.bigint() - start) / 1000n);
  await pool.close().catch(() => {});
  process.stdout.write(`RESULT requests=${requests} duration_us=${duration} rps=${(requests / (duration / 1e6)).toFixed(1)} ` +
    `p50_us=${hist.count ? hist.percentile(50) : 0} p90_us=${hist.count ? hist.percentile(90) : 0} ` +
    `p99_us=${hist.count ? hist.percentile(99) : 0} max_us=${hist.count ? hist.max : 0} ` +
    `err_connect=${e.connect} err_read=${e.read} err_write=${e.write} err_status=${e.status} err_timeout=${e.timeout}\n`);
  process.exit(0);
}

// --- the benchmark ----------------------------------------------------------------------

function usage(message) {
  if (message) process.stderr.write(`bench: ${message}\n`);
  process.stderr.write('usage: npm run bench -- [--runs N] [--duration S] [--conns C] [--warmup S] [--workers] ' +
    '[--pin split|none] [--client wrk|node] [--baseline PATH/cli.js] [--config FILE] [--baseline-config FILE] [--header "Name: value"]... [--json]\n' +
    '  --baseline: also measure another Fulcrum build (e.g. a worktree of the previous commit) in the same runs:\n' +
    '    git worktree add /tmp/fulcrum-base HEAD~1 && (cd /tmp/fulcrum-base && npm ci) && npm run bench -- --baseline /tmp/fulcrum-base/dist/cli.js\n' +
    '  --config / --baseline-config: run that Fulcrum (this build / the baseline) on your own YAML instead of the\n' +
    '    generated one, to compare two configs (--baseline-config alone compares on this build). The file gets\n' +
    '    ${BENCH_PORT} (its listener), ${BENCH_ADMIN} (admin port), ${BENCH_BACKEND_1..3} (host:port) and\n' +
    '    ${BENCH_OTLP} (host:port of an OTLP/HTTP receiver the bench runs, answering 200) from the env.\n' +
    '  --header: a request header for every request (e.g. --header "Authorization: Basic ..." for a route with basicAuth).\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { runs: 3, duration: 5, conns: 50, warmup: 1, workers: false, pin: undefined, json: false, client: undefined, baseline: undefined, config: undefined, baselineConfig: undefined, headers: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    const num = (min, max, int = true) => {
      const raw = value();
      const n = Number(String(raw).replace(/s$/, ''));
      if (!Number.isFinite(n) || n < min || n > max || (int && !Number.isInteger(n))) usage(`${flag}: expected ${int ? 'a whole number' : 'a number'} from ${min} to ${max}, got ${raw}`);
      return n;
    };
    switch (flag) {
      case '--runs': o.runs = num(1, 50); break;
      case '--duration': o.duration = num(1, 120); break;
      case '--conns': case '--connections': o.conns = num(1, 2000); break;
      case '--warmup': o.warmup = num(0, 30); break;
      case '--workers': o.workers = true; break;
      case '--pin': o.pin = value(); if (!['split', 'none'].includes(o.pin)) usage('--pin must be split or none'); break;
      case '--client': o.client = value(); if (!['wrk', 'node'].includes(o.client)) usage('--client must be wrk or node'); break;
      case '--json': o.json = true; break;
      case '--baseline': o.baseline = path.resolve(value()); if (!fs.existsSync(o.baseline)) usage(`--baseline: no such file ${o.baseline}`); break;
      case '--config': o.config = path.resolve(value()); if (!fs.existsSync(o.config)) usage(`--config: no such file ${o.config}`); break;
      case '--baseline-config': o.baselineConfig = path.resolve(value()); if (!fs.existsSync(o.baselineConfig)) usage(`--baseline-config: no such file ${o.baselineConfig}`); break;
      case '--header': {
        const h = value();
        const colon = h.indexOf(':');
        if (colon < 1) usage(`--header: expected "Name: value", got ${h}`);
        o.headers.push(h.slice(0, colon).trim(), h.slice(colon + 1).trim());
        break;
      }
      case '-h': case '--help': usage(); break;
      default: usage(`unknown option ${arg}`);
    }
  }
  if (o.baselineConfig !== undefined && o.baseline === undefined) o.baseline = CLI;
  return o;
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', cmd);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

// --- /proc accounting -------------------------------------------------------------------

function readStat(pid) { // -> { ppid, state, ticks } or null
  let s;
  try { s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return null; }
  const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] = field 3 (state)
  return { state: f[0], ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), childTicks: Number(f[13]) + Number(f[14]) };
}

function descendants(pid) {
  const children = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = readStat(d);
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(d));
  }
  const out = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    for (const c of children.get(p) ?? []) { out.push(c); stack.push(c); }
  }
  return out;
}

const treePids = (pids) => pids.flatMap((p) => [p, ...descendants(p)]);
const treeTicks = (pids) => treePids(pids).reduce((t, p) => t + (readStat(p)?.ticks ?? 0), 0);
function treeRssKb(pids) {
  let kb = 0;
  for (const p of treePids(pids)) {
    try { kb += Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
  }
  return kb;
}
function cpuBusy() { // { busy, total } ticks over all CPUs, and per CPU
  const lines = fs.readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d* /.test(l));
  return lines.map((l) => {
    const v = l.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    const total = v.reduce((a, b) => a + b, 0);
    return { name: l.split(' ')[0], total, busy: total - v[3] - v[4] };
  });
}
function selfTicks() { const s = readStat(process.pid); return s ? s.ticks + s.childTicks : 0; } // + reaped children (wrk)

// --- processes --------------------------------------------------------------------------

const started = new Set(); // { pid, child, name }

function alive(pid) { const s = readStat(pid); return s !== null && s.state !== 'Z' && s.state !== 'X'; }

async function stopTree(entry) {
  if (!entry || !started.has(entry)) return;
  const all = [entry.pid, ...descendants(entry.pid)];
  try { process.kill(entry.pid, 'SIGTERM'); } catch { /* already gone */ }
  for (let i = 0; i < 100; i++) {
    const left = all.filter(alive);
    if (!left.length) break;
    if (i === 30) for (const p of left) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
    if (i === 60) for (const p of left) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    await sleep(100);
  }
  started.delete(entry);
}

function stopAllSync() { // last resort (exit handler): KILL whatever is still there, by PID
  for (const e of started) {
    for (const p of [e.pid, ...descendants(e.pid)]) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  }
  started.clear();
}

async function stopAll() { for (const e of [...started].reverse()) await stopTree(e); }

/** Start a command (pinned with taskset when cpus is set); stdout+stderr to logFile. */
function launch(name, cmd, args, { cpus, logFile, env } = {}) {
  const fd = fs.openSync(logFile, 'a');
  const [file, argv] = cpus ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { cwd: ROOT, stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
  fs.closeSync(fd);
  const entry = { pid: child.pid, child, name, logFile, exited: false };
  child.on('exit', () => { entry.exited = true; });
  started.add(entry);
  return entry;
}

function portBusy(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function freePorts(n) { // hold them all open at once so they are distinct
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** --header's [name, value, ...]: every request carries them, the probes' included. */
let extraHeaders = [];

function probe(port, agentless = true) { // -> { status, backend } on a new connection
  return new Promise((resolve) => {
    const headers = { connection: 'close' };
    for (let i = 0; i < extraHeaders.length; i += 2) headers[extraHeaders[i].toLowerCase()] = extraHeaders[i + 1];
    const req = http.get({ host: '127.0.0.1', port, path: '/probe', agent: agentless ? false : undefined, headers, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, backend: res.headers['x-backend'] ?? '-' }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
  });
}

async function waitReady(entry, port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (entry.exited) throw new Error(`${entry.name} exited during start-up; log ${entry.logFile}:\n${tail(entry.logFile)}`);
    const r = await probe(port);
    if (r?.status === 200) return;
    await sleep(100);
  }
  throw new Error(`${entry.name} not ready on :${port} after ${seconds} s; log ${entry.logFile}:\n${tail(entry.logFile)}`);
}

function tail(file, n = 15) {
  try { return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n'); } catch { return '(no log)'; }
}

function httpGet(port, p) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
  });
}

// --- main -------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  extraHeaders = o.headers;
  const out = o.json ? process.stderr : process.stdout; // human-readable progress
  const say = (s = '') => out.write(`${s}\n`);

  if (process.platform !== 'linux') usage('Linux only (/proc accounting)');
  if (!fs.existsSync(CLI)) usage(`${path.relative(process.cwd(), CLI)} not found: run npm run build first`);
  const wrk = which('wrk');
  const client = o.client ?? (wrk ? 'wrk' : 'node');
  if (client === 'wrk' && !wrk) usage('--client wrk: wrk is not installed');
  const hasTaskset = which('taskset') !== null;
  let pin = o.pin ?? (o.workers ? 'none' : 'split');
  const notes = [];
  if (o.workers && pin === 'split') { pin = 'none'; notes.push('--workers: pinning turned off (--pin none): two workers on one pinned core would measure nothing'); }
  if (pin === 'split' && !hasTaskset) { pin = 'none'; notes.push('taskset not found: not pinning'); }
  if (pin === 'split' && os.cpus().length < 2) { pin = 'none'; notes.push('one CPU only: not pinning'); }
  const cpus = pin === 'split' ? { load: '0', servers: '1' } : { load: undefined, servers: undefined };

  const targets = ['direct', 'undici', 'fulcrum', ...(o.baseline ? ['baseline'] : []), ...(o.workers ? ['fulcrum-w2'] : [])];
  const proxies = targets.filter((t) => t !== 'direct');
  const startupS = 2.5; // start + readiness + stop, per proxy measurement (typical; Fulcrum ~1 s to start)
  const perRun = targets.length * (o.warmup + o.duration + 0.5) + proxies.length * startupS;
  const expected = Math.ceil(3 + o.runs * perRun);
  const hardLimit = expected * 2 + 60;

  let commit = '?', dirty = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() ? ' (src has uncommitted changes)' : '';
  } catch { /* not a git checkout */ }
  let hz = 100;
  try { hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { /* default */ }
  const undiciVersion = (() => { try { return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/undici/package.json'), 'utf8')).version; } catch { return '?'; } })();
  const wrkVersion = client === 'wrk' ? (() => { try { return /\d+\.\d+\.\d+/.exec(execFileSync(wrk, ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[0] ?? '?'; } catch (e) { return /\d+\.\d+\.\d+/.exec(String(e.stdout ?? ''))?.[0] ?? '?'; } })() : '-';

  const meta = {
    date: new Date().toISOString(), commit: commit + (dirty ? '+dirty' : ''), node: process.version, undici: undiciVersion,
    cpus: os.cpus().length, client: client === 'wrk' ? `wrk ${wrkVersion}` : 'node closed loop (undici)',
    runs: o.runs, duration: o.duration, warmup: o.warmup, conns: o.conns, pin, targets,
  };
  say(`fulcrum bench  ${meta.date}  commit ${commit}${dirty}  node ${process.version}  undici ${undiciVersion}  ${meta.cpus} CPUs`);
  say(`load: ${meta.client} -t1 -c${o.conns} -d${o.duration}s after ${o.warmup}s warm-up; runs ${o.runs}; pin ${pin}` +
    (pin === 'split' ? ' (load generator on CPU 0, backends + proxies on CPU 1)' : ''));
  say(`targets: ${targets.join(', ')}; proxy order reversed every other run`);
  for (const n of notes) say(`note: ${n}`);
  say(`expected total time: about ${expected} s (hard limit ${hardLimit} s)`);
  if (client === 'node') say('note: no wrk: using the built-in undici load generator (more CPU per request than wrk; numbers not comparable with wrk runs)');

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-bench-'));
  let finished = false;
  const cleanup = async () => { await stopAll(); fs.rmSync(tmp, { recursive: true, force: true }); };
  process.on('exit', () => { stopAllSync(); try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* ignore */ } });
  let interrupted = false;
  const onSignal = (sig) => {
    if (interrupted) { stopAllSync(); process.exit(130); }
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping every process started by the benchmark\n`);
    cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const hard = setTimeout(() => {
    process.stderr.write(`bench: hard time limit of ${hardLimit} s reached; stopping\n`);
    cleanup().finally(() => process.exit(1));
  }, hardLimit * 1000);
  hard.unref();

  try {
    const [b1, b2, b3, undiciPort, fPort, fAdmin, f2Port, f2Admin, basePort, baseAdmin, otlpPort] = await freePorts(11);
    const backendPorts = [b1, b2, b3];
    const backendsCsv = backendPorts.map((p) => `127.0.0.1:${p}`).join(',');

    // Backends
    const backends = [];
    for (const p of backendPorts) {
      if (await portBusy(p)) throw new Error(`port ${p} is already in use: not starting`);
      backends.push(launch(`backend-${p}`, process.execPath, [SELF, '--role', 'backend', String(p)], { cpus: cpus.servers, logFile: path.join(tmp, `backend-${p}.log`) }));
    }
    for (let i = 0; i < backends.length; i++) await waitReady(backends[i], backendPorts[i], 10);
    const backendPids = backends.map((b) => b.pid);
    // Idle unless a --config names it: a collector for tracing's exports. It
    // runs beside the load generator, not on the proxy's CPU: a collector is
    // another machine's work, and on CPU 1 its reads (about 1 µs of CPU per
    // traced request) took turns with the proxy and the backends, lowering
    // the traced Fulcrum's req/s and so its batching, which the µs/req ratio
    // then charged to tracing. Its CPU is counted apart (not in "other").
    const otlp = launch('otlp', process.execPath, [SELF, '--role', 'otlp', String(otlpPort)], { cpus: cpus.load, logFile: path.join(tmp, 'otlp.log') });
    await waitReady(otlp, otlpPort, 10);
    say(`backends: ${backendPorts.map((p, i) => `:${p} (pid ${backendPids[i]})`).join(' ')}`);

    // Fulcrum configs
    const fulcrumConfig = (workers, port, admin) => [
      '# written by scripts/bench.mjs',
      `workers: ${workers}`,
      'shutdownTimeout: 2s',
      'log: { level: info, access: true }',
      `admin: { listen: "127.0.0.1:${admin}" }`,
      'listeners:',
      '  bench:',
      `    listen: "127.0.0.1:${port}"`,
      '    routes:',
      '      - pool: backends',
      'pools:',
      '  backends:',
      '    strategy: round-robin',
      '    backends:',
      ...backendPorts.map((p) => `      - url: http://127.0.0.1:${p}`),
      '    healthCheck: { path: /, interval: 2s }',
      '',
    ].join('\n');
    // What a --config / --baseline-config file finds in ${...}.
    const benchEnv = (port, admin) => Object.fromEntries([
      ['BENCH_PORT', String(port)], ['BENCH_ADMIN', String(admin)], ['BENCH_OTLP', `127.0.0.1:${otlpPort}`],
      ...backendPorts.map((p, i) => [`BENCH_BACKEND_${i + 1}`, `127.0.0.1:${p}`]),
    ]);
    fs.writeFileSync(path.join(tmp, 'fulcrum-w1.yaml'), fulcrumConfig(1, fPort, fAdmin));
    fs.writeFileSync(path.join(tmp, 'fulcrum-w2.yaml'), fulcrumConfig(2, f2Port, f2Admin));
    fs.writeFileSync(path.join(tmp, 'baseline.yaml'), fulcrumConfig(1, basePort, baseAdmin));
    const reportLua = path.join(tmp, 'report.lua');
    fs.writeFileSync(reportLua, `-- wrk done() hook (only done(): wrk keeps its fast request path)
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`);

    const targetDef = {
      direct: { port: b1 },
      undici: { port: undiciPort, start: () => launch('undici', process.execPath, [SELF, '--role', 'undici-proxy', String(undiciPort), backendsCsv], { cpus: cpus.servers, logFile: path.join(tmp, 'undici.log') }) },
      fulcrum: { port: fPort, admin: fAdmin, start: () => launch('fulcrum', process.execPath, [CLI, '--config', o.config ?? path.join(tmp, 'fulcrum-w1.yaml')], { cpus: cpus.servers, logFile: path.join(tmp, 'fulcrum-w1.log'), env: benchEnv(fPort, fAdmin) }) },
      baseline: { port: basePort, admin: baseAdmin, start: () => launch('baseline', process.execPath, [o.baseline, '--config', o.baselineConfig ?? path.join(tmp, 'baseline.yaml')], { cpus: cpus.servers, logFile: path.join(tmp, 'baseline.log'), env: benchEnv(basePort, baseAdmin) }) },
      'fulcrum-w2': { port: f2Port, admin: f2Admin, start: () => launch('fulcrum-w2', process.execPath, [CLI, '--config', path.join(tmp, 'fulcrum-w2.yaml')], { cpus: cpus.servers, logFile: path.join(tmp, 'fulcrum-w2.log') }) },
    };

    const wrkHeaders = [];
    for (let i = 0; i < o.headers.length; i += 2) wrkHeaders.push('-H', `${o.headers[i]}: ${o.headers[i + 1]}`);
    const load = async (port, seconds) => {
      const url = `http://127.0.0.1:${port}/`;
      const [cmd, args] = client === 'wrk'
        ? [wrk, ['-t1', `-c${o.conns}`, `-d${seconds}s`, '--timeout', '5s', ...wrkHeaders, '-s', reportLua, url]]
        : [process.execPath, [SELF, '--role', 'loadgen', url, String(o.conns), String(seconds), JSON.stringify(o.headers)]];
      const [file, argv] = cpus.load ? ['taskset', ['-c', cpus.load, cmd, ...args]] : [cmd, args];
      const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      const entry = { pid: child.pid, child, name: 'load', exited: false };
      started.add(entry);
      let text = '';
      child.stdout.on('data', (c) => { text += c; });
      child.stderr.on('data', (c) => { text += c; });
      const killer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, (seconds + 20) * 1000);
      await new Promise((r) => child.on('close', r));
      clearTimeout(killer);
      started.delete(entry);
      const line = text.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) throw new Error(`load generator failed:\n${text.trim()}`);
      return Object.fromEntries(line.slice(7).trim().split(/\s+/).map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
    };

    const rows = [];
    const fmtRow = (cells, widths) => cells.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' ');
    const W = [3, 11, 8, 7, 8, 7, 7, 7, 6, 7, 9];
    say();
    say(fmtRow(['run', 'target', 'req/s', 'p50 ms', 'p99 ms', 'µs/req', 'be µs', 'RSS MB', 'errs', 'other%', 'cpus busy'], W));

    for (let run = 1; run <= o.runs; run++) {
      const order = run % 2 ? targets : [...targets].reverse();
      for (const t of order) {
        const def = targetDef[t];
        let proc = null;
        if (def.start) {
          if (await portBusy(def.port)) throw new Error(`port ${def.port} is already in use: not starting ${t}`);
          if (def.admin && await portBusy(def.admin)) throw new Error(`port ${def.admin} is already in use: not starting ${t}`);
          proc = def.start();
          await waitReady(proc, def.port, 20);
          if (run === 1) {
            const hits = {};
            for (let i = 0; i < 9; i++) { const r = await probe(def.port); hits[r?.backend ?? 'error'] = (hits[r?.backend ?? 'error'] ?? 0) + 1; }
            say(`    ${t} on :${def.port} (pid ${proc.pid}${t === 'fulcrum-w2' ? `, workers ${descendants(proc.pid).join(',')}` : ''}): ` +
              `backend:hits over 9 new connections ${Object.entries(hits).map(([k, v]) => `${k}:${v}`).join(' ')}`);
          }
        }
        try {
          if (o.warmup > 0) await load(def.port, o.warmup);
          const p0 = proc ? treeTicks([proc.pid]) : 0;
          const be0 = treeTicks(backendPids);
          const o0 = treeTicks([otlp.pid]);
          const s0 = selfTicks();
          const c0 = cpuBusy();
          const r = await load(def.port, o.duration);
          const c1 = cpuBusy();
          const s1 = selfTicks();
          const be1 = treeTicks(backendPids);
          const o1 = treeTicks([otlp.pid]);
          const p1 = proc ? treeTicks([proc.pid]) : 0;
          const rssKb = proc ? treeRssKb([proc.pid]) : NaN;
          const secs = r.duration_us / 1e6;
          const pct = (ticks) => (100 * ticks) / hz / secs; // % of one core
          const busyAll = c1[0].busy - c0[0].busy;
          const other = pct(busyAll - (p1 - p0) - (be1 - be0) - (o1 - o0) - (s1 - s0));
          const busyPer = c1.slice(1).map((c, i) => Math.round((100 * (c.busy - c0[i + 1].busy)) / Math.max(1, c.total - c0[i + 1].total)));
          let metricsRequests;
          if (def.admin) {
            const m = await httpGet(def.admin, '/metrics');
            if (m?.status === 200) {
              metricsRequests = 0;
              for (const l of m.body.split('\n')) if (l.startsWith('fulcrum_requests_total{')) metricsRequests += Number(l.slice(l.lastIndexOf(' ') + 1));
            }
          }
          const row = {
            run, target: t, requests: r.requests, rps: r.rps, p50Ms: r.p50_us / 1000, p90Ms: r.p90_us / 1000, p99Ms: r.p99_us / 1000, maxMs: r.max_us / 1000,
            errors: r.err_connect + r.err_read + r.err_write + r.err_status + r.err_timeout,
            proxyUsPerReq: proc ? (1e6 * (p1 - p0)) / hz / r.requests : NaN,
            proxyCpuPct: proc ? pct(p1 - p0) : NaN,
            backendUsPerReq: (1e6 * (be1 - be0)) / hz / r.requests,
            otlpUsPerReq: (1e6 * (o1 - o0)) / hz / r.requests,
            loadCpuPct: pct(s1 - s0),
            otherCpuPct: other,
            cpusBusyPct: busyPer,
            rssMb: rssKb / 1024,
            ...(metricsRequests !== undefined ? { metricsRequestsTotal: metricsRequests } : {}),
          };
          rows.push(row);
          const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
          say(fmtRow([run, t, Math.round(row.rps), f(row.p50Ms, 2), f(row.p99Ms, 2), f(row.proxyUsPerReq), f(row.backendUsPerReq),
            f(row.rssMb), row.errors, f(row.otherCpuPct, 0), busyPer.join('/')], W));
        } finally {
          if (proc) await stopTree(proc);
        }
      }
    }

    // Medians and paired ratios
    const by = (t) => rows.filter((r) => r.target === t);
    const paired = (t, ref, key) => {
      const xs = [];
      for (let run = 1; run <= o.runs; run++) {
        const a = rows.find((r) => r.run === run && r.target === t);
        const b = rows.find((r) => r.run === run && r.target === ref);
        if (a && b && Number.isFinite(a[key]) && Number.isFinite(b[key]) && b[key] > 0) xs.push(a[key] / b[key]);
      }
      return { median: median(xs), min: xs.length ? Math.min(...xs) : NaN, max: xs.length ? Math.max(...xs) : NaN, n: xs.length };
    };
    const summary = targets.map((t) => ({
      target: t,
      n: by(t).length,
      rps: median(by(t).map((r) => r.rps)),
      p50Ms: median(by(t).map((r) => r.p50Ms)),
      p99Ms: median(by(t).map((r) => r.p99Ms)),
      p99MsRange: [Math.min(...by(t).map((r) => r.p99Ms)), Math.max(...by(t).map((r) => r.p99Ms))],
      proxyUsPerReq: median(by(t).map((r) => r.proxyUsPerReq)),
      backendUsPerReq: median(by(t).map((r) => r.backendUsPerReq)),
      otlpUsPerReq: median(by(t).map((r) => r.otlpUsPerReq)),
      rssMb: median(by(t).map((r) => r.rssMb)),
      errors: by(t).reduce((s, r) => s + r.errors, 0),
      otherCpuPct: median(by(t).map((r) => r.otherCpuPct)),
      usPerReqVsUndici: t === 'direct' ? null : paired(t, 'undici', 'proxyUsPerReq'),
      rpsVsDirect: paired(t, 'direct', 'rps'),
    }));
    const vsBaseline = o.baseline ? { usPerReq: paired('fulcrum', 'baseline', 'proxyUsPerReq'), rps: paired('fulcrum', 'baseline', 'rps') } : undefined;
    const w2vsw1 = o.workers ? { rps: paired('fulcrum-w2', 'fulcrum', 'rps'), usPerReq: paired('fulcrum-w2', 'fulcrum', 'proxyUsPerReq') } : undefined;

    const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
    const ratio = (p) => (p && Number.isFinite(p.median) ? `${p.median.toFixed(2)} (${p.min.toFixed(2)}..${p.max.toFixed(2)})` : '-');
    say();
    say(`medians over ${o.runs} run${o.runs > 1 ? 's' : ''} (c${o.conns}, ${o.duration} s, pin ${pin}); ÷undici = median of per-run Fulcrum µs/req ÷ undici µs/req` +
      ' (min..max); ÷direct = median of per-run req/s ÷ direct req/s');
    say();
    const header = ['target', 'req/s', 'p50 ms', 'p99 ms', 'µs/req', 'RSS MB', '÷undici (µs/req)', '÷direct (req/s)', 'other CPU%'];
    const table = summary.map((s) => [s.target, String(Math.round(s.rps)), f(s.p50Ms, 2), f(s.p99Ms, 2), f(s.proxyUsPerReq),
      f(s.rssMb), s.target === 'direct' ? '-' : ratio(s.usPerReqVsUndici), s.target === 'direct' ? '1.00' : ratio(s.rpsVsDirect), f(s.otherCpuPct, 0)]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
    say(`| ${header.map((h, i) => h.padEnd(widths[i])).join(' | ')} |`);
    say(`|${widths.map((w, i) => (i ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`);
    for (const r of table) say(`| ${r.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`);
    if (vsBaseline) {
      say();
      say(`this build ÷ baseline (${o.baseline}), median of per-run ratios: µs/req ${ratio(vsBaseline.usPerReq)}, req/s ${ratio(vsBaseline.rps)}`);
    }
    if (w2vsw1) {
      say();
      say(`workers: 2 ÷ workers: 1, median of per-run ratios: req/s ${ratio(w2vsw1.rps)}, µs/req ${ratio(w2vsw1.usPerReq)}`);
    }
    const exporting = summary.filter((s) => s.otlpUsPerReq > 0);
    if (exporting.length) say(`OTLP receiver (on the load generator's CPU), CPU µs per request of: ${exporting.map((s) => `${s.target} ${f(s.otlpUsPerReq, 2)}`).join(', ')}`);
    const errs = summary.reduce((s, x) => s + x.errors, 0);
    if (errs) say(`warning: ${errs} failed requests in total (see the errs column)`);
    const noisy = rows.filter((r) => r.otherCpuPct > 15).length;
    if (noisy) say(`note: ${noisy} of ${rows.length} measurements had > 15% of a core used by other processes (other%): treat absolute numbers with care, compare the paired ratios`);
    say(`µs/req = CPU time (user+sys, whole process tree) of the proxy per request; be µs = the backends' per request; RSS after the load`);

    if (o.json) process.stdout.write(`${JSON.stringify({ meta: { ...meta, notes }, runs: rows, summary, workers2vs1: w2vsw1, vsBaseline }, null, 2)}\n`);
    finished = true;
  } catch (err) {
    if (interrupted) return; // the signal handler stops everything and exits
    process.stderr.write(`bench: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    clearTimeout(hard);
    await cleanup();
    if (!finished && !process.exitCode) process.exitCode = 1;
  }
}

// --- entry point (last, so that every module-level binding above is initialized) ---------

const roleIdx = process.argv.indexOf('--role');
if (roleIdx !== -1) {
  const role = process.argv[roleIdx + 1];
  const args = process.argv.slice(roleIdx + 2);
  // Exit when the benchmark that started us is gone (no orphans after a SIGKILL of it).
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 1000).unref();
  if (role === 'backend') await runBackend(Number(args[0]));
  else if (role === 'undici-proxy') await runUndiciProxy(Number(args[0]), args[1].split(','));
  else if (role === 'otlp') await runOtlpReceiver(Number(args[0]));
  else if (role === 'loadgen') await runLoadgen(args[0], Number(args[1]), Number(args[2]), args[3] === undefined ? [] : JSON.parse(args[3]));
  else { process.stderr.write(`unknown role ${role}\n`); process.exit(2); }
} else {
  await main();
}
