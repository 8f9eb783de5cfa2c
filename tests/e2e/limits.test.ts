import http from 'node:http';
import net from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { RateLimiter } from '../../src/proxy/rate-limit';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();

async function fulcrum(b: TestBackend, limits: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    limits: ${limits}
    routes: [ { pool: p } ]
pools: { p: { backends: [ { url: ${b.url}, name: b } ] } }
`);
  cleanups.push(() => f.stop());
  return f;
}

/** Raw bytes in, everything the server sends until it closes (or `ms` pass). */
function raw(url: string, chunks: (string | Buffer)[], ms = 3000): Promise<string> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => { s.destroy(); resolve(out); }, ms);
    s.on('data', (c) => { out += c; });
    s.on('close', () => { clearTimeout(timer); resolve(out); });
    s.on('error', () => undefined);
    for (const c of chunks) s.write(c);
  });
}

function echoLength(): Parameters<typeof startBackend>[1] {
  return (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => res.end(String(n)));
  };
}

describe('maxBodySize', () => {
  test('a Content-Length over the limit is refused with 413 before the backend sees anything', async () => {
    const b = await backend('b', echoLength());
    const f = await fulcrum(b, '{ maxBodySize: 1kb }');
    const r = await request(`${f.url()}/up`, { method: 'POST', body: Buffer.alloc(2048) });
    expect(r.status).toBe(413);
    expect(r.body).toBe('payload too large\n');
    expect(b.seen.length).toBe(0);
    const ok = await request(`${f.url()}/up`, { method: 'POST', body: Buffer.alloc(1024) });
    expect([ok.status, ok.body]).toEqual([200, '1024']);
  });

  test('a chunked body is counted while it streams: 413 past the limit, not a backend failure', async () => {
    const b = await backend('b', echoLength());
    const f = await fulcrum(b, '{ maxBodySize: 10kb }');
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${f.url()}/up`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write(Buffer.alloc(4096));
      req.end();
    });
    expect(status).toBe(413);
    const backendState = f.fulcrum.pools.get('p')!.get('b')!;
    await waitFor(() => backendState.inFlight === 0, 3000, 'release');
    expect(backendState.failures).toBe(0);
    // A chunked body under the limit passes whole.
    const small = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${f.url()}/up`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let s = '';
        res.on('data', (c) => { s += c; });
        res.on('end', () => resolve(s));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(3000));
      req.end(Buffer.alloc(3000));
    });
    expect(small).toBe('6000');
  });
});

describe('slow and oversized clients', () => {
  test('a client that stops sending its body is answered 408 after bodyTimeout', async () => {
    const b = await backend('b', echoLength());
    const f = await fulcrum(b, '{ bodyTimeout: 300ms }');
    const started = Date.now();
    const out = await raw(f.url(), ['POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', 'only part of it']);
    expect(out).toMatch(/^HTTP\/1.1 408 /);
    expect(out.toLowerCase()).toContain('connection: close');
    expect(Date.now() - started).toBeLessThan(2500);
    const bk = f.fulcrum.pools.get('p')!.get('b')!;
    await waitFor(() => bk.inFlight === 0, 3000, 'release');
    expect(bk.failures).toBe(0);
    expect((await request(`${f.url()}/`)).status).toBe(200);
  });

  test('slow headers are cut off with 408 after headersTimeout', async () => {
    const b = await backend('b');
    const f = await fulcrum(b, '{ headersTimeout: 300ms }');
    const out = await raw(f.url(), ['GET / HTTP/1.1\r\nHost: x\r\nX-Slow: '], 4000);
    expect(out).toMatch(/^HTTP\/1.1 408 /);
    expect(b.seen.length).toBe(0);
  });

  test('oversized headers get 431', async () => {
    const b = await backend('b');
    const f = await fulcrum(b, '{}');
    const out = await raw(f.url(), [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    expect(out).toMatch(/^HTTP\/1.1 431 /);
    expect(b.seen.length).toBe(0);
  });

  test('maxConnections caps open connections per listener', async () => {
    const b = await backend('b');
    const f = await fulcrum(b, '{ maxConnections: 2 }');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    cleanups.push(async () => agent.destroy());
    await Promise.all([request(`${f.url()}/1`, { agent }), request(`${f.url()}/2`, { agent })]);
    // Two idle keep-alive connections are open: a third is closed at once.
    const third = await raw(f.url(), ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], 2000);
    expect(third).toBe('');
    agent.destroy();
    await waitFor(async () => (await raw(f.url(), ['GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], 1000)).startsWith('HTTP/1.1 200'), 5000, 'room again');
  });
});

describe('rate limiting', () => {
  test('a burst passes, then 429 with Retry-After; other keys are not affected', async () => {
    const b = await backend('b');
    const f = await fulcrum(b, '{ rateLimit: { requestsPerSecond: 1, burst: 3, key: header:x-api-key } }');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(async () => agent.destroy());
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof request>> | undefined;
    for (let i = 0; i < 5; i++) {
      const r = await request(`${f.url()}/`, { agent, headers: { 'x-api-key': 'alice' } });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited!.body).toBe('too many requests\n');
    expect((await request(`${f.url()}/`, { agent, headers: { 'x-api-key': 'bob' } })).status).toBe(200);
    expect(b.seen.length).toBe(4);
    expect(f.records.filter((r) => r.status === 429).every((r) => r.backend === '')).toBe(true);
  });

  test('token bucket: refills at the rate, and memory stays bounded under a flood of keys', () => {
    let now = 0;
    const limiter = new RateLimiter({ requestsPerSecond: 10, burst: 2, key: { kind: 'ip' }, scope: 'local' }, () => now);
    const req = { headers: {} } as http.IncomingMessage;
    expect([limiter.take(req, 'a'), limiter.take(req, 'a'), limiter.take(req, 'a')]).toEqual([0, 0, 1]);
    now += 100; // one token back
    expect(limiter.take(req, 'a')).toBe(0);
    expect(limiter.take(req, 'a')).toBe(1);
    for (let i = 0; i < 250_000; i++) limiter.take(req, `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    expect(limiter.size).toBeLessThanOrEqual(100_000);
    now += 1000; // every bucket has refilled: the sweep forgets them all
    limiter.sweep();
    expect(limiter.size).toBe(0);
    limiter.stop();
  });
});

