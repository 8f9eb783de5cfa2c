/**
 * The HTTP/2 wire of an h2c listener (RFC 9113), written and read as raw
 * frames (tests/helpers/h2raw.ts) against a real Fulcrum and a real node:http
 * backend: SETTINGS, PING, split and padded header blocks, padded DATA,
 * connection errors (GOAWAY with the right code, then a new connection is
 * served), malformed requests (RST_STREAM PROTOCOL_ERROR on their stream
 * only), 431, the rapid-reset guard, Expect, the client's GOAWAY, flow
 * control towards the client and the drain's GOAWAY.
 *
 * These test Fulcrum's own HTTP/2 engine (src/http2/serve.ts): with
 * FULCRUM_HTTP2=node (node:http2's server, whose wire nghttp2 owns) the
 * whole file is skipped.
 */
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { startBackend, type TestBackend } from '../helpers/backends';
import { waitFor } from '../helpers/wait';
import {
  CANCEL, DEFAULT_FRAME_SIZE, ENHANCE_YOUR_CALM, FLAG_ACK, FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FRAME_CONTINUATION,
  FLOW_CONTROL_ERROR, FRAME_DATA, FRAME_GOAWAY, FRAME_HEADERS, FRAME_PING, FRAME_PUSH_PROMISE, FRAME_SETTINGS, FRAME_SIZE_ERROR, FRAME_WINDOW_UPDATE, NO_ERROR,
  PROTOCOL_ERROR, SETTINGS_ENABLE_PUSH, SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, connectH2, dataPayload, fieldOf, frame,
  openH2, rstStreamFrame, settingsOf, windowUpdateFrame, type Frame, type RawH2,
} from '../helpers/h2raw';
import type { ServerResponse } from 'node:http';
import { HpackDecoder } from '../../src/http2/hpack';

jest.setTimeout(15_000);

const describeOwn = process.env.FULCRUM_HTTP2 === 'node' ? describe.skip : describe;

const BIG = Buffer.alloc(100_000, 'abcdefghij');

const open: RawH2[] = [];
afterEach(() => {
  while (open.length > 0) open.pop()!.close();
});

/** A client connection (preface, SETTINGS, the server's SETTINGS seen), closed after the test. */
async function client(port: number, settings: readonly (readonly [number, number])[] = []): Promise<RawH2> {
  const c = await openH2(port, settings);
  open.push(c);
  return c;
}

const head = (method: string, path: string, extra: readonly string[] = []): string[] =>
  [':method', method, ':scheme', 'http', ':authority', 'test', ':path', path, ...extra];

