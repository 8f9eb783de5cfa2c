import http from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();

async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml);
  cleanups.push(() => f.stop());
  return f;
}

function config(bs: TestBackend[], pool = '', admin = ''): string {
  return `
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 ${admin} }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /api/ }
        pool: p
pools:
  p:
${pool}
    backends:
${bs.map((b) => `      - { url: ${b.url}, name: ${b.name} }`).join('\n')}
`;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
afterAll(() => agent.destroy());

async function metrics(f: RunningFulcrum) {
  const r = await request(`${f.adminUrl}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
  return parseProm(r.body);
}

async function api(f: RunningFulcrum, method: string, path: string, body?: string, token?: string) {
  const r = await request(`${f.adminUrl}${path}`, { method, body, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: r.status, json: r.headers['content-type']?.startsWith('application/json') ? JSON.parse(r.body) : r.body };
}

describe('metrics', () => {
  test('after N requests fulcrum_requests_total sums to exactly N, labelled by the answering backend', async () => {
    const a = await backend('a');
    const b = await backend('b', (req, res) => { req.resume(); res.writeHead(500).end(); });
    const f = await fulcrum(config([a, b], '    retries: { attempts: 0 }'));
    const N = 37;
    await Promise.all(Array.from({ length: N }, (_, i) => request(`${f.url()}/api/${i}`, i % 3 === 0 ? { agent, method: 'POST', body: 'x' } : { agent })));
    await request(`${f.url()}/nowhere`, { agent }); // 404, answered by Fulcrum
    const m = await metrics(f);
    expect(sum(m, 'fulcrum_requests_total')).toBe(N + 1);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'a', code: '200' })).toBeGreaterThan(0);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'b', code: '500' })).toBeGreaterThan(0);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'a' }) + sum(m, 'fulcrum_requests_total', { backend: 'b' })).toBe(N);
    expect(sum(m, 'fulcrum_requests_total', { listener: 'public', pool: 'p', method: 'POST' })).toBe(13);
    expect(sum(m, 'fulcrum_requests_total', { backend: '', pool: '', code: '404' })).toBe(1);
    expect(sum(m, 'fulcrum_request_duration_seconds_count', { pool: 'p' })).toBe(N);
    // /api/pools counts the same requests per backend.
    const pools = (await api(f, 'GET', '/api/pools')).json;
    const byName = Object.fromEntries(pools.pools[0].backends.map((x: { name: string }) => [x.name, x]));
    expect(byName.a.requests + byName.b.requests).toBe(N);
    expect(byName.b.failures).toBe(byName.b.requests);
    expect(byName.a.failures).toBe(0);
  });

  test('every SPEC metric is present with its labels, plus process and nodejs defaults', async () => {
    const a = await backend('a');
    const f = await fulcrum(config([a], `
    healthCheck: { path: /, interval: 30ms }
    outlierDetection: {}
    retries: { attempts: 1 }`));
    await request(`${f.url()}/api/x`);
    await waitFor(async () => sum(await metrics(f), 'fulcrum_health_checks_total', { result: 'success' }) > 0, 3000, 'a probe');
    const m = await metrics(f);
    const labelsOf = (name: string) => m.find((s) => s.name === name)?.labels;
    expect(Object.keys(labelsOf('fulcrum_requests_total')!).sort()).toEqual(['backend', 'code', 'grpc_status', 'listener', 'method', 'pool']);
    expect(Object.keys(labelsOf('fulcrum_request_duration_seconds_bucket')!).sort()).toEqual(['backend', 'le', 'listener', 'pool']);
    expect(labelsOf('fulcrum_backend_up')).toEqual({ pool: 'p', backend: 'a' });
    expect(labelsOf('fulcrum_backend_active_requests')).toEqual({ pool: 'p', backend: 'a' });
    expect(Object.keys(labelsOf('fulcrum_health_checks_total')!).sort()).toEqual(['backend', 'pool', 'result']);
    expect(labelsOf('fulcrum_retries_total')).toEqual({ pool: 'p' });
    expect(labelsOf('fulcrum_outlier_ejections_total')).toEqual({ pool: 'p', backend: 'a' });
    expect(m.filter((s) => s.name === 'fulcrum_config_reloads_total').map((s) => s.labels.result).sort()).toEqual(['failure', 'success']);
    expect(sum(m, 'fulcrum_backend_up', { backend: 'a' })).toBe(1);
    const buckets = m.filter((s) => s.name === 'fulcrum_request_duration_seconds_bucket').map((s) => s.labels.le);
    expect(buckets[0]).toBe('0.001');
    expect(buckets).toContain('10');
    expect(m.some((s) => s.name.startsWith('process_'))).toBe(true);
    expect(m.some((s) => s.name.startsWith('nodejs_'))).toBe(true);
  });

  test('retries and ejections are counted; backend_up follows the state', async () => {
    const a = await backend('a');
    const dead = await startBackend('dead');
    await dead.close();
    const f = await fulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:0, routes: [ { pool: p } ] } }
pools:
  p:
    retries: { attempts: 1, on: [connect-failure] }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s, maxEjectionPercent: 50 }
    backends: [ { url: ${a.url}, name: a }, { url: ${dead.url}, name: dead } ]
`);
    for (let i = 0; i < 6; i++) expect((await request(`${f.url()}/`, { agent })).status).toBe(200);
    const m = await metrics(f);
    expect(sum(m, 'fulcrum_retries_total', { pool: 'p' })).toBe(2);
    expect(sum(m, 'fulcrum_outlier_ejections_total', { backend: 'dead' })).toBe(1);
    expect(sum(m, 'fulcrum_backend_up', { backend: 'dead' })).toBe(0);
    expect(sum(m, 'fulcrum_backend_up', { backend: 'a' })).toBe(1);
    expect(sum(m, 'fulcrum_requests_total')).toBe(6);
  });
});

