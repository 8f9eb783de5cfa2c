/**
 * A route's timeouts.connect (SPEC 8) for every kind of backend connection:
 * our own HTTP/1.1 client (http://), undici (https://, and http:// under
 * FULCRUM_HTTP1=node) and HTTP/2 sessions (protocol: http2, h2c and TLS).
 * The backends never complete a connect: a listener whose accept queue is
 * full (the SYN is dropped), or a TCP listener that never answers the TLS
 * handshake. The answer is SPEC 4's connect-timeout 504, in about the
 * route's time, whether the route asks for less than the pool or more.
 */
import { performance } from 'node:perf_hooks';
import { startFulcrumOn } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { startSilent, startUnaccepting } from '../helpers/raw';
import { useTeardown } from '../helpers/teardown';

jest.setTimeout(30_000);

const { cleanups } = useTeardown();

const CONNECT_TIMEOUT_BODY = 'gateway timeout: the backend did not accept the connection in time\n';

/** A backend url whose connects never complete: `tcp` never accepts; `tls` accepts and never answers the handshake. */
async function deadEnd(kind: 'tcp' | 'tls', scheme: 'http' | 'https'): Promise<string> {
  const l = kind === 'tcp' ? await startUnaccepting() : await startSilent();
  cleanups.push(l.close);
  return `${scheme}://127.0.0.1:${l.port}`;
}

/** A Fulcrum whose /short route waits `routeMs` for a connection and /pool the pool's `poolMs`. */
async function fulcrum(url: string, protocol: 'http1' | 'http2', routeMs: string, poolMs: string, engine: 'llhttp' | 'node' = 'llhttp') {
  const f = await startFulcrumOn(engine)(`
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /short }, pool: p, timeouts: { connect: ${routeMs} } }
      - { pool: p }
pools:
  p:
    protocol: ${protocol}
    backends: [{ url: ${url} }]
    timeouts: { connect: ${poolMs}, response: 20s }
    retries: { attempts: 0 }
`);
  cleanups.push(() => f.stop());
  return f;
}

/** GET `url`: the reply and the ms it took. */
async function timed(url: string) {
  const start = performance.now();
  const r = await request(url);
  return { ...r, ms: performance.now() - start };
}

const CASES: [string, 'tcp' | 'tls', 'http' | 'https', 'http1' | 'http2', 'llhttp' | 'node'][] = [
  ['an http2 pool, h2c (http://)', 'tcp', 'http', 'http2', 'llhttp'],
  ['an http2 pool, TLS (https://): the handshake counts', 'tls', 'https', 'http2', 'llhttp'],
  ['an https pool (undici): the handshake counts', 'tls', 'https', 'http1', 'llhttp'],
  ['an http pool (our own HTTP/1.1 client)', 'tcp', 'http', 'http1', 'llhttp'],
  ['an http pool under FULCRUM_HTTP1=node (undici)', 'tcp', 'http', 'http1', 'node'],
];

describe.each(CASES)('%s', (_name, kind, scheme, protocol, engine) => {
  test('a route shorter than the pool: 504 in about the route\'s time; the pool\'s own routes keep theirs', async () => {
    const f = await fulcrum(await deadEnd(kind, scheme), protocol, '250ms', '1000ms', engine);
    const short = await timed(`${f.url()}/short`);
    expect(short.status).toBe(504);
    expect(short.body).toBe(CONNECT_TIMEOUT_BODY);
    expect(short.ms).toBeGreaterThanOrEqual(230);
    expect(short.ms).toBeLessThan(900);
    // The pool's value for a route without one.
    const pool = await timed(`${f.url()}/pool`);
    expect(pool.status).toBe(504);
    expect(pool.body).toBe(CONNECT_TIMEOUT_BODY);
    expect(pool.ms).toBeGreaterThanOrEqual(950);
    const logged = f.records.map((r) => [r.url, r.status, r.error]);
    expect(logged).toEqual([
      ['/short', 504, expect.stringContaining('connect-failure')],
      ['/pool', 504, expect.stringContaining('connect-failure')],
    ]);
  });
});

test.each([
  ['an http2 pool', 'http2'],
  ['an https pool', 'http1'],
] as const)('%s: a route longer than the pool waits its own time', async (_name, protocol) => {
  const f = await fulcrum(await deadEnd('tls', 'https'), protocol, '1000ms', '200ms');
  const r = await timed(`${f.url()}/short`);
  expect(r.status).toBe(504);
  expect(r.body).toBe(CONNECT_TIMEOUT_BODY);
  expect(r.ms).toBeGreaterThanOrEqual(950);
});

test('http2: requests waiting for one connecting session each keep their own connect timeout', async () => {
  const silent = await startSilent();
  cleanups.push(silent.close);
  const f = await fulcrum(`https://127.0.0.1:${silent.port}`, 'http2', '250ms', '1000ms');
  // Both wait on the same session (whichever came first opened it); the short one gives up first, alone.
  const long = timed(`${f.url()}/pool`);
  const short = await timed(`${f.url()}/short`);
  expect(short.status).toBe(504);
  expect(short.ms).toBeLessThan(900);
  const l = await long;
  expect(l.status).toBe(504);
  expect(l.ms).toBeGreaterThanOrEqual(950);
  expect(silent.accepted()).toBe(1);
});
