/**
 * SPEC section 10: replicas that share state through Redis. Real
 * `node dist/cli.js` replicas (two and three), real backends and one real
 * redis-server for the whole file (flushed between tests), killed and
 * started again where a test needs Redis gone.
 */
import { addresses, startCli, tempDir, writeFile, type CliProcess } from '../cli/harness';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { startRedis, type TestRedis } from '../helpers/redis';
import { useTeardown } from '../helpers/teardown';
import { waitFor } from '../helpers/wait';
import type { TestBackend } from '../helpers/backends';

const { backend } = useTeardown({ blackBox: true });

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
beforeEach(async () => {
  await redis.flush();
});

interface Replica { p: CliProcess; url: string; admin: string; name: string }

let clusterSeq = 0;

interface Options {
  backends: TestBackend[];
  /** Extra pool keys, at 4 spaces. */
  pool?: string[];
  /** Extra listener keys, at 4 spaces. */
  listener?: string[];
  top?: string[];
}

/** The config every replica of a test runs (the same file: the same configHash). */
function yaml(o: Options, cluster: string): string {
  return [
    'shutdownTimeout: 5s',
    'log: { level: info, access: false }',
    ...(o.top ?? []),
    'admin: { listen: 127.0.0.1:0 }',
    'cluster:',
    '  redis: ${REDIS_URL}',
    `  name: ${cluster}`,
    '  replica: ${REPLICA}',
    'listeners:',
    '  public:',
    '    listen: 127.0.0.1:0',
    ...(o.listener ?? []),
    '    routes: [{ pool: web }]',
    'pools:',
    '  web:',
    '    backends:',
    ...o.backends.map((b) => `      - { url: ${b.url}, name: ${b.name} }`),
    ...(o.pool ?? []),
    '',
  ].join('\n');
}

/** A cluster of replicas on one file; `start(name)` starts one more. */
function cluster(o: Options) {
  const name = `t${process.pid}-${++clusterSeq}`;
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', yaml(o, name));
  const start = async (replica: string, configFile = file): Promise<Replica> => {
    const p = startCli(['--config', configFile], { cwd: dir, env: { REDIS_URL: redis.url, REPLICA: replica } });
    const { url, adminUrl } = await addresses(p);
    return { p, url, admin: adminUrl, name: replica };
  };
  return { name, dir, file, start };
}

