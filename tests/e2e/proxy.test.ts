import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { startBackend, startBackends, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';

const { cleanups } = useTeardown();

async function backends(names: string[], handler?: Parameters<typeof startBackends>[1]): Promise<TestBackend[]> {
  const bs = await startBackends(names, handler);
  cleanups.push(() => Promise.all(bs.map((b) => b.close())).then(() => undefined));
  return bs;
}

async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml);
  cleanups.push(() => f.stop());
  return f;
}

function poolYaml(bs: TestBackend[], strategy: string, extra = '', weights?: number[]): string {
  return `
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - pool: p
pools:
  p:
    strategy: ${strategy}
${extra}
    backends:
${bs.map((b, i) => `      - url: ${b.url}\n        name: ${b.name}${weights ? `\n        weight: ${weights[i]}` : ''}`).join('\n')}
`;
}

/** n sequential GETs over one keep-alive agent; returns counts by x-backend. */
async function distribution(url: string, n: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<Record<string, number>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const counts: Record<string, number> = {};
  try {
    for (let i = 0; i < n; i++) {
      const r = await request(`${url}/x`, { agent, headers: headers(i) });
      expect(r.status).toBe(200);
      const b = String(r.headers['x-backend']);
      counts[b] = (counts[b] ?? 0) + 1;
    }
  } finally {
    agent.destroy();
  }
  return counts;
}

describe('strategies over real sockets', () => {
  test('round-robin spreads evenly', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const f = await fulcrum(poolYaml(bs, 'round-robin'));
    expect(await distribution(f.url(), 300)).toEqual({ a: 100, b: 100, c: 100 });
  });

  test('weighted-round-robin follows weights 5,1,1 exactly', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const f = await fulcrum(poolYaml(bs, 'weighted-round-robin', '', [5, 1, 1]));
    expect(await distribution(f.url(), 140)).toEqual({ a: 100, b: 20, c: 20 });
  });

  test('least-connections prefers the idle backend and spreads sequential load', async () => {
    const bs = await backends(['a', 'b']);
    const f = await fulcrum(poolYaml(bs, 'least-connections'));
    const counts = await distribution(f.url(), 100);
    // Sequential requests leave both at 0 in flight: ties go in turn.
    expect(counts).toEqual({ a: 50, b: 50 });
  });

  test('least-connections avoids a backend holding a slow request', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => { release = r; });
    const [slow] = await backends(['slow'], () => (req, res) => {
      req.resume();
      if (req.url === '/hold') void held.then(() => res.end('slow'));
      else res.writeHead(200, { 'x-backend': 'slow' }).end('slow');
    });
    const [fast] = await backends(['fast']);
    const f = await fulcrum(poolYaml([slow, fast], 'least-connections'));
    const slowBackend = f.fulcrum.pools.get('p')!.get('slow')!;
    // Ties go in turn, so a /hold lands on `slow` within two tries (`fast` answers it at once).
    const parked: Promise<unknown>[] = [];
    for (let i = 0; i < 4 && slowBackend.inFlight === 0; i++) {
      const r = request(`${f.url()}/hold`);
      parked.push(r);
      let done = false;
      void r.then(() => { done = true; });
      await waitFor(() => done || slowBackend.inFlight === 1, 3000, 'the hold to land');
    }
    expect(slowBackend.inFlight).toBe(1);
    expect(await distribution(f.url(), 20)).toEqual({ fast: 20 });
    release();
    await Promise.all(parked);
  });

  test('random covers every backend, roughly evenly', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const f = await fulcrum(poolYaml(bs, 'random'));
    const counts = await distribution(f.url(), 600);
    for (const b of ['a', 'b', 'c']) expect(counts[b]).toBeGreaterThan(120);
  });

  test('random follows weights when they differ', async () => {
    const bs = await backends(['a', 'b']);
    const f = await fulcrum(poolYaml(bs, 'random', '', [4, 1]));
    const counts = await distribution(f.url(), 500);
    expect(counts.a / 500).toBeGreaterThan(0.7);
    expect(counts.a / 500).toBeLessThan(0.9);
  });

  test('power-of-two covers every backend', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const f = await fulcrum(poolYaml(bs, 'power-of-two'));
    const counts = await distribution(f.url(), 300);
    for (const b of ['a', 'b', 'c']) expect(counts[b]).toBeGreaterThan(30);
  });

  test('ewma shifts load away from a slow backend', async () => {
    const [slow] = await backends(['slow'], () => (req, res) => {
      req.resume();
      setTimeout(() => res.writeHead(200, { 'x-backend': 'slow' }).end('slow'), 30);
    });
    const [fast] = await backends(['fast']);
    const f = await fulcrum(poolYaml([slow, fast], 'ewma'));
    const counts = await distribution(f.url(), 60);
    expect(counts.fast).toBeGreaterThan(50);
  });

  test('consistent-hash on a header: same key, same backend; keys spread', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const f = await fulcrum(poolYaml(bs, 'consistent-hash', '    hashOn: header:x-user'));
    const byKey = new Map<string, string>();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let round = 0; round < 2; round++) {
        for (let k = 0; k < 60; k++) {
          const r = await request(`${f.url()}/`, { agent, headers: { 'x-user': `user-${k}` } });
          const b = String(r.headers['x-backend']);
          if (round === 0) byKey.set(`user-${k}`, b);
          else expect(b).toBe(byKey.get(`user-${k}`));
        }
      }
    } finally {
      agent.destroy();
    }
    expect(new Set(byKey.values()).size).toBe(3);
  });

  test('sticky cookie pins a client to the backend that first answered it', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const f = await fulcrum(poolYaml(bs, 'round-robin', '    sticky: { cookie: FULCRUM_STICKY }'));
    const first = await request(`${f.url()}/`);
    const cookie = String(first.headers['set-cookie']?.[0]).split(';')[0];
    expect(cookie).toMatch(/^FULCRUM_STICKY=[\w-]+$/);
    expect(cookie).not.toContain('127.0.0.1');
    for (let i = 0; i < 6; i++) {
      const r = await request(`${f.url()}/`, { headers: { cookie } });
      expect(r.headers['x-backend']).toBe(first.headers['x-backend']);
      expect(r.headers['set-cookie']).toBeUndefined();
    }
  });
});

