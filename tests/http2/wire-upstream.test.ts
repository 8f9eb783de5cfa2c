/**
 * The HTTP/2 wire towards backends (RFC 9113), for pools with `protocol:
 * http2`: the backend is a raw TCP server on port 0 that reads Fulcrum's
 * preface and frames and answers with frames the test builds
 * (tests/helpers/h2raw.ts), so it can split, pad, refuse, reset, send
 * garbage and count connections and window bytes as no HTTP/2 library lets
 * a server do. Clients are real (node:http, node:http2); where a request must
 * go elsewhere the other backend is a real node:http2 server.
 *
 * These test Fulcrum's own HTTP/2 engine (src/http2/upstream.ts): with
 * FULCRUM_HTTP2=node (node:http2's client, whose wire nghttp2 owns) the
 * whole file is skipped.
 */
import http2, { type IncomingHttpHeaders } from 'node:http2';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { startH2Backend } from '../helpers/backends';
import { stalled, waitFor } from '../helpers/wait';
import {
  FLAG_ACK, FLAG_END_STREAM, FRAME_DATA, FRAME_GOAWAY, FRAME_PING, FRAME_RST_STREAM, FRAME_SETTINGS, FRAME_WINDOW_UPDATE, INTERNAL_ERROR,
  NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, SETTINGS_ENABLE_PUSH, SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, dataPayload,
  fieldOf, frame, onRequest, settingsOf, startRawH2Backend, type Frame, type RawH2, type RawH2Backend,
} from '../helpers/h2raw';

jest.setTimeout(15_000);

const describeOwn = process.env.FULCRUM_HTTP2 === 'node' ? describe.skip : describe;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function rawBackend(onConnection: (c: RawH2) => void, settings: readonly (readonly [number, number])[] = []): Promise<RawH2Backend> {
  const b = await startRawH2Backend(onConnection, settings);
  cleanups.push(() => b.close());
  return b;
}

/** A Fulcrum with an HTTP/1.1 listener `public` and an h2c listener `h2c`, both to the http2 pool `p`. */
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

/** A response written as the backend: one HEADERS (END_HEADERS) and the body in one DATA with END_STREAM. */
function answer(c: RawH2, id: number, body: string, fields: readonly string[] = []): void {
  c.headers(id, [':status', '200', 'content-type', 'text/plain', ...fields]);
  c.data(id, Buffer.from(body), true);
}

/** A node:http2 backend that answers 200 with its name, closed after the test. */
async function goodBackend(): Promise<{ url: string; seen: IncomingHttpHeaders[] }> {
  const b = await startH2Backend((stream) => {
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'x-backend': 'good' });
      stream.end('good');
    });
  });
  cleanups.push(() => b.close());
  return b;
}

function h2Get(address: string, path: string, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; body: string; trailers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({ ':path': path, ...headers });
    let status = 0;
    let trailers: IncomingHttpHeaders = {};
    let body = '';
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.on('trailers', (t) => { trailers = t; });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => { body += d; });
    stream.on('end', () => {
      session.close();
      resolve({ status, body, trailers });
    });
    stream.on('error', reject);
  });
}

function h2Post(address: string, path: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const stream = session.request({ ':path': path, ':method': 'POST' });
    let status = 0;
    let out = '';
    stream.on('response', (h) => { status = Number(h[':status']); });
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => { out += d; });
    stream.on('end', () => {
      session.close();
      resolve({ status, body: out });
    });
    stream.on('error', reject);
    stream.end(body);
  });
}

