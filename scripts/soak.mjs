#!/usr/bin/env node
/**
 * Soak test: Fulcrum under steady load for N minutes, watching for leaks.
 *
 *   npm run build                      # dist/ must be current
 *   npm run soak -- --minutes 10       # default 1, at most 120
 *   npm run soak -- --minutes 1 --connections 20 --rps 2000   # paced (default: as fast as it goes)
 *
 * Starts three node:http backends on 127.0.0.1, then Fulcrum as a child process
 * (`node dist/cli.js --config <temp yaml>`, listener and admin API on free
 * loopback ports, access log on and redirected to a temp file, health checks
 * and outlier detection on), and drives it with `--connections` keep-alive
 * connections (undici Pool): mostly small GETs, some 1 MB POSTs, some 404s,
 * plus two server-sent-event streams that reconnect.
 *
 * Every 10 s it samples Fulcrum's RSS and open fds (/proc/PID/status,
 * /proc/PID/fd), heap and event-loop delay (admin /metrics:
 * nodejs_heap_size_used_bytes, nodejs_eventloop_lag_p99_seconds), requests and
 * errors, and prints one line. At the end: the least-squares slope per minute
 * of RSS, fds and heap (first sample left out as warm-up when there are enough)
 * and a verdict line. Exit code 0 for PASS or WARN, 1 for FAIL.
 *
 * Verdict: FAIL if Fulcrum exits, errors pass 0.1% of requests, or open fds grow
 * (by more than 50, or more than 2/min on runs of 3 minutes or more). WARN on any
 * error, on RSS and heap growth (> 10 and > 2 MB/min) or RSS alone (> 20 MB/min)
 * on runs of 3 minutes or more, on an event-loop p99 above 200 ms, or when the
 * access-log line count and fulcrum_requests_total disagree.
 *
 * Ctrl-C stops the load and prints the summary so far; a second Ctrl-C exits at
 * once. Fulcrum (by its PID) and the backends are always stopped, and the temp
 * folder removed. Not part of `npm test`. Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const SAMPLE_MS = 10_000;
const MAX_MINUTES = 120;
const UPLOAD = Buffer.alloc(1024 * 1024, 'x'); // 1 MB POST body
const SSE_STREAMS = 2;

// --- arguments --------------------------------------------------------------------------

function usage(message) {
  if (message) process.stderr.write(`soak: ${message}\n`);
  process.stderr.write('usage: npm run soak -- [--minutes N (default 1, max 120)] [--connections N (default 50)] [--rps N (default 0: as fast as they go)]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { minutes: 1, connections: 50, rps: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    if (flag === '--minutes' || flag === '-m') opts.minutes = Number(value());
    else if (flag === '--connections' || flag === '-c') opts.connections = Number(value());
    else if (flag === '--rps') opts.rps = Number(value());
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown argument ${JSON.stringify(arg)}`);
  }
  if (!Number.isFinite(opts.minutes) || opts.minutes <= 0 || opts.minutes > MAX_MINUTES) usage(`--minutes must be a number above 0 and at most ${MAX_MINUTES}`);
  if (!Number.isInteger(opts.connections) || opts.connections < 1 || opts.connections > 1000) usage('--connections must be a whole number from 1 to 1000');
  if (!Number.isFinite(opts.rps) || opts.rps < 0) usage('--rps must be a number of at least 0 (0: no pacing)');
  return opts;
}

// --- helpers -----------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free loopback port (bound then released; the window for a race is tiny). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function procStatus(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, threads: Number(/^Threads:\s+(\d+)/m.exec(text)?.[1] ?? NaN) };
}

function openFds(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Prometheus text → sum of each metric's samples (labels ignored) and the raw lines. */
function parseMetrics(text) {
  const sums = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) sums.set(m[1], (sums.get(m[1]) ?? 0) + v);
  }
  return sums;
}

function fmt(n, width, digits = 1) {
  return (Number.isFinite(n) ? n.toFixed(digits) : '-').padStart(width);
}

// --- backends ----------------------------------------------------------------------------