describe('sticky tokens are keyed (units finding: a plain hash of the names gave the address away)', () => {
  const cookieOf = (r: { headers: http.IncomingHttpHeaders }) => String(r.headers['set-cookie']?.[0]).split(';')[0];

  test('replicas with the same sticky.secret honour each other\'s cookies; without one, each Fulcrum has its own key', async () => {
    const bs = await backends(['a', 'b', 'c']);
    const shared = '    sticky: { cookie: FULCRUM_STICKY, secret: "${SECRET}" }';
    const env = { SECRET: 'replicas-share-this-secret' };
    const one = await startFulcrum(poolYaml(bs, 'round-robin', shared), env);
    const two = await startFulcrum(poolYaml(bs, 'round-robin', shared), env);
    cleanups.push(() => one.stop(), () => two.stop());
    for (let i = 0; i < 3; i++) {
      const first = await request(`${one.url()}/`);
      const there = await request(`${two.url()}/`, { headers: { cookie: cookieOf(first) } });
      expect(there.headers['x-backend']).toBe(first.headers['x-backend']);
      expect(there.headers['set-cookie']).toBeUndefined();
    }
    const own = [await fulcrum(poolYaml(bs, 'round-robin', '    sticky: { cookie: FULCRUM_STICKY }')), await fulcrum(poolYaml(bs, 'round-robin', '    sticky: { cookie: FULCRUM_STICKY }'))];
    const tokens = await Promise.all(own.map(async (f) => cookieOf(await request(`${f.url()}/`))));
    expect(tokens[0]).not.toBe(tokens[1]);
  });
});

