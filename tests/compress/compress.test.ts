/**
 * SPEC 8.5 end to end: compressed answers decompress to the backend's bytes
 * for each algorithm, the client's q-values decide, none of the exclusions
 * is compressed, server-sent events arrive event by event, and a client that
 * stops reading stops the backend (memory stays flat).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { pick } from '../../src/compress/negotiate';
import { ZSTD_AVAILABLE } from '../../src/config/front-door';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { stalled } from '../helpers/wait';
import { useTeardown } from '../helpers/teardown';
import { selfSigned } from '../helpers/tls';
import type { Handler } from '../helpers/backends';

const { cleanups, backend } = useTeardown();

const JSON_BODY = Buffer.from(JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: i, name: `user-${i}`, email: `user${i}@example.com`, active: i % 2 === 0 }))));

interface Raw { status: number; headers: IncomingMessage['headers']; body: Buffer }

/** A request whose body is kept as bytes (no decoding). */
function get(url: string, headers: OutgoingHttpHeaders = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

function decode(encoding: string | undefined, body: Buffer): Buffer {
  switch (encoding) {
    case 'gzip': return zlib.gunzipSync(body);
    case 'br': return zlib.brotliDecompressSync(body);
    case 'zstd': return (zlib as unknown as { zstdDecompressSync(b: Buffer): Buffer }).zstdDecompressSync(body);
    default: return body;
  }
}

async function fulcrum(compress: string, handler: Handler): Promise<RunningFulcrum> {
  const b = await backend('b', handler);
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /plain/ }, pool: p }
      - { pool: p, compress: ${compress} }