async function api<T>(url: string): Promise<T> {
  const r = await request(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

interface BackendJson { name: string; state: string; weight: number; url: string }
const backendsOf = async (r: Replica) => (await api<{ pools: { backends: BackendJson[] }[] }>(`${r.admin}/api/pools`)).pools[0]!.backends;
const stateOf = async (r: Replica, b: string) => (await backendsOf(r)).find((x) => x.name === b)?.state;
const post = (url: string, body?: unknown, method = 'POST') => request(url, {
  method, headers: { 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
});

/** Every replica of `rs` has seen `check` hold within `ms` of now (SPEC: 1 s; a little slack for a loaded machine). */
async function within(ms: number, rs: Replica[], check: (r: Replica) => Promise<boolean>, what: string): Promise<number> {
  const t0 = Date.now();
  await Promise.all(rs.map((r) => waitFor(() => check(r), ms, `${what} on ${r.name}`)));
  return Date.now() - t0;
}

/** The cluster has seen every replica in `names` (heartbeats, every 1 s). */
const sees = (r: Replica, names: string[]) => async () => {
  const c = await api<{ replicas: { name: string }[] }>(`${r.admin}/api/cluster`);
  return names.every((n) => c.replicas.some((x) => x.name === n));
};

describe('admin actions reach every replica', () => {
  test('three replicas: drain, weight, enable, a backend added and deleted reach the others within 1 s; a replica started after the drain applies it', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const extra = await backend('extra');
    const c = cluster({ backends: [a, b] });
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    const r3 = await c.start('r3');
    await waitFor(sees(r1, ['r1', 'r2', 'r3']), 5000, 'three replicas');
    const all = [r1, r2, r3];

    expect((await post(`${r1.admin}/api/pools/web/backends/b/drain`)).status).toBe(200);
    await within(1500, all, async (r) => (await stateOf(r, 'b')) === 'draining', 'b draining');
    // The drain holds on the others' traffic too.
    for (let i = 0; i < 4; i++) expect((await request(`${r2.url}/`)).body).toBe('a');

    expect((await post(`${r2.admin}/api/pools/web/backends/a`, { weight: 5 }, 'PUT')).status).toBe(200);
    await within(1500, all, async (r) => (await backendsOf(r)).find((x) => x.name === 'a')!.weight === 5, 'weight 5');

    const added = await post(`${r3.admin}/api/pools/web/backends`, { url: extra.url, name: 'extra' });
    expect(added.status).toBe(201);
    await within(1500, all, async (r) => (await stateOf(r, 'extra')) === 'up', 'extra added');
    // It takes traffic on a replica that did not add it.
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) bodies.add((await request(`${r1.url}/`)).body);
    expect(bodies.has('extra')).toBe(true);

    // A replica that starts while the drain, the weight and the added backend stand applies them.
    const r4 = await c.start('r4');
    await within(1500, [r4], async (r) => {
      const bs = await backendsOf(r);
      return bs.find((x) => x.name === 'b')?.state === 'draining' && bs.find((x) => x.name === 'a')?.weight === 5 && bs.some((x) => x.name === 'extra');
    }, 'the standing actions');

    expect((await post(`${r4.admin}/api/pools/web/backends/extra`, undefined, 'DELETE')).status).toBe(202);
    await within(1500, [...all, r4], async (r) => (await backendsOf(r)).every((x) => x.name !== 'extra'), 'extra deleted');
    expect((await post(`${r2.admin}/api/pools/web/backends/b/enable`)).status).toBe(200);
    await within(1500, [...all, r4], async (r) => (await stateOf(r, 'b')) === 'up', 'b enabled');

    // A replica restarted now comes back with what stands: b enabled, extra gone, a at 5.
    r1.p.signal('SIGKILL');
    await r1.p.waitForExit(5000);
    const again = await c.start('r1');
    await waitFor(async () => (await backendsOf(again)).find((x) => x.name === 'a')?.weight === 5, 3000, 'weight 5 after restart');
    expect((await backendsOf(again)).map((x) => [x.name, x.state])).toEqual([['a', 'up'], ['b', 'up']]);
  });
});

describe('reload in a cluster', () => {
  test('a reload restores the file weights and deleted backends on every replica; a backend added at run time stays, named as kept', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const extra = await backend('extra');
    const c = cluster({ backends: [a, b] });
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    await waitFor(sees(r1, ['r1', 'r2']), 5000, 'two replicas');
    expect((await post(`${r2.admin}/api/pools/web/backends/a`, { weight: 9 }, 'PUT')).status).toBe(200);
    expect((await post(`${r2.admin}/api/pools/web/backends/b`, undefined, 'DELETE')).status).toBe(202);
    expect((await post(`${r2.admin}/api/pools/web/backends`, { url: extra.url, name: 'extra' })).status).toBe(201);
    await within(1500, [r1], async (r) => {
      const bs = await backendsOf(r);
      return bs.find((x) => x.name === 'a')?.weight === 9 && !bs.some((x) => x.name === 'b') && bs.some((x) => x.name === 'extra');
    }, 'the actions on r1');
    const reload = await post(`${r1.admin}/api/reload`);
    expect(JSON.parse(reload.body).changes).toEqual(['pool web: backend extra (added at run time) kept']);
    await within(1500, [r1, r2], async (r) => {
      const bs = await backendsOf(r);
      return bs.find((x) => x.name === 'a')?.weight === 1 && bs.some((x) => x.name === 'b') && bs.some((x) => x.name === 'extra');
    }, 'file values back, extra kept');
  });
});

describe('rateLimit.scope: cluster', () => {
  test('two replicas share one bucket per key: admitted within burst + rate × seconds plus one round', async () => {
    const a = await backend('a');
    // Low enough that a loaded machine still sends well beyond it.
    const rps = 10;
    const burst = 5;
    const c = cluster({ backends: [a], listener: [`    limits: { rateLimit: { requestsPerSecond: ${rps}, burst: ${burst}, key: header:x-key, scope: cluster } }`] });
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    await waitFor(sees(r1, ['r1', 'r2']), 5000, 'two replicas');
    // Both replicas at full speed on one key for 3 s: each alone would admit burst + rps × 3 = 35.
    const seconds = 3;
    const started = Date.now();
    let admitted = 0;
    let limited = 0;
    let other = 0;
    const loop = async (r: Replica) => {
      while (Date.now() - started < seconds * 1000) {
        const res = await request(`${r.url}/`, { headers: { 'x-key': 'k' } });
        if (res.status === 200) admitted++;
        else if (res.status === 429) limited++;
        else other++;
      }
    };
    await Promise.all([r1, r1, r1, r1, r2, r2, r2, r2].map(loop));
    const elapsed = (Date.now() - started) / 1000;
    expect(other).toBe(0);
    expect(limited).toBeGreaterThan(0);
    // One round (50 ms, of at most 100 ms) can overshoot by what each replica admits in it:
    // what was left in the bucket, and rate × round.
    const round = 0.1;
    const bound = burst + rps * elapsed + 2 * (burst + rps * round);
    expect(admitted).toBeLessThanOrEqual(bound);
    // Shared, not split: well above one replica's half, and above what two local buckets would cap at each.
    expect(admitted).toBeGreaterThanOrEqual(burst + rps * (elapsed - 0.5));
    // Another key has its own bucket.
    expect((await request(`${r2.url}/`, { headers: { 'x-key': 'other' } })).status).toBe(200);
  });
});

