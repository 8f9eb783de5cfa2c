/**
 * Pools with `protocol: http2` (SPEC 9.1): real node:http2 backends, HTTP/1.1
 * and HTTP/2 clients; streams share sessions, the backend's stream limit
 * opens another, maxConnectionsPerBackend counts streams, and resets,
 * refused streams and GOAWAY go through the one failure table.
 */
import http from 'node:http';
import http2, { type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { startH2Backend, type H2Backend } from '../helpers/backends';
import { backendsOf } from '../helpers/admin';
import { waitFor } from '../helpers/wait';
import { makePki } from '../helpers/tls';
import { readFileSync } from 'node:fs';

jest.setTimeout(30_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A node:http2 backend (tests/helpers/backends.ts), closed after the test. */
async function h2Backend(onStream: Parameters<typeof startH2Backend>[0], settings: http2.Settings = {}): Promise<H2Backend> {
  const b = await startH2Backend(onStream, settings);
  cleanups.push(() => b.close());
  return b;
}

function answer(name: string) {
  return (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-backend': name });
      stream.end(`${name} ${headers[':method']} ${headers[':path']}`);
    });
  };
}

async function fulcrum(pool: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  public: { listen: 127.0.0.1:0, routes: [{ pool: p }] }
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ pool: p }] }
pools:
  p:
    protocol: http2