pools: { p: { backends: [ { url: ${b.url} } ] } }
`);
  cleanups.push(() => f.stop());
  return f;
}

/** The backend answers by path: /json (with length), /chunked, and the exclusions. */
const handler: Handler = (req, res) => {
  req.resume();
  const json = { 'content-type': 'application/json; charset=utf-8', etag: '"v1"' };
  switch (req.url!.replace(/^\/plain/, '')) {
    case '/json': res.writeHead(200, { ...json, 'content-length': JSON_BODY.length }).end(JSON_BODY); return;
    case '/chunked': res.writeHead(200, { 'content-type': 'text/html' }); res.write('<p>small'); res.end(' and chunked</p>'); return;
    case '/encoded': res.writeHead(200, { ...json, 'content-encoding': 'gzip' }).end(zlib.gzipSync(JSON_BODY)); return;
    case '/png': res.writeHead(200, { 'content-type': 'image/png', 'content-length': JSON_BODY.length }).end(JSON_BODY); return;
    case '/notype': res.writeHead(200, { 'content-length': JSON_BODY.length }).end(JSON_BODY); return;
    case '/small': res.writeHead(200, { ...json, 'content-length': 10 }).end('{"a":"bc"}'); return;
    case '/no-transform': res.writeHead(200, { ...json, 'cache-control': 'public, no-transform' }).end(JSON_BODY); return;
    case '/204': res.writeHead(204).end(); return;
    case '/304': res.writeHead(304, { etag: '"v1"' }).end(); return;
    case '/206': res.writeHead(206, { 'content-type': 'text/plain', 'content-range': 'bytes 0-99/1000' }).end('x'.repeat(100)); return;
    case '/vary': res.writeHead(200, { ...json, vary: 'Origin' }).end(JSON_BODY); return;
    default: res.writeHead(404).end();
  }
};

describe('negotiation', () => {
  test.each([
    ['gzip', ['br', 'gzip'], 'gzip'],
    ['gzip, br', ['br', 'gzip'], 'br'],
    ['gzip, br', ['gzip', 'br'], 'gzip'],
    ['br;q=0.5, gzip', ['br', 'gzip'], 'gzip'],
    ['br;q=0.8, gzip;q=0.8', ['br', 'gzip'], 'br'],
    ['*', ['br', 'gzip'], 'br'],
    ['gzip;q=0, *;q=0.1', ['gzip', 'br'], 'br'],
    ['br;q=0', ['br', 'gzip'], undefined],
    ['identity', ['br', 'gzip'], undefined],
    ['x-gzip', ['gzip'], 'gzip'],
    ['GZIP ; Q=0.5', ['gzip'], 'gzip'],
    ['deflate, compress', ['br', 'gzip'], undefined],
  ] as const)('%s with %j: %s', (header, algorithms, expected) => {
    expect(pick(header, algorithms)).toBe(expected);
  });
});

describe('compressed answers', () => {
  const algorithms = ['gzip', 'br', ...(ZSTD_AVAILABLE ? ['zstd'] : [])];
  test.each(algorithms)('%s: decompresses to the backend\'s bytes; no Content-Length, Content-Encoding set, Vary added, ETag weak', async (algorithm) => {
    const f = await fulcrum(`{ algorithms: [${algorithms.join(', ')}] }`, handler);
    const r = await get(`${f.url()}/json`, { 'accept-encoding': algorithm });
    expect([r.status, r.headers['content-encoding'], r.headers['content-length'], r.headers.vary, r.headers.etag]).toEqual([200, algorithm, undefined, 'Accept-Encoding', 'W/"v1"']);
    expect(r.body.length).toBeLessThan(JSON_BODY.length / 3);
    expect(decode(algorithm, r.body).equals(JSON_BODY)).toBe(true);
  });

  test('zstd is accepted exactly where this Node.js has zlib.createZstdCompress', async () => {
    if (ZSTD_AVAILABLE) {
      const f = await fulcrum('{ algorithms: [zstd] }', handler);
      expect((await get(`${f.url()}/json`, { 'accept-encoding': 'zstd' })).headers['content-encoding']).toBe('zstd');
    } else {
      await expect(startFulcrum('listeners: { l: { listen: 127.0.0.1:0, routes: [ { pool: p, compress: { algorithms: [zstd] } } ] } }\npools: { p: { backends: [ { url: http://127.0.0.1:1 } ] } }\n'))
        .rejects.toThrow(/zstd needs Node\.js 22\.15 or later/);
    }
  });

  test('the client\'s q-values decide; the route\'s order breaks ties; a chunked answer of unknown length is compressed', async () => {
    const f = await fulcrum('true', handler);
    expect((await get(`${f.url()}/json`, { 'accept-encoding': 'gzip, deflate, br' })).headers['content-encoding']).toBe('br');
    expect((await get(`${f.url()}/json`, { 'accept-encoding': 'gzip;q=1, br;q=0.9' })).headers['content-encoding']).toBe('gzip');
    const chunked = await get(`${f.url()}/chunked`, { 'accept-encoding': 'gzip' });
    expect([chunked.headers['content-encoding'], decode('gzip', chunked.body).toString()]).toEqual(['gzip', '<p>small and chunked</p>']);
    const vary = await get(`${f.url()}/vary`, { 'accept-encoding': 'gzip' });
    expect(vary.headers.vary).toBe('Origin, Accept-Encoding');
    // Routes without compress are untouched.
    const plain = await get(`${f.url()}/plain/json`, { 'accept-encoding': 'gzip' });
    expect([plain.headers['content-encoding'], plain.headers['content-length'], plain.body.equals(JSON_BODY)]).toEqual([undefined, String(JSON_BODY.length), true]);
  });

  test('none of the exclusions is compressed: no Accept-Encoding, a Content-Encoding, another type, below minSize, HEAD, 204, 304, 206, no-transform', async () => {
    const f = await fulcrum('{ minSize: 1kb, types: [application/json, text/*] }', handler);
    const cases: [string, OutgoingHttpHeaders, string?][] = [
      ['/json', {}],
      ['/json', { 'accept-encoding': 'identity' }],
      ['/encoded', { 'accept-encoding': 'br, gzip' }],
      ['/png', { 'accept-encoding': 'gzip' }],
      ['/notype', { 'accept-encoding': 'gzip' }],
      ['/small', { 'accept-encoding': 'gzip' }],
      ['/no-transform', { 'accept-encoding': 'gzip' }],
      ['/json', { 'accept-encoding': 'gzip' }, 'HEAD'],
      ['/204', { 'accept-encoding': 'gzip' }],
      ['/304', { 'accept-encoding': 'gzip' }],
      ['/206', { 'accept-encoding': 'gzip' }],
    ];
    for (const [path, headers, method] of cases) {
      const r = await get(`${f.url()}${path}`, headers, method);
      const what = `${method ?? 'GET'} ${path} ${JSON.stringify(headers)}`;
      expect([what, r.headers['content-encoding'] ?? 'none', r.headers.vary ?? 'none']).toEqual([what, path === '/encoded' ? 'gzip' : 'none', 'none']);
      if (path === '/json' && method === undefined) expect(r.body.equals(JSON_BODY)).toBe(true);
      if (path === '/json' && method === 'HEAD') expect(r.headers['content-length']).toBe(String(JSON_BODY.length));
    }
  });
});

test('compress acts after the route\'s responseHeaders: their head is what is judged and sent', async () => {
  const b = await backend('b', handler);
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { path: /png }, pool: p, compress: true, responseHeaders: { set: { content-type: application/json } } }
      - { pool: p, compress: true, responseHeaders: { set: { x-seen: "yes" }, remove: [etag] } }
pools: { p: { backends: [ { url: ${b.url} } ] } }
`);
  cleanups.push(() => f.stop());
  const json = await get(`${f.url()}/json`, { 'accept-encoding': 'gzip' });
  expect([json.headers['content-encoding'], json.headers['x-seen'], json.headers.etag]).toEqual(['gzip', 'yes', undefined]);
  expect(decode('gzip', json.body).equals(JSON_BODY)).toBe(true);
  // The backend said image/png; the route's rule made it JSON, which is compressed.
  expect((await get(`${f.url()}/png`, { 'accept-encoding': 'gzip' })).headers['content-encoding']).toBe('gzip');
});

