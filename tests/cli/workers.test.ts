/**
 * SPEC sections 1 and 7, issue "operations": `workers: 2` with node:cluster.
 * A real `node dist/cli.js` primary with two workers, real backends, real sockets.
 */
import { writeFileSync } from 'node:fs';
import { configYaml, freePort, startCli, tempDir, waitFor, writeFile, type CliProcess } from './harness';
import { startBackend, type TestBackend } from '../helpers/backends';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown({ blackBox: true });

async function cluster(backends: TestBackend[], top = 'workers: 2\nshutdownTimeout: 5s'): Promise<{ p: CliProcess; url: string; admin: string; file: string; port: number; adminPort: number }> {
  const port = await freePort();
  const adminPort = await freePort();
  const yaml = configYaml({ backends: backends.map((b) => ({ name: b.name, url: b.url })), listen: `127.0.0.1:${port}`, adminListen: `127.0.0.1:${adminPort}`, top });
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', yaml);
  const p = startCli(['--config', file], { cwd: dir });
  await p.waitForLog((l) => l.msg === 'workers listening', 15_000, 'workers listening');
  // Each worker's own "listening" line is in its log buffer (flushed within 250 ms).
  await waitFor(() => workerPids(p).size === 2, 5000, 'both workers\' listening lines');
  return { p, url: `http://127.0.0.1:${port}`, admin: `http://127.0.0.1:${adminPort}`, file, port, adminPort };
}

function workerPids(p: CliProcess): Set<number> {
  return new Set(p.logs.filter((l) => l.msg === 'listening').map((l) => Number(l.pid)));
}

describe('workers: 2', () => {
  test('requests are served by both workers and counted exactly once in /metrics and /api/pools', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = await cluster([a, b]);
    expect(workerPids(c.p).size).toBe(2);
    const N = 80;
    for (let i = 0; i < N; i += 8) {
      const replies = await Promise.all(Array.from({ length: 8 }, () => request(`${c.url}/x`)));
      expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200));
    }
    // Fresh connections are spread over both workers: both wrote access lines.
    await waitFor(() => c.p.logs.filter((l) => l.msg === 'request').length === N, 5000, 'access lines');
    const servedBy = new Set(c.p.logs.filter((l) => l.msg === 'request').map((l) => Number(l.pid)));
    expect(servedBy.size).toBe(2);
    const m = parseProm((await request(`${c.admin}/metrics`)).body);
    expect(sum(m, 'fulcrum_requests_total')).toBe(N);
    expect(sum(m, 'fulcrum_request_duration_seconds_count')).toBe(N);
    expect(sum(m, 'fulcrum_backend_up')).toBe(2); // from the primary, not once per worker
    const pools = JSON.parse((await request(`${c.admin}/api/pools`)).body);
    const backends = pools.pools[0].backends as { requests: number }[];
    expect(backends.reduce((n, x) => n + x.requests, 0)).toBe(N);
    expect((await request(`${c.admin}/readyz`)).status).toBe(200);
  });

  test('the explain view shows failures on live traffic and latency seen by the workers', async () => {
    const good = await backend('good');
    const bad = await startBackend('bad', (req, res) => { req.resume(); res.writeHead(502).end(); });
    cleanups.push(() => bad.close());
    const c = await cluster([good, bad]);
    for (let i = 0; i < 12; i++) await request(`${c.url}/e${i}`);
    const detail = JSON.parse((await request(`${c.admin}/api/pools/web/backends/bad`)).body);
    expect(detail.requests).toBe(6);
    expect(detail.failures).toBe(6);
    expect(detail.recentFailures.length).toBe(6);
    expect(detail.recentFailures.every((f: { reason: string }) => f.reason === '502')).toBe(true);
    expect(detail.latencyMs).toEqual({ p50: expect.any(Number), p99: expect.any(Number) });
  });

  test('a killed worker is replaced and the listener keeps serving', async () => {
    const a = await backend('a');
    const c = await cluster([a]);
    const before = workerPids(c.p);
    const victim = [...before][0];
    process.kill(victim, 'SIGKILL'); // a worker our own fulcrum process started
    await c.p.waitForLog((l) => l.msg === 'worker died: starting a new one', 5000, 'the death noticed');
    // The survivor serves while the replacement starts.
    for (let i = 0; i < 10; i++) expect((await request(`${c.url}/during`)).status).toBe(200);
    await waitFor(() => workerPids(c.p).size === 3, 10_000, 'a replacement worker');
    const replacement = [...workerPids(c.p)].find((pid) => !before.has(pid))!;
    expect(replacement).toBeDefined();
    for (let i = 0; i < 20; i++) expect((await request(`${c.url}/after`)).status).toBe(200);
  });

  test('drain through the admin API reaches every worker; SIGHUP reload reaches them too; SIGTERM stops all with exit 0', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = await cluster([a, b]);
    const drained = await request(`${c.admin}/api/pools/web/backends/a/drain`, { method: 'POST' });
    expect(drained.status).toBe(200);
    const aBefore = a.seen.length;
    for (let i = 0; i < 20; i++) expect((await request(`${c.url}/d`)).body).toBe('b');
    expect(a.seen.length).toBe(aBefore);
    // Reload: a third backend appears in every worker.
    const d = await backend('d');
    const yaml = configYaml({ backends: [a, b, d].map((x) => ({ name: x.name, url: x.url })), listen: `127.0.0.1:${c.port}`, adminListen: `127.0.0.1:${c.adminPort}`, top: 'workers: 2\nshutdownTimeout: 5s' });
    writeFileSync(c.file, yaml);
    c.p.signal('SIGHUP');
    await c.p.waitForLog((l) => l.msg === 'config reloaded', 5000, 'reload');
    await waitFor(async () => {
      await Promise.all(Array.from({ length: 6 }, () => request(`${c.url}/r`)));
      return d.seen.length >= 4;
    }, 10_000, 'traffic to the new backend from the workers');
    const pids = workerPids(c.p);
    c.p.signal('SIGTERM');
    const exit = await c.p.waitForExit(15_000);
    expect(exit.code).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