describe('outlierDetection.scope: cluster', () => {
  test('an ejection seen by one replica is applied by the other within 1 s, until the same end time', async () => {
    const good = await backend('good');
    const bad = await backend('bad', (req, res) => {
      req.resume();
      res.writeHead(502).end('bad');
    });
    const c = cluster({
      backends: [good, bad],
      pool: ['    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 3s, maxEjectionPercent: 50, scope: cluster }'],
    });
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    await waitFor(sees(r1, ['r1', 'r2']), 5000, 'two replicas');
    // Only r1 sees bad's failures.
    for (let i = 0; i < 4; i++) await request(`${r1.url}/`);
    await waitFor(async () => (await stateOf(r1, 'bad')) === 'ejected', 2000, 'bad ejected on r1');
    const took = await within(1500, [r2], async (r) => (await stateOf(r, 'bad')) === 'ejected', 'bad ejected on r2');
    expect(took).toBeLessThan(1500);
    // r2 sent bad nothing and ejected it all the same; it ends at r1's time (3 s), not a fresh 3 s of its own.
    const detail = await api<{ stateChanges: { time: number; to: string; reason: string }[] }>(`${r2.admin}/api/pools/web/backends/bad`);
    const ej = detail.stateChanges.find((s) => s.to === 'ejected')!;
    expect(ej.reason).toMatch(/ejected by replica r1 until/);
    const until = Date.parse(/until (\S+):/.exec(ej.reason)![1]!);
    const r1detail = await api<{ stateChanges: { time: number; to: string }[] }>(`${r1.admin}/api/pools/web/backends/bad`);
    const r1ej = r1detail.stateChanges.find((s) => s.to === 'ejected')!;
    expect(Math.abs(until - (r1ej.time + 3000))).toBeLessThan(250);
    await waitFor(async () => (await stateOf(r2, 'bad')) === 'up', 5000, 'bad back on r2');
    const back = (await api<{ stateChanges: { time: number; to: string }[] }>(`${r2.admin}/api/pools/web/backends/bad`)).stateChanges.at(-1)!;
    expect(Math.abs(back.time - until)).toBeLessThan(300);
  });
});