describe('streaming', () => {
  const streaming = ['gzip', 'br', ...(ZSTD_AVAILABLE ? ['zstd'] : [])];
  const decompressor = (algorithm: string) => (algorithm === 'gzip' ? zlib.createGunzip()
    : algorithm === 'br' ? zlib.createBrotliDecompress()
    : (zlib as unknown as { createZstdDecompress(): ReturnType<typeof zlib.createGunzip> }).createZstdDecompress());
  test.each(streaming)('server-sent events through a compressing route arrive event by event (%s)', async (algorithm) => {
    let next: (() => void) | undefined;
    const f = await fulcrum(`{ algorithms: [${algorithm}] }`, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const send = () => {
        n++;
        res.write(`id: ${n}\ndata: ${JSON.stringify({ n, pad: 'x'.repeat(50) })}\n\n`);
        if (n === 5) res.end();
        else next = send; // the next event only once the client has the previous one
      };
      send();
    });
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      http.get(`${f.url()}/events`, { agent: false, headers: { 'accept-encoding': algorithm } }, (res) => {
        expect(res.headers['content-encoding']).toBe(algorithm);
        const gunzip = decompressor(algorithm);
        res.pipe(gunzip);
        let text = '';
        gunzip.on('data', (c: Buffer) => {
          text += c.toString();
          let end: number;
          while ((end = text.indexOf('\n\n')) !== -1) {
            events.push(text.slice(0, end));
            text = text.slice(end + 2);
            const go = next;
            next = undefined;
            go?.();
          }
        });
        gunzip.on('end', resolve);
        gunzip.on('error', reject);
      }).on('error', reject);
    });
    expect(events.map((e) => e.split('\n')[0])).toEqual(['id: 1', 'id: 2', 'id: 3', 'id: 4', 'id: 5']);
  });

  test('a client that stops reading stops the backend: what is buffered stays bounded (memory flat)', async () => {
    const TOTAL = 256 * 1024 * 1024;
    let written = 0;
    const f = await fulcrum('true', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Incompressible bytes: what goes in comes out, so nothing hides in the ratio.
      const chunk = crypto.randomBytes(64 * 1024);
      const pump = () => {
        while (written < TOTAL) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const got = await new Promise<{ res: IncomingMessage; req: http.ClientRequest }>((resolve, reject) => {
      const req = http.get(`${f.url()}/big`, { agent: false, headers: { 'accept-encoding': 'gzip' } }, (res) => resolve({ res, req }));
      req.on('error', reject);
    });
    expect(got.res.headers['content-encoding']).toBe('gzip');
    got.res.pause();
    await stalled(() => written, 'the backend to stall', 300, 15_000);
    expect(written).toBeLessThan(32 * 1024 * 1024);
    got.req.destroy();
    await waitFor(() => f.records.length === 1, 5000, 'the request to end');
  }, 30_000);
});

describe('over HTTP/2 (a TLS listener with http2: true)', () => {
  test('a compressed answer and an access refusal reach an HTTP/2 client', async () => {
    const tls = selfSigned();
    cleanups.push(async () => fs.rmSync(tls.dir, { recursive: true, force: true }));
    const b = await backend('b', handler);
    const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    tls: { cert: ${tls.cert}, key: ${tls.key} }
    http2: true
    routes:
      - { match: { pathPrefix: /private/ }, pool: p, access: { allow: [10.0.0.0/8] } }
      - { pool: p, compress: true }
pools: { p: { backends: [ { url: ${b.url} } ] } }
`);
    cleanups.push(() => f.stop());
    const session = http2.connect(f.url().replace('http:', 'https:'), { rejectUnauthorized: false });
    cleanups.push(async () => { session.close(); });
    const ask = (path: string) => new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const stream = session.request({ ':path': path, 'accept-encoding': 'br' });
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      stream.on('response', (h) => { headers = h; });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ headers, body: Buffer.concat(chunks) }));
      stream.on('error', reject);
    });
    const json = await ask('/json');
    expect([json.headers[':status'], json.headers['content-encoding']]).toEqual([200, 'br']);
    expect(decode('br', json.body).equals(JSON_BODY)).toBe(true);
    const refused = await ask('/private/x');
    expect([refused.headers[':status'], refused.body.toString()]).toEqual([403, 'forbidden\n']);
  });
});
