/**
 * Http1Server (src/http1/server.ts) on its own terms: what the byte-for-byte
 * comparison with node:http (http1-differential.test.ts) cannot show, because
 * it is about flow control, timing, load or the proxy around it. Real loopback
 * sockets only; every wait polls state against a deadline (no fixed sleeps).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { parseResponses, type ParsedResponse } from '../helpers/raw';
import { startFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { stalled, waitFor } from '../helpers/wait';
import { Http1Server, type Http1Handler, type Http1Options, type Http1Request, type Http1Response } from '../../src/http1/server';

const { cleanups } = useTeardown();

const MiB = 1024 * 1024;
const KiB = 1024;
const WAIT_MS = 3000;

// ---------------------------------------------------------------------------
// Helpers: a server on port 0 and raw clients, all closed after each test.

interface Served {
  readonly server: Http1Server;
  readonly port: number;
  connect(): Client;
}

async function serve(handler: Http1Handler, options: Partial<Http1Options> = {}): Promise<Served> {
  const server = new Http1Server({ headersTimeout: 60_000, keepAliveTimeout: 65_000, ...options }, handler);
  const sockets = new Set<net.Socket>();
  const clients: Client[] = [];
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  cleanups.push(() => new Promise<void>((resolve) => {
    for (const c of clients) c.socket.destroy();
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    connect() {
      const c = new Client(port);
      clients.push(c);
      return c;
    },
  };
}

/** A raw client that keeps every byte it receives and knows when the server closed. */
class Client {
  readonly socket: net.Socket;
  closed = false;
  #chunks: Buffer[] = [];
  #taken = 0;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.#chunks.push(d));
    const closed = () => {
      this.closed = true;
    };
    this.socket.on('end', closed);
    this.socket.on('close', closed);
    this.socket.on('error', closed);
  }

  get received(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** The next `n` complete responses (1xx count) after those already taken. */
  async responses(n: number, what = `${n} response(s)`): Promise<ParsedResponse[]> {
    let got: ParsedResponse[] = [];
    await waitFor(() => (got = parseResponses(this.received).responses).length >= this.#taken + n, WAIT_MS, what);
    const out = got.slice(this.#taken, this.#taken + n);
    this.#taken += n;
    return out;
  }
}

function header(r: ParsedResponse, name: string): string | undefined {
  return r.headers.find(([n]) => n === name)?.[1];
}

function sha1(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

function readAll(body: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => resolve(Buffer.concat(chunks)));
    body.on('error', reject);
  });
}

function send(res: Http1Response, status: number, body: string | Buffer): void {
  res.writeHead(status, ['Content-Type', 'text/plain', 'Content-Length', String(Buffer.byteLength(body))]);
  res.end(body);
}


const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

// ---------------------------------------------------------------------------

