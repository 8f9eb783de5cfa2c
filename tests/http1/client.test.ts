/**
 * UpstreamClient (src/http1/client.ts), the HTTP/1.1 client that carries
 * proxied requests to plain-HTTP backends, on real loopback sockets only:
 * node:http backends where a real server is the point, raw `net` servers where
 * the bytes are (malformed responses, a FIN mid-body, stalls, the exact bytes
 * of a request).
 *
 * The first part is differential: undici's Pool (what the client replaced,
 * and what still serves https:// backends) gets the same responses and sends
 * the same requests, and both must come out the same. Where they differ on
 * purpose, a test says so by name (`intended differences`) rather than
 * normalising the difference away.
 *
 * Every wait is on an event or polls state against a deadline; the only timers
 * are a backend's own pace (a slow upload, a head written in pieces) and the
 * probe that tells a full accept queue (unacceptingListener).
 */
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { parseForwarded, startUnaccepting, type ForwardedRequest } from '../helpers/raw';
import { useTeardown } from '../helpers/teardown';
import { stalled, waitFor } from '../helpers/wait';
import { UpstreamClient } from '../../src/http1/client';
import { UPSTREAM_ERRORS, type UpstreamCall, type UpstreamHandler, type UpstreamOptions, type UpstreamRequest } from '../../src/upstream/types';

const { cleanups, backend } = useTeardown();

const KiB = 1024;
const MiB = 1024 * KiB;
const WAIT_MS = 5000;
/** Node's timers count whole milliseconds: a deadline can be met up to 1 ms before a performance.now() reading says. */
const TIMER_GRAIN_MS = 1;

// ---------------------------------------------------------------------------
// What a handler heard, and a check that it heard it by the rules.

type Failure = Error & { code?: string };

interface Hooks {
  onHeaders?(rec: Recorder): void;
  /** Return false to stop reading (as the proxy does when its client is slow). */
  onData?(chunk: Buffer, rec: Recorder): boolean | void;
  /** Keep the body bytes (default); off for big bodies, which are counted and hashed. */
  keep?: boolean;
}

class Recorder implements UpstreamHandler {
  call!: UpstreamCall;
  /** dispatch has returned: the handler may be called from now on. */
  returned = false;
  status: number | undefined;
  headers: string[] | undefined;
  readonly chunks: Buffer[] = [];
  bytes = 0;
  readonly #hash = createHash('sha1');
  error: Failure | undefined;
  completed = false;
  /** 'headers' | 'data' | 'complete' | 'error', consecutive data calls as one. */
  readonly events: string[] = [];
  errorCalls = 0;
  /** Calls the contract forbids: before dispatch returned, or after the end. */
  readonly violations: string[] = [];
  readonly done: Promise<void>;
  endedAt = 0;
  #resolve!: () => void;
  readonly #hooks: Hooks;

  constructor(hooks: Hooks = {}) {
    this.#hooks = hooks;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  get ended(): boolean {
    return this.completed || this.error !== undefined;
  }

  get body(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get sha1(): string {
    return this.#hash.copy().digest('hex');
  }

  #note(event: string): void {
    if (!this.returned) this.violations.push(`${event} before dispatch returned`);
    if (this.ended) this.violations.push(`${event} after the end`);
    if (event !== 'data' || this.events.at(-1) !== 'data') this.events.push(event);
  }

  onHeaders(status: number, headers: readonly string[]): void {
    this.#note('headers');
    if (status < 200) this.violations.push(`onHeaders for ${status}`);
    this.status = status;
    this.headers = [...headers];
    this.#hooks.onHeaders?.(this);
  }

  onData(chunk: Buffer): boolean {
    this.#note('data');
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    if (this.#hooks.keep !== false) this.chunks.push(Buffer.from(chunk));
    return this.#hooks.onData?.(chunk, this) !== false;
  }

  onComplete(): void {
    this.#note('complete');
    this.completed = true;
    this.endedAt = performance.now();
    this.#resolve();
  }

  onError(err: Error): void {
    this.#note('error');
    this.errorCalls++;
    if (this.error === undefined) this.error = err as Failure;
    this.endedAt = performance.now();
    this.#resolve();
  }
}

// ---------------------------------------------------------------------------
// The client under test, undici for comparison; both closed after each test.

const DEFAULTS: UpstreamOptions = { connections: 0, idleMs: 5000, connectMs: 5000, responseMs: 0 };

interface Harness {
  readonly upstream: UpstreamClient;
  readonly recorders: Recorder[];
  send(request?: Partial<UpstreamRequest>, hooks?: Hooks): Recorder;
}

function request(req: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return { method: 'GET', path: '/', headers: [], body: null, ...req };
}

function makeClient(url: string, options: Partial<UpstreamOptions> = {}): Harness {
  const upstream = new UpstreamClient(url, { ...DEFAULTS, ...options });
  const recorders: Recorder[] = [];
  cleanups.push(async () => {
    for (const r of recorders) if (!r.ended) r.call.abort(new Error('test over'));
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      upstream.close().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 3000);
      }),
    ]);
    clearTimeout(timer);
    expect(closed).toBe(true);
    // Late calls (after the end) would show up here.
    await new Promise((r) => setImmediate(r));
    for (const r of recorders) expect(r.violations).toEqual([]);
  });
  return {
    upstream,
    recorders,
    send(req = {}, hooks = {}) {
      const rec = new Recorder(hooks);
      rec.call = upstream.dispatch(request(req), rec);
      rec.returned = true;
      recorders.push(rec);
      return rec;
    },
  };
}

/** undici's Pool as the proxy configured it before (one request per connection at a time, no body timeout). */
function undiciPool(url: string, options: Partial<Pool.Options> = {}): Pool {
  const pool = new Pool(url, { connections: 1, pipelining: 1, keepAliveTimeout: 5000, headersTimeout: 5000, bodyTimeout: 0, ...options });
  cleanups.push(() => pool.destroy());
  return pool;
}

/** The same request through undici's legacy handler shape, into a Recorder. */
function sendUndici(pool: Pool, req: Partial<UpstreamRequest> = {}): Recorder {
  const r = request(req);
  const rec = new Recorder();
  pool.dispatch({ method: r.method as Dispatcher.HttpMethod, path: r.path, headers: [...r.headers], body: r.body }, {
    onConnect() {},
    onHeaders(status: number, raw: Buffer[]) {
      if (status < 200) return true; // 1xx: not the response
      rec.onHeaders(status, raw.map((b) => b.toString('latin1')));
      return true;
    },
    onData: (chunk: Buffer) => rec.onData(chunk),
    onComplete: () => rec.onComplete(),
    onError: (err: Error) => rec.onError(err),
  });
  rec.returned = true;
  return rec;
}

// ---------------------------------------------------------------------------
// Backends.

/** A node:http backend (closed after the test) that also counts the connections it accepted and has open. */
/** A backend that reads each request and holds its response open in `pending`. */
async function holdingBackend() {
  const pending: http.ServerResponse[] = [];
  const b = await httpBackend((req, res) => {
    req.resume();
    pending.push(res);
  });
  return { pending, b };
}

async function httpBackend(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const b = await backend('b', handler);
  const sockets: net.Socket[] = [];
  let open = 0;
  let maxOpen = 0;
  b.server.on('connection', (s: net.Socket) => {
    sockets.push(s);
    open++;
    maxOpen = Math.max(maxOpen, open);
    s.on('close', () => open--);
  });
  return Object.assign(b, {
    sockets,
    open: () => open,
    maxOpen: () => maxOpen,
  });
}

interface RawConn {
  readonly socket: net.Socket;
  /** Every byte the client sent on this connection. */
  readonly received: Buffer[];
  /** The client closed its side (FIN, reset or close). */
  closed: boolean;
  handled: number;
}

interface RawBackend {
  readonly port: number;
  readonly url: string;
  readonly conns: RawConn[];
  /** Complete requests, in the order they arrived (over all connections). */
  readonly requests: ForwardedRequest[];
  bytesOf(i: number): Buffer;
}

type RawHandler = (req: ForwardedRequest, conn: RawConn) => unknown;

/**
 * A TCP server on loopback that records what each connection sent and hands
 * every complete request (parsed strictly) to `onRequest`, which writes
 * whatever bytes the test wants.
 */