describe('routing', () => {
  test('by host and by path prefix, first match wins, stripPrefix, 404', async () => {
    const [api, web, v2] = await backends(['api', 'web', 'v2'], (name) => (req, res) => {
      res.writeHead(200, { 'x-backend': name }).end(`${name} ${req.url}`);
    });
    const f = await fulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - match: { host: api.example.com, pathPrefix: /v1/ }
        pool: api
        stripPrefix: true
      - match: { pathPrefix: /v2/ }
        pool: v2
      - match: { host: www.example.com }
        pool: web
pools:
  api: { backends: [ { url: ${api.url} } ] }
  web: { backends: [ { url: ${web.url} } ] }
  v2: { backends: [ { url: ${v2.url} } ] }
`);
    const get = (host: string, path: string) => request(`${f.url()}${path}`, { headers: { host } });
    expect((await get('api.example.com', '/v1/users?id=3')).body).toBe('api /users?id=3');
    expect((await get('API.example.com:8080', '/v1/x')).body).toBe('api /x');
    expect((await get('api.example.com', '/v2/a')).body).toBe('v2 /v2/a');
    expect((await get('www.example.com', '/v1/users')).body).toBe('web /v1/users');
    expect((await get('other.example.com', '/v2/z')).body).toBe('v2 /v2/z');
    const miss = await get('other.example.com', '/v1/users');
    expect(miss.status).toBe(404);
    expect(miss.body).toMatch(/^not found: .+\n$/);
    expect(f.records.at(-1)).toMatchObject({ status: 404, backend: '' });
  });
});

describe('what a request gets', () => {
  test('hop-by-hop headers and Connection-named headers are not forwarded; X-Forwarded-* set', async () => {
    const [b] = await backends(['b']);
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    // Raw socket: node:http clients refuse to send some of these.
    const reply = await new Promise<string>((resolve, reject) => {
      const port = Number(new URL(f.url()).port);
      const s = net.connect(port, '127.0.0.1', () => {
        s.write([
          'GET /h HTTP/1.1',
          'Host: shop.example',
          'Connection: keep-alive, X-Custom-Hop',
          'Keep-Alive: timeout=5',
          'Proxy-Connection: keep-alive',
          'TE: trailers',
          'Trailer: X-T',
          'X-Custom-Hop: secret',
          'X-Forwarded-For: 203.0.113.7',
          'X-Forwarded-Proto: https',
          'X-Forwarded-Host: evil.example',
          'X-Request-Id: req-42',
          'X-End-To-End: yes',
          '', ''].join('\r\n'));
      });
      let data = '';
      s.on('data', (c) => {
        data += c.toString();
        if (data.endsWith('\r\n0\r\n\r\n')) { s.destroy(); resolve(data); } // end of the chunked body
      });
      s.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1.1 200/);
    const h = b.seen[0].headers;
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'x-custom-hop', 'upgrade', 'transfer-encoding']) {
      if (name === 'connection') expect(h.connection === undefined || h.connection === 'keep-alive').toBe(true);
      else expect(h[name]).toBeUndefined();
    }
    expect(b.seen[0].rawHeaders.filter((x) => /x-custom-hop|proxy-connection|^te$|trailer/i.test(x))).toEqual([]);
    expect(h['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe('shop.example');
    expect(h.host).toBe('shop.example');
    expect(h['x-request-id']).toBe('req-42');
    expect(h['x-end-to-end']).toBe('yes');
  });

  test('a chunked body arrives whole, re-framed by Fulcrum; an Upgrade other than WebSocket is refused', async () => {
    const [b] = await backends(['b'], () => (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.end(Buffer.concat(chunks)));
    });
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    const post = (headers: Record<string, string>) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${f.url()}/up`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked', ...headers } });
      req.on('response', (res) => {
        let s = '';
        res.on('data', (c) => { s += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body: s }));
      });
      req.on('upgrade', () => reject(new Error('unexpected upgrade')));
      req.on('error', reject);
      req.write('hello ');
      req.end('world');
    });
    expect(await post({})).toEqual({ status: 200, body: 'hello world' });
    // Exactly one framing header goes upstream, and it matches the body.
    const h = b.seen[0].headers;
    expect([h['transfer-encoding'], h['content-length']].filter((x) => x !== undefined)).toEqual(
      h['transfer-encoding'] !== undefined ? ['chunked'] : ['11']);
    expect(await post({ upgrade: 'foo/1', connection: 'upgrade' })).toEqual({ status: 400, body: 'only WebSocket upgrades are supported\n' });
    expect(b.seen.length).toBe(1);
  });

  test('a generated X-Request-Id reaches the backend and the access record', async () => {
    const [b] = await backends(['b']);
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    await request(`${f.url()}/`);
    const id = b.seen[0].headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(f.records[0].requestId).toBe(id);
  });

  test('a 5 MB POST arrives byte-identical', async () => {
    const payload = randomBytes(5 * 1024 * 1024);
    const [b] = await backends(['b'], () => (req, res) => {
      const hash = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => { hash.update(c); n += c.length; });
      req.on('end', () => res.end(JSON.stringify({ n, sha: hash.digest('hex') })));
    });
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    const r = await request(`${f.url()}/upload`, { method: 'POST', body: payload, headers: { 'content-type': 'application/octet-stream' } });
    expect(JSON.parse(r.body)).toEqual({ n: payload.length, sha: createHash('sha256').update(payload).digest('hex') });
  });

  test('a 5 MB download arrives byte-identical', async () => {
    const payload = randomBytes(5 * 1024 * 1024);
    const [b] = await backends(['b'], () => (req, res) => { req.resume(); res.end(payload); });
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    const got = await new Promise<Buffer>((resolve, reject) => {
      http.get(`${f.url()}/file`, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      }).on('error', reject);
    });
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(f.records[0].bytes).toBe(payload.length);
  });

  test('100 concurrent requests all succeed', async () => {
    const bs = await backends(['a', 'b', 'c'], (name) => (req, res) => {
      req.resume();
      setTimeout(() => res.writeHead(200, { 'x-backend': name }).end(name), 5);
    });
    const f = await fulcrum(poolYaml(bs, 'round-robin'));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => request(`${f.url()}/c${i}`, { agent })));
    agent.destroy();
    expect(replies.every((r) => r.status === 200)).toBe(true);
    expect(bs.reduce((n, b) => n + b.seen.length, 0)).toBe(100);
  });

  test('server-sent events reach the client as they are written', async () => {
    let finish: () => void = () => undefined;
    const [b] = await backends(['sse'], () => (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      finish = () => res.end('data: last\n\n');
    });
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      http.get(`${f.url()}/events`, { agent: false }, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          events.push(c);
          // The first event arrived while the backend still holds the response open.
          if (events.length === 1) {
            expect(c).toBe('data: first\n\n');
            finish();
          }
        });
        res.on('end', resolve);
      }).on('error', reject);
    });
    expect(events.join('')).toBe('data: first\n\ndata: last\n\n');
  });
});

