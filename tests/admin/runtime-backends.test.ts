/**
 * SPEC section 11 without a cluster: backends added and deleted at run time
 * through the admin API, on a real `node dist/cli.js` with real backends.
 */
import { addresses, startCli, tempDir, writeFile, type CliProcess } from '../cli/harness';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';
import { waitFor } from '../helpers/wait';
import type { TestBackend } from '../helpers/backends';

const { backend, cleanups } = useTeardown({ blackBox: true });

interface Running { p: CliProcess; url: string; admin: string; file: string; dir: string }

function yaml(backends: TestBackend[], poolExtra = '', weights: Record<string, number> = {}): string {
  return [
    'shutdownTimeout: 5s',
    'log: { level: info, access: false }',
    'admin: { listen: 127.0.0.1:0 }',
    'listeners:',
    '  public:',
    '    listen: 127.0.0.1:0',
    '    routes: [{ pool: web }]',
    'pools:',
    '  web:',
    '    backends:',
    ...backends.map((b) => `      - { url: ${b.url}, name: ${b.name}, weight: ${weights[b.name] ?? 1} }`),
    poolExtra,
    '  other:',
    '    backends: [{ url: http://127.0.0.1:9, name: nowhere }]',
    '',
  ].join('\n');
}

async function run(text: string, dir = tempDir()): Promise<Running> {
  const file = writeFile(dir, 'fulcrum.yaml', text);
  const p = startCli(['--config', file], { cwd: dir });
  const { url, adminUrl } = await addresses(p);
  return { p, url, admin: adminUrl, file, dir };
}

const json = (method: string, body?: unknown) => ({
  method,
  headers: { 'content-type': 'application/json' },
  ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
});

async function pool(admin: string, name = 'web'): Promise<{ name: string; state: string; weight: number; url: string; backup: boolean }[]> {
  const all = JSON.parse((await request(`${admin}/api/pools`)).body) as { pools: { name: string; backends: never[] }[] };
  return all.pools.find((p) => p.name === name)!.backends;
}

describe('POST /api/pools/{pool}/backends', () => {
  test('201 with the /api/pools fields; the backend takes traffic at once; 409, 400, 404', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const f = await run(yaml([a]));
    const added = await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: b.url, weight: 2 }));
    expect(added.status).toBe(201);
    expect(JSON.parse(added.body)).toEqual({
      name: `127.0.0.1:${b.port}`, url: b.url, state: 'up', weight: 2, backup: false, activeRequests: 0, requests: 0, failures: 0,
    });
    // Round robin over a and the new one: it answers from the next requests on.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await request(`${f.url}/`)).body);
    expect(seen).toEqual(new Set(['a', 'b']));

    expect((await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: 'http://127.0.0.1:1', name: 'a' }))).status).toBe(409);
    const bad = await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: 'ftp://x/' }));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toMatch(/backend url must be an origin/);
    expect((await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: 'http://127.0.0.1:1/path' }))).status).toBe(400);
    expect((await request(`${f.admin}/api/pools/web/backends`, json('POST', 'not json'))).status).toBe(400);
    expect((await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: 'http://127.0.0.1:1', weight: 0 }))).status).toBe(400);
    expect((await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: 'http://127.0.0.1:1', colour: 'red' }))).status).toBe(400);
    expect((await request(`${f.admin}/api/pools/nope/backends`, json('POST', { url: b.url }))).status).toBe(404);
    expect(f.p.exited()).toBe(false);
  });

  test('in a pool with a healthCheck it starts down and is up after its first passing probe', async () => {
    const a = await backend('a');
    let healthy = false;
    const b = await backend('b', (req, res) => {
      req.resume();
      res.writeHead(req.url === '/health' && !healthy ? 503 : 200).end('b');
    });
    // rise 3 every 300 ms: "up after the first passing probe" is not the file's rule of three.
    const f = await run(yaml([a], '    healthCheck: { path: /health, interval: 300ms, rise: 3, fall: 1 }'));
    const added = await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: b.url, name: 'b' }));
    expect(added.status).toBe(201);
    expect(JSON.parse(added.body).state).toBe('down');
    await waitFor(async () => b.seen.some((r) => r.url === '/health'), 5000, 'a first probe of b');
    expect((await pool(f.admin)).find((x) => x.name === 'b')!.state).toBe('down');
    healthy = true;
    const passed = b.seen.length;
    await waitFor(async () => (await pool(f.admin)).find((x) => x.name === 'b')!.state === 'up', 5000, 'b up');
    // One passing probe was enough (rise 3 would need three).
    expect(b.seen.filter((r, i) => i >= passed && r.url === '/health').length).toBeLessThan(3);
  });
});

