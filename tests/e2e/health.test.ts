import http from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';

const { cleanups } = useTeardown();

/** A backend whose /healthz answers `health.status` and whose other paths answer 200 or `status`. */
interface Switchable extends TestBackend {
  health: { status: number };
  status: { code: number };
  traffic: () => number;
}

async function switchable(name: string): Promise<Switchable> {
  const health = { status: 200 };
  const status = { code: 200 };
  let traffic = 0;
  const b = await startBackend(name, (req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      res.writeHead(health.status).end();
      return;
    }
    traffic++;
    res.writeHead(status.code, { 'x-backend': name }).end(name);
  });
  cleanups.push(() => b.close());
  return Object.assign(b, { health, status, traffic: () => traffic });
}

async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml);
  cleanups.push(() => f.stop());
  return f;
}

function config(bs: { url: string; name: string; backup?: boolean }[], pool: string): string {
  return `
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes: [ { pool: p } ]
pools:
  p:
${pool}
    backends:
${bs.map((b) => `      - { url: ${b.url}, name: ${b.name}${b.backup ? ', backup: true' : ''} }`).join('\n')}
`;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
afterAll(() => agent.destroy());

async function counts(url: string, n: number): Promise<Record<string, number>> {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await request(`${url}/x`, { agent });
    const key = r.status === 200 ? String(r.headers['x-backend']) : `status-${r.status}`;
    c[key] = (c[key] ?? 0) + 1;
  }
  return c;
}

describe('active health checks', () => {
  test('a backend whose health path fails goes down within interval × fall, gets no traffic, and comes back after rise', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    const f = await fulcrum(config([a, b], `
    strategy: round-robin
    healthCheck: { path: /healthz, interval: 50ms, timeout: 500ms, rise: 2, fall: 3 }`));
    const pool = f.fulcrum.pools.get('p')!;
    const backendB = pool.get('b')!;
    b.health.status = 500;
    const t0 = Date.now();
    await waitFor(() => backendB.state === 'down', 3000, 'b to go down');
    // 3 failures at ~50 ms (+10% jitter) intervals, plus slack for a loaded machine.
    expect(Date.now() - t0).toBeLessThan(50 * 1.1 * 3 + 1500);
    const before = b.traffic();
    expect(await counts(f.url(), 20)).toEqual({ a: 20 });
    expect(b.traffic()).toBe(before);
    expect(backendB.history.at(-1)!.reason).toMatch(/^health check failed 3 times: status 500$/);
    expect(backendB.probes.at(-1)).toMatchObject({ ok: false, status: 500 });

    b.health.status = 200;
    await waitFor(() => backendB.state === 'up', 3000, 'b to come back');
    expect(backendB.history.at(-1)!.reason).toMatch(/^health check passed 2 times$/);
    expect(await counts(f.url(), 20)).toEqual({ a: 10, b: 10 });
  });

  test('a refused connection is a failed probe with its reason', async () => {
    const a = await switchable('a');
    const gone = await startBackend('gone');
    await gone.close();
    const f = await fulcrum(config([a, { url: gone.url, name: 'gone' }], `
    healthCheck: { path: /healthz, interval: 30ms, timeout: 500ms, fall: 2 }`));
    const backend = f.fulcrum.pools.get('p')!.get('gone')!;
    await waitFor(() => backend.state === 'down', 3000, 'gone to be down');
    expect(backend.history.at(-1)!.reason).toBe('health check failed 2 times: connect refused');
  });

  test('a backend killed under a steady stream of GETs causes no client errors and then gets nothing', async () => {
    const bs = [await switchable('a'), await switchable('b'), await switchable('c')];
    const f = await fulcrum(config(bs, `
    strategy: round-robin
    healthCheck: { path: /healthz, interval: 50ms, timeout: 300ms, fall: 2, rise: 2 }
    retries: { attempts: 2, on: [connect-failure, reset, 502, 503, 504] }`));
    const c = bs[2];
    const backendC = f.fulcrum.pools.get('p')!.get('c')!;
    let stop = false;
    const statuses: number[] = [];
    const loop = async () => {
      const deadline = Date.now() + 15_000;
      while (!stop && Date.now() < deadline) statuses.push((await request(`${f.url()}/x`, { agent })).status);
    };
    const loops = [loop(), loop(), loop()];
    await waitFor(() => statuses.length > 30, 5000, 'traffic to flow');
    await c.close();
    await waitFor(() => backendC.state === 'down', 5000, 'c to be marked down');
    const afterDown = statuses.length;
    await waitFor(() => statuses.length > afterDown + 60, 5000, 'more traffic');
    stop = true;
    await Promise.all(loops);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const rec = f.records.slice(afterDown + 3); // requests started after c was marked down
    expect(rec.filter((r) => r.backend === 'c')).toEqual([]);
  });
});

describe('outlier detection', () => {
  test('ejects after consecutive failures with health checks off, and lets the backend back', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    b.status.code = 502;
    const f = await fulcrum(config([a, b], `
    strategy: round-robin
    retries: { attempts: 0 }
    outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 300ms, maxEjectionPercent: 50 }`));
    const backendB = f.fulcrum.pools.get('p')!.get('b')!;
    const c = await counts(f.url(), 6); // b answers 3 × 502 on its turns
    expect(c).toEqual({ a: 3, 'status-502': 3 });
    expect(backendB.state).toBe('ejected');
    expect(backendB.history.at(-1)!.reason).toMatch(/^ejected after 3 consecutive failures \(last: 502\)/);
    expect(backendB.recentFailures.map((x) => x.reason)).toEqual(['502', '502', '502']);
    expect(await counts(f.url(), 10)).toEqual({ a: 10 });
    b.status.code = 200;
    await waitFor(() => backendB.state === 'up', 3000, 'b to return');
    expect(backendB.history.at(-1)!.reason).toMatch(/ejection time of 300ms over/);
    expect(await counts(f.url(), 10)).toEqual({ a: 5, b: 5 });
  });

  test('never ejects more than maxEjectionPercent of the pool', async () => {
    const bs = await Promise.all(['a', 'b', 'c', 'd'].map(switchable));
    for (const b of bs) b.status.code = 503;
    const f = await fulcrum(config(bs, `
    retries: { attempts: 0 }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s, maxEjectionPercent: 50 }`));
    await counts(f.url(), 40);
    const states = f.fulcrum.pools.get('p')!.backends.map((b) => b.state);
    expect(states.filter((s) => s === 'ejected').length).toBe(2);
  });
});

