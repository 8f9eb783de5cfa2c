/**
 * A backend's trailers reach the client whatever protocol either side
 * speaks (src/proxy/trailers.ts): from an HTTP/2 backend (protocol: http2)
 * and from an HTTP/1.1 one (a chunked body's trailer section), to HTTP/1.1
 * clients as the trailer section of a chunked response (RFC 9112 §7.1.2,
 * read here byte by byte off a raw socket, and by node:http's client) and to
 * HTTP/2 clients as trailing HEADERS. Run on both HTTP/1.1 engines: our own
 * server and client (llhttp) and the FULCRUM_HTTP1=node fallback (node:http
 * listeners, undici to http:// backends).
 */
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { startFulcrumOn, type startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { rawExchange, type ParsedResponse } from '../helpers/raw';
import { useTeardown } from '../helpers/teardown';

jest.setTimeout(30_000);

const { cleanups, backend } = useTeardown();

type Engine = 'llhttp' | 'node';

/** An HTTP/2 backend: `respond` answers each stream. */
async function h2Backend(respond: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void): Promise<string> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    stream.resume();
    stream.on('end', () => respond(stream, headers));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const s of sessions) s.destroy();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** gRPC's shape: a body, then grpc-status and grpc-message (and one more field) as trailers. */
function withTrailers(body: string, extra: Record<string, string> = {}) {
  return (stream: ServerHttp2Stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', ...extra }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all%20good', 'x-checksum': 'abc123' }));
    stream.end(body);
  };
}

/** A raw HTTP/1.1 backend writing `response` (exact bytes) to every request. */
async function rawBackend(response: string): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    let seen = '';
    s.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      while (seen.includes('\r\n\r\n')) {
        seen = seen.slice(seen.indexOf('\r\n\r\n') + 4);
        s.write(response);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function fulcrum(start: typeof startFulcrum, pools: string): Promise<RunningFulcrum> {
  const f = await start(`
admin: { listen: 127.0.0.1:0 }
log: { access: false }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /h2/ }, pool: h2 }
      - { match: { pathPrefix: /zip/ }, pool: h1, compress: true }
      - { pool: h1 }
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ match: { pathPrefix: /h2/ }, pool: h2 }, { pool: h1 }] }
pools:
${pools}
`);
  cleanups.push(() => f.stop());
  return f;
}

function port(f: RunningFulcrum, listener = 'public'): number {
  return Number(f.fulcrum.address(listener).split(':').pop());
}

/** One request (or several, pipelined) on a raw connection; resolves with `count` responses. */
async function raw(f: RunningFulcrum, requests: string[], count = requests.length): Promise<{ data: string; responses: ParsedResponse[] }> {
  const r = await rawExchange(port(f), requests, { timeoutMs: 5000, done: (rs) => rs.length >= count });
  expect(r.timedOut).toBe(false);
  expect(r.responses.length).toBeGreaterThanOrEqual(count);
  return { data: r.data.toString('latin1'), responses: r.responses };
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

/** node:http's client: body and res.trailers. */
function nodeGet(f: RunningFulcrum, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ body: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    http.get(`${f.url('public')}${path}`, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ body, trailers: res.trailers }));
    }).on('error', reject);
  });
}