describe('admin API', () => {
  test('drain stops new requests while an in-flight one completes; enable restores', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    const a = await backend('a', (req, res) => {
      req.resume();
      if (req.url === '/api/slow') void gate.then(() => res.writeHead(200, { 'x-backend': 'a' }).end('slow done'));
      else res.writeHead(200, { 'x-backend': 'a' }).end('a');
    });
    const b = await backend('b');
    const f = await fulcrum(config([a, b]));
    const slow = request(`${f.url()}/api/slow`); // round-robin: first request goes to a
    await waitFor(() => a.seen.length === 1, 3000, 'slow request at a');
    const drained = await api(f, 'POST', '/api/pools/p/backends/a/drain');
    expect(drained.status).toBe(200);
    expect(drained.json.state).toBe('draining');
    expect(drained.json.activeRequests).toBe(1);
    for (let i = 0; i < 6; i++) expect((await request(`${f.url()}/api/n`, { agent })).body).toBe('b');
    release();
    expect((await slow).body).toBe('slow done');
    const detail = await api(f, 'GET', '/api/pools/p/backends/a');
    expect(detail.json.stateChanges.at(-1)).toMatchObject({ from: 'up', to: 'draining', reason: 'drained by the admin API' });
    expect((await api(f, 'POST', '/api/pools/p/backends/a/enable')).json.state).toBe('up');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(`${f.url()}/api/n`, { agent })).body);
    expect([...seen].sort()).toEqual(['a', 'b']);
  });

  test('a weight change moves the distribution', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const f = await fulcrum(config([a, b], '    strategy: weighted-round-robin'));
    const count = async (n: number) => {
      const c: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const body = (await request(`${f.url()}/api/w`, { agent })).body;
        c[body] = (c[body] ?? 0) + 1;
      }
      return c;
    };
    expect(await count(20)).toEqual({ a: 10, b: 10 });
    const put = await api(f, 'PUT', '/api/pools/p/backends/a', JSON.stringify({ weight: 3 }));
    expect(put.status).toBe(200);
    expect(put.json.weight).toBe(3);
    expect(await count(40)).toEqual({ a: 30, b: 10 });
  });

  test('bad input: unknown pool or backend 404, bad JSON or weight 400, all JSON errors', async () => {
    const a = await backend('a');
    const f = await fulcrum(config([a]));
    const cases: [string, string, string | undefined, number][] = [
      ['GET', '/api/pools/nope/backends/a', undefined, 404],
      ['GET', '/api/pools/p/backends/nope', undefined, 404],
      ['POST', '/api/pools/p/backends/nope/drain', undefined, 404],
      ['PUT', '/api/pools/p/backends/a', '{not json', 400],
      ['PUT', '/api/pools/p/backends/a', '{"weight": -1}', 400],
      ['PUT', '/api/pools/p/backends/a', '{"weight": "3"}', 400],
      ['PUT', '/api/pools/p/backends/a', '{"weight": 1.5}', 400],
      ['GET', '/api/nothing', undefined, 404],
    ];
    for (const [method, path, body, status] of cases) {
      const r = await api(f, method, path, body);
      expect([method, path, r.status]).toEqual([method, path, status]);
      expect(typeof r.json.error).toBe('string');
    }
    // The backend name from the URL is decoded: default names contain a colon.
    const f2pools = (await api(f, 'GET', '/api/pools')).json.pools[0].backends[0].name;
    expect(f2pools).toBe('a');
  });

  test('with admin.token: 401 without it (JSON), 200 with it; /healthz needs none', async () => {
    const a = await backend('a');
    const f = await fulcrum(config([a], '', ', token: s3cret'));
    expect((await api(f, 'GET', '/healthz')).status).toBe(200);
    for (const path of ['/api/pools', '/metrics', '/readyz', '/api/pools/p/backends/a']) {
      const r = await api(f, 'GET', path);
      expect([path, r.status]).toEqual([path, 401]);
      expect([path, (await api(f, 'GET', path, undefined, 'wrong')).status]).toEqual([path, 401]);
      expect([path, (await api(f, 'GET', path, undefined, 's3cret')).status]).toEqual([path, 200]);
    }
    expect((await api(f, 'POST', '/api/pools/p/backends/a/drain')).status).toBe(401);
    expect(f.fulcrum.pools.get('p')!.get('a')!.state).toBe('up');
    // The dashboard page is behind the token too (its 401 body is the page, which asks for it).
    const page = await request(`${f.adminUrl}/`);
    expect(page.status).toBe(401);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
  });

  test('explain: a probe failure and an ejection are recorded with their reasons', async () => {
    let mode = 'ok';
    const a = await backend('a', (req, res) => {
      req.resume();
      if (req.url === '/health') res.writeHead(mode === 'sick' ? 503 : 200).end();
      else res.writeHead(mode === 'ok' ? 200 : 502).end();
    });
    const b = await backend('b');
    const f = await fulcrum(config([a, b], `
    strategy: round-robin
    retries: { attempts: 0 }
    healthCheck: { path: /health, interval: 30ms, fall: 2, rise: 1 }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 200ms, maxEjectionPercent: 50 }`));
    mode = 'bad';
    for (let i = 0; i < 4; i++) await request(`${f.url()}/api/x`, { agent });
    let detail = (await api(f, 'GET', '/api/pools/p/backends/a')).json;
    expect(detail.recentFailures.map((x: { reason: string }) => x.reason)).toEqual(['502', '502']);
    expect(detail.stateChanges.at(-1)).toMatchObject({ to: 'ejected' });
    expect(detail.stateChanges.at(-1).reason).toMatch(/^ejected after 2 consecutive failures \(last: 502\)/);
    await waitFor(async () => (await api(f, 'GET', '/api/pools/p/backends/a')).json.state === 'up', 3000, 'ejection to end');
    mode = 'sick';
    await waitFor(async () => (await api(f, 'GET', '/api/pools/p/backends/a')).json.state === 'down', 3000, 'probe failures');
    detail = (await api(f, 'GET', '/api/pools/p/backends/a')).json;
    expect(detail.stateChanges.at(-1).reason).toBe('health check failed 2 times: status 503');
    expect(detail.probes.at(-1)).toMatchObject({ ok: false, status: 503, error: 'status 503' });
    expect(typeof detail.probes.at(-1).time).toBe('number');
    expect(typeof detail.probes.at(-1).latencyMs).toBe('number');
  });

  test('readyz is 503 while a pool has no available backend', async () => {
    const a = await backend('a');
    const f = await fulcrum(config([a]));
    expect((await api(f, 'GET', '/readyz')).status).toBe(200);
    await api(f, 'POST', '/api/pools/p/backends/a/drain');
    expect((await api(f, 'GET', '/readyz')).status).toBe(503);
  });

  test('the admin API is not reachable through a listener', async () => {
    const a = await backend('a');
    const f = await fulcrum(config([a]));
    const r = await request(`${f.url()}/metrics`);
    expect(r.status).toBe(404);
    expect(a.seen.length).toBe(0);
  });
});
