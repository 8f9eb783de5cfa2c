#!/usr/bin/env node
/**
 * npm run test:failover (SPEC section 10, active-passive): the keepalived pair
 * of examples/keepalived/, built in network namespaces on this machine.
 *
 *   ns "br"      a bridge joining the three below (nothing on the host's own network)
 *   ns "master"  Fulcrum (examples/keepalived/fulcrum.yaml) + keepalived-master.conf + its backend
 *   ns "backup"  the same with keepalived-backup.conf
 *   ns "client"  steady requests to the virtual IP, each on a new connection
 *
 * Each backend answers with its host's name, so the client sees who holds the
 * VIP. Two runs: the master's Fulcrum is stopped with SIGTERM, then (a fresh
 * pair) with SIGKILL. Each prints the time from the signal until the VIP
 * answered from the backup and the number of failed requests; the script exits
 * non-zero when the VIP did not move within the bound. Everything it creates
 * (namespaces by name, processes by PID, a temp folder) is removed at the end,
 * on failure and on Ctrl-C too. Needs root (CI runs as root), ip, keepalived, curl.
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const EXAMPLE = path.join(ROOT, 'examples', 'keepalived');
const KEEPALIVED = '/usr/sbin/keepalived';
/** The VIP must answer from the backup within this long after the signal. */
const BOUND_MS = Number(process.env.FAILOVER_BOUND_MS ?? 8000);
/** Gap between two client requests. */
const EVERY_MS = 20;

const id = String(process.pid % 100000);
const ns = { br: `fulcrum-fo-br-${id}`, master: `fulcrum-fo-m-${id}`, backup: `fulcrum-fo-b-${id}`, client: `fulcrum-fo-c-${id}` };
// 10.213.0.0/24 inside the namespaces only; the examples' 192.168.10.x is rewritten to it.
const net = '10.213.0';
const addr = { master: `${net}.11`, backup: `${net}.12`, client: `${net}.13`, vip: `${net}.100` };
/** This run's folder (configs, logs, pid files); a fresh one per run. */
let tmp = '';
const created = { ns: [], pids: new Set() };

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }).toString();
}
const ipn = (n, ...args) => sh('ip', ['-n', n, ...args]);

function log(...parts) {
  process.stderr.write(`[failover] ${parts.join(' ')}\n`);
}

/** A long-running process inside namespace `n` (ip netns exec execs it: the PID is the command's). */
function start(n, name, cmd, args) {
  const out = fs.openSync(path.join(tmp, `${name}.log`), 'a');
  const child = spawn('ip', ['netns', 'exec', n, cmd, ...args], { stdio: ['ignore', out, out] });
  created.pids.add(child.pid);
  child.on('exit', () => created.pids.delete(child.pid));
  return child;
}

function killPid(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

async function cleanup() {
  for (const pid of created.pids) killPid(pid);
  // keepalived forks its VRRP child; both are named by their pid files.
  for (const f of tmp !== '' && fs.existsSync(tmp) ? fs.readdirSync(tmp) : []) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number(fs.readFileSync(path.join(tmp, f), 'utf8').trim());
    if (pid > 0) killPid(pid);
  }
  await sleep(100);
  for (const n of created.ns.splice(0).reverse()) {
    try {
      sh('ip', ['netns', 'del', n]);
    } catch {
      // already gone
    }
  }
  if (tmp !== '') fs.rmSync(tmp, { recursive: true, force: true });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The three hosts and the bridge; loopback up in each (Fulcrum's admin and the backend live there). */
function buildNetwork() {
  for (const n of Object.values(ns)) {
    sh('ip', ['netns', 'add', n]);
    created.ns.push(n);
    ipn(n, 'link', 'set', 'lo', 'up');
  }
  ipn(ns.br, 'link', 'add', 'br0', 'type', 'bridge');
  ipn(ns.br, 'link', 'set', 'br0', 'up');
  for (const host of ['master', 'backup', 'client']) {
    const inside = `fo${id}${host[0]}`;
    const outside = `${inside}b`;
    // Made inside the bridge's namespace, so the host's own network never sees either end.
    ipn(ns.br, 'link', 'add', inside, 'type', 'veth', 'peer', 'name', outside);
    ipn(ns.br, 'link', 'set', inside, 'netns', ns[host]);
    ipn(ns[host], 'link', 'set', inside, 'name', 'eth0');
    ipn(ns[host], 'addr', 'add', `${addr[host]}/24`, 'dev', 'eth0');
    ipn(ns[host], 'link', 'set', 'eth0', 'up');
    ipn(ns.br, 'link', 'set', outside, 'master', 'br0');
    ipn(ns.br, 'link', 'set', outside, 'up');
  }
}

/** The example files, with this network's addresses. */
function fromExample(file) {
  return fs.readFileSync(path.join(EXAMPLE, file), 'utf8').replaceAll('192.168.10.100', addr.vip).replaceAll('192.168.10.', `${net}.`);
}

const BACKEND = `
const http = require('node:http');
const name = process.argv[1];
http.createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain' }); res.end(name); })
  .listen(9001, '127.0.0.1');
`;

/** Steady requests to the VIP, each on a fresh connection: one JSON line per request on stdout. */
const CLIENT = `
const http = require('node:http');
const [url, every] = [process.argv[1], Number(process.argv[2])];
const once = () => new Promise((resolve) => {
  const t = Date.now();
  const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve({ t, ok: res.statusCode === 200, status: res.statusCode, body }));
    res.on('error', (e) => resolve({ t, ok: false, error: e.message }));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => resolve({ t, ok: false, error: e.code || e.message }));
});
(async () => {
  for (;;) {
    const r = await once();
    process.stdout.write(JSON.stringify(r) + '\\n');
    await new Promise((r) => setTimeout(r, every));
  }
})();
`;

/** One pair: backend, Fulcrum and keepalived on each host. */
function startPair() {
  fs.writeFileSync(path.join(tmp, 'backend.js'), BACKEND);
  // The examples' backends are the host's own (127.0.0.1:9001 here): each host answers with its name.
  const fulcrumYaml = fromExample('fulcrum.yaml')
    .replace(/backends:\n(\s+- url: .*\n)+/, 'backends:\n      - url: http://127.0.0.1:9001\n')
    .replace(/interval: 2s/, 'interval: 1s');
  const procs = {};
  for (const host of ['master', 'backup']) {
    const dir = path.join(tmp, host);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'fulcrum.yaml'), fulcrumYaml);
    const conf = path.join(dir, 'keepalived.conf');
    fs.writeFileSync(conf, fromExample(`keepalived-${host}.conf`), { mode: 0o644 });
    start(ns[host], `${host}-backend`, process.execPath, ['-e', BACKEND, host]);
    procs[host] = start(ns[host], `${host}-fulcrum`, process.execPath, [CLI, '--config', path.join(dir, 'fulcrum.yaml')]);
    start(ns[host], `${host}-keepalived`, KEEPALIVED, [
      '--dont-fork', '--log-console', '--vrrp', '-f', conf,
      '-p', path.join(tmp, `${host}-keepalived.pid`), '-r', path.join(tmp, `${host}-vrrp.pid`),
    ]);
  }
  return procs;
}