function startBackend(name) {
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/healthz') {
      req.resume();
      res.end('ok');
    } else if (req.method === 'GET' && url.startsWith('/hello')) {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(`hello from ${name}\n`);
    } else if (req.method === 'POST' && url === '/upload') {
      let bytes = 0;
      req.on('data', (c) => (bytes += c.length));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ backend: name, bytes }));
      });
    } else if (req.method === 'GET' && url === '/events') {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const timer = setInterval(() => {
        res.write(`id: ${n}\ndata: ${name} ${n}\n\n`);
        if (++n >= 40) {
          clearInterval(timer);
          res.end();
        }
      }, 250);
      res.on('close', () => clearInterval(timer));
    } else {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ name, server, port: server.address().port })));
}

function closeServer(server) {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

// --- the run -----------------------------------------------------------------------------

const opts = parseArgs(process.argv.slice(2));
if (process.platform !== 'linux') {
  process.stderr.write('soak: needs Linux (/proc/PID/status and /proc/PID/fd)\n');
  process.exit(2);
}
if (!fs.existsSync(CLI)) {
  process.stderr.write(`soak: ${path.relative(process.cwd(), CLI)} not found: run npm run build first\n`);
  process.exit(2);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-soak-'));
const state = {
  child: undefined,
  childExit: undefined, // { code, signal } once it has exited
  backends: [],
  pools: [],
  stopping: false,
  cleanedUp: false,
};
const counts = { done: 0, errors: 0, byKind: { get: 0, post: 0, notFound: 0 }, unexpected: new Map(), sseEvents: 0, sseStreams: 0, lastError: '' };

/** Synchronous last resort (process 'exit'): never leave Fulcrum running. */
function killChildNow() {
  const c = state.child;
  if (c !== undefined && state.childExit === undefined && c.pid !== undefined) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function stopChild() {
  const c = state.child;
  if (c === undefined || state.childExit !== undefined || c.pid === undefined) return;
  const exited = new Promise((resolve) => c.once('exit', resolve));
  try {
    process.kill(c.pid, 'SIGTERM'); // drains: in-flight requests finish, then exit 0
  } catch {
    return;
  }
  const t = setTimeout(() => killChildNow(), 8_000);
  await exited;
  clearTimeout(t);
}

async function cleanup() {
  if (state.cleanedUp) return;
  state.cleanedUp = true;
  await Promise.all(state.pools.map((p) => p.destroy().catch(() => {})));
  await stopChild();
  await Promise.all(state.backends.map((b) => closeServer(b.server)));
  fs.rmSync(tmp, { recursive: true, force: true });
}

process.on('exit', killChildNow);
// Ctrl-C reaches npm and this process together, and npm forwards it once more: a
// repeat within a second is the same Ctrl-C.
let firstInterrupt = 0;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (firstInterrupt !== 0 && Date.now() - firstInterrupt < 1_000) return;
    if (firstInterrupt === 0) {
      firstInterrupt = Date.now();
      process.stdout.write(`\n${signal}: stopping the load, then Fulcrum and the backends (again to exit at once)\n`);
      state.stopping = true;
    } else {
      killChildNow();
      fs.rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    }
  });
}

