/**
 * HTTP/2 clients' streams are served straight off node:http2's core API
 * (src/http2/stream.ts), not its compatibility layer: what that layer did
 * for us must still happen. HEAD and 204 answers carry no body, Expect is
 * answered (100 Continue, or 417), trailers reach a client that asked for
 * them or whose response announced them, and a TLS listener's HTTP/2 and
 * HTTP/1.1 clients are both served.
 */
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startFulcrum } from '../helpers/fulcrum';
import { startBackend } from '../helpers/backends';
import https from 'node:https';
import { rmSync } from 'node:fs';
import { selfSigned } from '../helpers/tls';

jest.setTimeout(20_000);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders | undefined;
  /** Informational (1xx) heads before the answer. */
  informational: number[];
}

function session(url: string, options: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
  const s = http2.connect(url, options);
  s.on('error', () => undefined);
  cleanups.push(() => s.destroy());
  return s;
}

function call(s: http2.ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const st = s.request({ ':path': '/', ...headers }, { endStream: body === undefined });
    const a: Answer = { status: 0, headers: {}, body: '', trailers: undefined, informational: [] };
    st.on('headers', (h) => a.informational.push(Number(h[':status'])));
    st.on('response', (h) => {
      a.headers = h;
      a.status = Number(h[':status']);
    });
    st.on('trailers', (t) => { a.trailers = t; });
    st.setEncoding('utf8');
    st.on('data', (d: string) => { a.body += d; });
    st.on('end', () => resolve(a));
    st.on('error', reject);
    if (body !== undefined) {
      // Sent only once the 100 Continue is in, as a client that waits for it would.
      if (headers.expect === undefined) st.end(body);
      else st.once('continue', () => st.end(body));
    }
  });
}

async function h1Fulcrum(): Promise<string> {
  const b = await startBackend('b1', (req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => { n += d.length; });
    req.on('end', () => {
      if (req.url === '/empty') {
        res.writeHead(204, { 'x-backend': 'b1' }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(`b1 ${n}`.length), connection: 'keep-alive' }).end(`b1 ${n}`);
    });
  });
  cleanups.push(() => b.close());
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ pool: web }] }
pools:
  web: { backends: [{ url: ${b.url} }] }
`);
  cleanups.push(() => f.stop());
  return `http://${f.fulcrum.address('h2c')}`;
}

test('HEAD and 204 answers end with their headers; a GET gets its body and no connection-specific header', async () => {
  const s = session(await h1Fulcrum());
  const head = await call(s, { ':method': 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.body).toBe('');
  expect(head.headers['content-length']).toBe('4');
  const empty = await call(s, { ':path': '/empty' });
  expect(empty.status).toBe(204);
  expect(empty.body).toBe('');
  expect(empty.headers['x-backend']).toBe('b1');
  const get = await call(s, {});
  expect(get.status).toBe(200);
  expect(get.body).toBe('b1 0');
  expect(get.headers.connection).toBeUndefined();
});

test('Expect: 100-continue gets a 100 before the body is forwarded; any other expectation gets 417', async () => {
  const s = session(await h1Fulcrum());
  const ok = await call(s, { ':method': 'POST', expect: '100-continue' }, 'hello');
  expect(ok.informational).toEqual([100]);
  expect(ok.status).toBe(200);
  expect(ok.body).toBe('b1 5');
  const refused = await call(s, { ':method': 'POST', expect: 'x-magic' }, 'hello');
  expect(refused.status).toBe(417);
});

test('an HTTP/2 backend\'s trailers reach a client that sent TE: trailers, or whose response announced them', async () => {
  const backend = http2.createServer();
  backend.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    stream.resume();
    const announce = headers[':path'] === '/announced';
    stream.respond({ ':status': 200, 'content-type': 'text/plain', ...(announce ? { trailer: 'x-checksum' } : {}) }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
    stream.end('payload');
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => backend.close(() => resolve())));
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ pool: h2 }] }
pools:
  h2: { protocol: http2, backends: [{ url: http://127.0.0.1:${(backend.address() as AddressInfo).port} }] }
`);
  cleanups.push(() => f.stop());
  const s = session(`http://${f.fulcrum.address('h2c')}`);
  const asked = await call(s, { te: 'trailers' });
  expect(asked.body).toBe('payload');
  expect(asked.trailers?.['x-checksum']).toBe('abc123');
  const announced = await call(s, { ':path': '/announced' });
  expect(announced.body).toBe('payload');
  expect(announced.trailers?.['x-checksum']).toBe('abc123');
  // Neither asked for nor announced: the body arrives whole, the trailers are dropped (RFC 9110 §6.5.1).
  const plain = await call(s, {});
  expect(plain.body).toBe('payload');
  expect(plain.trailers).toBeUndefined();
});

test('a TLS listener with http2 serves HTTP/2 streams and HTTP/1.1 requests (ALPN) on one port', async () => {
  const b = await startBackend('b1');
  cleanups.push(() => b.close());
  const cert = selfSigned();
  cleanups.push(() => rmSync(cert.dir, { recursive: true, force: true }));
  const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  tls:
    listen: 127.0.0.1:0
    http2: true
    tls: { cert: ${cert.cert}, key: ${cert.key} }
    routes: [{ pool: web }]
pools:
  web: { backends: [{ url: ${b.url} }] }
`);
  cleanups.push(() => f.stop());
  const address = f.fulcrum.address('tls');
  const s = session(`https://${address}`, { ca: cert.certPem, servername: 'localhost' });
  const answers = await Promise.all([call(s, {}), call(s, { ':path': '/two' }), call(s, { ':method': 'HEAD' })]);
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
  expect(answers[2]!.body).toBe('');
  const h1 = await new Promise<{ status: number; version: string }>((resolve, reject) => {
    https.get(`https://${address}/`, { ca: cert.certPem, servername: 'localhost', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, version: res.httpVersion }));
    }).on('error', reject);
  });
  expect(h1).toEqual({ status: 200, version: '1.1' });
});