describe('backups (active-passive)', () => {
  test('a backup gets nothing while a primary is up, everything when none is, and gives traffic back', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    const spare = await switchable('spare');
    const f = await fulcrum(config([a, b, { url: spare.url, name: 'spare', backup: true }], `
    healthCheck: { path: /healthz, interval: 30ms, timeout: 300ms, rise: 1, fall: 1 }`));
    const pool = f.fulcrum.pools.get('p')!;
    expect(await counts(f.url(), 20)).toEqual({ a: 10, b: 10 });
    a.health.status = 503;
    b.health.status = 503;
    await waitFor(() => pool.get('a')!.state === 'down' && pool.get('b')!.state === 'down', 3000, 'primaries down');
    expect(await counts(f.url(), 10)).toEqual({ spare: 10 });
    b.health.status = 200;
    await waitFor(() => pool.get('b')!.state === 'up', 3000, 'b back');
    expect(await counts(f.url(), 10)).toEqual({ b: 10 });
  });
});

describe('panic threshold', () => {
  test('below the threshold, traffic spreads over every primary regardless of state', async () => {
    const bs = await Promise.all(['a', 'b', 'c', 'd'].map(switchable));
    for (const b of bs.slice(1)) b.health.status = 500; // 3 of 4 "down" but still serving
    const f = await fulcrum(config(bs, `
    panicThreshold: 50
    healthCheck: { path: /healthz, interval: 30ms, timeout: 300ms, fall: 1 }`));
    const pool = f.fulcrum.pools.get('p')!;
    await waitFor(() => pool.backends.filter((b) => b.state === 'down').length === 3, 3000, '3 down');
    expect(await counts(f.url(), 40)).toEqual({ a: 10, b: 10, c: 10, d: 10 });
  });

  test('without it, only the available primary serves', async () => {
    const bs = await Promise.all(['a', 'b'].map(switchable));
    bs[1].health.status = 500;
    const f = await fulcrum(config(bs, `
    healthCheck: { path: /healthz, interval: 30ms, timeout: 300ms, fall: 1 }`));
    await waitFor(() => f.fulcrum.pools.get('p')!.get('b')!.state === 'down', 3000, 'b down');
    expect(await counts(f.url(), 10)).toEqual({ a: 10 });
  });
});

describe('slow start', () => {
  test('a recovered backend gets a small share at first, then its full share', async () => {
    const a = await switchable('a');
    const b = await switchable('b');
    b.health.status = 500;
    const f = await fulcrum(config([a, b], `
    strategy: weighted-round-robin
    slowStart: 3s
    # b goes down by its status; a generous timeout keeps a loaded machine's slow probe from taking a down too.
    healthCheck: { path: /healthz, interval: 30ms, timeout: 2s, rise: 1, fall: 1 }`));
    const backendB = f.fulcrum.pools.get('p')!.get('b')!;
    await waitFor(() => backendB.state === 'down', 3000, 'b down');
    b.health.status = 200;
    await waitFor(() => backendB.state === 'up', 3000, 'b up');
    // Early in the ramp b's weight is ~10-30% of a's: far below an even split.
    const early = await counts(f.url(), 40);
    expect(early.b ?? 0).toBeLessThan(12);
    expect(early.b ?? 0).toBeGreaterThan(0);
    await waitFor(() => backendB.weight === backendB.configuredWeight, 6000, 'ramp to finish');
    expect(await counts(f.url(), 40)).toEqual({ a: 20, b: 20 });
  });
});

describe('limits', () => {
  test('maxConnectionsPerBackend skips a full backend and answers 503 with Retry-After when all are full', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    const bs = await Promise.all(['a', 'b'].map((n) => startBackend(n, (req, res) => {
      req.resume();
      void gate.then(() => res.writeHead(200, { 'x-backend': n }).end(n));
    })));
    cleanups.push(() => Promise.all(bs.map((b) => b.close())).then(() => undefined));
    const f = await fulcrum(config(bs, `
    maxConnectionsPerBackend: 1`));
    const held = [request(`${f.url()}/1`), request(`${f.url()}/2`)];
    await waitFor(() => bs[0].seen.length === 1 && bs[1].seen.length === 1, 3000, 'both backends busy');
    const third = await request(`${f.url()}/3`);
    expect(third.status).toBe(503);
    expect(third.headers['retry-after']).toBeDefined();
    release();
    const replies = await Promise.all(held);
    expect(replies.map((r) => r.body).sort()).toEqual(['a', 'b']);
  });

  test('no backend available is a 503 with Retry-After', async () => {
    const a = await switchable('a');
    a.health.status = 500;
    const f = await fulcrum(config([a], `
    healthCheck: { path: /healthz, interval: 30ms, timeout: 300ms, fall: 1 }`));
    await waitFor(() => f.fulcrum.pools.get('p')!.get('a')!.state === 'down', 3000, 'a down');
    const r = await request(`${f.url()}/`);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.body).toMatch(/^service unavailable/);
  });
});