async function rawBackend(onRequest: RawHandler = () => undefined): Promise<RawBackend> {
  const conns: RawConn[] = [];
  const requests: ForwardedRequest[] = [];
  const server = net.createServer((socket) => {
    const conn: RawConn = { socket, received: [], closed: false, handled: 0 };
    conns.push(conn);
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      conn.received.push(d);
      const { requests: parsed } = parseForwarded(Buffer.concat(conn.received));
      while (conn.handled < parsed.length && parsed[conn.handled]!.complete) {
        const req = parsed[conn.handled++]!;
        requests.push(req);
        void onRequest(req, conn);
      }
    });
    socket.on('error', () => undefined);
    const closed = () => {
      conn.closed = true;
    };
    socket.on('end', closed);
    socket.on('close', closed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const c of conns) c.socket.destroy();
    server.close(() => resolve());
  }));
  const port = (server.address() as net.AddressInfo).port;
  return { port, url: `http://127.0.0.1:${port}`, conns, requests, bytesOf: (i) => Buffer.concat(conns[i]!.received) };
}

const OK_EMPTY = 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n';
const okWith = (body: string, extra = '') => `HTTP/1.1 200 OK\r\n${extra}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** A port nothing listens on (a server's, just closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A loopback listener whose connects stay pending (tests/helpers/raw.ts), ended after the test. */
async function unacceptingListener(): Promise<number> {
  const l = await startUnaccepting();
  cleanups.push(l.close);
  return l.port;
}

/** A body stream of the given pieces, each one 'data' event. */
function bodyOf(...pieces: (string | Buffer)[]): Readable {
  return Readable.from(pieces.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}

/** A body of `total` bytes made on demand in 64 KiB pieces (piece i filled with byte i % 251), and its expected sha1. */
function generatedBody(total: number): { stream: Readable; produced: () => number; sha1: string } {
  const PIECE = 64 * KiB;
  const piece = (i: number, n: number) => Buffer.alloc(n, i % 251);
  const hash = createHash('sha1');
  for (let off = 0, i = 0; off < total; off += PIECE, i++) hash.update(piece(i, Math.min(PIECE, total - off)));
  let produced = 0;
  let i = 0;
  const stream = new Readable({
    read() {
      if (produced >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(PIECE, total - produced);
      produced += n;
      this.push(piece(i++, n));
    },
  });
  return { stream, produced: () => produced, sha1: hash.digest('hex') };
}


const turn = () => new Promise<void>((r) => setImmediate(r));
/** A short pause between the pieces a backend writes, so they arrive as separate reads. */
const gap = () => new Promise<void>((r) => setTimeout(r, 2));

function headerValue(req: ForwardedRequest, name: string): string | undefined {
  return req.headers.find(([n]) => n === name)?.[1];
}

// ---------------------------------------------------------------------------

describe('UpstreamClient', () => {
  describe('differential: the same responses as undici', () => {
    interface ResponseCase {
      readonly name: string;
      readonly method?: string;
      /** Written one after the other, with a short gap between pieces. */
      readonly pieces: (string | Buffer)[];
      /** End the connection after the last piece. */
      readonly close?: boolean;
    }
    const big = randomBytes(5 * MiB);
    const bigChunked: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1')];
    for (let off = 0; off < big.length; off += 64 * KiB) {
      const c = big.subarray(off, off + 64 * KiB);
      bigChunked.push(Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
    }
    bigChunked.push(Buffer.from('0\r\n\r\n'));
    const manyHeaders = Array.from({ length: 40 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
    const split = (s: string, n: number) => Array.from({ length: Math.ceil(s.length / n) }, (_, i) => s.slice(i * n, (i + 1) * n));

    const cases: ResponseCase[] = [
      { name: 'Content-Length body', pieces: ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world'] },
      { name: 'chunked body, in pieces', pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', '6\r\n world\r\n', '0\r\n\r\n'] },
      { name: 'chunked body with a chunk extension and trailers', pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3;ext=1\r\nabc\r\n0\r\nX-T: t\r\n\r\n'] },
      { name: 'close-delimited body (no Content-Length, not chunked)', pieces: ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello ', 'until the end'], close: true },
      { name: 'HEAD: Content-Length but no body', method: 'HEAD', pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/html\r\n\r\n'] },
      { name: 'HEAD: chunked but no body', method: 'HEAD', pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'] },
      { name: '204 No Content', pieces: ['HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n'] },
      { name: '304 Not Modified', pieces: ['HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nCache-Control: max-age=60\r\n\r\n'] },
      { name: '103 Early Hints, then 200', pieces: ['HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n', 'HTTP/1.1 200 OK\r\nLink: </a.css>; rel=preload\r\nContent-Length: 2\r\n\r\nok'] },
      { name: 'two 103s and a 200 in one write', pieces: ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes'] },
      { name: '5 MiB Content-Length body', pieces: [Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\n\r\n`, 'latin1'), big] },
      { name: '5 MiB chunked body in 64 KiB chunks', pieces: [Buffer.concat(bigChunked)] },
      { name: 'three Set-Cookie', pieces: ['HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nset-cookie: c=3; HttpOnly\r\nContent-Length: 0\r\n\r\n'] },
      { name: 'latin1 bytes 0x80-0xff in a header value', pieces: [Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX-Latin: caf\xe9 \x80\x9f\xa0\xff\r\nX-All: ', 'latin1'), Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)), Buffer.from('\r\nContent-Length: 0\r\n\r\n', 'latin1')])] },
      { name: 'empty body, Content-Length: 0', pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'] },
      { name: 'header names in any case, duplicates, an empty value', pieces: ['HTTP/1.1 200 OK\r\nCoNtEnT-TyPe: text/plain\r\nX-Dup: 1\r\nx-dup: 2\r\nX-Empty:\r\nContent-Length: 1\r\n\r\nx'] },
      { name: 'spaces and tabs before a header value, and inside it', pieces: ['HTTP/1.1 200 OK\r\nX-Pad: \t padded \t value\r\nContent-Length: 0\r\n\r\n'] },
      { name: '40 headers (more than the parser hands over at once)', pieces: [`HTTP/1.1 200 OK\r\n${manyHeaders}Content-Length: 2\r\n\r\nok`] },
      { name: 'the head in 7-byte pieces', pieces: split(`HTTP/1.1 200 OK\r\n${manyHeaders}Content-Length: 5\r\n\r\nhello`, 7) },
      { name: 'an unusual status and reason', pieces: ['HTTP/1.1 299 Whatever You Like\r\nContent-Length: 1\r\n\r\n!'] },
      { name: 'a 500 with a body', pieces: ['HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops'] },
      { name: 'HTTP/1.0 with Content-Length', pieces: ['HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n1.0'] },
      { name: 'HTTP/1.0 close-delimited', pieces: ['HTTP/1.0 200 OK\r\n\r\nall of it'], close: true },
    ];

    async function scripted(c: ResponseCase): Promise<RawBackend> {
      return rawBackend(async (_req, conn) => {
        for (let i = 0; i < c.pieces.length; i++) {
          if (i > 0) await gap();
          conn.socket.write(c.pieces[i]!);
        }
        if (c.close === true) conn.socket.end();
      });
    }

    const summary = (r: Recorder) => ({
      status: r.status, headers: r.headers, bytes: r.bytes, sha1: r.sha1, completed: r.completed, error: r.error?.code, events: r.events,
    });

    test.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
      const ours = makeClient((await scripted(c)).url).send({ method: c.method ?? 'GET', path: '/x' }, { keep: false });
      const theirs = sendUndici(undiciPool((await scripted(c)).url), { method: c.method ?? 'GET', path: '/x' });
      await Promise.all([ours.done, theirs.done]);
      expect(theirs.completed).toBe(true);
      expect(summary(ours)).toEqual(summary(theirs));
      expect(ours.violations).toEqual([]);
    });

    test('spot checks of what both agreed on', async () => {
      const latin = cases.find((c) => c.name.startsWith('latin1'))!;
      const r = makeClient((await scripted(latin)).url).send();
      await r.done;
      expect(r.headers!.slice(0, 2)).toEqual(['X-Latin', 'caf\u00e9 \u0080\u009f\u00a0\u00ff']);
      expect(Buffer.from(r.headers![3]!, 'latin1')).toEqual(Buffer.from(Array.from({ length: 128 }, (_, i) => 0x80 + i)));

      const cookies = cases.find((c) => c.name === 'three Set-Cookie')!;
      const r2 = makeClient((await scripted(cookies)).url).send();
      await r2.done;
      expect(r2.headers).toEqual(['Set-Cookie', 'a=1; Path=/', 'Set-Cookie', 'b=2', 'set-cookie', 'c=3; HttpOnly', 'Content-Length', '0']);

      const hints = cases.find((c) => c.name.startsWith('103'))!;
      const r3 = makeClient((await scripted(hints)).url).send();
      await r3.done;
      expect([r3.status, r3.body.toString()]).toEqual([200, 'ok']);
      expect(r3.events).toEqual(['headers', 'data', 'complete']);
    });

    test.each([
      ['not HTTP at all', 'HELLO\r\n\r\n'],
      ['both Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
      ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
      ['a space in a header name', 'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n'],
      ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
      ['20 KiB of headers (more than the 16 KiB both allow)', `HTTP/1.1 200 OK\r\n${Array.from({ length: 200 }, (_, i) => `X-Long-${i}: ${'v'.repeat(100)}\r\n`).join('')}Content-Length: 0\r\n\r\n`],
    ])('an invalid response (%s): both fail, neither completes', async (_, bytes) => {
      const c: ResponseCase = { name: '', pieces: [bytes] };
      const ours = makeClient((await scripted(c)).url).send();
      const theirs = sendUndici(undiciPool((await scripted(c)).url));
      await Promise.all([ours.done, theirs.done]);
      expect(theirs.completed).toBe(false);
      expect(ours.completed).toBe(false);
      expect(ours.error!.code).toBe(UPSTREAM_ERRORS.BAD_RESPONSE);
      // The same calls before the error (onHeaders when the head was valid and the body is not).
      expect(ours.events).toEqual(theirs.events);
      expect([ours.status, ours.headers]).toEqual([theirs.status, theirs.headers]);
    });

    // Where undici does something else, on purpose: ours follows RFC 9110/9112 (and node:http).

    test('intended difference: trailing spaces and tabs of a header value are not part of it (RFC 9110 §5.5; node:http trims them too); undici keeps them', async () => {
      const c: ResponseCase = { name: '', pieces: ['HTTP/1.1 200 OK\r\nX-Pad: padded \t value \t \r\nContent-Length: 0\r\n\r\n'] };
      const ours = makeClient((await scripted(c)).url).send();
      const theirs = sendUndici(undiciPool((await scripted(c)).url));
      await Promise.all([ours.done, theirs.done]);
      expect(ours.headers).toEqual(['X-Pad', 'padded \t value', 'Content-Length', '0']);
      expect(theirs.headers).toEqual(['X-Pad', 'padded \t value \t ', 'Content-Length', '0']);
      expect([ours.completed, theirs.completed]).toEqual([true, true]);
    });

    test('intended difference: a 304 with a Content-Length (the size of the selected representation, RFC 9110 §8.6) completes; undici fails it (UND_ERR_RES_CONTENT_LENGTH_MISMATCH)', async () => {
      const c: ResponseCase = { name: '', pieces: ['HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 99\r\n\r\n'] };
      const ours = makeClient((await scripted(c)).url).send();
      const theirs = sendUndici(undiciPool((await scripted(c)).url));
      await Promise.all([ours.done, theirs.done]);
      expect([ours.status, ours.headers, ours.bytes, ours.completed]).toEqual([304, ['ETag', '"v1"', 'Content-Length', '99'], 0, true]);
      expect(theirs.completed).toBe(false);
      expect(theirs.error!.code).toBe('UND_ERR_RES_CONTENT_LENGTH_MISMATCH');
    });

    test('intended difference: a 100 Continue nobody asked for is skipped like any 1xx (RFC 9110 §15.2: a client MUST parse 1xx it did not expect); undici fails the request', async () => {
      const c: ResponseCase = { name: '', pieces: ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </b>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes'] };
      const ours = makeClient((await scripted(c)).url).send();
      const theirs = sendUndici(undiciPool((await scripted(c)).url));
      await Promise.all([ours.done, theirs.done]);
      expect([ours.status, ours.body.toString(), ours.events]).toEqual([200, 'yes', ['headers', 'data', 'complete']]);
      expect(theirs.completed).toBe(false);
      expect(theirs.error!.code).toBe('UND_ERR_SOCKET');
    });
  });

  describe('differential: the same requests as undici', () => {
    interface RequestCase {
      readonly name: string;
      readonly method: string;
      readonly path: string;
      readonly headers: string[];
      readonly body?: () => Readable;
    }
    const noise = randomBytes(1000);
    const cases: RequestCase[] = [
      { name: 'GET with headers in mixed case and a Host', method: 'GET', path: '/a/b?x=1&y=%20z', headers: ['Accept', 'text/html', 'Host', 'example.test', 'X-Forwarded-For', '10.0.0.1', 'x-multi', '1', 'X-Multi', '2'] },
      { name: 'GET without a Host', method: 'GET', path: '/', headers: ['accept', '*/*'] },
      { name: 'POST with Content-Length', method: 'POST', path: '/submit', headers: ['Content-Type', 'application/json', 'Content-Length', '17'], body: () => bodyOf('{"a":', '1,"b":"xyz"}') },
      { name: 'POST chunked (no Content-Length)', method: 'POST', path: '/stream', headers: ['Content-Type', 'text/plain'], body: () => bodyOf('abc', 'defgh', noise) },
      { name: 'HEAD', method: 'HEAD', path: '/h', headers: ['Host', 'h.test'] },
      { name: 'PUT without a body', method: 'PUT', path: '/p', headers: [] },
      { name: 'PATCH without a body', method: 'PATCH', path: '/p', headers: [] },
      { name: 'DELETE without a body', method: 'DELETE', path: '/d', headers: [] },
      { name: 'OPTIONS', method: 'OPTIONS', path: '/o', headers: ['Origin', 'http://a.test'] },
      { name: 'latin1 bytes in a header value', method: 'GET', path: '/l', headers: ['X-Latin', 'caf\u00e9 \u00ff'] },
      { name: 'Content-Length in capitals', method: 'PUT', path: '/u', headers: ['CONTENT-LENGTH', '5'], body: () => bodyOf('12', '345') },
    ];

    /** What a backend saw, as compared: header names lowercased, Connection left out (the clients differ there by design), sorted. */
    function normalised(req: ForwardedRequest, port: number) {
      return {
        method: req.method,
        target: req.target,
        version: req.version,
        headers: req.headers
          .filter(([n]) => n !== 'connection')
          // Each client talks to a backend of its own: its authority is the same placeholder.
          .map(([n, v]): [string, string] => [n, n === 'host' && v === `127.0.0.1:${port}` ? '<backend>' : v])
          .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1)),
        body: req.body.toString('latin1'),
        complete: req.complete,
      };
    }

    async function captured(send: (url: string) => Recorder): Promise<{ req: ForwardedRequest; raw: Buffer; port: number }> {
      const b = await rawBackend((_req, conn) => {
        conn.socket.write(OK_EMPTY);
      });
      const rec = send(b.url);
      await rec.done;
      expect(rec.completed).toBe(true);
      const raw = b.bytesOf(0);
      const { requests, errors } = parseForwarded(raw);
      expect(errors).toEqual([]);
      expect(requests).toHaveLength(1);
      return { req: requests[0]!, raw, port: b.port };
    }

    test.each(cases.map((c) => [c.name, c] as const))('%s', async (_, c) => {
      const req = () => ({ method: c.method, path: c.path, headers: c.headers, body: c.body?.() ?? null });
      const ours = await captured((url) => makeClient(url).send(req()));
      const theirs = await captured((url) => sendUndici(undiciPool(url), req()));
      expect(normalised(ours.req, ours.port)).toEqual(normalised(theirs.req, theirs.port));
      // Both keep the connection (undici not after HEAD: see the intended differences).
      expect(headerValue(ours.req, 'connection')).toBe('keep-alive');
      if (c.method !== 'HEAD') expect(headerValue(theirs.req, 'connection')).toBe('keep-alive');
    });

    test('intended difference: after HEAD ours keeps the connection (keep-alive, reused); undici asks connection: close (and closes it)', async () => {
      const ours = await captured((url) => makeClient(url).send({ method: 'HEAD', path: '/h' }));
      const theirs = await captured((url) => sendUndici(undiciPool(url), { method: 'HEAD', path: '/h' }));
      expect(headerValue(ours.req, 'connection')).toBe('keep-alive');
      expect(headerValue(theirs.req, 'connection')).toBe('close');
    });

    test('intended difference: header order. Ours keeps the given order and appends host, framing and connection; undici puts host and connection first', async () => {
      const headers = ['X-A', '1', 'Host', 'h.test', 'x-b', '2'];
      const ours = await captured((url) => makeClient(url).send({ path: '/o', headers }));
      expect(ours.raw.toString('latin1')).toBe('GET /o HTTP/1.1\r\nX-A: 1\r\nHost: h.test\r\nx-b: 2\r\nconnection: keep-alive\r\n\r\n');

      const post = await captured((url) => makeClient(url).send({ method: 'POST', path: '/o', headers: ['Content-Type', 'text/plain', 'Content-Length', '3'], body: bodyOf('abc') }));
      expect(post.raw.toString('latin1')).toMatch(/^POST \/o HTTP\/1\.1\r\nContent-Type: text\/plain\r\nhost: 127\.0\.0\.1:\d+\r\ncontent-length: 3\r\nconnection: keep-alive\r\n\r\nabc$/);

      const theirs = await captured((url) => sendUndici(undiciPool(url), { path: '/o', headers }));
      expect(theirs.req.headers.map(([n]) => n)).toEqual(['host', 'connection', 'x-a', 'x-b']);
    });

    test('intended difference: GET with "content-length: 0" and no body. Ours keeps the header (content-length: 0); undici drops it', async () => {
      const req = () => ({ method: 'GET', path: '/z', headers: ['Content-Length', '0'], body: null });
      const ours = await captured((url) => makeClient(url).send(req()));
      const theirs = await captured((url) => sendUndici(undiciPool(url), req()));
      expect(ours.req.contentLengths).toEqual(['0']);
      expect(theirs.req.contentLengths).toEqual([]);
    });

    test('intended difference: PROPFIND/PROPPATCH without a body. undici sends content-length: 0 (WebDAV methods that expect a body); ours only for POST/PUT/PATCH/QUERY', async () => {
      for (const method of ['PROPFIND', 'PROPPATCH']) {
        const ours = await captured((url) => makeClient(url).send({ method, path: '/dav' }));
        const theirs = await captured((url) => sendUndici(undiciPool(url), { method, path: '/dav' }));
        expect(ours.req.contentLengths).toEqual([]);
        expect(theirs.req.contentLengths).toEqual(['0']);
        expect({ ...normalised(ours.req, ours.port), headers: [] }).toEqual({ ...normalised(theirs.req, theirs.port), headers: [] });
      }
    });

    /** Both clients' requests, or a failure naming the one that did not finish in time. */
    async function bothCaptured(req: () => Partial<UpstreamRequest>) {
      const b1 = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const b2 = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const ours = makeClient(b1.url).send(req());
      const theirs = sendUndici(undiciPool(b2.url), req());
      await waitFor(() => theirs.ended, WAIT_MS, 'undici');
      const ended = await waitFor(() => ours.ended, 1000).then(() => true, () => false);
      expect(theirs.completed).toBe(true);
      // When ours is stuck, what the backend got so far says why.
      const stuck = ended ? undefined : `stuck; sent so far: ${JSON.stringify(b1.conns.length > 0 ? b1.bytesOf(0).toString('latin1') : '')}`;
      expect({ completed: ours.completed, error: ours.error?.message, stuck }).toEqual({ completed: true, error: undefined, stuck: undefined });
      return { ours: parseForwarded(b1.bytesOf(0)), theirs: parseForwarded(b2.bytesOf(0)) };
    }

    test('a body stream paused (pause()) before dispatch: both send it', async () => {
      const body = () => {
        const s = bodyOf('abc', 'def');
        s.pause();
        return s;
      };
      const { ours, theirs } = await bothCaptured(() => ({ method: 'POST', path: '/p', body: body() }));
      expect(theirs.requests[0]!.body.toString()).toBe('abcdef');
      expect(ours.errors).toEqual([]);
      expect(ours.requests[0]!.body.toString()).toBe('abcdef');
    });

    test.each([
      ['chunked', [] as string[]],
      ['with Content-Length', ['content-length', '13']],
    ])('a body stream of strings with non-ASCII characters, %s: both send its UTF-8 bytes, framed by byte count', async (_, headers) => {
      const { ours, theirs } = await bothCaptured(() => ({ method: 'POST', path: '/s', headers, body: Readable.from(['h\u00e9llo', ' w\u00f6rld']) }));
      expect(theirs.errors).toEqual([]);
      expect(theirs.requests[0]!.body.toString('utf8')).toBe('h\u00e9llo w\u00f6rld');
      expect(ours.errors).toEqual([]);
      expect(ours.requests[0]!.body.toString('utf8')).toBe('h\u00e9llo w\u00f6rld');
    });
  });

  describe('the request head', () => {
    test.each([
      ['GET, no body', { method: 'GET' }, [], []],
      ['GET, no body, content-length: 0 given', { method: 'GET', headers: ['content-length', '0'] }, ['0'], []],
      ['DELETE, no body', { method: 'DELETE' }, [], []],
      ['POST, no body', { method: 'POST' }, ['0'], []],
      ['PUT, no body', { method: 'PUT' }, ['0'], []],
      ['PATCH, no body', { method: 'PATCH' }, ['0'], []],
      ['QUERY, no body', { method: 'QUERY' }, ['0'], []],
      ['POST, body with Content-Length (any case)', { method: 'POST', headers: ['Content-LENGTH', '3'], body: 'abc' }, ['3'], []],
      ['POST, body without Content-Length', { method: 'POST', body: 'abc' }, [], ['chunked']],
      ['GET, body without Content-Length', { method: 'GET', body: 'abc' }, [], ['chunked']],
    ] as const)('framing: %s', async (_, r, contentLengths, transferEncodings) => {
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const rec = makeClient(b.url).send({ method: r.method, headers: 'headers' in r ? [...r.headers] : [], body: 'body' in r ? bodyOf(r.body) : null });
      await rec.done;
      expect(rec.completed).toBe(true);
      const req = b.requests[0]!;
      expect(req.contentLengths).toEqual(contentLengths);
      expect(req.transferEncodings).toEqual(transferEncodings);
      expect(req.body.toString()).toBe('body' in r ? r.body : '');
      // Exactly one host, the backend's authority when none was given.
      expect(req.headers.filter(([n]) => n === 'host')).toEqual([['host', `127.0.0.1:${b.port}`]]);
    });

    test.each([['a space', '/a b'], ['a line break', '/a\r\nX-Evil: 1'], ['a control character', '/a\u0001'], ['a character above 0xff', '/\u2028']])(
      'a target with %s is refused (onError FULCRUM_INVALID_REQUEST, asynchronously) and never sent', async (_, path) => {
        const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
        const r = makeClient(b.url).send({ path });
        expect(r.ended).toBe(false);
        await r.done;
        expect(r.error!.code).toBe(UPSTREAM_ERRORS.INVALID_REQUEST);
        expect(r.events).toEqual(['error']);
        expect(b.conns).toHaveLength(0);
      });

    test('a Host given in any case is kept and no other is added', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const rec = makeClient(b.url).send({ headers: ['HOST', 'given.test'] });
      await rec.done;
      expect(b.requests[0]!.headers.filter(([n]) => n === 'host')).toEqual([['host', 'given.test']]);
    });

    test('a chunked body is framed exactly, empty pieces left out', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const rec = makeClient(b.url).send({ method: 'POST', path: '/c', headers: [], body: bodyOf('abc', '', 'defghijklmnopqrstu', Buffer.alloc(0), 'z') });
      await rec.done;
      expect(rec.completed).toBe(true);
      const raw = b.bytesOf(0).toString('latin1');
      const host = `127.0.0.1:${b.port}`;
      expect(raw).toBe(`POST /c HTTP/1.1\r\nhost: ${host}\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n3\r\nabc\r\n12\r\ndefghijklmnopqrstu\r\n1\r\nz\r\n0\r\n\r\n`);
    });

    test('an empty chunked body is just the last chunk', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const rec = makeClient(b.url).send({ method: 'POST', path: '/e', body: bodyOf() });
      await rec.done;
      expect(rec.completed).toBe(true);
      expect(b.bytesOf(0).toString('latin1')).toMatch(/\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n0\r\n\r\n$/);
    });
  });

  describe('keep-alive', () => {
    test('sequential requests reuse one connection', async () => {
      const b = await httpBackend((req, res) => {
        req.resume();
        req.on('end', () => res.end(req.url));
      });
      const c = makeClient(b.url);
      for (let i = 0; i < 5; i++) {
        const r = c.send({ path: `/${i}`, method: i % 2 === 0 ? 'GET' : 'POST', body: i % 2 === 0 ? null : bodyOf('x'.repeat(i)) });
        await r.done;
        expect([r.status, r.body.toString()]).toEqual([200, `/${i}`]);
        expect(c.upstream.connectionCount).toBe(1);
      }
      expect(b.sockets).toHaveLength(1);
      expect(b.seen.map((q) => q.headers.connection)).toEqual(Array(5).fill('keep-alive'));
    });

    test('a HEAD response (Content-Length, no body) leaves the connection in step for the next request', async () => {
      const b = await rawBackend((req, conn) => {
        conn.socket.write(req.method === 'HEAD' ? 'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n' : okWith(req.target));
      });
      const c = makeClient(b.url);
      const h = c.send({ method: 'HEAD', path: '/h' });
      await h.done;
      expect([h.status, h.bytes, h.completed]).toEqual([200, 0, true]);
      const g = c.send({ path: '/after' });
      await g.done;
      expect(g.body.toString()).toBe('/after');
      expect(b.conns).toHaveLength(1);
    });

    test('trailers of a chunked response are not the next response\'s headers (its head split over two writes)', async () => {
      const b = await rawBackend(async (req, conn) => {
        if (req.target === '/first') {
          conn.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: injected\r\n\r\n');
          return;
        }
        conn.socket.write('HTTP/1.1 200 OK\r\nX-Sec');
        await new Promise((r) => setTimeout(r, 20));
        conn.socket.write('ond: 1\r\nContent-Length: 0\r\n\r\n');
      });
      const c = makeClient(b.url);
      const first = c.send({ path: '/first' });
      await first.done;
      expect([first.status, first.body.toString(), first.headers]).toEqual([200, 'ok', ['Transfer-Encoding', 'chunked']]);
      const second = c.send({ path: '/second' });
      await second.done;
      expect([second.status, second.headers]).toEqual([200, ['X-Second', '1', 'Content-Length', '0']]);
      expect(b.conns).toHaveLength(1);
    });

    test('idleMs 0: a new connection per request, each asking connection: close', async () => {
      const b = await rawBackend((req, conn) => conn.socket.write(okWith(req.target)));
      const c = makeClient(b.url, { idleMs: 0 });
      for (let i = 0; i < 3; i++) {
        const r = c.send({ path: `/${i}` });
        await r.done;
        expect(r.body.toString()).toBe(`/${i}`);
        await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the connection to close');
        await waitFor(() => b.conns[i]!.closed, WAIT_MS, 'the backend to see the close');
      }
      expect(b.conns).toHaveLength(3);
      expect(b.requests.map((q) => headerValue(q, 'connection'))).toEqual(['close', 'close', 'close']);
    });

    test('a response with Connection: close is not reused', async () => {
      const b = await httpBackend((req, res) => {
        req.resume();
        res.setHeader('connection', 'close');
        res.end(req.url);
      });
      const c = makeClient(b.url);
      for (let i = 0; i < 2; i++) {
        const r = c.send({ path: `/${i}` });
        await r.done;
        expect(r.body.toString()).toBe(`/${i}`);
      }
      expect(b.sockets).toHaveLength(2);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the connections to close');
    });

    test('an HTTP/1.0 response (no keep-alive) is not reused, even if the backend keeps the connection open', async () => {
      const b = await rawBackend((req, conn) => conn.socket.write(`HTTP/1.0 200 OK\r\nContent-Length: ${req.target.length}\r\n\r\n${req.target}`));
      const c = makeClient(b.url);
      for (let i = 0; i < 2; i++) {
        const r = c.send({ path: `/${i}` });
        await r.done;
        expect(r.body.toString()).toBe(`/${i}`);
        await waitFor(() => b.conns[i]!.closed, WAIT_MS, 'the client to close the HTTP/1.0 connection');
      }
      expect(b.conns).toHaveLength(2);
    });

    test('an unused connection closes after idleMs, not before', async () => {
      const IDLE = 300;
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const c = makeClient(b.url, { idleMs: IDLE });
      const r = c.send();
      await r.done;
      expect(c.upstream.connectionCount).toBe(1);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the idle connection to close');
      const elapsed = performance.now() - r.endedAt;
      expect(elapsed).toBeGreaterThanOrEqual(IDLE - TIMER_GRAIN_MS);
      expect(elapsed).toBeLessThan(IDLE + 1000);
      await waitFor(() => b.conns[0]!.closed, WAIT_MS, 'the backend to see the close');
      // And the next request simply opens a new one.
      const r2 = c.send();
      await r2.done;
      expect(r2.completed).toBe(true);
      expect(b.conns).toHaveLength(2);
    });

    test('a backend closing an idle connection: the next request gets a new connection and works', async () => {
      const b = await rawBackend((req, conn) => {
        // Keep-alive as far as the headers go, then the backend hangs up anyway.
        conn.socket.write(okWith(req.target));
        setImmediate(() => conn.socket.end());
      });
      const c = makeClient(b.url);
      const r1 = c.send({ path: '/1' });
      await r1.done;
      expect(r1.completed).toBe(true);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the client to notice the close');
      const r2 = c.send({ path: '/2' });
      await r2.done;
      expect([r2.completed, r2.body.toString()]).toEqual([true, '/2']);
      expect(b.conns).toHaveLength(2);
    });

    test('a response to no request (an extra one after the first) closes that connection; the next request gets a new one', async () => {
      const b = await rawBackend((req, conn) => {
        conn.socket.write(okWith(req.target) + okWith('unasked'));
      });
      const c = makeClient(b.url);
      const r1 = c.send({ path: '/1' });
      await r1.done;
      expect(r1.body.toString()).toBe('/1');
      await waitFor(() => b.conns[0]!.closed, WAIT_MS, 'the client to drop the connection');
      const r2 = c.send({ path: '/2' });
      await r2.done;
      expect(r2.body.toString()).toBe('/2');
      expect(b.conns).toHaveLength(2);
    });

    // A backend that answers more than it was asked (a bug, a HEAD answered with a body, or
    // response splitting) must never have the extra bytes taken as the answer to the next
    // request: that request has not even reached it. undici gets both cases right.
    test.each([
      ['an extra response after the first', 'GET', (target: string) => okWith(target) + okWith('unasked')],
      ['a body after a HEAD response', 'HEAD', () => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'],
    ])('%s, in the same read, while a request waits for the connection: the waiting request still gets its own answer', async (_, method, first) => {
      const answer = (req: ForwardedRequest, conn: RawConn) => {
        conn.socket.write(req.target === '/1' ? first(req.target) : okWith(req.target));
      };
      const ours = await rawBackend(answer);
      const c = makeClient(ours.url, { connections: 1 });
      const r1 = c.send({ method, path: '/1' });
      const r2 = c.send({ path: '/2' });
      const theirs = await rawBackend(answer);
      const pool = undiciPool(theirs.url);
      const u1 = sendUndici(pool, { method, path: '/1' });
      const u2 = sendUndici(pool, { path: '/2' });
      await Promise.all([r1.done, r2.done, u1.done, u2.done]);
      expect([u1.completed, u2.completed, u2.body.toString()]).toEqual([true, true, '/2']);
      expect(theirs.requests.map((q) => q.target)).toEqual(['/1', '/2']);
      expect(r1.completed).toBe(true);
      expect({ completed: r2.completed, body: r2.body.toString(), error: r2.error?.code }).toEqual({ completed: true, body: '/2', error: undefined });
      expect(ours.requests.map((q) => q.target)).toEqual(['/1', '/2']);
    });
  });

  describe('connection limit', () => {
    test('connections: 0 is no limit: 6 concurrent requests, 6 connections', async () => {
      const { pending, b } = await holdingBackend();
      const c = makeClient(b.url, { connections: 0 });
      const recs = Array.from({ length: 6 }, (_, i) => c.send({ path: `/${i}` }));
      await waitFor(() => pending.length === 6, WAIT_MS, 'all six at the backend');
      expect(c.upstream.connectionCount).toBe(6);
      for (const res of pending) res.end('x');
      await Promise.all(recs.map((r) => r.done));
      expect(recs.every((r) => r.completed)).toBe(true);
      expect(b.sockets).toHaveLength(6);
    });

    test('connections: 2, 10 concurrent requests to a slow backend: at most 2 sockets, served in order of arrival', async () => {
      const pending: { url: string; res: http.ServerResponse }[] = [];
      const seen: string[] = [];
      const b = await httpBackend((req, res) => {
        seen.push(req.url!);
        req.resume();
        pending.push({ url: req.url!, res });
      });
      const c = makeClient(b.url, { connections: 2 });
      const recs = Array.from({ length: 10 }, (_, i) => c.send({ path: `/${i}` }));
      const completed: number[] = [];
      recs.forEach((r, i) => void r.done.then(() => completed.push(i)));
      for (let i = 0; i < 10; i++) {
        await waitFor(() => pending.length > 0, WAIT_MS, `request ${i}`);
        expect(pending.length).toBeLessThanOrEqual(2);
        expect(c.upstream.connectionCount).toBeLessThanOrEqual(2);
        const p = pending.shift()!;
        p.res.end(p.url);
      }
      await Promise.all(recs.map((r) => r.done));
      expect(recs.map((r) => r.body.toString())).toEqual(recs.map((_, i) => `/${i}`));
      expect(seen).toEqual(recs.map((_, i) => `/${i}`));
      expect(completed).toEqual(recs.map((_, i) => i));
      expect(b.sockets).toHaveLength(2);
      expect(b.maxOpen()).toBe(2);
    });

    test('abort() of a queued request: its onError gets the error, and it is never sent', async () => {
      const { pending, b } = await holdingBackend();
      const c = makeClient(b.url, { connections: 1 });
      const first = c.send({ path: '/first' });
      const queued = c.send({ path: '/queued' });
      const last = c.send({ path: '/last' });
      await waitFor(() => pending.length === 1, WAIT_MS, 'the first request');
      const err = new Error('client went away');
      queued.call.abort(err);
      await queued.done;
      expect(queued.error).toBe(err);
      expect(queued.events).toEqual(['error']);
      pending.shift()!.end('1');
      await waitFor(() => pending.length === 1, WAIT_MS, 'the last request');
      pending.shift()!.end('3');
      await Promise.all([first.done, last.done]);
      expect([first.completed, last.completed]).toEqual([true, true]);
      expect(b.seen.map((q) => q.url)).toEqual(['/first', '/last']);
      expect(b.sockets).toHaveLength(1);
      // Aborting again, or after the end, changes nothing.
      queued.call.abort(new Error('again'));
      first.call.abort(new Error('late'));
      expect(queued.errorCalls).toBe(1);
      expect(first.error).toBeUndefined();
    });

    test('abort() of the request in flight frees its slot: the queued one gets a new connection', async () => {
      const pending: http.ServerResponse[] = [];
      const b = await httpBackend((req, res) => {
        req.resume();
        if (req.url === '/stuck') pending.push(res);
        else res.end(req.url);
      });
      const c = makeClient(b.url, { connections: 1 });
      const stuck = c.send({ path: '/stuck' });
      const next = c.send({ path: '/next' });
      await waitFor(() => pending.length === 1, WAIT_MS, 'the stuck request');
      const err = new Error('give up');
      stuck.call.abort(err);
      await next.done;
      expect(stuck.error).toBe(err);
      expect(next.body.toString()).toBe('/next');
      expect(b.sockets).toHaveLength(2);
      expect(c.upstream.connectionCount).toBe(1);
    });
  });

  describe('backpressure', () => {
    test('a 64 MiB response read with pauses: nothing more is read while paused, then every byte arrives', async () => {
      const TOTAL = 64 * MiB;
      const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(MiB, i + 1));
      const expected = createHash('sha1');
      for (let i = 0; i < TOTAL / MiB; i++) expected.update(chunks[i % 8]!);
      let written = 0;
      let finished = false;
      let waitingDrain = false;
      const b = await httpBackend((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-length': String(TOTAL) });
        const pump = () => {
          waitingDrain = false;
          while (written < TOTAL) {
            const ok = res.write(chunks[(written / MiB) % 8]!);
            written += MiB;
            if (!ok) {
              waitingDrain = true;
              res.once('drain', pump);
              return;
            }
          }
          res.end(() => {
            finished = true;
          });
        };
        pump();
      });
      const c = makeClient(b.url);
      let paused = false;
      let pausedAt = -1;
      const r = c.send({ path: '/big' }, {
        keep: false,
        onData: (_chunk, rec) => {
          if (pausedAt < 0 && rec.bytes >= MiB) {
            pausedAt = rec.bytes;
            paused = true;
            return false;
          }
          return true;
        },
      });
      await waitFor(() => paused, WAIT_MS, 'the first MiB');
      await stalled(() => r.bytes + written, 'the transfer to stall');
      // What was already read when onData said false is still delivered (one read at most), nothing after.
      expect(r.bytes - pausedAt).toBeLessThanOrEqual(256 * KiB);
      expect(waitingDrain).toBe(true);
      expect(finished).toBe(false);
      expect(written).toBeLessThan(TOTAL / 2);
      r.call.resume();
      await r.done;
      expect(r.completed).toBe(true);
      expect(r.bytes).toBe(TOTAL);
      expect(r.sha1).toBe(expected.digest('hex'));
    });

    test('pausing on every chunk and resuming on the next turn: all of a 16 MiB body, in order', async () => {
      const body = randomBytes(16 * MiB);
      const b = await httpBackend((req, res) => {
        req.resume();
        res.end(body);
      });
      const c = makeClient(b.url);
      let pauses = 0;
      const r = c.send({}, {
        keep: false,
        onData: (_chunk, rec) => {
          pauses++;
          setImmediate(() => rec.call.resume());
          return false;
        },
      });
      await r.done;
      expect(r.completed).toBe(true);
      expect(r.bytes).toBe(body.length);
      expect(r.sha1).toBe(createHash('sha1').update(body).digest('hex'));
      expect(pauses).toBeGreaterThan(10);
    });

    test.each([
      ['with Content-Length', true],
      ['chunked', false],
    ])('a 64 MiB request body %s into a backend that reads late: the body is read only as it goes out, every byte arrives', async (_, withLength) => {
      const TOTAL = 64 * MiB;
      let held: http.IncomingMessage | undefined;
      let res: http.ServerResponse | undefined;
      const b = await httpBackend((req, rs) => {
        held = req;
        res = rs;
      });
      const c = makeClient(b.url);
      const gen = generatedBody(TOTAL);
      const r = c.send({ method: 'POST', path: '/up', headers: withLength ? ['content-length', String(TOTAL)] : [], body: gen.stream });
      await waitFor(() => held !== undefined, WAIT_MS, 'the request');
      await stalled(gen.produced, 'the upload to stall');
      expect(gen.produced()).toBeLessThan(TOTAL / 2);
      let bytes = 0;
      const hash = createHash('sha1');
      held!.on('data', (d: Buffer) => {
        bytes += d.length;
        hash.update(d);
      });
      held!.on('end', () => res!.end(`${bytes} ${hash.digest('hex')}`));
      await r.done;
      expect(r.completed).toBe(true);
      expect(r.body.toString()).toBe(`${TOTAL} ${gen.sha1}`);
      expect(held!.headers['transfer-encoding']).toBe(withLength ? undefined : 'chunked');
    });
  });

  describe('errors', () => {
    test('a refused connection: onError with ECONNREFUSED, nothing else', async () => {
      const c = makeClient(`http://127.0.0.1:${await closedPort()}`);
      const r = c.send();
      await r.done;
      expect(r.error!.code).toBe('ECONNREFUSED');
      expect(r.events).toEqual(['error']);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the socket to close');
    });

    test('connect timeout: a listener whose accept queue is full', async () => {
      const CONNECT = 300;
      const port = await unacceptingListener();
      const c = makeClient(`http://127.0.0.1:${port}`, { connectMs: CONNECT });
      const start = performance.now();
      const r = c.send();
      await r.done;
      const elapsed = r.endedAt - start;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.CONNECT_TIMEOUT);
      expect(r.events).toEqual(['error']);
      expect(elapsed).toBeGreaterThanOrEqual(CONNECT - TIMER_GRAIN_MS);
      expect(elapsed).toBeLessThan(CONNECT + 1000);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the socket to close');
    });

    test('abort() while connecting: onError with the given error, once', async () => {
      const port = await unacceptingListener();
      const c = makeClient(`http://127.0.0.1:${port}`, { connectMs: 10_000 });
      const r = c.send();
      await turn();
      expect(r.ended).toBe(false);
      const err = new Error('stop');
      r.call.abort(err);
      await r.done;
      expect(r.error).toBe(err);
      expect(r.errorCalls).toBe(1);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the socket to close');
    });

    test('response timeout: a backend that accepts and never answers', async () => {
      const RESPONSE = 300;
      const b = await rawBackend();
      const c = makeClient(b.url, { responseMs: RESPONSE });
      const start = performance.now();
      const r = c.send();
      await r.done;
      const elapsed = r.endedAt - start;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.RESPONSE_TIMEOUT);
      expect(r.events).toEqual(['error']);
      expect(b.requests).toHaveLength(1);
      expect(elapsed).toBeGreaterThanOrEqual(RESPONSE - TIMER_GRAIN_MS);
      expect(elapsed).toBeLessThan(RESPONSE + 1000);
      await waitFor(() => b.conns[0]!.closed, WAIT_MS, 'the backend to see the close');
    });

    test('the response timeout does not count the upload: a 3-chunk body spread over more than responseMs, answered at its end', async () => {
      const RESPONSE = 250;
      const b = await httpBackend((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => res.end(Buffer.concat(parts)));
      });
      const c = makeClient(b.url, { responseMs: RESPONSE });
      let n = 0;
      const body = new Readable({
        read() {
          const i = n++;
          setTimeout(() => this.push(i < 3 ? Buffer.from(`part${i};`) : null), 150);
        },
      });
      const start = performance.now();
      const r = c.send({ method: 'POST', path: '/slow', body });
      await r.done;
      expect(r.error).toBeUndefined();
      expect([r.status, r.body.toString()]).toEqual([200, 'part0;part1;part2;']);
      expect(r.endedAt - start).toBeGreaterThan(RESPONSE);
    });

    test('the response timeout counts from the end of the body', async () => {
      const RESPONSE = 250;
      let bodyEnd = 0;
      const b = await httpBackend((req) => {
        req.resume(); // and never answer
      });
      const c = makeClient(b.url, { responseMs: RESPONSE });
      let n = 0;
      const body = new Readable({
        read() {
          const i = n++;
          setTimeout(() => this.push(i < 2 ? Buffer.from('x') : null), 150);
        },
      });
      body.on('end', () => {
        bodyEnd = performance.now();
      });
      const r = c.send({ method: 'POST', body });
      await r.done;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.RESPONSE_TIMEOUT);
      expect(bodyEnd).toBeGreaterThan(0);
      expect(r.endedAt - bodyEnd).toBeGreaterThanOrEqual(RESPONSE - TIMER_GRAIN_MS);
      expect(r.endedAt - bodyEnd).toBeLessThan(RESPONSE + 1000);
    });

    test.each([
      ['ends (FIN)', 'end'],
      ['destroys', 'destroy'],
      ['resets (RST)', 'reset'],
    ] as const)('a backend that %s its socket mid-body, after the headers: onHeaders, then onError', async (_, how) => {
      const b = await rawBackend((_req, conn) => {
        conn.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789', () => {
          if (how === 'end') conn.socket.end();
          else if (how === 'destroy') conn.socket.destroy();
          else conn.socket.resetAndDestroy();
        });
      });
      const r = makeClient(b.url).send();
      await r.done;
      expect(r.status).toBe(200);
      expect(r.events[0]).toBe('headers');
      expect(r.events.at(-1)).toBe('error');
      expect(r.completed).toBe(false);
      expect([UPSTREAM_ERRORS.CLOSED, 'ECONNRESET']).toContain(r.error!.code);
      if (how !== 'reset') {
        expect(r.error!.code).toBe(UPSTREAM_ERRORS.CLOSED);
        expect(r.body.toString()).toBe('0123456789');
      }
    });

    test('a backend that closes mid-way through a chunked body: onError FULCRUM_UPSTREAM_CLOSED', async () => {
      const b = await rawBackend((_req, conn) => {
        conn.socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      });
      const r = makeClient(b.url).send();
      await r.done;
      expect(r.events).toEqual(['headers', 'data', 'error']);
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.CLOSED);
    });

    test('a backend that closes before any response: onError FULCRUM_UPSTREAM_CLOSED', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.end());
      const r = makeClient(b.url).send();
      await r.done;
      expect(r.events).toEqual(['error']);
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.CLOSED);
    });

    test('garbage instead of a response: FULCRUM_BAD_RESPONSE', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.write('HELLO\r\n\r\n'));
      const c = makeClient(b.url);
      const r = c.send();
      await r.done;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.BAD_RESPONSE);
      expect(r.error!.message).toMatch(/HPE_/);
      expect(r.events).toEqual(['error']);
      await waitFor(() => b.conns[0]!.closed, WAIT_MS, 'the connection to close');
    });

    test('an unasked 101 Switching Protocols: FULCRUM_BAD_RESPONSE', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00'));
      const r = makeClient(b.url).send();
      await r.done;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.BAD_RESPONSE);
      expect(r.events).toEqual(['error']);
    });
  });

  describe('abort()', () => {
    test('during the response body: onError once with the given error, the socket closed, no more data', async () => {
      let backendConn: RawConn | undefined;
      const b = await rawBackend((_req, conn) => {
        backendConn = conn;
        conn.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${MiB}\r\n\r\n${'a'.repeat(1000)}`);
      });
      const c = makeClient(b.url);
      const r = c.send();
      await waitFor(() => r.bytes >= 1000, WAIT_MS, 'the first bytes');
      const err = new Error('client gone');
      r.call.abort(err);
      await r.done;
      expect(r.error).toBe(err);
      await waitFor(() => backendConn!.closed, WAIT_MS, 'the backend to see the close');
      backendConn!.socket.write('b'.repeat(1000));
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the connection to go');
      r.call.abort(new Error('again'));
      r.call.resume();
      expect(r.errorCalls).toBe(1);
      expect(r.bytes).toBe(1000);
      expect(r.events).toEqual(['headers', 'data', 'error']);
    });

    test('from inside onData, with the rest of the response already read: onError once, no onComplete', async () => {
      const b = await rawBackend((_req, conn) => {
        // One write: the body and its end arrive in the read that carries the first data.
        conn.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n');
      });
      const c = makeClient(b.url);
      const err = new Error('aborted in onData');
      const r = c.send({}, {
        onData: (_chunk, rec) => {
          rec.call.abort(err);
        },
      });
      await r.done;
      await turn();
      expect(r.error).toBe(err);
      expect(r.errorCalls).toBe(1);
      expect(r.completed).toBe(false);
      expect(r.body.toString()).toBe('first');
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the connection to go');
    });

    test('from inside onHeaders, with the whole response already read: onError once, no data, no onComplete', async () => {
      const b = await rawBackend((_req, conn) => conn.socket.write(okWith('the body')));
      const c = makeClient(b.url);
      const err = new Error('aborted in onHeaders');
      const r = c.send({}, {
        onHeaders: (rec) => rec.call.abort(err),
      });
      await r.done;
      await turn();
      expect(r.error).toBe(err);
      expect(r.events).toEqual(['headers', 'error']);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the connection to go');
    });

    test('right after dispatch, before connecting: onError with the given error, nothing sent', async () => {
      const b = await rawBackend((req, conn) => conn.socket.write(okWith(req.target)));
      const c = makeClient(b.url);
      const r = c.send({ path: '/never' });
      const err = new Error('never mind');
      r.call.abort(err);
      await r.done;
      expect(r.error).toBe(err);
      expect(r.events).toEqual(['error']);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the socket to close');
      // A request after it is served; the aborted one never reached the backend.
      const r2 = c.send({ path: '/after' });
      await r2.done;
      expect(r2.body.toString()).toBe('/after');
      expect(b.requests.map((q) => q.target)).toEqual(['/after']);
    });

    test('after completion: nothing happens, the connection stays for reuse', async () => {
      const b = await rawBackend((req, conn) => conn.socket.write(okWith(req.target)));
      const c = makeClient(b.url);
      const r = c.send({ path: '/1' });
      await r.done;
      r.call.abort(new Error('late'));
      expect(r.error).toBeUndefined();
      expect(c.upstream.connectionCount).toBe(1);
      const r2 = c.send({ path: '/2' });
      await r2.done;
      expect(r2.body.toString()).toBe('/2');
      expect(b.conns).toHaveLength(1);
    });
  });

  describe('close()', () => {
    test('waits for the request in flight, then resolves with no connections', async () => {
      const { pending, b } = await holdingBackend();
      const c = makeClient(b.url);
      const r = c.send();
      await waitFor(() => pending.length === 1, WAIT_MS, 'the request');
      let closed = false;
      const p = c.upstream.close().then(() => {
        closed = true;
      });
      for (let i = 0; i < 5; i++) await turn();
      expect(closed).toBe(false);
      expect(r.ended).toBe(false);
      pending[0]!.end('done');
      await p;
      expect(r.completed).toBe(true);
      expect(r.body.toString()).toBe('done');
      expect(c.upstream.connectionCount).toBe(0);
      await waitFor(() => b.open() === 0, WAIT_MS, 'the backend to see the close');
    });

    test('queued requests are still served, then it resolves', async () => {
      const b = await httpBackend((req, res) => {
        req.resume();
        setImmediate(() => res.end(req.url));
      });
      const c = makeClient(b.url, { connections: 1 });
      const recs = [1, 2, 3].map((i) => c.send({ path: `/${i}` }));
      await c.upstream.close();
      expect(recs.map((r) => [r.completed, r.body.toString()])).toEqual([[true, '/1'], [true, '/2'], [true, '/3']]);
      expect(c.upstream.connectionCount).toBe(0);
    });

    test('closes idle connections at once', async () => {
      const b = await httpBackend((req, res) => {
        req.resume();
        res.end('x');
      });
      const c = makeClient(b.url);
      await c.send().done;
      expect(c.upstream.connectionCount).toBe(1);
      await c.upstream.close();
      expect(c.upstream.connectionCount).toBe(0);
      await waitFor(() => b.open() === 0, WAIT_MS, 'the backend to see the close');
    });

    test('dispatch after close: onError FULCRUM_POOL_CLOSED, asynchronously', async () => {
      const b = await rawBackend();
      const c = makeClient(b.url);
      await c.upstream.close();
      const r = c.send();
      expect(r.ended).toBe(false);
      await r.done;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.POOL_CLOSED);
      expect(r.events).toEqual(['error']);
      expect(b.conns).toHaveLength(0);
    });

    test('called twice while a request is in flight: both resolve', async () => {
      const { pending, b } = await holdingBackend();
      const c = makeClient(b.url);
      const r = c.send();
      await waitFor(() => pending.length === 1, WAIT_MS, 'the request');
      let first = false;
      let second = false;
      void c.upstream.close().then(() => {
        first = true;
      });
      void c.upstream.close().then(() => {
        second = true;
      });
      pending[0]!.end('done');
      await r.done;
      await waitFor(() => second, 1000, 'the second close()');
      await waitFor(() => first, 1000, 'the first close()');
    });
  });

  describe('request body errors', () => {
    test('the body stream failing mid-way: onError with its error, the connection closed', async () => {
      const b = await rawBackend();
      const c = makeClient(b.url);
      const body = new Readable({ read() {} });
      const r = c.send({ method: 'POST', path: '/u', body });
      body.push(Buffer.from('abc'));
      await waitFor(() => b.conns.length === 1 && b.bytesOf(0).toString('latin1').endsWith('3\r\nabc\r\n'), WAIT_MS, 'the first piece');
      const err = Object.assign(new Error('client aborted the upload'), { code: 'ECONNRESET' });
      body.destroy(err);
      await r.done;
      expect(r.error).toBe(err);
      expect(r.events).toEqual(['error']);
      await waitFor(() => b.conns[0]!.closed, WAIT_MS, 'the backend to see the close');
      expect(b.requests).toHaveLength(0);
    });

    test.each([
      ['longer', 'abc', 'defgh'],
      ['shorter', 'abc', null],
    ] as const)('a body %s than its Content-Length (5), once connected: FULCRUM_BODY_LENGTH, the connection closed, never more than 5 bytes sent', async (_, first, second) => {
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const c = makeClient(b.url);
      const body = new Readable({ read() {} });
      const r = c.send({ method: 'POST', path: '/len', headers: ['content-length', '5'], body });
      body.push(Buffer.from(first));
      await waitFor(() => b.conns.length === 1 && b.bytesOf(0).toString('latin1').endsWith(`\r\n\r\n${first}`), WAIT_MS, 'the first piece');
      body.push(second === null ? null : Buffer.from(second));
      await r.done;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.BODY_LENGTH);
      expect(r.events).toEqual(['error']);
      await waitFor(() => b.conns[0]!.closed, WAIT_MS, 'the backend to see the close');
      const raw = b.bytesOf(0).toString('latin1');
      expect(raw.slice(raw.indexOf('\r\n\r\n') + 4)).toBe(first);
      expect(b.requests).toHaveLength(0);
      // The next request gets a connection of its own.
      const r2 = c.send();
      await r2.done;
      expect(r2.completed).toBe(true);
      expect(b.conns).toHaveLength(2);
    });

    test.each([
      ['longer', ['abc', 'defgh']],
      ['shorter', ['abc']],
    ] as const)('a body %s than its Content-Length (5), all there before the connection is up: FULCRUM_BODY_LENGTH, no request reaches the backend', async (_, pieces) => {
      const b = await rawBackend((_req, conn) => conn.socket.write(OK_EMPTY));
      const c = makeClient(b.url);
      const r = c.send({ method: 'POST', path: '/len', headers: ['content-length', '5'], body: bodyOf(...pieces) });
      await r.done;
      expect(r.error!.code).toBe(UPSTREAM_ERRORS.BODY_LENGTH);
      expect(r.events).toEqual(['error']);
      await waitFor(() => c.upstream.connectionCount === 0, WAIT_MS, 'the socket to close');
      for (let i = 0; i < b.conns.length; i++) {
        const raw = b.bytesOf(i).toString('latin1');
        expect(raw.indexOf('\r\n\r\n') < 0 || raw.slice(raw.indexOf('\r\n\r\n') + 4).length <= 5).toBe(true);
      }
      expect(b.requests).toHaveLength(0);
    });

    test('an early response while the body is still going out: completes, and the connection is not reused', async () => {
      // The raw backend hands over only complete requests: this one is answered by hand, mid-body.
      const early = await rawBackend();
      const c = makeClient(early.url);
      const body = new Readable({ read() {} });
      const r = c.send({ method: 'POST', path: '/early', headers: ['content-length', '100'], body });
      body.push(Buffer.from('x'.repeat(10)));
      await waitFor(() => early.conns.length === 1 && early.bytesOf(0).includes('xxxxxxxxxx'), WAIT_MS, 'the start of the body');
      early.conns[0]!.socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig');
      await r.done;
      expect([r.status, r.body.toString(), r.completed]).toEqual([413, 'big', true]);
      await waitFor(() => early.conns[0]!.closed, WAIT_MS, 'the connection to close');
      body.push(Buffer.from('more'));
      body.destroy(new Error('late error'));
      await turn();
      expect(r.violations).toEqual([]);
    });
  });
});