describeOwn('http2 pools on the wire (Fulcrum\'s own HTTP/2)', () => {
  test('§6.2, §6.10, §6.1: a response head over HEADERS (PADDED) and CONTINUATIONs and padded DATA reach an HTTP/1.1 client intact', async () => {
    const long = 'L'.repeat(500);
    const b = await rawBackend((c) => onRequest(c, (id) => {
      c.headers(id, [':status', '200', 'x-long', long, 'x-short', 's', 'content-type', 'text/plain'], { pad: 9, priority: true, split: 64 });
      c.data(id, Buffer.from('hello '), false, 4);
      c.data(id, Buffer.from(''), false, 20);
      c.data(id, Buffer.from('world'), true, 1);
    }));
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    const r = await request(`${f.url('public')}/split`);
    expect(r.status).toBe(200);
    expect(r.headers['x-long']).toBe(long);
    expect(r.headers['x-short']).toBe('s');
    expect(r.body).toBe('hello world');
  });

  test('§8.1: trailers in a HEADERS with END_STREAM reach an HTTP/2 client that sent te: trailers', async () => {
    let requestFields: string[] = [];
    const b = await rawBackend((c) => onRequest(c, (id, fields) => {
      requestFields = fields;
      c.headers(id, [':status', '200', 'content-type', 'application/octet-stream']);
      c.data(id, Buffer.from('payload'));
      c.headers(id, ['x-checksum', 'abc', 'x-count', '7'], { endStream: true, split: 5 });
    }));
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    const r = await h2Get(f.fulcrum.address('h2c'), '/t', { te: 'trailers' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('payload');
    expect(r.trailers['x-checksum']).toBe('abc');
    expect(r.trailers['x-count']).toBe('7');
    expect(fieldOf(requestFields, 'te')).toBe('trailers');
    expect(fieldOf(requestFields, ':path')).toBe('/t');
  });

  test('§5.1.2 SETTINGS_MAX_CONCURRENT_STREAMS 1: two requests at once open two connections', async () => {
    const pending: [RawH2, number][] = [];
    const b = await rawBackend((c) => onRequest(c, (id) => pending.push([c, id])), [[SETTINGS_MAX_CONCURRENT_STREAMS, 1]]);
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    const first = request(`${f.url('public')}/1`);
    await waitFor(() => pending.length === 1, 5000, 'the first request at the backend');
    // Fulcrum has applied the limit once it acknowledged the SETTINGS that carry it.
    await b.connections[0]!.waitFrame((x) => x.type === FRAME_SETTINGS && (x.flags & FLAG_ACK) !== 0, 'Fulcrum\'s SETTINGS ACK');
    const second = request(`${f.url('public')}/2`);
    await waitFor(() => pending.length === 2, 5000, 'the second request at the backend');
    expect(b.connections.length).toBe(2);
    expect(pending[0]![0]).not.toBe(pending[1]![0]);
    for (const [c, id] of pending) answer(c, id, `on ${b.connections.indexOf(c)}`);
    expect((await first).body).toBe('on 0');
    expect((await second).body).toBe('on 1');
  });

  test('§6.9: a 200 KB upload to a backend granting INITIAL_WINDOW_SIZE 1000 arrives whole and in order, never beyond the windows or 16384 bytes a frame', async () => {
    const upload = Buffer.alloc(200_000);
    for (let i = 0; i < upload.length; i++) upload[i] = i % 251;
    const violations: string[] = [];
    const uploaded: Buffer[] = [];
    let frames = 0;
    let largest = 0;
    const b = await rawBackend((c) => {
      c.autoWindow = false;
      // The windows as the backend grants them. Until Fulcrum acknowledges our SETTINGS its streams
      // start at 65535 (RFC 9113 §6.9.2: it may send before it has read them); from then on at 1000.
      let initial = 65_535;
      let connWindow = 65_535;
      const windows = new Map<number, number>();
      onRequest(c, (id) => windows.set(id, initial));
      c.onFrame((x: Frame) => {
        if (x.type === FRAME_SETTINGS && (x.flags & FLAG_ACK) !== 0) {
          for (const [id, w] of windows) windows.set(id, w + 1000 - initial);
          initial = 1000;
        }
        if (x.type !== FRAME_DATA) return;
        const n = x.payload.length;
        const w = windows.get(x.streamId) ?? 0;
        if (n > w) violations.push(`${n} bytes on stream ${x.streamId} with a window of ${w}`);
        if (n > connWindow) violations.push(`${n} bytes with a connection window of ${connWindow}`);
        if (n > 16_384) violations.push(`a DATA frame of ${n} bytes`);
        connWindow -= n;
        if (x.streamId === 3) {
          uploaded.push(dataPayload(x));
          frames++;
          largest = Math.max(largest, n);
        }
        if ((x.flags & FLAG_END_STREAM) !== 0) {
          answer(c, x.streamId, `got ${Buffer.concat(x.streamId === 3 ? uploaded : []).length}`);
          return;
        }
        // The backend reads what came and gives it back: the stream's window byte for byte, the connection's in batches.
        if (n > 0) c.windowUpdate(x.streamId, n);
        if (connWindow < 20_000) {
          c.windowUpdate(0, 40_000);
          connWindow += 40_000;
        }
      });
    }, [[SETTINGS_INITIAL_WINDOW_SIZE, 1000]]);
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    // A first request brings the connection up and Fulcrum to the backend's SETTINGS (the accounting above covers either way).
    expect((await request(`${f.url('public')}/warm`, { method: 'POST', body: 'x'.repeat(5000) })).body).toBe('got 0');
    const r = await request(`${f.url('public')}/up`, { method: 'POST', body: upload });
    expect(r.status).toBe(200);
    expect(violations).toEqual([]);
    expect(b.connections.length).toBe(1);
    expect(r.body).toBe('got 200000');
    expect(Buffer.concat(uploaded).equals(upload)).toBe(true);
    // Stream 3 opened after the SETTINGS: never more than 1000 bytes in flight.
    expect(largest).toBeLessThanOrEqual(1000);
    expect(frames).toBeGreaterThanOrEqual(200);
  });

  test('§8.1: a backend that answers before reading the upload, then RST_STREAM NO_ERROR: the client gets the whole answer', async () => {
    const b = await rawBackend((c) => onRequest(c, (id, fields) => {
      if (fieldOf(fields, ':path') !== '/early') return answer(c, id, 'fine');
      c.headers(id, [':status', '200', 'content-type', 'text/plain']);
      c.data(id, Buffer.from('early answer'), true);
      c.rst(id, NO_ERROR);
    }));
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    const r = await request(`${f.url('public')}/early`, { method: 'POST', body: Buffer.alloc(300_000, 1) });
    expect(r.status).toBe(200);
    expect(r.body).toBe('early answer');
    const h2 = await h2Post(f.fulcrum.address('h2c'), '/early', Buffer.alloc(300_000, 2));
    expect(h2.status).toBe(200);
    expect(h2.body).toBe('early answer');
    expect((await request(`${f.url('public')}/next`)).body).toBe('fine');
  });

  test('§6.9: a backend sending as fast as Fulcrum\'s windows allow is held back while the client does not read, and goes on as it reads', async () => {
    const total = 12 << 20;
    const chunk = Buffer.alloc(16_384);
    for (let i = 0; i < chunk.length; i++) chunk[i] = i % 253;
    let sent = 0;
    let fulcrumResets = 0;
    const b = await rawBackend((c) => {
      let connWindow = 65_535;
      let streamWindow = 0;
      let stream = 0;
      const pump = (): void => {
        while (stream !== 0 && sent < total && Math.min(connWindow, streamWindow) >= chunk.length) {
          connWindow -= chunk.length;
          streamWindow -= chunk.length;
          sent += chunk.length;
          c.data(stream, chunk, sent === total);
        }
      };
      c.onFrame((x: Frame) => {
        if (x.type === FRAME_SETTINGS && (x.flags & FLAG_ACK) === 0) streamWindow += settingsOf(x).get(SETTINGS_INITIAL_WINDOW_SIZE)! - 65_535;
        if (x.type === FRAME_RST_STREAM) fulcrumResets++;
        if (x.type === FRAME_WINDOW_UPDATE) {
          if (x.streamId === 0) connWindow += x.payload.readUInt32BE(0);
          else streamWindow += x.payload.readUInt32BE(0);
          pump();
        }
      });
      onRequest(c, (id) => {
        stream = id;
        streamWindow += 65_535;
        c.headers(id, [':status', '200', 'content-type', 'application/octet-stream']);
        pump();
      });
    });
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    const { default: http } = await import('node:http');
    let received = 0;
    let intact = true;
    const done = new Promise<void>((resolve, reject) => {
      const req = http.get(`${f.url('public')}/flood`, { agent: false }, (res) => {
        res.pause();
        (async () => {
          await stalled(() => sent, 'the backend held back by Fulcrum\'s windows');
          expect(sent).toBeLessThan(total);
          res.on('data', (d: Buffer) => {
            for (let i = 0; i < d.length; i += 997) if (d[i] !== ((received + i) % 16_384) % 253) intact = false;
            received += d.length;
          });
          res.on('end', resolve);
          res.resume();
        })().catch(reject);
      });
      req.on('error', reject);
    });
    await done;
    expect(received).toBe(total);
    expect(intact).toBe(true);
    expect(fulcrumResets).toBe(0);
  });

  describe('a backend that sends garbage: 502 (the unknown frame type is ignored), Fulcrum lives', () => {
    // /bad gets garbage every time: the exchange sends a GET that was reset before any answer once more
    // (a stale keep-alive socket, for HTTP/1.1), and that one gets garbage too.
    test('§6.1 DATA on stream 0: a connection error (GOAWAY PROTOCOL_ERROR); the next request opens a new connection', async () => {
      const garbled = new Set<RawH2>();
      const answered: RawH2[] = [];
      const b = await rawBackend((c) => onRequest(c, (id, fields) => {
        if (fieldOf(fields, ':path') === '/bad') {
          garbled.add(c);
          c.data(0, Buffer.from('garbage'));
        } else {
          answered.push(c);
          answer(c, id, 'fine');
        }
      }));
      const f = await fulcrum(`    backends: [{ url: ${b.url} }]
    retries: { attempts: 0 }`);
      const bad = await request(`${f.url('public')}/bad`);
      expect(bad.status).toBe(502);
      expect(garbled.size).toBeGreaterThan(0);
      for (const c of garbled) {
        const goaway = await c.waitFrame((x) => x.type === FRAME_GOAWAY, 'Fulcrum\'s GOAWAY');
        expect(goaway.payload.readUInt32BE(4)).toBe(PROTOCOL_ERROR);
        await c.waitClosed();
      }
      const next = await request(`${f.url('public')}/next`);
      expect(next.status).toBe(200);
      expect(next.body).toBe('fine');
      expect(garbled.has(answered[0]!)).toBe(false);
    });

    test('§8.1.1 a HEADERS without :status: 502, the stream reset with PROTOCOL_ERROR, the next request answered', async () => {
      const b = await rawBackend((c) => onRequest(c, (id, fields) => {
        if (fieldOf(fields, ':path') === '/bad') c.headers(id, ['content-type', 'text/plain'], { endStream: true });
        else answer(c, id, 'fine');
      }));
      const f = await fulcrum(`    backends: [{ url: ${b.url} }]
    retries: { attempts: 0 }`);
      const bad = await request(`${f.url('public')}/bad`);
      expect(bad.status).toBe(502);
      expect(bad.body).toBe('bad gateway: the backend reset the stream\n');
      const rst = await b.connections[0]!.waitRst(1);
      expect(rst).toBe(PROTOCOL_ERROR);
      const next = await request(`${f.url('public')}/next`);
      expect(next.status).toBe(200);
      expect(next.body).toBe('fine');
    });

    test('§4.1, §5.5 a frame of an unknown type is ignored: the response goes on, on the same connection', async () => {
      const b = await rawBackend((c) => onRequest(c, (id) => {
        c.headers(id, [':status', '200']);
        c.send(frame(0xfa, 0xff, id, Buffer.from('extension')), frame(0xfb, 0, 0, Buffer.alloc(30)));
        c.data(id, Buffer.from('known'), true);
      }));
      const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
      for (const path of ['/a', '/b']) {
        const r = await request(`${f.url('public')}${path}`);
        expect(r.status).toBe(200);
        expect(r.body).toBe('known');
      }
      expect(b.connections.length).toBe(1);
      expect(b.connections[0]!.frames.some((x) => x.type === FRAME_GOAWAY || x.type === FRAME_RST_STREAM)).toBe(false);
    });
  });

  test('§6.8 GOAWAY with a last stream id below the request\'s: the request is retried on another backend', async () => {
    const b = await rawBackend((c) => onRequest(c, () => c.goaway(0, NO_ERROR)));
    const good = await goodBackend();
    const f = await fulcrum(`    backends: [{ url: ${b.url} }, { url: ${good.url} }]
    retries: { attempts: 1, on: [connect-failure] }`);
    for (let i = 0; i < 4; i++) {
      const r = await request(`${f.url('public')}/g${i}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-backend']).toBe('good');
    }
    expect(b.connections.length).toBeGreaterThan(0);
    expect(b.connections[0]!.frames.some((x) => x.fields !== undefined)).toBe(true);
    expect(good.seen.length).toBe(4);
  });

  test('§8.7 RST_STREAM REFUSED_STREAM is retried on another backend; INTERNAL_ERROR is a 502', async () => {
    const refusing = await rawBackend((c) => onRequest(c, (id) => c.rst(id, REFUSED_STREAM)));
    const good = await goodBackend();
    const f = await fulcrum(`    backends: [{ url: ${refusing.url} }, { url: ${good.url} }]
    retries: { attempts: 1, on: [connect-failure] }`);
    for (let i = 0; i < 4; i++) {
      const r = await request(`${f.url('public')}/r${i}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-backend']).toBe('good');
    }
    expect(refusing.connections.length).toBeGreaterThan(0);

    const resetting = await rawBackend((c) => onRequest(c, (id) => c.rst(id, INTERNAL_ERROR)));
    const g = await fulcrum(`    backends: [{ url: ${resetting.url} }, { url: ${good.url} }]
    retries: { attempts: 1, on: [connect-failure] }`);
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await request(`${g.url('public')}/x${i}`);
      statuses.push(r.status);
      if (r.status === 502) expect(r.body).toBe('bad gateway: the backend reset the stream\n');
    }
    // Round robin: one of the two went to the resetting backend, and it was not retried.
    expect(statuses.sort()).toEqual([200, 502]);
  });

  test('§6.5.2, RFC 7541 §4.2: the backend\'s SETTINGS_HEADER_TABLE_SIZE 0 empties Fulcrum\'s dynamic table once it has read it', async () => {
    const b = await rawBackend((c) => onRequest(c, (id) => answer(c, id, 'ok')), [[SETTINGS_HEADER_TABLE_SIZE, 0]]);
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    expect((await request(`${f.url('public')}/1`, { headers: { 'x-custom': 'same' } })).body).toBe('ok');
    const c = b.connections[0]!;
    await c.waitFrame((x) => x.type === FRAME_SETTINGS && (x.flags & FLAG_ACK) !== 0, 'Fulcrum\'s SETTINGS ACK');
    // The first request may have gone out before Fulcrum read our SETTINGS (RFC 9113 §6.5.3); the next ones
    // start with a table size update to 0, and nothing enters the table again.
    for (const path of ['/2', '/3']) {
      expect((await request(`${f.url('public')}${path}`, { headers: { 'x-custom': 'same' } })).body).toBe('ok');
      expect(c.hpackErrors).toEqual([]);
      expect(c.decoder.dynamicTable()).toMatchObject({ maxSize: 0, size: 0, entries: [] });
    }
    expect(b.connections.length).toBe(1);
  });

  test('§6.7 the backend\'s PING is answered with an ACK carrying its 8 bytes', async () => {
    const opaque = Buffer.from('backend!');
    const b = await rawBackend((c) => {
      c.ping(opaque);
      onRequest(c, (id) => answer(c, id, 'pong'));
    });
    const f = await fulcrum(`    backends: [{ url: ${b.url} }]`);
    expect((await request(`${f.url('public')}/`)).body).toBe('pong');
    const c = b.connections[0]!;
    const ack = await c.waitFrame((x) => x.type === FRAME_PING, 'PING ACK');
    expect(ack.flags & FLAG_ACK).toBe(FLAG_ACK);
    expect(ack.payload).toEqual(opaque);
    // Fulcrum's preface (read by the raw server before any frame): SETTINGS first, push off, 1 MiB stream windows.
    expect(c.frames[0]!.type).toBe(FRAME_SETTINGS);
    expect(settingsOf(c.frames[0]!).get(SETTINGS_ENABLE_PUSH)).toBe(0);
    expect(settingsOf(c.frames[0]!).get(SETTINGS_INITIAL_WINDOW_SIZE)).toBe(1 << 20);
  });
});