async function main() {
  state.backends = await Promise.all(['b1', 'b2', 'b3'].map(startBackend));
  const listenPort = await freePort();
  const adminPort = await freePort();
  const configFile = path.join(tmp, 'soak.yaml');
  const logFile = path.join(tmp, 'access.log');
  fs.writeFileSync(configFile, [
    'shutdownTimeout: 5s',
    'log:',
    '  level: info',
    '  access: true',
    'admin:',
    `  listen: 127.0.0.1:${adminPort}`,
    'listeners:',
    '  soak:',
    `    listen: 127.0.0.1:${listenPort}`,
    '    limits:',
    '      maxBodySize: 2mb',
    '    routes:',
    '      - pool: soak',
    'pools:',
    '  soak:',
    '    strategy: round-robin',
    '    backends:',
    ...state.backends.flatMap((b) => [`      - url: http://127.0.0.1:${b.port}`, `        name: ${b.name}`]),
    '    healthCheck:',
    '      path: /healthz',
    '      interval: 1s',
    '      timeout: 500ms',
    '    outlierDetection:',
    '      consecutiveFailures: 5',
    '      baseEjectionTime: 5s',
    '      maxEjectionPercent: 34',
    '    retries:',
    '      attempts: 1',
    '      on: [connect-failure, reset, 503]',
    '',
  ].join('\n'));

  // The access log goes to a file opened for appending, so it can be truncated between
  // samples (lines are counted first) and a long run does not fill the disk.
  const logFd = fs.openSync(logFile, 'a');
  let stderrTail = '';
  // Its own process group: a Ctrl-C in the terminal reaches this script, which stops
  // the load first and then Fulcrum, by its PID.
  const child = spawn(process.execPath, [CLI, '--config', configFile], { cwd: ROOT, stdio: ['ignore', logFd, 'pipe'], detached: true });
  fs.closeSync(logFd);
  state.child = child;
  child.stderr.on('data', (d) => (stderrTail = (stderrTail + d.toString()).slice(-4000)));
  child.on('exit', (code, signal) => (state.childExit = { code, signal }));

  const admin = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (state.childExit !== undefined) throw new Error(`Fulcrum exited at start (code ${state.childExit.code}): ${stderrTail.trim()}`);
    if (Date.now() > deadline) throw new Error(`Fulcrum not ready after 20 s: ${stderrTail.trim()}`);
    const ready = await fetch(`${admin}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) break;
    await sleep(100);
  }

  process.stdout.write(
    `soak: Fulcrum pid ${child.pid} on 127.0.0.1:${listenPort} (admin ${adminPort}), backends ${state.backends.map((b) => b.port).join(', ')}; ` +
      `${opts.connections} connections${opts.rps > 0 ? ` at ${opts.rps} req/s` : ''} + ${SSE_STREAMS} SSE streams for ${opts.minutes} min, a sample every ${SAMPLE_MS / 1000} s\n`,
  );

  const origin = `http://127.0.0.1:${listenPort}`;
  const pool = new Pool(origin, { connections: opts.connections, pipelining: 1, keepAliveTimeout: 30_000 });
  const ssePool = new Pool(origin, { connections: SSE_STREAMS, pipelining: 1, bodyTimeout: 30_000 });
  state.pools.push(pool, ssePool);

  const record = (kind, status, expected) => {
    counts.done++;
    if (status === expected) counts.byKind[kind]++;
    else {
      counts.errors++;
      const k = `${kind} ${status}`;
      counts.unexpected.set(k, (counts.unexpected.get(k) ?? 0) + 1);
    }
  };
  const fail = (err) => {
    counts.done++;
    counts.errors++;
    counts.lastError = err?.code ?? err?.message ?? String(err);
    const k = `error ${counts.lastError}`;
    counts.unexpected.set(k, (counts.unexpected.get(k) ?? 0) + 1);
  };

  // --rps: request n may start at loadStart + n / rps (shared by all connections).
  let seq = 0;
  const loadStart = Date.now();
  async function loadLoop() {
    while (!state.stopping) {
      const n = seq++;
      if (opts.rps > 0) {
        const wait = loadStart + (n * 1000) / opts.rps - Date.now();
        if (wait > 0) await sleep(wait);
        if (state.stopping) break;
      }
      try {
        if (n % 50 === 7) {
          const res = await pool.request({ path: '/upload', method: 'POST', body: UPLOAD, headers: { 'content-type': 'application/octet-stream' } });
          await res.body.dump();
          record('post', res.statusCode, 200);
        } else if (n % 20 === 3) {
          const res = await pool.request({ path: `/missing/${n}`, method: 'GET' });
          await res.body.dump();
          record('notFound', res.statusCode, 404);
        } else {
          const res = await pool.request({ path: `/hello?n=${n}`, method: 'GET' });
          await res.body.dump();
          record('get', res.statusCode, 200);
        }
      } catch (err) {
        fail(err);
        await sleep(50);
      }
    }
  }

  async function sseLoop() {
    while (!state.stopping) {
      try {
        const res = await ssePool.request({ path: '/events', method: 'GET', headers: { accept: 'text/event-stream' } });
        counts.sseStreams++;
        if (res.statusCode !== 200) {
          await res.body.dump();
          record('get', res.statusCode, 200);
          continue;
        }
        let pending = '';
        for await (const chunk of res.body) {
          pending += chunk.toString('utf8');
          let i;
          while ((i = pending.indexOf('\n\n')) >= 0) {
            if (pending.slice(0, i).includes('data:')) counts.sseEvents++;
            pending = pending.slice(i + 2);
          }
          if (state.stopping) {
            res.body.destroy();
            break;
          }
        }
      } catch (err) {
        if (!state.stopping) {
          fail(err);
          await sleep(100);
        }
      }
    }
  }

  const loops = [...Array.from({ length: opts.connections }, loadLoop), ...Array.from({ length: SSE_STREAMS }, sseLoop)];

  // --- sampling ---
  const samples = [];
  const t0 = Date.now();
  const end = t0 + opts.minutes * 60_000;
  let lastDone = 0;
  let lastT = t0;
  let logLinesTotal = 0;
  let logBytesTotal = 0;
  process.stdout.write(
    `${'t'.padStart(6)} ${'rss MB'.padStart(8)} ${'fds'.padStart(5)} ${'heap MB'.padStart(8)} ${'lag p99 ms'.padStart(10)} ` +
      `${'requests'.padStart(9)} ${'req/s'.padStart(7)} ${'errors'.padStart(6)} ${'sse ev'.padStart(7)} ${'log lines'.padStart(10)} ${'fulcrum_req'.padStart(11)}\n`,
  );

  const takeSample = async () => {
    const now = Date.now();
    const pid = child.pid;
    const st = procStatus(pid);
    const fds = openFds(pid);
    let metrics = new Map();
    try {
      const r = await fetch(`${admin}/metrics`);
      metrics = parseMetrics(await r.text());
    } catch {
      // counted as missing values
    }
    // Count access-log lines written since the last sample, then truncate the file.
    const log = fs.readFileSync(logFile);
    let lines = 0;
    for (let i = 0; i < log.length; i++) if (log[i] === 10) lines++;
    logLinesTotal += lines;
    logBytesTotal += log.length;
    fs.truncateSync(logFile, 0);

    const s = {
      tMin: (now - t0) / 60_000,
      rssMb: st.rssMb,
      fds,
      heapMb: (metrics.get('nodejs_heap_size_used_bytes') ?? NaN) / 2 ** 20,
      lagP99Ms: (metrics.get('nodejs_eventloop_lag_p99_seconds') ?? NaN) * 1000,
      done: counts.done,
      rate: ((counts.done - lastDone) * 1000) / Math.max(1, now - lastT),
      errors: counts.errors,
      sseEvents: counts.sseEvents,
      logLines: logLinesTotal,
      fulcrumRequests: metrics.get('fulcrum_requests_total') ?? NaN,
    };
    lastDone = counts.done;
    lastT = now;
    samples.push(s);
    process.stdout.write(
      `${fmt((now - t0) / 1000, 5, 0)}s ${fmt(s.rssMb, 8)} ${fmt(s.fds, 5, 0)} ${fmt(s.heapMb, 8)} ${fmt(s.lagP99Ms, 10)} ` +
        `${fmt(s.done, 9, 0)} ${fmt(s.rate, 7, 0)} ${fmt(s.errors, 6, 0)} ${fmt(s.sseEvents, 7, 0)} ${fmt(s.logLines, 10, 0)} ${fmt(s.fulcrumRequests, 11, 0)}\n`,
    );
  };

  while (!state.stopping && state.childExit === undefined && Date.now() < end) {
    const next = Math.min(end, t0 + (samples.length + 1) * SAMPLE_MS);
    while (!state.stopping && state.childExit === undefined && Date.now() < next) await sleep(Math.min(250, next - Date.now()));
    if (state.childExit !== undefined) break;
    if (Date.now() >= next) await takeSample();
  }
  const stoppedEarly = state.stopping;
  state.stopping = true;
  const childDied = state.childExit !== undefined;
  // Let the loops finish their current request (bounded).
  await Promise.race([Promise.all(loops), sleep(15_000)]);

  // --- summary ---
  const used = samples.length >= 4 ? samples.slice(1) : samples;
  const xs = used.map((s) => s.tMin);
  const rssSlope = slope(xs, used.map((s) => s.rssMb));
  const fdSlope = slope(xs, used.map((s) => s.fds));
  const heapSlope = slope(xs, used.map((s) => s.heapMb));
  const elapsedMin = (Date.now() - t0) / 60_000;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const maxLag = Math.max(...samples.map((s) => s.lagP99Ms).filter(Number.isFinite), 0);

  process.stdout.write('\n');
  process.stdout.write(
    `requests ${counts.done} in ${elapsedMin.toFixed(1)} min (${(counts.done / Math.max(1e-9, elapsedMin * 60)).toFixed(0)}/s): ` +
      `${counts.byKind.get} GET 200, ${counts.byKind.post} POST 1 MB 200, ${counts.byKind.notFound} GET 404, ` +
      `${counts.sseEvents} SSE events over ${counts.sseStreams} streams; errors ${counts.errors}` +
      `${counts.unexpected.size > 0 ? ` (${[...counts.unexpected].map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}\n`,
  );
  process.stdout.write(`access log: ${logLinesTotal} lines, ${(logBytesTotal / 2 ** 20).toFixed(1)} MB (truncated after each sample)\n`);
  if (samples.length > 0) {
    process.stdout.write(
      `slopes over ${used.length} samples${used.length < samples.length ? ' (first left out as warm-up)' : ''}: ` +
        `RSS ${rssSlope >= 0 ? '+' : ''}${rssSlope.toFixed(2)} MB/min, fds ${fdSlope >= 0 ? '+' : ''}${fdSlope.toFixed(2)} fds/min, ` +
        `heap ${heapSlope >= 0 ? '+' : ''}${heapSlope.toFixed(2)} MB/min; ` +
        `RSS ${first.rssMb.toFixed(1)} -> ${last.rssMb.toFixed(1)} MB, fds ${first.fds} -> ${last.fds}, heap ${first.heapMb.toFixed(1)} -> ${last.heapMb.toFixed(1)} MB, ` +
        `max event-loop p99 ${maxLag.toFixed(1)} ms\n`,
    );
  }

  const failures = [];
  const warnings = [];
  if (childDied) failures.push(`Fulcrum exited during the run (code ${state.childExit.code}, signal ${state.childExit.signal}): ${stderrTail.trim().split('\n').slice(-3).join(' | ')}`);
  if (samples.length < 2) warnings.push('fewer than 2 samples: no trend');
  if (counts.errors > 0.001 * Math.max(1, counts.done)) failures.push(`errors ${counts.errors} of ${counts.done} (> 0.1%)`);
  else if (counts.errors > 0) warnings.push(`${counts.errors} errors`);
  if (samples.length >= 2) {
    if (last.fds - first.fds > 50 || (elapsedMin >= 3 && fdSlope > 2)) failures.push(`open fds grow (${fdSlope.toFixed(2)}/min, ${first.fds} -> ${last.fds})`);
    // Under 3 minutes the slopes mostly show warm-up (pools filling, JIT, GC sizing): printed, not judged.
    if (elapsedMin >= 3 && rssSlope > 10 && heapSlope > 2) warnings.push(`RSS and heap grow (${rssSlope.toFixed(1)} and ${heapSlope.toFixed(1)} MB/min)`);
    else if (elapsedMin >= 3 && rssSlope > 20) warnings.push(`RSS grows ${rssSlope.toFixed(1)} MB/min (heap steady: buffers or fragmentation?)`);
    if (maxLag > 200) warnings.push(`event-loop p99 reached ${maxLag.toFixed(0)} ms`);
  }
  if (Number.isFinite(last?.fulcrumRequests) && Math.abs(last.fulcrumRequests - logLinesTotal) > Math.max(100, 0.02 * logLinesTotal)) {
    warnings.push(`access-log lines (${logLinesTotal}) and fulcrum_requests_total (${last.fulcrumRequests}) disagree`);
  }
  if (elapsedMin < 10) warnings.push('short run: use --minutes 10 or more for a meaningful leak trend');
  if (stoppedEarly) warnings.push('stopped early by a signal');

  const verdict = failures.length > 0 ? 'FAIL' : warnings.some((w) => !w.startsWith('short run') && !w.startsWith('stopped early')) ? 'WARN' : 'PASS';
  process.stdout.write(`verdict: ${verdict}${[...failures, ...warnings].length > 0 ? ` (${[...failures, ...warnings].join('; ')})` : ''}\n`);
  return verdict === 'FAIL' ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`soak: ${err instanceof Error ? err.message : String(err)}\n`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
