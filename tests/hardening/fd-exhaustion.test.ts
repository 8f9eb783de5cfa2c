/**
 * Issue 20, F3: with `ulimit -n 400` and 600 idle connections, health checks
 * failed with `connect EMFILE`, both healthy backends were marked down and
 * clients got 503 for seconds after the attacker left. A local resource
 * failure is never counted against a backend: here Fulcrum runs under a low
 * fd limit, is flooded with more idle connections than the limit, and its
 * backends must stay `up` during and after, its process alive, and the
 * service answering 200 once the flood ends.
 */
import http from 'node:http';
import net from 'node:net';
import { addresses, startCli, tempDir, writeFile, waitFor } from '../cli/harness';
import { parseProm, sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown({ blackBox: true });

const FD_LIMIT = 256;
const FLOOD = 400;
/** Connections the flood may open in all, topping up what is shed. */
const FLOOD_MAX = 20_000;

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(url: string, agent: http.Agent | false = false): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}

/** A GET that may fail (a connection shed under the flood): the status, or 0. */
async function statusOf(url: string): Promise<number> {
  try {
    return (await get(url)).status;
  } catch {
    return 0;
  }
}

interface Explain {
  state: string;
  failures: number;
  probes: { ok: boolean; error?: string }[];
}

test('an fd flood leaves healthy backends up, sheds connections, logs it once, and the service answers once it ends', async () => {
  const a = await backend('a');
  const b = await backend('b');
  const dir = tempDir();
  const config = writeFile(dir, 'fulcrum.yaml', `
shutdownTimeout: 2s
log: { level: info, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    limits: { headersTimeout: 60s }
    routes: [ { pool: web } ]
pools:
  web:
    backends: [ { url: ${a.url}, name: a }, { url: ${b.url}, name: b } ]
    healthCheck: { interval: 100ms, timeout: 1s, fall: 2, rise: 1 }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s, maxEjectionPercent: 100 }
    retries: { attempts: 1 }
    timeouts: { idle: 0s }
`);
  const p = startCli(['--config', config], { fdLimit: FD_LIMIT });
  const { url, adminUrl } = await addresses(p);
  // Connections made before the flood stay usable during it: one to the admin API, one to the listener.
  const adminAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const clientAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanups.push(async () => {
    adminAgent.destroy();
    clientAgent.destroy();
  });
  const explain = async (name: string): Promise<Explain> => JSON.parse((await get(`${adminUrl}/api/pools/web/backends/${name}`, adminAgent)).body) as Explain;
  expect((await explain('a')).state).toBe('up');
  expect((await get(`${url}/`, clientAgent)).status).toBe(200);

  const flood = new Set<net.Socket>();
  let shed = 0;
  let opened = 0;
  const port = Number(new URL(url).port);
  const connect = () => {
    const s = net.connect(port, '127.0.0.1');
    opened++;
    s.on('error', () => undefined);
    s.on('close', () => {
      shed++;
      flood.delete(s);
    });
    flood.add(s);
  };
  // The attacker keeps at it, as a real flood does: whatever fd Fulcrum frees
  // (a probe's, a backend connection's) is taken by the next connection, so the
  // process stays at its limit (bounded: at most FLOOD_MAX connections in all).
  const topUp = setInterval(() => {
    for (let i = 0; i < 5 && opened < FLOOD_MAX; i++) connect();
  }, 20);
  const stopFlood = () => {
    clearInterval(topUp);
    for (const s of flood) s.destroy();
  };
  cleanups.push(async () => stopFlood());
  for (let i = 0; i < FLOOD; i++) connect();
  // Past the limit: libuv accepts and closes what Fulcrum cannot keep.
  await waitFor(() => shed > 0, 10_000, 'connections beyond the fd limit to be shed');
  await p.waitForLog((l) => l.msg === 'out of local resources (file descriptors or memory): shedding new connections, no backend is blamed', 10_000);

  // During the flood: probes cannot be made, and that is no verdict (fall is 2).
  await waitFor(async () => {
    const [ea, eb] = await Promise.all([explain('a'), explain('b')]);
    expect([ea.state, eb.state]).toEqual(['up', 'up']);
    const local = (e: Explain) => e.probes.filter((x) => /EMFILE/.test(x.error ?? '')).length;
    return local(ea) >= 4 && local(eb) >= 4;
  }, 15_000, 'probes to meet EMFILE');
  // A request that needs a new backend connection gets 503 (not 502), twice: not the backends' failure either.
  for (let i = 0; i < 2; i++) {
    const r = await get(`${url}/`, clientAgent);
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
  }
  for (const name of ['a', 'b']) expect(await explain(name)).toMatchObject({ state: 'up', failures: 0 });

  // The flood ends: the service answers again, on new connections, and nothing was blamed.
  stopFlood();
  await waitFor(async () => (await statusOf(`${url}/`)) === 200, 15_000, 'the service to answer 200 again');
  expect(await statusOf(`${adminUrl}/healthz`)).toBe(200);
  const pools = JSON.parse((await get(`${adminUrl}/api/pools`)).body) as { pools: { backends: { name: string; state: string; failures: number }[] }[] };
  expect(pools.pools[0]!.backends.map((x) => [x.name, x.state, x.failures])).toEqual([['a', 'up', 0], ['b', 'up', 0]]);
  const m = parseProm((await get(`${adminUrl}/metrics`)).body);
  expect(sum(m, 'fulcrum_backend_failures_total')).toBe(0);
  expect(sum(m, 'fulcrum_outlier_ejections_total')).toBe(0);
  expect(sum(m, 'fulcrum_health_checks_total', { result: 'failure' })).toBe(0);
  expect(p.exited()).toBe(false);
  // Logged once, not once per failed accept, connect or probe.
  expect(p.logs.filter((l) => String(l.msg).startsWith('out of local resources')).length).toBe(1);
  expect(p.logs.filter((l) => l.msg === 'backend state changed')).toEqual([]);
}, 60_000);