describeOwn('an h2c listener on the wire (Fulcrum\'s own HTTP/2)', () => {
  let f: RunningFulcrum;
  let b: TestBackend;
  let port: number;
  /** Body bytes the backend read, per request path. */
  const received = new Map<string, number>();
  /** Responses of /slow held until the test lets them go. */
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    b = await startBackend('b1', (req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => { n += d.length; });
      req.on('end', () => {
        received.set(req.url!, n);
        if (req.url === '/big') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(BIG);
        else if (req.url === '/slow') held.push(res);
        else res.writeHead(200, { 'x-backend': 'b1' }).end(`b1 ${req.method} ${req.url} ${n}`);
      });
    });
    f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c:
    listen: 127.0.0.1:0
    http2: true
    routes: [{ pool: web }]
pools:
  web: { backends: [{ url: ${b.url} }] }
`);
    port = Number(f.fulcrum.address('h2c').split(':')[1]);
  });

  afterAll(async () => {
    for (const res of held) res.destroy();
    await f.stop();
    await b.close();
  });

  /** A GET on a new connection is answered: Fulcrum lives and serves. */
  async function servedOnNewConnection(): Promise<void> {
    const c = await client(port);
    c.get(1, '/alive');
    const r = await c.response(1);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('b1 GET /alive 0');
  }

  test('§6.5, §6.7, §6.9: SETTINGS acknowledged; PING answered with its 8 bytes; our SETTINGS and the connection WINDOW_UPDATE', async () => {
    const c = await connectH2(port);
    open.push(c);
    c.autoAck = false;
    c.preface([[SETTINGS_MAX_FRAME_SIZE, 20_000]]);
    const settings = await c.waitFrame((x) => x.type === FRAME_SETTINGS && (x.flags & FLAG_ACK) === 0, 'the server\'s SETTINGS');
    const values = settingsOf(settings);
    expect(values.get(SETTINGS_INITIAL_WINDOW_SIZE)).toBe(1 << 20);
    expect(values.get(SETTINGS_MAX_FRAME_SIZE)).toBe(65_536);
    const wu = await c.waitFrame((x) => x.type === FRAME_WINDOW_UPDATE && x.streamId === 0, 'the connection WINDOW_UPDATE');
    expect(wu.payload.readUInt32BE(0)).toBe((16 << 20) - 65_535);
    // It comes right behind the SETTINGS.
    expect(c.frames.indexOf(wu)).toBe(c.frames.indexOf(settings) + 1);
    const ack = await c.waitFrame((x) => x.type === FRAME_SETTINGS && (x.flags & FLAG_ACK) !== 0, 'SETTINGS ACK');
    expect(ack.payload.length).toBe(0);
    const opaque = Buffer.from('fulcrum!');
    c.ping(opaque);
    const pong = await c.waitFrame((x) => x.type === FRAME_PING, 'PING ACK');
    expect(pong.flags & FLAG_ACK).toBe(FLAG_ACK);
    expect(pong.payload).toEqual(opaque);
  });

  test('§6.5.2, RFC 7541 §4.2: the client\'s SETTINGS_HEADER_TABLE_SIZE 0 is obeyed: responses use no dynamic table', async () => {
    const c = await connectH2(port);
    open.push(c);
    // A decoder whose table holds nothing: a response naming a dynamic entry would not decode.
    c.decoder = new HpackDecoder(0);
    c.preface([[SETTINGS_HEADER_TABLE_SIZE, 0]]);
    for (const id of [1, 3, 5]) {
      c.get(id, `/t${id}`);
      const r = await c.response(id);
      expect(c.hpackErrors).toEqual([]);
      expect(r.status).toBe(200);
      expect(fieldOf(r.fields, 'x-backend')).toBe('b1');
    }
  });

  test('§6.2, §6.10, §6.1: a header block over HEADERS (PADDED, PRIORITY) and CONTINUATIONs; a body in padded DATA frames', async () => {
    const c = await client(port);
    const fields = head('GET', '/split', ['x-long', 'v'.repeat(300), 'x-more', 'w'.repeat(200)]);
    const frames = c.headersFrames(1, fields, { endStream: true, pad: 7, priority: true, split: 100 });
    expect(frames.length).toBeGreaterThanOrEqual(3);
    expect(frames[0]![4]! & FLAG_END_HEADERS).toBe(0);
    c.send(...frames);
    const r = await c.response(1);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('b1 GET /split 0');
    expect(b.seen.find((x) => x.url === '/split')!.headers['x-long']).toBe('v'.repeat(300));

    c.headers(3, head('POST', '/padded'), { pad: 3 });
    const chunks = [Buffer.alloc(1000, 1), Buffer.alloc(4000, 2), Buffer.alloc(1, 3), Buffer.alloc(0)];
    c.send(...chunks.map((d, i) => c.dataFrame(3, d, i === chunks.length - 1, i * 50)));
    const post = await c.response(3);
    expect(post.status).toBe(200);
    expect(post.body.toString()).toBe('b1 POST /padded 5001');
    expect(received.get('/padded')).toBe(5001);
  });

  test('§8.1: a request ended by trailers (HEADERS with END_STREAM after DATA) is answered with its whole body; trailers without END_STREAM are malformed', async () => {
    const c = await client(port);
    c.headers(1, head('POST', '/trailed', ['content-length', '6']));
    c.data(1, Buffer.from('abc'));
    c.data(1, Buffer.from('def'));
    c.headers(1, ['x-checksum', '1'], { endStream: true });
    const r = await c.response(1);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('b1 POST /trailed 6');
    c.headers(3, head('POST', '/open'));
    c.data(3, Buffer.from('abc'));
    c.headers(3, ['x-checksum', '1']);
    expect(await c.waitRst(3)).toBe(PROTOCOL_ERROR);
    c.get(5, '/after');
    expect((await c.response(5)).status).toBe(200);
  });

  describe('connection errors: GOAWAY with the code, the connection closes, Fulcrum serves the next one', () => {
    const cases: [string, number, (c: RawH2) => void][] = [
      ['§5.1.1 an even stream id', PROTOCOL_ERROR, (c) => c.get(2, '/')],
      ['§5.1.1 a stream id lower than one before', PROTOCOL_ERROR, (c) => {
        c.get(5, '/');
        c.get(3, '/');
      }],
      ['§6.10 a frame inside a header block (DATA between HEADERS and CONTINUATION)', PROTOCOL_ERROR, (c) => {
        const [headers, ...continuations] = c.headersFrames(1, head('GET', '/', ['x-pad', 'p'.repeat(200)]), { endStream: true, split: 50 });
        c.send(headers!, c.dataFrame(1, Buffer.from('x')), ...continuations);
      }],
      ['§6.1 DATA on stream 0', PROTOCOL_ERROR, (c) => c.data(0, Buffer.from('nobody'))],
      // The frame header says it all: Fulcrum judges the length before the payload arrives.
      ['§4.2 a frame over 64 KiB', FRAME_SIZE_ERROR, (c) => c.send(frame(FRAME_DATA, 0, 1, Buffer.alloc(65_537)).subarray(0, 2000))],
      ['§6.9 a WINDOW_UPDATE of 0 on stream 0', PROTOCOL_ERROR, (c) => c.send(windowUpdateFrame(0, 0))],
      ['§6.5.2 SETTINGS_ENABLE_PUSH 2', PROTOCOL_ERROR, (c) => c.settings([[SETTINGS_ENABLE_PUSH, 2]])],
      ['§6.5.2 SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1', FLOW_CONTROL_ERROR, (c) => c.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 2 ** 31]])],
      ['§6.5.2 SETTINGS_MAX_FRAME_SIZE below 16384', PROTOCOL_ERROR, (c) => c.settings([[SETTINGS_MAX_FRAME_SIZE, 100]])],
      ['§6.5 a SETTINGS of 7 bytes', FRAME_SIZE_ERROR, (c) => c.send(frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(7)))],
      ['§6.7 a PING of 7 bytes', FRAME_SIZE_ERROR, (c) => c.send(frame(FRAME_PING, 0, 0, Buffer.alloc(7)))],
      ['§6.9.1 a connection window over 2^31-1', FLOW_CONTROL_ERROR, (c) => c.send(windowUpdateFrame(0, 2 ** 31 - 1))],
      ['§8.4 PUSH_PROMISE from a client', PROTOCOL_ERROR, (c) => c.send(frame(FRAME_PUSH_PROMISE, FLAG_END_HEADERS, 1, Buffer.alloc(4)))],
      ['§6.10 a CONTINUATION flood: a header block over 256 KiB', ENHANCE_YOUR_CALM, (c) => {
        const [headers] = c.headersFrames(1, head('GET', '/', ['x-pad', 'p'.repeat(100)]), { split: 10 });
        c.send(headers!, ...Array.from({ length: 17 }, () => frame(FRAME_CONTINUATION, 0, 1, Buffer.alloc(16_384, 0x41))));
      }],
      // The PRIORITY fields' 5 bytes are not there (the frame ends the read): the frame is too short for its flags.
      ['§4.2, §6.2 a HEADERS with the PRIORITY flag and no room for its fields', FRAME_SIZE_ERROR, (c) => c.send(frame(FRAME_HEADERS, FLAG_PRIORITY | FLAG_END_HEADERS, 1))],
      ['§4.2, §6.2 a HEADERS with PADDED and PRIORITY in 3 bytes', FRAME_SIZE_ERROR, (c) => c.send(frame(FRAME_HEADERS, FLAG_PADDED | FLAG_PRIORITY | FLAG_END_HEADERS, 1, Buffer.from([0, 0, 0])))],
    ];
    test.each(cases)('%s', async (_name, code, send) => {
      const c = await client(port);
      send(c);
      const goaway = await c.waitGoaway();
      expect(goaway.code).toBe(code);
      await c.waitClosed();
      await servedOnNewConnection();
    });
  });

  describe('§8.1.1, §8.2: a malformed request is reset with PROTOCOL_ERROR; the other streams of its connection are answered', () => {
    const cases: [string, (c: RawH2) => void][] = [
      ['§8.2.1 an upper-case header name', (c) => c.headers(1, head('GET', '/', ['X-Upper', '1']), { endStream: true })],
      ['§8.2.2 a connection header', (c) => c.headers(1, head('GET', '/', ['connection', 'keep-alive']), { endStream: true })],
      ['§8.2.2 te: gzip', (c) => c.headers(1, head('GET', '/', ['te', 'gzip']), { endStream: true })],
      ['§8.3.1 no :path', (c) => c.headers(1, [':method', 'GET', ':scheme', 'http', ':authority', 'test'], { endStream: true })],
      ['§8.3 a pseudo-header after a regular one', (c) => c.headers(1, [':method', 'GET', ':scheme', 'http', 'x-a', '1', ':path', '/'], { endStream: true })],
      ['§8.3 a repeated :method', (c) => c.headers(1, [':method', 'GET', ':method', 'POST', ':scheme', 'http', ':path', '/'], { endStream: true })],
      // Forwarded to an HTTP/1.1 backend, these would split its header block (request smuggling).
      ['§8.2.1 CR LF in a field value', (c) => c.headers(1, head('GET', '/', ['x-a', '1\r\nx-injected: 1']), { endStream: true })],
      ['§8.2.1 NUL in a field value', (c) => c.headers(1, head('GET', '/', ['x-a', '1\u0000']), { endStream: true })],
      ['§8.1.1 content-length 5 with 3 bytes of DATA', (c) => {
        c.headers(1, head('POST', '/short', ['content-length', '5']));
        c.data(1, Buffer.from('abc'), true);
      }],
    ];
    test.each(cases)('%s', async (_name, send) => {
      const c = await client(port);
      send(c);
      expect(await c.waitRst(1)).toBe(PROTOCOL_ERROR);
      c.get(3, '/after');
      const r = await c.response(3);
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe('b1 GET /after 0');
      expect(c.closed).toBe(false);
    });
  });

  test('§6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE: a header list over 64 KiB gets 431; the connection and its HPACK state go on', async () => {
    const c = await client(port);
    // x-small enters both dynamic tables in the refused block; the next request names it by index.
    c.headers(1, head('GET', '/huge', ['x-small', 'kept', 'x-huge', 'h'.repeat(70_000)]), { endStream: true });
    const r = await c.response(1);
    expect(r.status).toBe(431);
    expect(b.seen.some((x) => x.url === '/huge')).toBe(false);
    c.get(3, '/small', ['x-small', 'kept']);
    const ok = await c.response(3);
    expect(ok.status).toBe(200);
    expect(b.seen.find((x) => x.url === '/small')!.headers['x-small']).toBe('kept');
  });

  test('rapid reset (CVE-2023-44487): more than 200 streams opened and reset at once get GOAWAY ENHANCE_YOUR_CALM; a few resets keep the connection', async () => {
    const calm = await client(port);
    const bufs: Buffer[] = [];
    for (let i = 0; i < 5; i++) {
      const id = 1 + 2 * i;
      bufs.push(...calm.headersFrames(id, head('GET', `/reset${i}`), { endStream: true }), rstStreamFrame(id, CANCEL));
    }
    calm.send(...bufs);
    calm.get(11, '/after-resets');
    expect((await calm.response(11)).status).toBe(200);

    const flood = await client(port);
    const many: Buffer[] = [];
    for (let i = 0; i < 250; i++) {
      const id = 1 + 2 * i;
      many.push(...flood.headersFrames(id, head('GET', `/flood${i}`), { endStream: true }), rstStreamFrame(id, CANCEL));
    }
    flood.send(...many);
    const goaway = await flood.waitGoaway();
    expect(goaway.code).toBe(ENHANCE_YOUR_CALM);
    await flood.waitClosed();
    expect(calm.frames.some((x) => x.type === FRAME_GOAWAY)).toBe(false);
    calm.get(13, '/still');
    expect((await calm.response(13)).status).toBe(200);
  });

  test('RFC 9110 §10.1.1 Expect: 100-continue gets a :status 100 HEADERS before the body is sent', async () => {
    const c = await client(port);
    c.headers(1, head('POST', '/expect', ['expect', '100-continue', 'content-length', '4']));
    const interim = await c.waitFrame((x) => x.type === FRAME_HEADERS && x.streamId === 1, ':status 100');
    expect(fieldOf(interim.fields!, ':status')).toBe('100');
    expect(interim.flags & FLAG_END_STREAM).toBe(0);
    c.data(1, Buffer.from('body'), true);
    const r = await c.response(1);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('b1 POST /expect 4');
  });

  test('§6.8 the client\'s GOAWAY: the stream in flight still gets its whole response, then the connection closes', async () => {
    const c = await client(port);
    c.get(1, '/slow');
    await waitFor(() => held.length === 1, 5000, 'the backend holding /slow');
    c.goaway(0, NO_ERROR);
    // A PING behind the GOAWAY: once it is answered, Fulcrum has read the GOAWAY.
    c.ping(Buffer.alloc(8, 7));
    await c.waitFrame((x) => x.type === FRAME_PING && (x.flags & FLAG_ACK) !== 0, 'PING ACK');
    held.pop()!.writeHead(200).end(BIG);
    const r = await c.response(1);
    expect(r.status).toBe(200);
    expect(r.body.equals(BIG)).toBe(true);
    await c.waitClosed();
  });

  test('§6.9.1, §6.5.2: DATA to the client stays within the windows it grants and its MAX_FRAME_SIZE', async () => {
    const c = await client(port, [[SETTINGS_INITIAL_WINDOW_SIZE, 1000]]);
    c.autoWindow = false;
    let streamWindow = 1000;
    let connWindow = 65_535;
    let got = 0;
    let ended = false;
    const violations: string[] = [];
    c.onFrame((x: Frame) => {
      if (x.type !== FRAME_DATA || x.streamId !== 1) return;
      const n = x.payload.length;
      if (n > streamWindow) violations.push(`${n} bytes with a stream window of ${streamWindow}`);
      if (n > connWindow) violations.push(`${n} bytes with a connection window of ${connWindow}`);
      if (n > DEFAULT_FRAME_SIZE) violations.push(`a DATA frame of ${n} bytes`);
      streamWindow -= n;
      connWindow -= n;
      got += dataPayload(x).length;
      if ((x.flags & FLAG_END_STREAM) !== 0) ended = true;
    });
    c.get(1, '/big');
    const headers = await c.waitFrame((x) => x.type === FRAME_HEADERS && x.streamId === 1, 'the response head');
    expect(fieldOf(headers.fields!, ':status')).toBe('200');
    // Grants of several sizes: some below a frame, some above MAX_FRAME_SIZE; the connection's in steps of its own.
    const grants = [500, 3000, 20_000, 40_000, 7_000];
    let round = 0;
    while (!ended) {
      await waitFor(() => ended || streamWindow === 0 || connWindow === 0, 5000, `DATA up to the window (round ${round}, ${got} bytes)`);
      if (ended) break;
      if (streamWindow === 0) {
        const g = grants[round++ % grants.length]!;
        streamWindow += g;
        c.windowUpdate(1, g);
      }
      if (connWindow === 0) {
        connWindow += 30_000;
        c.windowUpdate(0, 30_000);
      }
    }
    expect(violations).toEqual([]);
    expect(got).toBe(BIG.length);
    expect(round).toBeGreaterThanOrEqual(5);
    const body = Buffer.concat(c.frames.filter((x) => x.type === FRAME_DATA && x.streamId === 1).map(dataPayload));
    expect(body.equals(BIG)).toBe(true);
  });

  test('§6.9.2: a SETTINGS_INITIAL_WINDOW_SIZE change mid-response moves the open stream\'s window, below zero too', async () => {
    const c = await client(port, [[SETTINGS_INITIAL_WINDOW_SIZE, 1000]]);
    c.autoWindow = false;
    c.windowUpdate(0, 1 << 20);
    let window = 1000;
    let got = 0;
    const violations: string[] = [];
    c.onFrame((x: Frame) => {
      if (x.type !== FRAME_DATA || x.streamId !== 1) return;
      if (x.payload.length > window) violations.push(`${x.payload.length} bytes with a window of ${window}`);
      window -= x.payload.length;
      got += x.payload.length;
    });
    /** A PING answered: Fulcrum has read (and acted on) everything sent before it; DATA it let go came first. */
    const barrier = async (tag: number): Promise<void> => {
      c.ping(Buffer.alloc(8, tag));
      await c.waitFrame((x) => x.type === FRAME_PING && (x.flags & FLAG_ACK) !== 0 && x.payload[0] === tag, 'PING ACK');
    };
    c.get(1, '/big');
    await waitFor(() => got === 1000, 5000, 'the first 1000 bytes');
    c.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 0]]); // the window: 0 - 1000
    window -= 1000;
    c.windowUpdate(1, 500); // -500: still nothing may come
    window += 500;
    await barrier(1);
    expect(got).toBe(1000);
    c.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 5000]]); // +5000: 4500
    window += 5000;
    await barrier(2);
    expect(got).toBe(5500);
    c.windowUpdate(1, BIG.length);
    window += BIG.length;
    await waitFor(() => got === BIG.length, 5000, 'the rest of the body');
    expect(violations).toEqual([]);
  });

  test('CONTINUATION is only accepted on the stream of its HEADERS (§6.10)', async () => {
    const c = await client(port);
    const [headers, ...rest] = c.headersFrames(1, head('GET', '/', ['x-pad', 'p'.repeat(200)]), { endStream: true, split: 50 });
    c.send(headers!, frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, rest[0]!.subarray(9)));
    expect((await c.waitGoaway()).code).toBe(PROTOCOL_ERROR);
    await c.waitClosed();
  });
});

describeOwn('the drain', () => {
  test('§6.8 after fulcrum.stop() an open connection gets GOAWAY NO_ERROR, then closes', async () => {
    const b = await startBackend('b1');
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  h2c: { listen: 127.0.0.1:0, http2: true, routes: [{ pool: web }] }
pools:
  web: { backends: [{ url: ${b.url} }] }
`);
    try {
      const c = await client(Number(f.fulcrum.address('h2c').split(':')[1]));
      c.get(1, '/');
      expect((await c.response(1)).status).toBe(200);
      const stopped = f.stop();
      const goaway = await c.waitGoaway();
      expect(goaway.code).toBe(NO_ERROR);
      expect(goaway.lastStreamId).toBe(1);
      await c.waitClosed();
      await stopped;
    } finally {
      await f.fulcrum.stop(100).catch(() => undefined);
      await b.close();
    }
  });
});