describe('GET /api/cluster', () => {
  test('replicas with name, address, lastSeen, version, configHash; a replica that stops heart-beating is gone within 5 s; configsAgree false; metrics', async () => {
    const a = await backend('a');
    const c = cluster({ backends: [a] });
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    await waitFor(sees(r1, ['r1', 'r2']), 5000, 'two replicas');
    const j = await api<Record<string, unknown> & { replicas: Record<string, unknown>[] }>(`${r1.admin}/api/cluster`);
    expect(Object.keys(j).sort()).toEqual(['name', 'redis', 'replicas']);
    expect(j.name).toBe(c.name);
    expect(j.redis).toBe('up');
    expect(j.replicas.map((r) => r.name)).toEqual(['r1', 'r2']);
    for (const r of j.replicas) {
      expect(Object.keys(r).sort()).toEqual(['address', 'configHash', 'lastSeen', 'name', 'version']);
      expect(r.configHash).toMatch(/^[0-9a-f]{64}$/);
      expect(r.version).toBe('0.1.0');
      expect(Date.now() - (r.lastSeen as number)).toBeLessThan(3000);
    }
    // Same file, other listen ports and replica names: the same hash.
    expect(j.replicas[0]!.configHash).toBe(j.replicas[1]!.configHash);
    expect(j.replicas.find((r) => r.name === 'r2')!.address).toBe(r2.admin.slice('http://'.length));
    let m = parseProm((await request(`${r1.admin}/metrics`)).body);
    expect(sum(m, 'fulcrum_cluster_redis_up')).toBe(1);
    await waitFor(async () => sum(parseProm((await request(`${r1.admin}/metrics`)).body), 'fulcrum_cluster_replicas') === 2, 3000, 'replicas 2');

    // A third replica on another config: the replicas disagree, and say so.
    const other = writeFile(c.dir, 'other.yaml', yaml({ backends: [a], pool: ['    strategy: random'] }, c.name));
    const r3 = await c.start('r3', other);
    await waitFor(sees(r1, ['r3']), 5000, 'r3 seen');
    const k = await api<{ configsAgree?: boolean; replicas: { configHash: string }[] }>(`${r1.admin}/api/cluster`);
    expect(k.configsAgree).toBe(false);
    expect(new Set(k.replicas.map((r) => r.configHash)).size).toBe(2);

    // r3 stops heart-beating (stopped, not gone from Redis): within 5 s it is not listed.
    process.kill(r3.p.pid, 'SIGSTOP');
    try {
      const t0 = Date.now();
      await waitFor(async () => !(await sees(r1, ['r3'])()), 7000, 'r3 gone');
      expect(Date.now() - t0).toBeLessThan(6500);
      const l = await api<{ configsAgree?: boolean }>(`${r1.admin}/api/cluster`);
      expect(l.configsAgree).toBeUndefined();
      m = parseProm((await request(`${r1.admin}/metrics`)).body);
      expect(sum(m, 'fulcrum_cluster_replicas')).toBe(2);
    } finally {
      process.kill(r3.p.pid, 'SIGCONT');
    }
  });

  test('404 without cluster', async () => {
    const a = await backend('a');
    const dir = tempDir();
    const file = writeFile(dir, 'f.yaml', `admin: { listen: 127.0.0.1:0 }\nlisteners:\n  public:\n    listen: 127.0.0.1:0\n    routes: [{ pool: web }]\npools:\n  web:\n    backends: [{ url: ${a.url} }]\n`);
    const p = startCli(['--config', file], { cwd: dir });
    const { adminUrl } = await addresses(p);
    expect((await request(`${adminUrl}/api/cluster`)).status).toBe(404);
    expect((await request(`${adminUrl}/metrics`)).body).not.toContain('fulcrum_cluster_');
  });
});

describe('a replica with workers', () => {
  test('workers: 2 beside a single replica: the primary relays actions and rate-limit rounds; redis_up is not summed over workers', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const extra = await backend('extra');
    const rps = 20;
    const burst = 5;
    const c = cluster({ backends: [a, b], listener: [`    limits: { rateLimit: { requestsPerSecond: ${rps}, burst: ${burst}, key: header:x-key, scope: cluster } }`] });
    const single = await c.start('single');
    const dir = c.dir;
    const multi = writeFile(dir, 'workers.yaml', yaml({ backends: [a, b], top: ['workers: 2'], listener: [`    limits: { rateLimit: { requestsPerSecond: ${rps}, burst: ${burst}, key: header:x-key, scope: cluster } }`] }, c.name));
    const w = await c.start('workers', multi);
    await w.p.waitForLog((l) => l.msg === 'workers listening', 15_000, 'workers listening');
    await waitFor(sees(single, ['single', 'workers']), 5000, 'both replicas');
    expect(sum(parseProm((await request(`${w.admin}/metrics`)).body), 'fulcrum_cluster_redis_up')).toBe(1);

    expect((await post(`${single.admin}/api/pools/web/backends/b/drain`)).status).toBe(200);
    expect((await post(`${single.admin}/api/pools/web/backends`, { url: extra.url, name: 'extra' })).status).toBe(201);
    await within(1500, [w], async (r) => (await stateOf(r, 'b')) === 'draining' && (await stateOf(r, 'extra')) === 'up', 'drain and extra');
    // Fresh connections spread over both workers: none reaches b, some reach extra.
    const bodies: string[] = [];
    for (let i = 0; i < 12; i++) bodies.push((await request(`${w.url}/`, { headers: { 'x-key': `k${i}` } })).body);
    expect(bodies).not.toContain('b');
    expect(bodies).toContain('extra');

    // One key, both workers and the other replica: one bucket.
    const started = Date.now();
    let admitted = 0;
    const loop = async (url: string) => {
      while (Date.now() - started < 2000) if ((await request(`${url}/`, { headers: { 'x-key': 'shared' } })).status === 200) admitted++;
    };
    await Promise.all([loop(w.url), loop(w.url), loop(w.url), loop(single.url)]);
    const elapsed = (Date.now() - started) / 1000;
    // Three processes with buckets of their own would admit 3 × (5 + 40) = 135.
    expect(admitted).toBeLessThanOrEqual(burst + rps * elapsed + 3 * (burst + rps * 0.1));
  });
});

