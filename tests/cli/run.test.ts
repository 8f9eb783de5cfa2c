/**
 * SPEC sections 1 and 5, end to end through the built CLI: proxying, the access
 * log, /healthz, /readyz, /api/pools, draining on SIGTERM, log settings.
 */
import { ensureBuilt } from './build';
import {
  addresses,
  configYaml,
  freePort,
  killAll,
  removeTempDirs,
  startCli,
  STACK_LINE,
  tempDir,
  waitFor,
  waitRefused,
  writeFile,
  type CliProcess,
  type LogLine,
} from './harness';
import { startBackend, type TestBackend } from '../helpers/backends';
import { request } from '../helpers/http';

beforeAll(ensureBuilt, 60_000);

const backends: TestBackend[] = [];
afterEach(async () => {
  await killAll();
  await Promise.all(backends.splice(0).map((b) => b.close()));
});
afterAll(removeTempDirs);

async function backend(name: string, delayMs = 0): Promise<TestBackend> {
  const b = await startBackend(name, (req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
        res.end(name);
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  backends.push(b);
  return b;
}

function start(yaml: string): CliProcess {
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', yaml);
  return startCli(['--config', file], { cwd: dir });
}

const isAccessLine = (l: LogLine) => 'method' in l && 'status' in l && 'url' in l;

const ACCESS_KEYS = ['time', 'method', 'url', 'status', 'pool', 'backend', 'durationMs', 'bytes', 'requestId', 'remoteAddress'];
const BACKEND_KEYS = ['name', 'url', 'state', 'weight', 'backup', 'activeRequests', 'requests', 'failures'].sort();

/** GET /api/pools once the one request is counted (counters may settle just after the client's answer). */
async function apiPools(adminUrl: string): Promise<{ pools: Record<string, unknown>[] }> {
  let last = await request(`${adminUrl}/api/pools`);
  await waitFor(async () => {
    last = await request(`${adminUrl}/api/pools`);
    const b = (JSON.parse(last.body) as { pools?: { backends?: { requests?: unknown; activeRequests?: unknown }[] }[] })
      .pools?.[0]?.backends?.[0];
    return b?.requests === 1 && b?.activeRequests === 0;
  }, 3000, '/api/pools to count the request').catch(() => undefined);
  expect(last.status).toBe(200);
  expect(last.headers['content-type']).toMatch(/application\/json/);
  return JSON.parse(last.body) as { pools: Record<string, unknown>[] };
}

describe('fulcrum --config FILE (running)', () => {
  test('proxies, logs the request, answers the admin API, and exits 0 on SIGTERM', async () => {
    const alpha = await backend('alpha');
    const p = start(configYaml({ backends: [{ name: 'alpha', url: alpha.url }] }));
    const { url, adminUrl } = await addresses(p);

    // through the listener
    const r = await request(`${url}/hello/world`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('alpha');
    expect(alpha.seen).toHaveLength(1);
    expect(alpha.seen[0]!.url).toBe('/hello/world');

    // the access-log line
    const access = await p.waitForLog(isAccessLine, 5000, 'the access-log line');
    for (const k of ACCESS_KEYS) expect(access).toHaveProperty(k);
    expect(access.method).toBe('GET');
    expect(access.url).toBe('/hello/world');
    expect(access.status).toBe(200);
    expect(access.pool).toBe('web');
    expect(access.backend).toBe('alpha');
    expect(access.bytes).toBe('alpha'.length);
    expect(typeof access.durationMs).toBe('number');
    expect(access.durationMs as number).toBeGreaterThanOrEqual(0);
    expect(typeof access.requestId).toBe('string');
    expect(access.requestId).not.toBe('');
    expect(access.requestId).toBe(alpha.seen[0]!.headers['x-request-id']);
    expect(String(access.remoteAddress)).toMatch(/127\.0\.0\.1/);
    expect(Number.isNaN(new Date(access.time as string | number).getTime())).toBe(false);

    // admin: liveness and readiness
    const healthz = await request(`${adminUrl}/healthz`);
    expect(healthz.status).toBe(200);
    const readyz = await request(`${adminUrl}/readyz`);
    expect(readyz.status).toBe(200);

    // admin: /api/pools with the SPEC fields, and the request counted
    const pools = await apiPools(adminUrl);
    expect(pools.pools).toHaveLength(1);
    const pool = pools.pools[0]!;
    expect(pool).toMatchObject({ name: 'web', strategy: 'round-robin' });
    const list = pool.backends as Record<string, unknown>[];
    expect(list).toHaveLength(1);
    for (const k of BACKEND_KEYS) expect(list[0]).toHaveProperty(k);
    expect(list[0]).toMatchObject({
      name: 'alpha',
      url: alpha.url,
      state: 'up',
      weight: 1,
      backup: false,
      activeRequests: 0,
      requests: 1,
      failures: 0,
    });

    // SIGTERM: clean stop
    p.signal('SIGTERM');
    const exit = await p.waitForExit(5000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(p.stderr()).not.toMatch(STACK_LINE);
  });

  test('GET /api/pools has exactly the SPEC shape: no keys beyond {pools:[{name,strategy,backends:[{8 fields}]}]}', async () => {
    const alpha = await backend('alpha');
    const p = start(configYaml({ backends: [{ name: 'alpha', url: alpha.url }] }));
    const { url, adminUrl } = await addresses(p);
    expect((await request(`${url}/`)).status).toBe(200);
    const pools = await apiPools(adminUrl);
    // SPEC section 5: {"pools":[{"name","strategy","backends":[{"name","url","state","weight","backup","activeRequests","requests","failures"}]}]}
    // all three levels in one expectation, so a failure shows every extra or missing key at once
    expect({
      top: Object.keys(pools).sort(),
      pool: Object.keys(pools.pools[0]!).sort(),
      backend: Object.keys((pools.pools[0]!.backends as Record<string, unknown>[])[0]!).sort(),
    }).toEqual({
      top: ['pools'],
      pool: ['backends', 'name', 'strategy'],
      backend: BACKEND_KEYS,
    });
    expect((pools.pools[0]!.backends as Record<string, unknown>[])[0]).toEqual({
      name: 'alpha',
      url: alpha.url,
      state: 'up',
      weight: 1,
      backup: false,
      activeRequests: 0,
      requests: 1,
      failures: 0,
    });
  });

  test('SIGTERM with a slow request in flight: it completes with 200, new connections are refused, then exit 0', async () => {
    const slow = await backend('slow', 1000);
    const p = start(configYaml({ top: 'shutdownTimeout: 5s', backends: [{ name: 'slow', url: slow.url }] }));
    const { url, adminUrl } = await addresses(p);
    // the admin API answering means start() returned and the signal handlers are in place
    expect((await request(`${adminUrl}/healthz`)).status).toBe(200);

    let answeredAt = 0;
    const inFlight = request(`${url}/slow`).then((r) => {
      answeredAt = Date.now();
      return r;
    });
    await waitFor(() => slow.seen.length === 1, 5000, 'the backend to receive the request');

    p.signal('SIGTERM');
    const u = new URL(url);
    await waitRefused(u.hostname, Number(u.port), 3000);
    expect(p.exited()).toBe(false); // still draining the slow request

    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(r.body).toBe('slow');

    const exit = await p.waitForExit(5000);
    const exitedAt = Date.now();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(answeredAt).toBeGreaterThan(0);
    expect(answeredAt).toBeLessThanOrEqual(exitedAt);
    expect(p.stderr()).not.toMatch(STACK_LINE);
    // the drained request is in the access log
    expect(p.logs.some((l) => isAccessLine(l) && l.url === '/slow' && l.status === 200)).toBe(true);
  });
});

describe('SIGINT', () => {
  test('drains and exits 0 like SIGTERM', async () => {
    const alpha = await backend('alpha');
    const p = start(configYaml({ backends: [{ name: 'alpha', url: alpha.url }] }));
    const { url, adminUrl } = await addresses(p);
    expect((await request(`${adminUrl}/healthz`)).status).toBe(200);
    expect((await request(`${url}/`)).status).toBe(200);
    p.signal('SIGINT');
    expect(await p.waitForExit(5000)).toEqual({ code: 0, signal: null });
    expect(p.stderr()).not.toMatch(STACK_LINE);
  });
});

describe('log settings', () => {
  test('log.access: false writes no access-log lines (other info lines still appear)', async () => {
    const alpha = await backend('alpha');
    const p = start(configYaml({ log: { level: 'info', access: false }, backends: [{ name: 'alpha', url: alpha.url }] }));
    const { url } = await addresses(p);
    for (let i = 0; i < 3; i++) expect((await request(`${url}/x${i}`)).status).toBe(200);
    p.signal('SIGTERM');
    expect(await p.waitForExit(5000)).toEqual({ code: 0, signal: null });
    expect(p.logs.some((l) => l.msg === 'listening')).toBe(true);
    expect(p.logs.filter(isAccessLine)).toEqual([]);
  });

  test('log.level: warn writes no info (or lower) lines, but access lines still (log.access is their switch)', async () => {
    const alpha = await backend('alpha');
    // with nothing logged at info, the ports cannot be read from the log: pick free ones
    const [port, adminPort] = [await freePort(), await freePort()];
    const p = start(configYaml({
      log: { level: 'warn', access: true },
      listen: `127.0.0.1:${port}`,
      adminListen: `127.0.0.1:${adminPort}`,
      backends: [{ name: 'alpha', url: alpha.url }],
    }));
    await waitFor(async () => {
      if (p.exited()) throw new Error(`fulcrum exited early: ${p.stderr()}`);
      return request(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.status === 200, () => false);
    }, 10_000, 'the admin API to be ready');
    for (let i = 0; i < 3; i++) expect((await request(`http://127.0.0.1:${port}/y${i}`)).status).toBe(200);
    p.signal('SIGTERM');
    expect(await p.waitForExit(5000)).toEqual({ code: 0, signal: null });
    // pino levels: trace 10, debug 20, info 30, warn 40
    const chatty = p.logs.filter((l) => !isAccessLine(l) && (typeof l.level !== 'number' || l.level < 40));
    expect(chatty).toEqual([]);
    expect(p.logs.filter(isAccessLine).map((l) => l.url)).toEqual(['/y0', '/y1', '/y2']);
  });
});