${pool}
`);
  cleanups.push(() => f.stop());
  return f;
}

function h2Get(address: string, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string; headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({ ':path': path, ...headers });
    let status = 0;
    let h: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (x) => {
      h = x;
      status = Number(x[':status']);
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => { body += d; });
    stream.on('end', () => {
      session.close();
      resolve({ status, body, headers: h, trailers });
    });
    stream.on('error', reject);
  });
}

test('HTTP/1.1 and HTTP/2 clients both reach an http2 pool; te: trailers is the one TE passed on; trailers reach HTTP/2 clients', async () => {
  const b = await h2Backend((stream, headers) => {
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'x-backend': 'b1' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end(`${headers[':method']} ${headers[':path']} ${headers[':authority']}`);
    });
  });
  const f = await fulcrum(`    backends: [{ url: ${b.url}, name: b1 }]`);

  const h1 = await request(`${f.url('public')}/a?b=1`, { headers: { host: 'site.test', te: 'trailers, deflate', connection: 'te' } });
  expect(h1.status).toBe(200);
  expect(h1.body).toBe('GET /a?b=1 site.test');
  expect(b.seen[0]!.te).toBe('trailers');
  expect(b.seen[0]!['x-forwarded-proto']).toBe('http');
  expect(b.seen[0]!.host).toBeUndefined();

  const post = await request(`${f.url('public')}/up`, { method: 'POST', body: 'x'.repeat(100_000) });
  expect(post.body).toBe('POST /up 127.0.0.1:' + f.fulcrum.address('public').split(':')[1]);

  const h2 = await h2Get(f.fulcrum.address('h2c'), '/two', { te: 'trailers' });
  expect(h2.status).toBe(200);
  expect(h2.body).toBe(`GET /two ${f.fulcrum.address('h2c')}`);
  expect(h2.trailers['x-checksum']).toBe('abc');
  // Any other TE is not passed on.
  await request(`${f.url('public')}/three`, { headers: { te: 'gzip', connection: 'te' } });
  expect(b.seen[3]!.te).toBeUndefined();
});

test('100 concurrent requests share one session; the backend’s stream limit opens another', async () => {
  const held: (() => void)[] = [];
  const hold = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.resume();
    const go = () => {
      if (!stream.destroyed) stream.respond({ ':status': 200 });
      if (!stream.destroyed) stream.end(String(headers[':path']));
    };
    if (headers[':path'] === '/warm') go();
    else held.push(go);
  };
  const wide = await h2Backend(hold);
  const narrow = await h2Backend(hold, { maxConcurrentStreams: 10 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
  cleanups.push(() => agent.destroy());
  for (const [b, expected] of [[wide, 1], [narrow, 10]] as const) {
    held.length = 0;
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    // The first request learns the backend's SETTINGS.
    expect((await request(`${f.url('public')}/warm`, { agent })).status).toBe(200);
    const all = Array.from({ length: 100 }, (_, i) => request(`${f.url('public')}/r${i}`, { agent }));
    await waitFor(() => held.length === 100, 10_000, '100 requests at the backend');
    for (const go of held) go();
    const replies = await Promise.all(all);
    expect(replies.every((r, i) => r.status === 200 && r.body === `/r${i}`)).toBe(true);
    expect(b.sessions).toBe(expected);
    expect(b.peak).toBe(100);
  }
});

test('maxConnectionsPerBackend counts streams in flight', async () => {
  const held: (() => void)[] = [];
  const b = await h2Backend((stream) => {
    stream.resume();
    held.push(() => {
      if (!stream.destroyed) stream.respond({ ':status': 200 });
      if (!stream.destroyed) stream.end('ok');
    });
  });
  const f = await fulcrum(`    backends: [{ url: ${b.url} }]\n    maxConnectionsPerBackend: 5`);
  const all = Array.from({ length: 8 }, () => request(`${f.url('public')}/`));
  await waitFor(() => f.records.length === 3, 10_000, 'three refused');
  expect(held).toHaveLength(5);
  expect(f.records.every((r) => r.status === 503)).toBe(true);
  for (const go of held) go();
  const statuses = (await Promise.all(all)).map((r) => r.status).sort();
  expect(statuses).toEqual([200, 200, 200, 200, 200, 503, 503, 503]);
  expect(b.sessions).toBe(1);
});

describe('failures go through the failure table', () => {
  test('a refused stream is sent to another backend; a reset is a 502 that counts for outlier detection', async () => {
    const refusing = await h2Backend((stream) => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    const good = await h2Backend(answer('good'));
    const f = await fulcrum(`    backends: [{ url: ${refusing.url}, name: refusing }, { url: ${good.url}, name: good }]
    retries: { attempts: 1, on: [connect-failure] }`);
    for (let i = 0; i < 4; i++) {
      const r = await request(`${f.url('public')}/x`);
      expect(r.status).toBe(200);
      expect(r.headers['x-backend']).toBe('good');
    }
    expect(refusing.seen.length).toBeGreaterThan(0);

    const resetting = await h2Backend((stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    const g = await fulcrum(`    backends: [{ url: ${resetting.url}, name: resetting }]
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 30s, maxEjectionPercent: 100 }`);
    const r1 = await request(`${g.url('public')}/x`);
    expect(r1.status).toBe(502);
    expect(r1.body).toBe('bad gateway: the backend reset the stream\n');
    await request(`${g.url('public')}/x`);
    await waitFor(async () => (await backendsOf(g.adminUrl, 'p')).resetting!.state === 'ejected', 5000, 'ejected after two resets');
    const failures = await (await fetch(`${g.adminUrl}/metrics`)).text();
    expect(failures).toMatch(/fulcrum_backend_failures_total\{pool="p",backend="resetting",kind="reset"\} 2/);
  });

  test('GOAWAY: the stream in flight finishes, the next requests go on a new session', async () => {
    let goaway = true;
    const draining = await h2Backend((stream, headers) => {
      if (goaway) {
        goaway = false;
        // A graceful shutdown: no new streams on this session, the one in flight is answered.
        stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR);
      }
      answer('draining')(stream, headers);
    });
    const f = await fulcrum(`    backends: [{ url: ${draining.url}, name: draining }]`);
    const first = await request(`${f.url('public')}/1`);
    expect(first.status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await request(`${f.url('public')}/n${i}`)).status).toBe(200);
    expect(draining.sessions).toBe(2);
  });

  test('a backend that is not listening: 502, and the next backend with a retry', async () => {
    const good = await h2Backend(answer('good'));
    const gone = await h2Backend(answer('gone'));
    await new Promise<void>((resolve) => gone.server.close(() => resolve()));
    const f = await fulcrum(`    backends: [{ url: ${gone.url}, name: gone }, { url: ${good.url}, name: good }]
    retries: { attempts: 0 }`);
    const replies = [await request(`${f.url('public')}/a`), await request(`${f.url('public')}/b`)];
    expect(replies.map((r) => r.status).sort()).toEqual([200, 502]);
    expect(replies.find((r) => r.status === 502)!.body).toBe('bad gateway: could not connect to the backend\n');
  });
});

test('https:// backends: TLS with ALPN h2, verified against the pool\'s tls.ca, with the client certificate; a path check over it', async () => {
  const pki = makePki();
  const alpn: (string | false | null)[] = [];
  const clientNames: string[] = [];
  const server = http2.createSecureServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.ca), requestCert: true });
  server.on('session', (s) => {
    s.on('error', () => undefined);
    const socket = s.socket as import('node:tls').TLSSocket;
    alpn.push(socket.alpnProtocol);
    clientNames.push(String((socket.getPeerCertificate() as { subject?: { CN?: string } }).subject?.CN));
  });
  server.on('stream', (stream, headers) => answer('tls')(stream, headers));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const f = await fulcrum(`    backends: [{ url: ${url}, name: tls }]
    tls: { ca: ${pki.ca}, cert: ${pki.clientCert}, key: ${pki.clientKey}, serverName: api.internal }
    healthCheck: { path: /health, interval: 200ms, rise: 1, fall: 1 }`);
  const r = await request(`${f.url('public')}/secure`);
  expect(r.status).toBe(200);
  expect(r.body).toBe(`tls GET /secure`);
  await waitFor(() => alpn.length >= 2, 5000, 'a probe and a request');
  expect(new Set(alpn)).toEqual(new Set(['h2']));
  expect(new Set(clientNames)).toEqual(new Set(['fulcrum-client']));
  expect((await backendsOf(f.adminUrl, 'p')).tls!.state).toBe('up');
  // A CA that did not sign the backend's certificate: the handshake fails, a connect failure.
  const g = await fulcrum(`    backends: [{ url: ${url}, name: tls }]
    tls: { ca: ${pki.wrongCa}, serverName: api.internal }
    retries: { attempts: 0 }`);
  const bad = await request(`${g.url('public')}/secure`);
  expect(bad.status).toBe(502);
});

test('WebSocket upgrades to an http2 pool are refused with 501; an http1 pool still proxies them', async () => {
  const b = await h2Backend(answer('b1'));
  const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
  const net = await import('node:net');
  const port = Number(f.fulcrum.address('public').split(':')[1]);
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    let data = '';
    s.on('data', (d) => { data += d; });
    s.on('close', () => resolve(data));
  });
  expect(reply).toMatch(/^HTTP\/1\.1 501 /);
});
