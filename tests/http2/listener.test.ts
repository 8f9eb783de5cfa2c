/**
 * Listeners for HTTP/2 clients (SPEC 9.2): `http2: true` without `tls`
 * serves HTTP/1.1 and cleartext HTTP/2 with prior knowledge on one port, and
 * HTTP/2 listeners apply headersTimeout, bodyTimeout, maxBodySize,
 * maxConnections and rateLimit (per stream where it is per request).
 */
import http2 from 'node:http2';
import net from 'node:net';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { startBackend } from '../helpers/backends';
import { waitFor } from '../helpers/wait';

jest.setTimeout(20_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(limits = ''): Promise<{ f: RunningFulcrum; port: number; address: string }> {
  const b = await startBackend('b1', (req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => { n += d.length; });
    req.on('end', () => res.writeHead(200, { 'x-backend': 'b1' }).end(`b1 ${req.httpVersion} ${n}`));
  });
  cleanups.push(() => b.close());
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c:
    listen: 127.0.0.1:0
    http2: true
    limits: { headersTimeout: 500ms, bodyTimeout: 500ms${limits} }
    routes: [{ pool: web }]
pools:
  web: { backends: [{ url: ${b.url} }] }
`);
  cleanups.push(() => f.stop());
  const address = f.fulcrum.address('h2c');
  return { f, address, port: Number(address.split(':')[1]) };
}

function session(address: string): http2.ClientHttp2Session {
  const s = http2.connect(`http://${address}`);
  s.on('error', () => undefined);
  cleanups.push(() => s.destroy());
  return s;
}

function call(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | null): Promise<{ status: number; body: string; headers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const st = s.request({ ':path': '/', ...headers }, { endStream: body === undefined });
    let status = 0;
    let out = '';
    let h: http2.IncomingHttpHeaders = {};
    st.on('response', (x) => {
      h = x;
      status = Number(x[':status']);
    });
    st.setEncoding('utf8');
    st.on('data', (d: string) => { out += d; });
    st.on('end', () => resolve({ status, body: out, headers: h }));
    st.on('error', reject);
    if (body !== undefined && body !== null) st.end(body);
  });
}

test('HTTP/1.1 and HTTP/2 with prior knowledge on one port', async () => {
  const { f, address } = await setup();
  const h1 = await request(`http://${address}/`);
  expect(h1.body).toBe('b1 1.1 0');
  const s = session(address);
  const h2 = await call(s, { ':method': 'POST' }, Buffer.alloc(200_000, 1));
  expect(h2.status).toBe(200);
  expect(h2.body).toBe('b1 1.1 200000');
  // Many streams on one connection.
  const many = await Promise.all(Array.from({ length: 20 }, () => call(s, {})));
  expect(many.every((r) => r.status === 200)).toBe(true);
  // Bytes that only start like the preface are HTTP/1.1 (and get its 400 or 505).
  const odd = await rawReply(Number(address.split(':')[1]), 'PRI * HTTP/1.1\r\nHost: x\r\n\r\n');
  expect(odd).toMatch(/^HTTP\/1\.1 (400|501|505) /);
  expect(f.records.length).toBeGreaterThanOrEqual(22);
});

function rawReply(port: number, bytes: string, hold = false): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let data = '';
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('error', () => undefined);
    s.on('close', () => resolve(data));
    if (!hold) setTimeout(() => s.end(), 1000).unref();
  });
}

test('headersTimeout: a connection that sends half a preface, or a session that opens no stream, is closed', async () => {
  const { port, address } = await setup();
  const started = Date.now();
  await rawReply(port, 'PRI * HTTP/2.0\r\n', true);
  expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  const s = http2.connect(`http://${address}`);
  s.on('error', () => undefined);
  cleanups.push(() => s.destroy());
  await new Promise((resolve) => s.on('close', resolve));
  expect(Date.now() - started).toBeLessThan(10_000);
});

test('bodyTimeout per stream: a stalled upload gets 408, the other streams of its connection go on', async () => {
  const { f, address } = await setup();
  const s = session(address);
  const stalled = s.request({ ':path': '/', ':method': 'POST' });
  stalled.write(Buffer.alloc(1000));
  const answer = new Promise<number>((resolve) => stalled.on('response', (h) => resolve(Number(h[':status']))));
  stalled.on('error', () => undefined);
  stalled.resume();
  const other = await call(s, {});
  expect(other.status).toBe(200);
  expect(await answer).toBe(408);
  const after = await call(s, {});
  expect(after.status).toBe(200);
  await waitFor(() => f.records.some((r) => r.status === 408), 5000, 'the 408 recorded');
});

test('maxBodySize per stream: 413 for a declared length over it and for a body that grows past it', async () => {
  const { address } = await setup(', maxBodySize: 1kb');
  const s = session(address);
  const declared = await call(s, { ':method': 'POST', 'content-length': '5000' }, Buffer.alloc(5000));
  expect(declared.status).toBe(413);
  const grown = await call(session(address), { ':method': 'POST' }, Buffer.alloc(5000));
  expect(grown.status).toBe(413);
  const small = await call(session(address), { ':method': 'POST' }, Buffer.alloc(500));
  expect(small.body).toBe('b1 1.1 500');
});

test('rateLimit per stream, maxConnections per connection', async () => {
  const { address, port } = await setup(', maxConnections: 1, rateLimit: { requestsPerSecond: 0.001, burst: 3 }');
  const s = session(address);
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await call(s, {})).status);
  expect(statuses).toEqual([200, 200, 200, 429, 429]);
  // The one connection allowed is taken: a second is closed at once.
  const second = await rawReply(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', true);
  expect(second).toBe('');
});
