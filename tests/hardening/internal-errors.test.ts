/**
 * The connection boundary of issue 20: a bug while one request or connection
 * is handled ends that connection (500 if nothing was sent yet, else a cut),
 * logs one `internal error` line with the stack, counts
 * `fulcrum_internal_errors_total`, and leaves the process serving.
 *
 * The bug is planted where a plug-in could really throw: an observer of
 * finished requests (what the access log and metrics are). It runs from the
 * listener's handler (a local answer), from the backend connection's parser
 * callbacks (a proxied answer) and from the client socket's 'close' (a client
 * that left mid-response). In-process: an exception that escaped would fail
 * this jest worker.
 */
import net from 'node:net';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { request } from '../helpers/http';
import { metricsOf } from '../helpers/admin';
import { sum } from '../helpers/prom';
import { rawExchange } from '../helpers/raw';
import { internalErrorCount } from '../../src/internal-errors';

const { cleanups, backend } = useTeardown();

/** A Fulcrum whose request observer throws for URLs under /bug/. */
async function withPlantedBug(): Promise<RunningFulcrum & { port: number }> {
  const b = await backend('b1', (req, res) => {
    if (req.url === '/bug/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part');
      return; // never ends: the client leaves mid-response
    }
    req.resume();
    req.on('end', () => res.end('from b1'));
  });
  const yaml = [
    'log: { level: info, access: false }',
    'admin: { listen: 127.0.0.1:0 }',
    'listeners:',
    '  public:',
    '    listen: 127.0.0.1:0',
    // /bug/local/ matches no route (404); /bug/502/ goes to a backend that refuses connections.
    '    routes:',
    '      - { match: { pathPrefix: /bug/502/ }, pool: gone }',
    '      - { match: { pathPrefix: /bug/proxied }, pool: web }',
    '      - { match: { pathPrefix: /bug/slow }, pool: web }',
    '      - { match: { pathPrefix: /fine }, pool: web }',
    'pools:',
    '  web:',
    `    backends: [ { url: ${b.url}, name: b1 } ]`,
    '  gone:',
    '    backends: [ { url: "http://127.0.0.1:1", name: gone } ]',
    '',
  ].join('\n');
  const f = await startFulcrum(yaml, {}, {
    internalErrorsExpected: true,
    onRequestEnd: (r) => {
      if (r.url.startsWith('/bug/')) throw new Error(`planted bug for ${r.url}`);
    },
  });
  cleanups.push(() => f.stop());
  return { ...f, port: Number(f.fulcrum.address('public')!.split(':').pop()) };
}

async function errorsMetric(f: RunningFulcrum): Promise<number> {
  return sum(await metricsOf(f.adminUrl), 'fulcrum_internal_errors_total');
}

test('a bug in the listener\'s handler (a local answer) ends that connection only', async () => {
  const f = await withPlantedBug();
  const before = internalErrorCount();
  // The 404 is written before the observer throws: the answer is out, then the connection is cut.
  const r = await rawExchange(f.port, ['GET /bug/local/x HTTP/1.1\r\nHost: x\r\n\r\n']);
  expect(r.responses.map((x) => x.status)).toEqual([404]);
  expect(r.closedByPeer).toBe(true);
  await waitFor(() => internalErrorCount() === before + 1, 5000, 'the bug counted');
  expect(await errorsMetric(f)).toBe(internalErrorCount());
  const line = f.logs.find((l) => l.msg === 'internal error');
  expect(line).toMatchObject({ level: 50 });
  expect(String((line?.err as { stack?: string }).stack)).toMatch(/planted bug for \/bug\/local\/x\n\s+at /);
  expect((await request(`${f.url()}/fine`)).body).toBe('from b1');
});

test('a bug in a backend connection\'s callbacks (a proxied answer) ends that call only', async () => {
  const f = await withPlantedBug();
  const before = internalErrorCount();
  const r = await rawExchange(f.port, ['GET /bug/proxied HTTP/1.1\r\nHost: x\r\n\r\n'], { done: (rs) => rs.length > 0 });
  expect(r.responses.map((x) => [x.status, x.body.toString()])).toEqual([[200, 'from b1']]);
  await waitFor(() => internalErrorCount() === before + 1, 5000, 'the bug counted');
  expect(f.logs.filter((l) => l.msg === 'internal error')).toHaveLength(1);
  // The backend is not blamed for our bug, and the next requests are served.
  for (let i = 0; i < 3; i++) expect((await request(`${f.url()}/fine`)).body).toBe('from b1');
  expect(f.fulcrum.pools.get('web')!.backends[0].state).toBe('up');
});

test('a bug while a client that left mid-response is cleaned up (socket \'close\') is caught there', async () => {
  const f = await withPlantedBug();
  const before = internalErrorCount();
  const socket = net.connect(f.port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write('GET /bug/slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.destroy();
  await waitFor(() => internalErrorCount() === before + 1, 5000, 'the bug counted');
  expect((await request(`${f.url()}/fine`)).body).toBe('from b1');
  expect(await errorsMetric(f)).toBe(internalErrorCount());
});

test('a bug while a backend connection fails (a socket \'error\' event) is caught there', async () => {
  const f = await withPlantedBug();
  const before = internalErrorCount();
  const r = await rawExchange(f.port, ['GET /bug/502/x HTTP/1.1\r\nHost: x\r\n\r\n'], { done: (rs) => rs.length > 0 });
  expect(r.responses.map((x) => x.status)).toEqual([502]);
  await waitFor(() => internalErrorCount() === before + 1, 5000, 'the bug counted');
  expect((await request(`${f.url()}/fine`)).body).toBe('from b1');
});