describe('DELETE /api/pools/{pool}/backends/{backend}', () => {
  test('202: drains (an in-flight request finishes), then goes once its in-flight requests end; 404 when unknown', async () => {
    let release: (() => void) | undefined;
    const slow = await backend('slow', (req, res) => {
      req.resume();
      if (req.url === '/slow') release = () => res.writeHead(200).end('slow done');
      else res.writeHead(200).end('slow');
    });
    const a = await backend('a');
    const f = await run(yaml([slow, a]));
    // Round robin: the first request goes to slow.
    const inFlight = request(`${f.url}/slow`);
    await waitFor(() => release !== undefined, 5000, 'the slow request at the backend');
    const del = await request(`${f.admin}/api/pools/web/backends/slow`, json('DELETE'));
    expect(del.status).toBe(202);
    expect(JSON.parse(del.body)).toMatchObject({ name: 'slow', state: 'draining', activeRequests: 1 });
    // No new request reaches it meanwhile; it is still listed, draining.
    for (let i = 0; i < 3; i++) expect((await request(`${f.url}/`)).body).toBe('a');
    expect((await pool(f.admin)).map((b) => [b.name, b.state])).toEqual([['slow', 'draining'], ['a', 'up']]);
    release!();
    expect((await inFlight).body).toBe('slow done');
    await waitFor(async () => (await pool(f.admin)).length === 1, 5000, 'slow gone');
    expect((await request(`${f.admin}/api/pools/web/backends/slow`, json('DELETE'))).status).toBe(404);
    expect((await request(`${f.admin}/api/pools/nope/backends/a`, json('DELETE'))).status).toBe(404);
  });
});

describe('run-time backends and reload', () => {
  test('a reload keeps a run-time backend (named in changes), restores a deleted file backend and the file weights; a restart forgets', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const c = await backend('c');
    const f = await run(yaml([a, b], '', { a: 3 }));
    expect((await request(`${f.admin}/api/pools/web/backends`, json('POST', { url: c.url, name: 'c' }))).status).toBe(201);
    expect((await request(`${f.admin}/api/pools/web/backends/a`, json('PUT', { weight: 7 }))).status).toBe(200);
    expect((await request(`${f.admin}/api/pools/web/backends/b`, json('DELETE'))).status).toBe(202);
    await waitFor(async () => (await pool(f.admin)).every((x) => x.name !== 'b'), 5000, 'b deleted');
    const reload = await request(`${f.admin}/api/reload`, json('POST'));
    expect(reload.status).toBe(200);
    expect(JSON.parse(reload.body).changes).toEqual(['pool web: backend c (added at run time) kept']);
    expect((await pool(f.admin)).map((x) => [x.name, x.weight, x.state])).toEqual([['a', 3, 'up'], ['b', 1, 'up'], ['c', 1, 'up']]);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await request(`${f.url}/`)).body);
    expect(seen).toEqual(new Set(['a', 'b', 'c']));
    // Without a cluster, a restart runs the file: c is gone.
    f.p.signal('SIGTERM');
    await f.p.waitForExit(10_000);
    const again = await run(yaml([a, b], '', { a: 3 }), f.dir);
    expect((await pool(again.admin)).map((x) => x.name)).toEqual(['a', 'b']);
    void cleanups;
  });
});
