/**
 * fulcrum_backend_failures_total{pool,backend,kind} (SPEC section 13, issue
 * 20): each failed attempt on a backend, retried or not, under the backend
 * that failed, even when no health check would ever notice.
 */
import { freePort } from '../cli/harness';
import { metricsOf } from '../helpers/admin';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();
const NAME = 'fulcrum_backend_failures_total';

async function fulcrum(pool: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes: [ { pool: web } ]
pools:
  web:
${pool}
`);
  cleanups.push(() => f.stop());
  return f;
}

async function failures(f: RunningFulcrum, backendName: string): Promise<Record<string, number>> {
  const m = await metricsOf(f.adminUrl);
  const kinds = ['connect-failure', 'reset', 'timeout', '5xx', 'error'];
  return Object.fromEntries(kinds.map((kind) => [kind, sum(m, NAME, { pool: 'web', backend: backendName, kind })]));
}

const NONE = { 'connect-failure': 0, reset: 0, timeout: 0, '5xx': 0, error: 0 };

test('a backend that refuses every connection, without health checks: connect-failure under its own name', async () => {
  const port = await freePort(); // nothing listens there
  const f = await fulcrum(`    backends: [ { url: http://127.0.0.1:${port}, name: dead } ]\n    retries: { attempts: 0 }`);
  // Every series is there from the start, at zero.
  const m = await metricsOf(f.adminUrl);
  expect(m.filter((s) => s.name === NAME).map((s) => s.labels.kind).sort()).toEqual(['5xx', 'connect-failure', 'error', 'reset', 'timeout']);
  expect(await failures(f, 'dead')).toEqual(NONE);
  for (let i = 0; i < 3; i++) expect((await request(`${f.url()}/x`)).status).toBe(502);
  expect(await failures(f, 'dead')).toEqual({ ...NONE, 'connect-failure': 3 });
  // The answer Fulcrum gave itself still carries backend="" in fulcrum_requests_total.
  expect(sum(await metricsOf(f.adminUrl), 'fulcrum_requests_total', { backend: '', code: '502' })).toBe(3);
});

test('a retried attempt counts on the backend that failed it', async () => {
  const port = await freePort();
  const good = await backend('good');
  const f = await fulcrum(`    strategy: round-robin
    backends: [ { url: http://127.0.0.1:${port}, name: dead }, { url: ${good.url}, name: good } ]
    retries: { attempts: 1, on: [connect-failure] }`);
  for (let i = 0; i < 4; i++) expect((await request(`${f.url()}/x`)).status).toBe(200);
  expect(await failures(f, 'dead')).toEqual({ ...NONE, 'connect-failure': 2 });
  expect(await failures(f, 'good')).toEqual(NONE);
});

test('a backend answering 500 counts as 5xx', async () => {
  const b = await backend('b', (_req, res) => res.writeHead(500).end('boom'));
  const f = await fulcrum(`    backends: [ { url: ${b.url}, name: b } ]`);
  expect((await request(`${f.url()}/x`)).status).toBe(500);
  expect((await request(`${f.url()}/x`)).status).toBe(500);
  expect(await failures(f, 'b')).toEqual({ ...NONE, '5xx': 2 });
});

test('a retried 503 counts as 5xx on each backend that gave it', async () => {
  const a = await backend('a', (_req, res) => res.writeHead(503).end('busy'));
  const c = await backend('c', (_req, res) => res.writeHead(503).end('busy'));
  const f = await fulcrum(`    backends: [ { url: ${a.url}, name: a }, { url: ${c.url}, name: c } ]
    retries: { attempts: 1, on: [503] }`);
  expect((await request(`${f.url()}/x`)).status).toBe(503);
  expect((await failures(f, 'a'))['5xx'] + (await failures(f, 'c'))['5xx']).toBe(2);
});

test('a backend that does not answer within timeouts.response counts as timeout', async () => {
  const b = await backend('b', () => undefined); // never answers
  const f = await fulcrum(`    backends: [ { url: ${b.url}, name: b } ]\n    timeouts: { response: 200ms }\n    retries: { attempts: 0 }`);
  expect((await request(`${f.url()}/x`)).status).toBe(504);
  expect(await failures(f, 'b')).toEqual({ ...NONE, timeout: 1 });
});
