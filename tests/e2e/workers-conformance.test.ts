/**
 * SPEC with `workers: 2` (and `auto`), black box: the built CLI on a YAML
 * file, real backends on loopback. Every admin call goes to the primary;
 * traffic goes to the workers (node:cluster hands each new connection to the
 * next worker, so requests on fresh connections reach both). Each test checks
 * that what one process decides holds in every process, and that the figures
 * are sums over the workers (SPEC section 7, last line).
 */
import http from 'node:http';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import { addresses, backendsYaml, startCli, tempDir, waitFor, waitRefused, writeFile, type CliProcess, type LogLine } from '../cli/harness';
import type { TestBackend } from '../helpers/backends';
import { request } from '../helpers/http';
import { sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';
import { metricsOf, poolsOf } from '../helpers/admin';

const { cleanups, backend, switchable } = useTeardown({ blackBox: true });

interface Cluster {
  readonly cli: CliProcess;
  readonly file: string;
  readonly url: string;
  readonly admin: string;
}

/** `pool` is the body of pool "web" (strategy, backends, health...), indented by 4. */
function yaml(pool: string, top = 'workers: 2\nshutdownTimeout: 5s', extraListeners = ''): string {
  return `${top}
log: { level: info, access: true }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes: [ { pool: web } ]
${extraListeners}pools:
  web:
${pool}`;
}

async function start(text: string, workers = 2): Promise<Cluster> {
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', text);
  const cli = startCli(['--config', file], { cwd: dir });
  await cli.waitForLog((l) => l.msg === 'workers listening', 20_000, 'workers listening');
  // Each worker's own "listening" line is in its log buffer (flushed within 250 ms).
  await waitFor(() => workerPids(cli).size === workers, 5000, `${workers} workers' listening lines`);
  const { url, adminUrl } = await addresses(cli);
  return { cli, file, url, admin: adminUrl };
}

function workerPids(cli: CliProcess): Set<number> {
  return new Set(cli.logs.filter((l) => l.msg === 'listening').map((l) => Number(l.pid)));
}

const accessLines = (cli: CliProcess): LogLine[] => cli.logs.filter((l) => l.msg === 'request');

/** `n` requests, 8 at a time, each on a fresh connection (so both workers serve); their bodies. */
async function spread(url: string, n: number, path = '/x'): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i += 8) {
    const replies = await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => request(`${url}${path}`)));
    bodies.push(...replies.map((r) => (r.status === 200 ? r.body : `status-${r.status}`)));
  }
  return bodies;
}

function countOf(items: readonly string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const i of items) c[i] = (c[i] ?? 0) + 1;
  return c;
}

/** Access lines (past and future) until `n` lines for `url` are in; which worker pids served them. */
async function servedBy(cli: CliProcess, url: string, n: number): Promise<{ pids: Set<number>; lines: LogLine[] }> {
  await waitFor(() => accessLines(cli).filter((l) => l.url === url).length >= n, 5000, `${n} access lines for ${url}`);
  const lines = accessLines(cli).filter((l) => l.url === url);
  return { pids: new Set(lines.map((l) => Number(l.pid))), lines };
}

async function stateOf(c: Cluster, backendName: string): Promise<string | undefined> {
  return (await poolsOf(c.admin))[0]!.backends.find((b) => b.name === backendName)?.state;
}

/** An agent with one keep-alive connection: every request on it reaches the same worker. */
function oneConnection(): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(async () => agent.destroy());
  return agent;
}

/** A backend that holds every request to /hold until released; others are answered at once. */
async function holding(name: string): Promise<{ b: TestBackend; release(): void; held(): number }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const b = await backend(name, (req, res) => {
    req.resume();
    if (req.url !== '/hold') return void req.on('end', () => res.writeHead(200, { 'x-backend': name }).end(name));
    void gate.then(() => res.writeHead(200, { 'x-backend': name }).end(name));
  });
  cleanups.push(async () => release()); // before close (cleanups run last-in first-out)
  return { b, release, held: () => b.seen.filter((r) => r.url === '/hold').length };
}