/** node:http2's client on the h2c listener: body and trailers. */
function h2Get(f: RunningFulcrum, path: string): Promise<{ status: number; body: string; trailers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${f.fulcrum.address('h2c')}`);
    session.on('error', reject);
    const stream = session.request({ ':path': path, te: 'trailers' });
    let status = 0;
    let body = '';
    let trailers: IncomingHttpHeaders = {};
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.on('trailers', (t) => { trailers = t; });
    stream.setEncoding('latin1');
    stream.on('data', (d: string) => { body += d; });
    stream.on('end', () => {
      session.close();
      resolve({ status, body, trailers });
    });
    stream.on('error', reject);
  });
}

const GRPC_TRAILERS: [string, string][] = [['grpc-status', '0'], ['grpc-message', 'all%20good'], ['x-checksum', 'abc123']];

describe.each<[Engine]>([['llhttp'], ['node']])('HTTP/1.1 engine %s', (engine) => {
  const start = startFulcrumOn(engine);

  test('the engine under test is the one asked for', async () => {
    const f = await fulcrum(start, `  h1: { backends: [{ url: ${(await backend('b')).url} }] }\n  h2: { protocol: http2, backends: [{ url: ${(await backend('c')).url} }] }`);
    const fallback = f.logs.some((l) => l.http1 === 'node');
    expect(fallback).toBe(engine === 'node');
  });

  describe('an HTTP/2 backend\'s trailers', () => {
    let f: RunningFulcrum;
    beforeEach(async () => {
      const url = await h2Backend((stream, headers) => {
        if (headers[':path'] === '/h2/sized') withTrailers('sized', { 'content-length': '5' })(stream);
        else withTrailers('hello trailers')(stream);
      });
      f = await fulcrum(start, `  h1: { backends: [{ url: ${url} }] }\n  h2: { protocol: http2, backends: [{ url: ${url} }] }`);
    });

    test('reach an HTTP/1.1 client as the trailer section of the chunked response, with TE: trailers or without', async () => {
      for (const te of ['TE: trailers\r\nConnection: TE\r\n', '']) {
        const { data, responses } = await raw(f, [get('/h2/x', te)]);
        const [r] = responses;
        expect(r!.headers).toContainEqual(['transfer-encoding', 'chunked']);
        expect(r!.body.toString()).toBe('hello trailers');
        expect(r!.trailers).toEqual(GRPC_TRAILERS);
        // The bytes: the last chunk, the fields, the empty line (RFC 9112 §7.1.2), and nothing after.
        expect(data.endsWith('\r\n0\r\ngrpc-status: 0\r\ngrpc-message: all%20good\r\nx-checksum: abc123\r\n\r\n')).toBe(true);
      }
      const n = await nodeGet(f, '/h2/x', { te: 'trailers' });
      expect(n.body).toBe('hello trailers');
      expect(n.trailers).toEqual({ 'grpc-status': '0', 'grpc-message': 'all%20good', 'x-checksum': 'abc123' });
    });

    test('keep-alive goes on after a trailer section: two pipelined requests, two whole answers', async () => {
      const { responses } = await raw(f, [get('/h2/one') + get('/h2/two')], 2);
      expect(responses.map((r) => [r.body.toString(), r.trailers])).toEqual([['hello trailers', GRPC_TRAILERS], ['hello trailers', GRPC_TRAILERS]]);
    });

    test('a response framed by Content-Length, or to HTTP/1.0, has no place for them: dropped, the framing intact', async () => {
      const sized = await raw(f, [get('/h2/sized') + get('/h2/x')], 2);
      expect(sized.responses[0]!.headers).toContainEqual(['content-length', '5']);
      expect(sized.responses[0]!.body.toString()).toBe('sized');
      expect(sized.responses[1]!.trailers).toEqual(GRPC_TRAILERS);
      const old = await rawExchange(port(f), ['GET /h2/x HTTP/1.0\r\nHost: t\r\n\r\n'], { timeoutMs: 5000 });
      expect(old.closedByPeer).toBe(true);
      expect(old.responses[0]!.body.toString()).toBe('hello trailers');
      expect(old.data.toString('latin1')).not.toContain('grpc-status');
    });

    test('reach an HTTP/2 client', async () => {
      const r = await h2Get(f, '/h2/x');
      expect(r.body).toBe('hello trailers');
      expect(r.trailers).toMatchObject({ 'grpc-status': '0', 'grpc-message': 'all%20good', 'x-checksum': 'abc123' });
    });
  });

  describe('an HTTP/1.1 backend\'s trailers (a chunked body\'s trailer section)', () => {
    let f: RunningFulcrum;
    beforeEach(async () => {
      // Hop-by-hop and framing fields have no place in trailers: they are not passed on.
      const url = await rawBackend('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n'
        + '6\r\nhello \r\n8\r\ntrailers\r\n0\r\nX-Checksum: abc123\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nX-Two: 1\r\nX-Two: 2\r\n\r\n');
      f = await fulcrum(start, `  h1: { backends: [{ url: ${url} }] }\n  h2: { protocol: http2, backends: [{ url: ${url} }] }`);
    });

    test('reach an HTTP/1.1 client, names lower-cased, repeated ones repeated', async () => {
      const { responses } = await raw(f, [get('/x') + get('/y')], 2);
      expect(responses).toHaveLength(2);
      for (const r of responses) {
        expect(r.body.toString()).toBe('hello trailers');
        expect(r.trailers).toEqual([['x-checksum', 'abc123'], ['x-two', '1'], ['x-two', '2']]);
      }
    });

    test('reach an HTTP/2 client', async () => {
      const r = await h2Get(f, '/x');
      expect(r.status).toBe(200);
      expect(r.body).toBe('hello trailers');
      expect(r.trailers).toMatchObject({ 'x-checksum': 'abc123', 'x-two': '1, 2' });
      expect(r.trailers['content-length']).toBeUndefined();
    });

    test('through compress: the compressed body ends with them', async () => {
      const { responses } = await raw(f, [get('/zip/x', 'Accept-Encoding: gzip\r\n')]);
      expect(responses[0]!.headers).toContainEqual(['content-encoding', 'gzip']);
      expect((await import('node:zlib')).gunzipSync(responses[0]!.body).toString()).toBe('hello trailers');
      expect(responses[0]!.trailers).toEqual([['x-checksum', 'abc123'], ['x-two', '1'], ['x-two', '2']]);
    });
  });
});

test('forwardableTrailers: hop-by-hop and framing fields, bad names and bad values are left out; names lower-cased', async () => {
  const { forwardableTrailers } = await import('../../src/proxy/trailers');
  expect(forwardableTrailers([
    'Grpc-Status', '0', 'Connection', 'x', 'Keep-Alive', '5', 'TE', 'trailers', 'Trailer', 'x', 'Transfer-Encoding', 'chunked',
    'Content-Length', '9', 'Host', 'h', 'Upgrade', 'x', 'Proxy-Connection', 'x',
    'bad name', '1', 'bad:name', '1', '', '1', 'x-ctl', 'a\x01b', 'x-crlf', 'a\r\nx-evil: 1', 'x-nul', 'a\0',
    'x-ok', 'tab\tand latin1 \xe9', 'x-ok', 'again',
  ])).toEqual(['grpc-status', '0', 'x-ok', 'tab\tand latin1 \xe9', 'x-ok', 'again']);
  expect(forwardableTrailers([])).toEqual([]);
});