describe('Redis down', () => {
  test('killed and restarted under steady load: zero failed requests; one warn, one info; redis_up 0 meanwhile; actions taken meanwhile reach the others when it is back', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = cluster({
      backends: [a, b],
      listener: ['    limits: { rateLimit: { requestsPerSecond: 100000, burst: 100000, scope: cluster } }'],
      pool: ['    outlierDetection: { scope: cluster }'],
    });
    const r1 = await c.start('r1');
    const r2 = await c.start('r2');
    await waitFor(sees(r1, ['r1', 'r2']), 5000, 'two replicas');
    let stop = false;
    let ok = 0;
    const failed: string[] = [];
    const load = (async () => {
      const t0 = Date.now();
      while (!stop && Date.now() - t0 < 20_000) {
        for (const r of [r1, r2]) {
          try {
            const res = await request(`${r.url}/`);
            if (res.status === 200) ok++;
            else failed.push(`${r.name}: ${res.status}`);
          } catch (err) {
            failed.push(`${r.name}: ${(err as Error).message}`);
          }
        }
      }
    })();
    try {
      await waitFor(() => ok > 20, 5000, 'load flowing');
      await redis.kill();
      await waitFor(async () => sum(parseProm((await request(`${r1.admin}/metrics`)).body), 'fulcrum_cluster_redis_up') === 0, 3000, 'redis_up 0');
      expect((await api<{ redis: string }>(`${r1.admin}/api/cluster`)).redis).toBe('down');
      // The admin API works meanwhile: a drain on r1, applied at once on r1.
      expect((await post(`${r1.admin}/api/pools/web/backends/b/drain`)).status).toBe(200);
      expect(await stateOf(r1, 'b')).toBe('draining');
      const during = ok;
      await waitFor(() => ok > during + 20, 5000, 'serving without Redis');
      await redis.restart();
      await waitFor(async () => (await api<{ redis: string }>(`${r1.admin}/api/cluster`)).redis === 'up', 5000, 'redis up again');
      // r1 wrote what it did meanwhile; r2 reads it.
      await waitFor(async () => (await stateOf(r2, 'b')) === 'draining', 3000, 'the drain on r2');
      const after = ok;
      await waitFor(() => ok > after + 20, 5000, 'serving after');
    } finally {
      stop = true;
      await load;
    }
    expect(failed).toEqual([]);
    // Log lines are flushed in batches: wait for them, then count.
    const lines = (r: Replica, level: number, re: RegExp) => r.p.logs.filter((l) => l.level === level && re.test(String(l.msg))).length;
    for (const r of [r1, r2]) {
      await waitFor(() => lines(r, 30, /Redis is back/) > 0, 3000, `${r.name}'s info line`);
      expect(lines(r, 40, /Redis is lost/)).toBe(1);
      expect(lines(r, 30, /Redis is back/)).toBe(1);
    }
  });

  test('Redis down at start: the replica serves with local state and its admin API works', async () => {
    const a = await backend('a');
    const c = cluster({ backends: [a] });
    await redis.kill();
    try {
      const r1 = await c.start('r1');
      expect((await request(`${r1.url}/`)).status).toBe(200);
      expect((await post(`${r1.admin}/api/pools/web/backends/a/drain`)).status).toBe(200);
      const j = await api<{ redis: string; replicas: { name: string }[] }>(`${r1.admin}/api/cluster`);
      expect(j.redis).toBe('down');
      expect(j.replicas.map((r) => r.name)).toEqual(['r1']);
      expect(sum(parseProm((await request(`${r1.admin}/metrics`)).body), 'fulcrum_cluster_redis_up')).toBe(0);
      await waitFor(() => r1.p.logs.some((l) => l.level === 40 && /Redis is lost/.test(String(l.msg))), 3000, 'the warn line');
      // Redis arrives: the replica writes the drain it took meanwhile, and a replica started now sees it.
      await redis.restart();
      await waitFor(async () => (await api<{ redis: string }>(`${r1.admin}/api/cluster`)).redis === 'up', 5000, 'redis up');
      const r2 = await c.start('r2');
      await waitFor(async () => (await stateOf(r2, 'a')) === 'draining', 3000, 'the drain on r2');
      expect(sum(parseProm((await request(`${r1.admin}/metrics`)).body), 'fulcrum_cluster_redis_up')).toBe(1);
    } finally {
      if (!(await redis.flush().then(() => true, () => false))) await redis.restart();
    }
  });
});