describe('SPEC 5 and 7 with workers: 2: every admin endpoint, figures summed over the workers', () => {
  test('/api/pools (SPEC fields, sums), /healthz, /readyz, /metrics (counters, histogram count, gauges once)', async () => {
    const slow = await holding('slow');
    const fast = await backend('fast');
    const c = await start(yaml(`    strategy: round-robin\n${backendsYaml([fast, slow.b], (n) => (n === 'slow' ? ', weight: 3' : ''))}`));
    expect((await request(`${c.admin}/healthz`)).status).toBe(200);
    expect((await request(`${c.admin}/readyz`)).status).toBe(200);

    const N = 48;
    expect(Object.keys(countOf(await spread(c.url, N, '/count'))).sort()).toEqual(['fast', 'slow']);
    expect((await servedBy(c.cli, '/count', N)).pids.size).toBe(2);

    // Requests held on "slow" from both workers: the in-flight figures add up.
    const holds = Array.from({ length: 8 }, () => request(`${c.url}/hold`));
    await waitFor(async () => slow.held() >= 1 && fast.seen.filter((r) => r.url === '/hold').length + slow.held() === 8, 5000, 'the /hold requests to arrive');
    const held = slow.held();
    const during = await poolsOf(c.admin);
    expect(during[0]!.backends.find((b) => b.name === 'slow')!.activeRequests).toBe(held);
    expect(during[0]!.backends.find((b) => b.name === 'fast')!.activeRequests).toBe(0);
    const m1 = await metricsOf(c.admin);
    expect(sum(m1, 'fulcrum_backend_active_requests', { backend: 'slow' })).toBe(held);
    expect(sum(m1, 'fulcrum_backend_active_requests', { backend: 'fast' })).toBe(0);
    slow.release();
    expect((await Promise.all(holds)).map((r) => r.status)).toEqual(Array(8).fill(200));
    const holdLines = (await servedBy(c.cli, '/hold', 8)).lines.filter((l) => l.backend === 'slow');
    expect(holdLines.length).toBe(held);

    const total = N + 8;
    const m = await metricsOf(c.admin);
    expect(sum(m, 'fulcrum_requests_total')).toBe(total);
    expect(sum(m, 'fulcrum_requests_total', { code: '200', method: 'GET', listener: 'public', pool: 'web' })).toBe(total);
    expect(sum(m, 'fulcrum_request_duration_seconds_count')).toBe(total);
    expect(sum(m, 'fulcrum_request_duration_seconds_bucket', { le: '+Inf' })).toBe(total);
    // State gauges come from the primary, once, not once per process.
    expect(m.filter((x) => x.name === 'fulcrum_backend_up').map((x) => [x.labels.backend, x.value]).sort()).toEqual([['fast', 1], ['slow', 1]]);
    expect(sum(m, 'fulcrum_backend_active_requests')).toBe(0);
    expect(sum(m, 'fulcrum_config_reloads_total')).toBe(0);
    expect(m.filter((x) => x.name === 'fulcrum_config_reloads_total').length).toBe(2);
    expect(m.filter((x) => x.name === 'fulcrum_retries_total').map((x) => x.value)).toEqual([0]);

    const after = await poolsOf(c.admin);
    expect(after).toEqual([{ name: 'web', strategy: 'round-robin', backends: [expect.any(Object), expect.any(Object)] }]);
    for (const b of after[0]!.backends) {
      expect(Object.keys(b).sort()).toEqual(['activeRequests', 'backup', 'failures', 'name', 'requests', 'state', 'url', 'weight']);
    }
    expect(after[0]!.backends.map((b) => [b.name, b.state, b.weight, b.activeRequests, b.failures])).toEqual([['fast', 'up', 1, 0, 0], ['slow', 'up', 3, 0, 0]]);
    expect(after[0]!.backends.reduce((n, b) => n + b.requests, 0)).toBe(total);
    const lines = accessLines(c.cli);
    for (const b of after[0]!.backends) expect(b.requests).toBe(lines.filter((l) => l.backend === b.name).length);
    const detail = JSON.parse((await request(`${c.admin}/api/pools/web/backends/fast`)).body);
    expect(detail).toMatchObject({ name: 'fast', state: 'up', requests: after[0]!.backends[0]!.requests, pool: 'web' });
  });

  test('drain, enable and a weight set through the admin API hold in every worker', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = await start(yaml(`    strategy: weighted-round-robin\n${backendsYaml([a, b])}`));

    const drained = await request(`${c.admin}/api/pools/web/backends/a/drain`, { method: 'POST' });
    expect(drained.status).toBe(200);
    expect(JSON.parse(drained.body)).toMatchObject({ name: 'a', state: 'draining' });
    expect(countOf(await spread(c.url, 24, '/drained'))).toEqual({ b: 24 });
    expect((await servedBy(c.cli, '/drained', 24)).pids.size).toBe(2);
    expect((await stateOf(c, 'a'))).toBe('draining');
    expect(sum(await metricsOf(c.admin), 'fulcrum_backend_up', { backend: 'a' })).toBe(0);

    const enabled = await request(`${c.admin}/api/pools/web/backends/a/enable`, { method: 'POST' });
    expect(JSON.parse(enabled.body)).toMatchObject({ name: 'a', state: 'up' });
    await spread(c.url, 24, '/enabled');
    const back = await servedBy(c.cli, '/enabled', 24);
    for (const pid of back.pids) {
      // Each worker sends to both again.
      expect(new Set(back.lines.filter((l) => Number(l.pid) === pid).map((l) => l.backend))).toEqual(new Set(['a', 'b']));
    }
    expect(back.pids.size).toBe(2);

    const weighted = await request(`${c.admin}/api/pools/web/backends/b`, { method: 'PUT', body: JSON.stringify({ weight: 4 }), headers: { 'content-type': 'application/json' } });
    expect(weighted.status).toBe(200);
    expect(JSON.parse(weighted.body)).toMatchObject({ name: 'b', weight: 4 });
    await spread(c.url, 40, '/weighted');
    const w = await servedBy(c.cli, '/weighted', 40);
    expect(w.pids.size).toBe(2);
    for (const pid of w.pids) {
      // Smooth weighted round robin at 1:4 in each worker: at most one "a" per five, give or take the start of the cycle.
      const mine = w.lines.filter((l) => Number(l.pid) === pid);
      const as = mine.filter((l) => l.backend === 'a').length;
      expect(as).toBeLessThanOrEqual(Math.ceil(mine.length / 5));
      expect(mine.length - as).toBeGreaterThanOrEqual(Math.floor((mine.length * 4) / 5));
    }
    expect((await poolsOf(c.admin))[0]!.backends.map((x) => x.weight)).toEqual([1, 4]);
  });

  test('a health check in the primary marks a backend down, then up, for both workers', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    const c = await start(yaml(`    strategy: round-robin
    healthCheck: { path: /health, interval: 50ms, timeout: 500ms, rise: 1, fall: 1 }
${backendsYaml([a, b])}`));
    b.health = 503;
    await waitFor(async () => (await stateOf(c, 'b')) === 'down', 5000, 'b to be down');
    expect(countOf(await spread(c.url, 24, '/down'))).toEqual({ a: 24 });
    expect((await servedBy(c.cli, '/down', 24)).pids.size).toBe(2);
    const m = await metricsOf(c.admin);
    expect(sum(m, 'fulcrum_backend_up')).toBe(1);
    expect(sum(m, 'fulcrum_backend_up', { backend: 'b' })).toBe(0);
    expect(sum(m, 'fulcrum_health_checks_total', { backend: 'b', result: 'failure' })).toBeGreaterThanOrEqual(1);
    expect(readyz(c)).resolves.toBe(200);

    b.health = 200;
    await waitFor(async () => (await stateOf(c, 'b')) === 'up', 5000, 'b to be up again');
    await spread(c.url, 24, '/up');
    const up = await servedBy(c.cli, '/up', 24);
    expect(up.pids.size).toBe(2);
    for (const pid of up.pids) expect(up.lines.filter((l) => Number(l.pid) === pid && l.backend === 'b').length).toBeGreaterThan(0);

    a.health = 503;
    b.health = 503;
    await waitFor(async () => (await readyz(c)) === 503, 5000, '/readyz to say 503 with no backend up');
    const none = await request(`${c.url}/none`);
    expect(none.status).toBe(503);
    expect(none.headers['retry-after']).toBeDefined();
  });
});