describe('failures', () => {
  test('a refused connection with no retries is a 502 with a one-line body', async () => {
    const dead = await startBackend('dead');
    await dead.close();
    const f = await fulcrum(poolYaml([dead], 'round-robin', '    retries: { attempts: 0 }'));
    const r = await request(`${f.url()}/`);
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/^bad gateway: [^\n]+\n$/);
    expect(f.fulcrum.pools.get('p')!.get('dead')!.failures).toBe(1);
  });

  test('a connect failure is retried on another backend', async () => {
    const dead = await startBackend('dead');
    await dead.close();
    const [live] = await backends(['live']);
    const f = await fulcrum(poolYaml([dead, live], 'round-robin', '    retries: { attempts: 1, on: [connect-failure] }'));
    for (let i = 0; i < 4; i++) {
      const r = await request(`${f.url()}/`);
      expect(r.status).toBe(200);
      expect(r.body).toBe('live');
    }
  });

  test('a slow backend is a 504 after timeouts.response', async () => {
    const [slow] = await backends(['slow'], () => (req) => { req.resume(); });
    const f = await fulcrum(poolYaml([slow], 'round-robin', '    retries: { attempts: 0 }\n    timeouts: { response: 200ms }'));
    const r = await request(`${f.url()}/`);
    expect(r.status).toBe(504);
    expect(r.body).toMatch(/^gateway timeout/);
  });

  test('a client that hangs up cancels the upstream request and is not a backend failure', async () => {
    let upstreamClosed = false;
    const [b] = await backends(['b'], () => (req, res) => {
      req.resume();
      res.on('close', () => { upstreamClosed = true; });
    });
    const f = await fulcrum(poolYaml([b], 'round-robin'));
    const req = http.get(`${f.url()}/hang`, { agent: false });
    req.on('error', () => undefined);
    await waitFor(() => b.seen.length === 1, 5000, 'backend to receive the request');
    req.destroy();
    await waitFor(() => upstreamClosed, 5000, 'upstream request to be cancelled');
    await waitFor(() => f.records.length === 1, 5000, 'the request record');
    const backend = f.fulcrum.pools.get('p')!.get('b')!;
    expect(backend.failures).toBe(0);
    expect(backend.inFlight).toBe(0);
    expect(f.records[0].status).toBe(499);
  });

  test('a POST is never retried once its body was sent', async () => {
    let hits = 0;
    const reset = await startBackend('reset', (req) => {
      hits++;
      req.resume();
      req.on('end', () => req.socket.destroy());
    });
    cleanups.push(() => reset.close());
    const [other] = await backends(['other']);
    const f = await fulcrum(poolYaml([reset, other], 'round-robin', '    retries: { attempts: 2, on: [connect-failure, reset, 502] }'));
    // Round-robin sends one of the two POSTs to each backend.
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await request(`${f.url()}/pay`, { method: 'POST', body: 'x'.repeat(1000) })).status);
    expect(statuses.sort()).toEqual([200, 502]);
    expect(hits).toBe(1);
    expect(other.seen.length).toBe(1);
  });
});