function vipHolder() {
  for (const host of ['master', 'backup']) {
    if (ipn(ns[host], 'addr', 'show', 'dev', 'eth0').includes(`${addr.vip}/`)) return host;
  }
  return undefined;
}

async function readyz(host) {
  try {
    sh('ip', ['netns', 'exec', ns[host], '/usr/bin/curl', '-fs', '-o', '/dev/null', '-m', '1', 'http://127.0.0.1:9901/readyz']);
    return true;
  } catch {
    return false;
  }
}

async function run(signal) {
  log(`run with ${signal}: building the pair`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-failover-'));
  buildNetwork();
  const fulcrum = startPair();
  await waitFor(async () => (await readyz('master')) && (await readyz('backup')), 20_000, 'both Fulcrums ready');
  await waitFor(() => vipHolder() === 'master', 20_000, 'the VIP on the master');
  const client = spawn('ip', ['netns', 'exec', ns.client, process.execPath, '-e', CLIENT, `http://${addr.vip}:8080/`, String(EVERY_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  created.pids.add(client.pid);
  const results = [];
  let buf = '';
  client.stdout.on('data', (d) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      results.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
  });
  // Steady traffic answered by the master first.
  await waitFor(() => results.filter((r) => r.ok && r.body === 'master').length >= 25, 10_000, 'steady answers from the master');
  const t0 = Date.now();
  log(`${signal} to the master's Fulcrum (pid ${fulcrum.master.pid})`);
  process.kill(fulcrum.master.pid, signal);
  let moved;
  try {
    await waitFor(() => (moved = results.find((r) => r.t >= t0 && r.ok && r.body === 'backup')) !== undefined, BOUND_MS, 'an answer from the backup');
    // A second of steady answers from the backup after the move.
    await waitFor(() => results.filter((r) => r.t >= moved.t && r.ok && r.body === 'backup').length >= 1000 / EVERY_MS / 2, 10_000, 'steady answers from the backup');
  } finally {
    killPid(client.pid);
    created.pids.delete(client.pid);
  }
  const after = results.filter((r) => r.t >= t0 - 1000);
  const failed = after.filter((r) => !r.ok);
  const holder = vipHolder();
  await cleanup();
  const seconds = moved === undefined ? undefined : (moved.t - t0) / 1000;
  return { signal, seconds, failed: failed.length, requests: after.length, holder, errors: [...new Set(failed.map((r) => r.error ?? `status ${r.status}`))] };
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces): run it as root, as CI does');
  for (const tool of [KEEPALIVED, '/usr/bin/curl']) if (!fs.existsSync(tool)) throw new Error(`${tool} is not installed`);
  if (!fs.existsSync(CLI)) throw new Error('dist/cli.js is missing: npm run build');
  const out = [];
  for (const signal of ['SIGTERM', 'SIGKILL']) {
    const r = await run(signal);
    out.push(r);
    const moved = r.seconds === undefined ? 'did not move' : `${r.seconds.toFixed(2)} s`;
    process.stdout.write(`failover after ${signal}: VIP answered from the backup after ${moved}; failed requests ${r.failed} of ${r.requests}${r.errors.length > 0 ? ` (${r.errors.join(', ')})` : ''}\n`);
  }
  const bad = out.filter((r) => r.seconds === undefined || r.seconds * 1000 > BOUND_MS);
  if (bad.length > 0) {
    process.stderr.write(`failover did not happen within ${BOUND_MS} ms: ${bad.map((r) => r.signal).join(', ')}\n`);
    process.exitCode = 1;
  }
}

let cleaning = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (cleaning) return;
    cleaning = true;
    void cleanup().then(() => process.exit(130));
  });
}

main().catch(async (err) => {
  process.stderr.write(`[failover] ${err.message}\n`);
  for (const f of tmp !== '' && fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((x) => x.endsWith('.log')) : []) {
    process.stderr.write(`--- ${f}\n${fs.readFileSync(path.join(tmp, f), 'utf8').split('\n').slice(-15).join('\n')}\n`);
  }
  await cleanup();
  process.exit(1);
});