async function readyz(c: Cluster): Promise<number> {
  return (await request(`${c.admin}/readyz`)).status;
}

describe('outlier detection with workers: 2', () => {
  // Regression: each worker checked maxEjectionPercent against its own view,
  // so two workers could eject both backends of a pool at the same moment
  // (every request a 503), and each counted the ejection it asked for.
  test('an ejection decided in one worker applies to all; maxEjectionPercent holds across workers; counted once', async () => {
    const x = await switchable('x');
    const y = await switchable('y');
    x.status = 500;
    y.status = 500;
    const c = await start(yaml(`    strategy: round-robin
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s, maxEjectionPercent: 50 }
${backendsYaml([x, y])}`));
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push(...(await Promise.all(Array.from({ length: 10 }, () => request(`${c.url}/fail`)))).map((r) => String(r.status)));
    }
    expect(countOf(statuses)).toEqual({ 500: 40 });
    const states = (await poolsOf(c.admin))[0]!.backends.map((b) => b.state).sort();
    expect(states).toEqual(['ejected', 'up']);
    const ejected = (await poolsOf(c.admin))[0]!.backends.find((b) => b.state === 'ejected')!.name;
    const m = await metricsOf(c.admin);
    expect(sum(m, 'fulcrum_outlier_ejections_total')).toBe(1);
    expect(sum(m, 'fulcrum_outlier_ejections_total', { backend: ejected })).toBe(1);
    expect(sum(m, 'fulcrum_backend_up', { backend: ejected })).toBe(0);
    const isEjection = (l: LogLine) => l.msg === 'backend state changed' && l.to === 'ejected';
    await c.cli.waitForLog(isEjection, 5000, 'the ejection logged');

    // No worker sends to the ejected backend any more.
    await spread(c.url, 16, '/after');
    const after = await servedBy(c.cli, '/after', 16);
    expect(after.pids.size).toBe(2);
    expect(after.lines.filter((l) => l.backend === ejected)).toEqual([]);
    expect(c.cli.logs.filter(isEjection).length).toBe(1);
  });

  // Regression: a worker never learnt when the primary let its ejected backend
  // back, so every later ejection was longer (base × n), however long the quiet
  // spell in between; one process does reset it (Envoy's behaviour).
  test('after a quiet spell a second ejection lasts baseEjectionTime again, as with one process', async () => {
    const x = await switchable('x');
    const y = await switchable('y');
    x.status = 500;
    const c = await start(yaml(`    strategy: round-robin
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 300ms, maxEjectionPercent: 50 }
${backendsYaml([x, y])}`));
    const agent = oneConnection(); // one worker decides both ejections
    const ejections = () => c.cli.logs.filter((l) => l.msg === 'backend state changed' && l.backend === 'x' && l.to === 'ejected');
    const failUntilEjected = async (n: number) => {
      await waitFor(async () => {
        await request(`${c.url}/e`, { agent });
        return ejections().length >= n;
      }, 5000, `ejection ${n}`);
    };
    await failUntilEjected(1);
    expect(ejections()[0]!.reason).toMatch(/for 300ms$/);
    const back = await c.cli.waitForLog((l) => l.msg === 'backend state changed' && l.backend === 'x' && l.from === 'ejected', 5000, 'x to come back');
    // Quiet for longer than the ejection lasted.
    await waitFor(() => Date.now() - Number(back.time) > 450, 2000, 'a quiet spell');
    await failUntilEjected(2);
    expect(ejections()[1]!.reason).toMatch(/for 300ms$/);
  });
});