describe('keepAliveTimeout', () => {
  /** One request on a keep-alive connection; resolves with its head and when the server closed the connection after it. */
  function idleAfterOneRequest(url: string): Promise<{ head: string; answeredAt: number; closedAt: Promise<number> }> {
    const { port } = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(port), '127.0.0.1');
      cleanups.push(async () => {
        s.destroy();
      });
      let data = '';
      const closedAt = new Promise<number>((r) => s.once('close', () => r(Date.now())));
      s.on('error', reject);
      s.on('data', (c: Buffer) => {
        data += c.toString('latin1');
        const end = data.indexOf('\r\n\r\n');
        if (end !== -1 && data.endsWith('ok')) resolve({ head: data.slice(0, end), answeredAt: Date.now(), closedAt });
      });
      s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    });
  }
  const ok: Parameters<typeof startBackend>[1] = (_req, res) => res.end('ok');

  test('an idle keep-alive client connection is closed after limits.keepAliveTimeout, not before', async () => {
    const f = await fulcrum(await backend('b', ok), '{ keepAliveTimeout: 400ms }');
    const r = await idleAfterOneRequest(f.url());
    expect(r.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(r.head.toLowerCase()).toContain('connection: keep-alive');
    const idleMs = (await r.closedAt) - r.answeredAt;
    expect(idleMs).toBeGreaterThanOrEqual(350);
    expect(idleMs).toBeLessThan(3000);
  });

  test('the default is 65s, as before, and a reload applies a new value', async () => {
    const b = await backend('b', ok);
    const f = await fulcrum(b, '{}');
    expect(f.fulcrum.config.listeners[0]!.limits.keepAliveTimeoutMs).toBe(65_000);
    expect((await idleAfterOneRequest(f.url())).head.toLowerCase()).toContain('keep-alive: timeout=65');
    const { parseConfig } = await import('../../src/config');
    const next = parseConfig(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    limits: { keepAliveTimeout: 1s }
    routes: [ { pool: p } ]
pools: { p: { backends: [ { url: ${b.url}, name: b } ] } }
`, 'test.yaml', {});
    expect(await f.fulcrum.apply(next)).toEqual({ ok: true, changes: ['listener public: limits changed'], errors: [] });
    const r = await idleAfterOneRequest(f.url());
    expect(r.head.toLowerCase()).toContain('keep-alive: timeout=1');
    expect((await r.closedAt) - r.answeredAt).toBeLessThan(4000);
  });
});