describe('Http1Server', () => {
  describe('backpressure', () => {
    test.each([
      ['takes body() and does not read it', true],
      ['has not taken body() yet', false],
    ])('upload: while the handler %s, the socket is not read; once read, every byte arrives', async (_, take) => {
      const TOTAL = 64 * MiB;
      let req: Http1Request | undefined;
      let res: Http1Response | undefined;
      const s = await serve((rq, rs) => {
        req = rq;
        res = rs;
        if (take) rq.body(); // taken, and not read
      });
      const c = s.connect();
      c.write(`POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ${TOTAL}\r\n\r\n`);
      // Queue it all at once (the same 1 MiB buffer 64 times): the client sends as fast as the server lets it.
      const chunk = Buffer.alloc(MiB, 0x61);
      for (let i = 0; i < TOTAL / MiB; i++) c.socket.write(chunk);
      await waitFor(() => req !== undefined, WAIT_MS, 'the handler');
      // The kernel's buffers fill up, then the client makes no more progress.
      await stalled(() => c.socket.writableLength, 'the upload to stall');
      expect(c.socket.writableLength).toBeGreaterThan(32 * MiB);
      expect(req!.socket.bytesRead).toBeLessThan(8 * MiB);

      let bytes = 0;
      const body = req!.body();
      body.on('data', (d: Buffer) => {
        bytes += d.length;
      });
      await new Promise<void>((resolve, reject) => {
        body.on('end', resolve);
        body.on('error', reject);
      });
      expect(bytes).toBe(TOTAL);
      expect(req!.complete).toBe(true);
      send(res!, 200, String(bytes));
      const [r] = await c.responses(1);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(String(TOTAL));
    });

    test('download: write() turns false and drain waits for a client that does not read; then every byte arrives', async () => {
      const TOTAL = 64 * MiB;
      const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(MiB, i + 1));
      const chunkAt = (i: number) => chunks[i % chunks.length]!;
      const expected = createHash('sha1');
      for (let i = 0; i < TOTAL / MiB; i++) expected.update(chunkAt(i));
      let written = 0;
      let waitingDrain = false;
      let maxQueued = 0;
      let serverSocket: net.Socket | undefined;
      const s = await serve((req, res) => {
        serverSocket = req.socket;
        res.writeHead(200, ['Content-Type', 'application/octet-stream', 'Content-Length', String(TOTAL)]);
        const pump = () => {
          waitingDrain = false;
          while (written < TOTAL) {
            const ok = res.write(chunkAt(written / MiB));
            written += MiB;
            maxQueued = Math.max(maxQueued, req.socket.writableLength);
            if (!ok) {
              waitingDrain = true;
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      });
      const c = net.connect(s.port, '127.0.0.1');
      cleanups.push(async () => {
        c.destroy();
      });
      c.pause();
      c.write(get('/big'));
      await waitFor(() => written > 0, WAIT_MS, 'the handler');
      await stalled(() => written, 'the handler to stop writing');
      expect(waitingDrain).toBe(true);
      expect(written).toBeLessThan(TOTAL / 2);
      // One chunk at a time is handed to the socket: never more than that is queued in the process.
      expect(maxQueued).toBeLessThanOrEqual(MiB + KiB);
      expect(serverSocket!.writableLength).toBeLessThanOrEqual(MiB + KiB);

      // Now read it all: count and hash, without keeping it.
      let head = '';
      let bodyBytes = -1;
      const got = createHash('sha1');
      c.on('data', (d: Buffer) => {
        if (bodyBytes < 0) {
          head += d.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const rest = Buffer.from(head.slice(end + 4), 'latin1');
          head = head.slice(0, end);
          bodyBytes = rest.length;
          got.update(rest);
          return;
        }
        bodyBytes += d.length;
        got.update(d);
      });
      c.resume();
      await waitFor(() => bodyBytes >= TOTAL, 10_000, 'the whole body');
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toMatch(/\r\nContent-Length: 67108864(\r\n|$)/);
      expect(bodyBytes).toBe(TOTAL);
      expect(got.digest('hex')).toBe(expected.digest('hex'));
    });
  });

  describe('request bodies on a kept-alive connection', () => {
    const bodies = [randomBytes(5), randomBytes(100 * KiB), randomBytes(3000)];
    const wire = Buffer.concat([
      Buffer.from(`POST /1 HTTP/1.1\r\nHost: t\r\nContent-Length: ${bodies[0]!.length}\r\n\r\n`, 'latin1'), bodies[0]!,
      Buffer.from(`POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: ${bodies[1]!.length}\r\n\r\n`, 'latin1'), bodies[1]!,
      // The third one chunked, in two chunks.
      Buffer.from(`POST /3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${(1000).toString(16)}\r\n`, 'latin1'),
      bodies[2]!.subarray(0, 1000),
      Buffer.from(`\r\n${(2000).toString(16)}\r\n`, 'latin1'), bodies[2]!.subarray(1000),
      Buffer.from('\r\n0\r\n\r\n', 'latin1'),
    ]);

    test.each([
      ['in one write', wire.length],
      ['in pieces of 7001 bytes, one per turn of the event loop', 7001],
    ])('three pipelined POSTs (5 B, 100 KiB, 3000 B chunked) %s: each handler gets its own body, answers in order', async (_, piece) => {
      const seen: string[] = [];
      let active = 0;
      let maxActive = 0;
      const s = await serve((req, res) => {
        active++;
        maxActive = Math.max(maxActive, active);
        readAll(req.body()).then((body) => {
          seen.push(`${req.url} ${body.length} ${sha1(body)}`);
          // Answer the first one last in time: its answer must still come first.
          setImmediate(() => {
            active--;
            send(res, 200, `${req.url} ${body.length} ${sha1(body)}`);
          });
        }, () => undefined);
      });
      const c = s.connect();
      for (let i = 0; i < wire.length; i += piece) {
        c.write(wire.subarray(i, i + piece));
        if (piece < wire.length) await new Promise((r) => setImmediate(r));
      }
      const rs = await c.responses(3);
      const want = bodies.map((b, i) => `/${i + 1} ${b.length} ${sha1(b)}`);
      expect(rs.map((r) => r.body.toString())).toEqual(want);
      expect(seen).toEqual(want);
      expect(maxActive).toBe(1);
      expect(c.closed).toBe(false);
    });

    test('100 pipelined GETs in one write (past the queue that pauses reading): all answered, in order, one at a time', async () => {
      let active = 0;
      let maxActive = 0;
      const s = await serve((req, res) => {
        active++;
        maxActive = Math.max(maxActive, active);
        setImmediate(() => {
          active--;
          send(res, 200, req.url!);
        });
      });
      const c = s.connect();
      const paths = Array.from({ length: 100 }, (_, i) => `/${i}`);
      c.write(paths.map((p) => get(p)).join(''));
      const rs = await c.responses(100);
      expect(rs.map((r) => r.body.toString())).toEqual(paths);
      expect(maxActive).toBe(1);
      c.write(get('/after'));
      expect((await c.responses(1))[0]!.body.toString()).toBe('/after');
    });

    // The body looks like requests: were it parsed as such, the handler would see /smuggled.
    const unit = 'GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n';
    const body = unit.repeat(Math.ceil((200 * KiB) / unit.length)).slice(0, 200 * KiB);
    const head = `POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n`;

    test.each([
      ['at once, with the body and the next request already sent', 'sync', true],
      ['on a later turn, once more than 64 KiB of the body waits unread', 'later', true],
      ['before the body is even sent', 'sync', false],
    ])('a 200 KiB POST answered %s without reading its body: the rest is dropped, the next request is served', async (_, when, together) => {
      const urls: string[] = [];
      const s = await serve((req, res) => {
        urls.push(req.url);
        if (req.url !== '/early') return send(res, 200, `second ${req.url}`);
        if (when === 'sync') send(res, 200, 'early');
        else setImmediate(() => send(res, 200, 'early'));
      });
      const c = s.connect();
      if (together) {
        c.write(head + body + get('/second'));
      } else {
        c.write(head);
        const [r] = await c.responses(1, 'the early answer');
        expect(r.body.toString()).toBe('early');
        c.write(body);
        c.write(get('/second'));
      }
      const rs = together ? await c.responses(2) : [undefined, ...(await c.responses(1))];
      if (together) expect(rs[0]!.body.toString()).toBe('early');
      expect(rs[1]!.status).toBe(200);
      expect(rs[1]!.body.toString()).toBe('second /second');
      expect(urls).toEqual(['/early', '/second']);
      expect(c.closed).toBe(false);
    });
  });

  describe('keepAliveTimeout', () => {
    const options = { keepAliveTimeout: 300, headersTimeout: 60_000, connectionsCheckingInterval: 50 };

    test('an idle keep-alive connection is closed about keepAliveTimeout after its last answer, not before', async () => {
      const s = await serve((_req, res) => send(res, 200, 'ok'), options);
      const c = s.connect();
      c.write(get('/'));
      await c.responses(1);
      const answeredAt = Date.now();
      await waitFor(() => c.closed, WAIT_MS, 'the server to close the idle connection');
      const after = Date.now() - answeredAt;
      expect(after).toBeGreaterThanOrEqual(250);
      expect(after).toBeLessThan(WAIT_MS);
    });

    test('after a bad request is answered, a client that never closes its side is cut off after keepAliveTimeout', async () => {
      const s = await serve((_req, res) => send(res, 200, 'ok'), options);
      s.server.on('clientError', (_err: Error, socket: net.Socket) => socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
      let serverSide: net.Socket | undefined;
      s.server.once('connection', (socket: net.Socket) => { serverSide = socket; });
      const c = s.connect();
      c.socket.allowHalfOpen = true; // keep our side open after the server's FIN
      c.write('NOT HTTP\r\n\r\n');
      const [r] = await c.responses(1, 'the 400');
      expect(r.status).toBe(400);
      await waitFor(() => serverSide?.destroyed === true, WAIT_MS, 'the server to cut the half-open connection');
    });

    test('a request in flight for longer than keepAliveTimeout, and a fresh connection, are not closed', async () => {
      let release: (() => void) | undefined;
      const s = await serve((req, res) => {
        if (req.url === '/slow') release = () => send(res, 200, 'slow');
        else send(res, 200, 'quick');
      }, options);
      const busy = s.connect();
      busy.write(get('/slow'));
      await waitFor(() => release !== undefined, WAIT_MS, 'the slow handler');
      const fresh = s.connect();
      await new Promise<void>((resolve) => fresh.socket.once('connect', () => resolve()));
      // Each idle connection closing is a clock: two of them in a row, one after
      // the other, prove more than 2 x 300 ms went by for `busy` and `fresh`.
      for (let i = 0; i < 2; i++) {
        const idle = s.connect();
        idle.write(get('/quick'));
        await idle.responses(1);
        await waitFor(() => idle.closed, WAIT_MS, `idle connection ${i + 1} to be closed`);
      }
      expect(busy.closed).toBe(false);
      expect(fresh.closed).toBe(false);
      release!();
      const [r] = await busy.responses(1);
      expect(r.body.toString()).toBe('slow');
      expect(header(r, 'connection')).toBe('keep-alive');
      // Served and idle now: its turn to be closed.
      await waitFor(() => busy.closed, WAIT_MS, 'the busy connection, once idle, to be closed');
      fresh.write(get('/late'));
      const [late] = await fresh.responses(1);
      expect(late.body.toString()).toBe('quick');
    });
  });

  describe('watchBody', () => {
    test('fires for a body that stops arriving, never for one completed in time', async () => {
      const fired: string[] = [];
      const watchedAt = new Map<string, number>();
      const got = new Map<string, number>();
      const s = await serve((req, res) => {
        const url = req.url;
        got.set(url, 0);
        req.body().on('data', (d: Buffer) => got.set(url, got.get(url)! + d.length));
        watchedAt.set(url, Date.now());
        req.watchBody(200, () => {
          fired.push(`${url} after ${Date.now() - watchedAt.get(url)!} ms`);
          send(res, 408, 'too slow');
        });
        // Answered with 408, the body is dropped and ends: no second answer then.
        readAll(req.body()).then((b) => res.headersSent || send(res, 200, String(b.length)), () => undefined);
      });
      // Completed: half the body, then (once the handler has it) the other half.
      const done = s.connect();
      done.write('POST /done HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(50));
      await waitFor(() => got.get('/done') === 50, WAIT_MS, 'the first half of /done');
      done.write('y'.repeat(50));
      const [ok] = await done.responses(1);
      expect(ok.body.toString()).toBe('100');
      // Stalled: 10 bytes of 100. Its timer started after /done's, so /done's would have fired first.
      const stuck = s.connect();
      stuck.write('POST /stuck HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789');
      await waitFor(() => fired.length > 0, WAIT_MS, 'the watchBody callback of /stuck');
      await new Promise((r) => setImmediate(r));
      expect(fired).toHaveLength(1);
      expect(fired[0]).toMatch(/^\/stuck after \d+ ms$/);
      expect(Number(/after (\d+)/.exec(fired[0]!)![1])).toBeGreaterThanOrEqual(190);
      expect(got.get('/stuck')).toBe(10);
      const [r] = await stuck.responses(1);
      expect(r.status).toBe(408);
    });

    test('each body byte restarts the wait: a body trickled slower in total than the wait, but faster per byte, is not cut', async () => {
      let fired = false;
      const s = await serve((req, res) => {
        req.watchBody(400, () => {
          fired = true;
        });
        readAll(req.body()).then((b) => send(res, 200, String(b.length)), () => undefined);
      });
      const c = s.connect();
      c.write('POST /trickle HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n');
      // 12 bytes 60 ms apart: 720 ms in all. These gaps are the input, not a wait for state.
      const started = Date.now();
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 60));
        c.write('z');
      }
      const [r] = await c.responses(1);
      expect(Date.now() - started).toBeGreaterThan(400);
      expect(r.body.toString()).toBe('12');
      expect(fired).toBe(false);
    });
  });

  describe('the client leaves before the answer', () => {
    test.each([
      ['resets the connection', (c: Client) => c.socket.destroy()],
      ['half-closes it (FIN)', (c: Client) => c.socket.end()],
    ])('mid-body, the client %s: res close fires once, res.destroyed, the body stream errors', async (_, leave) => {
      const events: string[] = [];
      let res: Http1Response | undefined;
      let req: Http1Request | undefined;
      let bodyBytes = 0;
      const s = await serve((rq, rs) => {
        events.push(`handler ${rq.url}`);
        req = rq;
        res = rs;
        rs.on('close', () => events.push(`res close destroyed=${rs.destroyed}`));
        const body = rq.body();
        body.on('data', (d: Buffer) => {
          bodyBytes += d.length;
        });
        body.on('end', () => events.push('body end'));
        body.on('error', (err: NodeJS.ErrnoException) => events.push(`body error ${err.code}`));
      });
      const c = s.connect();
      c.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789');
      await waitFor(() => bodyBytes === 10, WAIT_MS, 'the first 10 body bytes');
      leave(c);
      await waitFor(() => events.some((e) => e.startsWith('body error')), WAIT_MS, 'the body to error');
      await waitFor(() => req!.socket.destroyed, WAIT_MS, 'the server side of the socket to close');
      // Answering now is harmless, and fires nothing more.
      res!.writeHead(200, ['Content-Length', '2']);
      expect(res!.write('no')).toBe(true);
      res!.end();
      await new Promise((r) => setImmediate(r));
      expect(events).toEqual(['handler /upload', 'res close destroyed=true', 'body error ECONNRESET']);
      expect(res!.destroyed).toBe(true);
    });

    /** A handler that answers /wait half-way (headers and a first chunk) and everything else at once. */
    async function halfAnswer(events: string[]): Promise<{ s: Served; res: () => Http1Response | undefined }> {
      let res: Http1Response | undefined;
      const s = await serve((req, rs) => {
        events.push(`handler ${req.url}`);
        if (req.url !== '/wait') return send(rs, 200, 'no');
        res = rs;
        rs.on('close', () => events.push(`res close destroyed=${rs.destroyed} headersSent=${rs.headersSent}`));
        rs.writeHead(200, ['Content-Type', 'text/plain']);
        rs.write('partial');
      });
      return { s, res: () => res };
    }

    test('a GET answered half-way: close fires once, ending the answer afterwards is harmless', async () => {
      const events: string[] = [];
      const { s, res } = await halfAnswer(events);
      const c = s.connect();
      c.write(get('/wait'));
      await waitFor(() => c.received.includes('partial'), WAIT_MS, 'the first chunk');
      c.socket.destroy();
      await waitFor(() => events.length >= 2, 1000, 'res close');
      expect(res()!.write('more')).toBe(true);
      res()!.end('rest');
      expect(res()!.destroyed).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(events).toEqual(['handler /wait', 'res close destroyed=true headersSent=true']);
    });

    // Reading goes on while a few requests wait (PIPELINE_MAX), so the client's
    // FIN or RST is seen and the exchange behind res (the upstream request) is aborted.
    test('a GET answered half-way, with another pipelined behind it: the client leaving is noticed, the second is never handed over', async () => {
      const events: string[] = [];
      const { s, res } = await halfAnswer(events);
      const c = s.connect();
      c.write(get('/wait') + get('/behind'));
      await waitFor(() => c.received.includes('partial'), WAIT_MS, 'the first chunk');
      c.socket.destroy();
      await waitFor(() => events.length >= 2, 1000, 'res close');
      res()!.end('rest');
      await new Promise((r) => setImmediate(r));
      expect(events).toEqual(['handler /wait', 'res close destroyed=true headersSent=true']);
    });
  });

  test('200 concurrent keep-alive clients, 5 requests each (GET and POST alternating), all answered correctly', async () => {
    const CLIENTS = 200;
    const ROUNDS = 5;
    let handled = 0;
    const s = await serve((req, res) => {
      readAll(req.body()).then((body) => setImmediate(() => {
        handled++;
        send(res, 200, `${req.method} ${req.url} ${body.toString()}`);
      }), () => undefined);
    });
    const started = Date.now();
    const clients = Array.from({ length: CLIENTS }, () => s.connect());
    const mismatches: string[] = [];
    await Promise.all(clients.map(async (c, i) => {
      for (let j = 0; j < ROUNDS; j++) {
        const payload = `client ${i} request ${j}`;
        if (j % 2 === 0) c.write(get(`/${i}/${j}`));
        else c.write(`POST /${i}/${j} HTTP/1.1\r\nHost: t\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`);
        const [r] = await c.responses(1, `client ${i} answer ${j}`);
        const want = j % 2 === 0 ? `GET /${i}/${j} ` : `POST /${i}/${j} ${payload}`;
        if (r.status !== 200 || r.body.toString() !== want) mismatches.push(`${i}/${j}: ${r.status} ${r.body.toString()}`);
      }
    }));
    expect(mismatches).toEqual([]);
    expect(handled).toBe(CLIENTS * ROUNDS);
    expect(clients.every((c) => !c.closed)).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    // Every connection is forgotten once its client leaves.
    for (const c of clients) c.socket.end();
    const count = () => new Promise<number>((resolve, reject) => s.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    await waitFor(async () => (await count()) === 0, WAIT_MS, 'every connection to close');
  });

  describe('through the proxy', () => {
    async function proxy(): Promise<number> {
      const backend = http.createServer((req, res) => {
        if (req.url === '/echo') {
          const chunks: Buffer[] = [];
          req.on('data', (d: Buffer) => chunks.push(d));
          req.on('end', () => {
            const b = Buffer.concat(chunks);
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length, 'x-expect-seen': String(req.headers.expect ?? '') });
            res.end(b);
          });
          return;
        }
        req.resume();
        if (req.url === '/hop' || req.url === '/hop-named') {
          // Hop-by-hop headers in odd letter case, and one Connection names (the byte path's fallback).
          res.setHeader('X-End-To-End', 'yes');
          res.setHeader('X-Named-Hop', 'secret');
          res.setHeader('KEEP-ALIVE', 'timeout=5');
          res.setHeader('Proxy-CONNECTION', 'keep-alive');
          res.setHeader('tRaIlEr', 'X-T');
          res.setHeader('Upgrade', 'h2c');
          res.setHeader('Connection', req.url === '/hop' ? 'Keep-Alive' : 'keep-alive, X-Named-Hop');
          res.writeHead(200, { 'content-type': 'text/plain' }); // chunked: node:http allows Trailer only so
          res.end('hop');
        } else if (req.url === '/stream') {
          // No content-length: the length is known only at the end.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          for (const part of STREAM_PARTS) res.write(part);
          res.end();
        } else if (req.url === '/sized') {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
          res.end(req.method === 'HEAD' ? undefined : 'sized');
        } else {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 4 });
          res.end('ping');
        }
      });
      await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => {
        backend.closeAllConnections();
        backend.close(() => resolve());
      }));
      const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - pool: p
pools:
  p:
    strategy: round-robin
    backends:
      - url: http://127.0.0.1:${(backend.address() as net.AddressInfo).port}
        name: a
`);
      cleanups.push(() => f.stop());
      // These tests are about Http1Server: the plain-HTTP listener must be one.
      expect(f.fulcrum.listeners[0]!.server).toBeInstanceOf(Http1Server);
      return Number(f.url().split(':').pop());
    }

    const STREAM_PARTS = [Buffer.from('first part\n'), randomBytes(150 * KiB), Buffer.from('middle\n'), randomBytes(90 * KiB), Buffer.from('end\n')];
    const STREAM = Buffer.concat(STREAM_PARTS);

    function client(port: number): Client {
      const c = new Client(port);
      cleanups.push(async () => {
        c.socket.destroy();
      });
      return c;
    }

    test('Expect: 100-continue: "100 Continue" before the body is sent, then the backend echoes all of it', async () => {
      const port = await proxy();
      const body = randomBytes(300 * KiB);
      const c = client(port);
      c.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      const [cont] = await c.responses(1, '100 Continue');
      expect(cont.status).toBe(100);
      expect(c.received.toString('latin1')).toBe('HTTP/1.1 100 Continue\r\n\r\n');
      c.write(body);
      const [r] = await c.responses(1, 'the echo');
      expect(r.status).toBe(200);
      expect(header(r, 'content-length')).toBe(String(body.length));
      expect(r.body.length).toBe(body.length);
      expect(r.body.equals(body)).toBe(true);
      // Expect is hop-by-hop: answered here, not sent on.
      expect(header(r, 'x-expect-seen')).toBe('');
    });

    test.each(['/hop', '/hop-named'])('%s: the backend\'s hop-by-hop headers, and those its Connection names, are not forwarded', async (path) => {
      const port = await proxy();
      const c = client(port);
      c.write(get(path));
      const [r] = await c.responses(1);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('hop');
      const names = r.headers.map(([n]) => n.toLowerCase());
      for (const hop of ['proxy-connection', 'trailer', 'upgrade']) expect(names).not.toContain(hop);
      // Connection and Keep-Alive once each: ours (as node:http writes them), not the backend's.
      expect(r.headers.filter(([n]) => /^(connection|keep-alive)$/i.test(n))).toEqual([['connection', 'keep-alive'], ['keep-alive', 'timeout=65']]);
      // The backend's chunked framing is undone; Fulcrum frames the body itself, once.
      expect(names.filter((n) => n === 'transfer-encoding')).toEqual(['transfer-encoding']);
      expect(names.includes('x-named-hop')).toBe(path === '/hop');
      expect(header(r, 'x-end-to-end')).toBe('yes');
    });

    test('a backend answer without content-length reaches HTTP/1.1 chunked, kept alive, intact', async () => {
      const port = await proxy();
      const c = client(port);
      c.write(get('/stream'));
      const [r] = await c.responses(1);
      expect(r.status).toBe(200);
      expect(header(r, 'transfer-encoding')).toBe('chunked');
      expect(header(r, 'content-length')).toBeUndefined();
      expect(r.body.equals(STREAM)).toBe(true);
      // The framing ended exactly where the body did: the connection serves the next request.
      c.write(get('/ping'));
      const [p] = await c.responses(1);
      expect(p.body.toString()).toBe('ping');
      expect(c.closed).toBe(false);
    });

    test('a backend answer without content-length reaches HTTP/1.0 delimited by close, intact', async () => {
      const port = await proxy();
      const c = client(port);
      c.write('GET /stream HTTP/1.0\r\nHost: t\r\n\r\n');
      await waitFor(() => c.closed, WAIT_MS, 'the proxy to close the connection');
      const data = c.received;
      const end = data.indexOf('\r\n\r\n');
      const head = data.toString('latin1', 0, end).toLowerCase();
      expect(head).toMatch(/^http\/1\.1 200 ok\r\n/);
      expect(head).not.toMatch(/\r\ntransfer-encoding:/);
      expect(head).not.toMatch(/\r\ncontent-length:/);
      expect(head).toMatch(/\r\nconnection: close(\r\n|$)/);
      expect(data.subarray(end + 4).equals(STREAM)).toBe(true);
    });

    test('HEAD: heads only, no body bytes, and the next pipelined request parses right after them', async () => {
      const port = await proxy();
      const c = client(port);
      c.write('HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nHEAD /sized HTTP/1.1\r\nHost: t\r\n\r\n' + get('/ping'));
      await waitFor(() => c.received.toString('latin1').endsWith('\r\n\r\nping'), WAIT_MS, 'the three answers');
      const parts = c.received.toString('latin1').split('\r\n\r\n');
      // Two heads with nothing after them, a third head, then its 4-byte body.
      expect(parts).toHaveLength(4);
      const [streamHead, sizedHead, pingHead, ping] = parts.map((p) => p.toLowerCase());
      expect(streamHead).toMatch(/^http\/1\.1 200 ok\r\n/);
      expect(streamHead).not.toMatch(/\r\ncontent-length: [1-9]/);
      expect(sizedHead).toMatch(/^http\/1\.1 200 ok\r\n/);
      expect(sizedHead).toMatch(/\r\ncontent-length: 5(\r\n|$)/);
      expect(pingHead).toMatch(/^http\/1\.1 200 ok\r\n/);
      expect(ping).toBe('ping');
      expect(c.closed).toBe(false);
    });
  });
});