describe('reload with workers: 2', () => {
  test('POST /api/reload reaches every worker; a reload whose new listener cannot bind is refused by the primary too; SIGHUP works', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const d = await backend('d');
    const c = await start(yaml(`    strategy: round-robin\n${backendsYaml([a, b])}`));
    await spread(c.url, 8, '/before');

    writeFile(tempDirOf(c.file), 'fulcrum.yaml', yaml(`    strategy: round-robin\n${backendsYaml([a, b, d])}`));
    const ok = await request(`${c.admin}/api/reload`, { method: 'POST' });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ok: true, changes: ['pool web: backend d added'], errors: [] });
    await spread(c.url, 24, '/added');
    const added = await servedBy(c.cli, '/added', 24);
    expect(added.pids.size).toBe(2);
    for (const pid of added.pids) expect(added.lines.filter((l) => Number(l.pid) === pid && l.backend === 'd').length).toBeGreaterThan(0);
    // Counters of the backends that stayed are kept.
    expect((await poolsOf(c.admin))[0]!.backends.map((x) => x.name)).toEqual(['a', 'b', 'd']);
    expect((await poolsOf(c.admin))[0]!.backends.reduce((n, x) => n + x.requests, 0)).toBe(32);

    // Regression: the primary (which binds no listener) swapped in a config
    // that every worker refused: 200 "ok", reload counted a success, the API
    // showing backends that no worker sent traffic to.
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => taken.close(() => r())));
    const port = (taken.address() as net.AddressInfo).port;
    const e = await backend('e');
    writeFile(tempDirOf(c.file), 'fulcrum.yaml', yaml(`    strategy: round-robin\n${backendsYaml([a, b, d, e])}`, undefined,
      `  second:\n    listen: 127.0.0.1:${port}\n    routes: [ { pool: web } ]\n`));
    const refused = await request(`${c.admin}/api/reload`, { method: 'POST' });
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toEqual({ ok: false, changes: [], errors: [`cannot listen on 127.0.0.1:${port} (listener second): address already in use`] });
    expect((await poolsOf(c.admin))[0]!.backends.map((x) => x.name)).toEqual(['a', 'b', 'd']);
    const m = await metricsOf(c.admin);
    expect(sum(m, 'fulcrum_config_reloads_total', { result: 'success' })).toBe(1);
    expect(sum(m, 'fulcrum_config_reloads_total', { result: 'failure' })).toBe(1);
    expect(c.cli.logs.filter((l) => l.msg === 'a worker refused the new config')).toEqual([]);
    expect(countOf(await spread(c.url, 16, '/refused')).e).toBeUndefined();

    // SIGHUP: a removed backend gets nothing more from any worker.
    writeFile(tempDirOf(c.file), 'fulcrum.yaml', yaml(`    strategy: round-robin\n${backendsYaml([b, d])}`));
    c.cli.signal('SIGHUP');
    await c.cli.waitForLog((l) => l.msg === 'config reloaded' && String(l.changes).includes('backend a removed'), 5000, 'the SIGHUP reload');
    await waitFor(async () => sum(await metricsOf(c.admin), 'fulcrum_config_reloads_total', { result: 'success' }) === 2, 5000, 'the reload counted');
    expect(Object.keys(countOf(await spread(c.url, 16, '/hup'))).sort()).toEqual(['b', 'd']);
    expect((await servedBy(c.cli, '/hup', 16)).pids.size).toBe(2);
  });
});

function tempDirOf(file: string): string {
  return file.slice(0, file.lastIndexOf('/'));
}

describe('stopping and dying with workers: 2', () => {
  test('SIGTERM: new connections are refused, requests in flight in both workers finish with 200, exit 0', async () => {
    const slow = await holding('slow');
    const c = await start(yaml(`    strategy: round-robin\n${backendsYaml([slow.b])}`));
    const holds = Array.from({ length: 6 }, () => request(`${c.url}/hold`));
    await waitFor(() => slow.held() === 6, 5000, 'six requests held at the backend');
    const pids = workerPids(c.cli);
    c.cli.signal('SIGTERM');
    await c.cli.waitForLog((l) => l.msg === 'draining: no new connections, waiting for in-flight requests', 5000, 'draining');
    const port = Number(new URL(c.url).port);
    await waitRefused('127.0.0.1', port, 5000);
    expect(c.cli.exited()).toBe(false);
    slow.release();
    expect((await Promise.all(holds)).map((r) => [r.status, r.body])).toEqual(Array(6).fill([200, 'slow']));
    const exit = await c.cli.waitForExit(10_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const lines = accessLines(c.cli).filter((l) => l.url === '/hold');
    expect(lines.map((l) => l.status)).toEqual(Array(6).fill(200));
    expect(new Set(lines.map((l) => Number(l.pid)))).toEqual(pids);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });

  test('a killed worker is replaced; the new one follows the state and weights set before it was born', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const d = await backend('d');
    const c = await start(yaml(`    strategy: weighted-round-robin\n${backendsYaml([a, b, d])}`));
    expect((await request(`${c.admin}/api/pools/web/backends/a/drain`, { method: 'POST' })).status).toBe(200);
    expect((await request(`${c.admin}/api/pools/web/backends/d`, { method: 'PUT', body: '{"weight": 3}' })).status).toBe(200);
    const before = workerPids(c.cli);
    process.kill([...before][0]!, 'SIGKILL'); // a worker of the fulcrum this test started
    await c.cli.waitForLog((l) => l.msg === 'worker died: starting a new one', 5000, 'the death noticed');
    await waitFor(() => workerPids(c.cli).size === 3, 10_000, 'a replacement worker');
    const replacement = [...workerPids(c.cli)].find((pid) => !before.has(pid))!;
    await waitFor(async () => (await readyz(c)) === 200, 5000, '/readyz 200 again');
    await spread(c.url, 40, '/after');
    const after = await servedBy(c.cli, '/after', 40);
    const mine = after.lines.filter((l) => Number(l.pid) === replacement);
    expect(mine.length).toBeGreaterThan(4);
    expect(mine.filter((l) => l.backend === 'a')).toEqual([]);
    const ds = mine.filter((l) => l.backend === 'd').length;
    expect(ds).toBeGreaterThanOrEqual(Math.floor((mine.length * 3) / 4));
    expect(after.lines.map((l) => l.status)).toEqual(Array(40).fill(200));
  });
});

const cpus = availableParallelism();
// `auto` starts one worker per CPU: bounded here so a big machine does not start dozens.
(cpus >= 2 && cpus <= 8 ? test : test.skip)('workers: auto starts one worker per CPU, and /metrics sums over all of them', async () => {
  const a = await backend('a');
  const c = await start(yaml(backendsYaml([a]), 'workers: auto\nshutdownTimeout: 5s'), cpus);
  await spread(c.url, 32, '/auto');
  expect((await servedBy(c.cli, '/auto', 32)).pids.size).toBe(cpus);
  const m = await metricsOf(c.admin);
  expect(sum(m, 'fulcrum_requests_total')).toBe(32);
  expect(sum(m, 'fulcrum_backend_up')).toBe(1);
  expect(c.cli.logs.find((l) => l.msg === 'workers listening')).toMatchObject({ workers: cpus });
});
