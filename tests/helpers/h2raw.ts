/**
 * Raw HTTP/2 frames over a TCP socket, for tests of the wire itself (RFC
 * 9113) that no HTTP/2 library lets a test write: split or padded header
 * blocks, frames in the wrong place, windows granted byte by byte. One
 * RawH2 is one connection, as the client (connectH2) or as a backend
 * (startRawH2Backend); each has its own HPACK encoder and decoder, as a
 * connection's HPACK state is its own.
 *
 * Incoming frames are parsed into {type, flags, streamId, payload}; a
 * header block (HEADERS and its CONTINUATIONs) is decoded when it ends and
 * its fields are on the frame that ended it (`fields`). Tests wait for
 * frames with waitFrame (a predicate and a deadline, never a sleep); a frame
 * waitFrame returned is not matched again.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { HpackDecoder, HpackEncoder } from '../../src/http2/hpack';
import {
  FLAG_ACK, FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FRAME_CONTINUATION, FRAME_DATA,
  FRAME_GOAWAY, FRAME_HEADERS, FRAME_PING, FRAME_RST_STREAM, FRAME_SETTINGS, PREFACE,
  frame, goawayFrame, rstStreamFrame, settingsFrame, windowUpdateFrame,
} from '../../src/http2/frames';

export * from '../../src/http2/frames';

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
  /** The decoded header block, on the HEADERS or CONTINUATION frame that ended it. */
  fields?: string[];
  /** When it was a header block's last frame: the block's END_STREAM (from its HEADERS). */
  blockEndStream?: boolean;
}

export interface HeadersOptions {
  endStream?: boolean;
  /** Pad length: the HEADERS frame gets the PADDED flag and this many zero bytes. */
  pad?: number;
  /** Send the PRIORITY flag (a dependency on stream 0, weight 16). */
  priority?: boolean;
  /** Split the block: HEADERS carries at most this many bytes of it, CONTINUATIONs the rest (each this big). */
  split?: number;
}

export interface Response {
  status: number;
  /** Fields of the response head, pseudo-headers included. */
  fields: string[];
  body: Buffer;
  /** Fields of a trailing header block, if one came. */
  trailers: string[] | null;
  /** RST_STREAM's code if the stream was reset instead. */
  rstCode: number | null;
  /** Informational (1xx) heads that came first. */
  informational: string[][];
}

interface Waiter {
  readonly pred: (f: Frame) => boolean;
  readonly resolve: (f: Frame) => void;
}

export class RawH2 {
  readonly socket: net.Socket;
  readonly encoder = new HpackEncoder();
  /** Replace it (before any frame arrives) to decode with a smaller table: `new HpackDecoder(size)`. */
  decoder = new HpackDecoder();
  /** Header blocks that did not decode (the frame that ended each has no `fields`). */
  readonly hpackErrors: string[] = [];
  /** Every frame received, in order. */
  readonly frames: Frame[] = [];
  /** Frames already returned by waitFrame. */
  readonly #taken = new Set<Frame>();
  #waiters: Waiter[] = [];
  #buf: Buffer = Buffer.alloc(0);
  /** A server reads the client's preface before any frame. */
  #prefacePending: boolean;
  #block: { streamId: number; endStream: boolean; parts: Buffer[] } | null = null;
  #onFrame: ((f: Frame) => void)[] = [];
  closed = false;
  readonly closedPromise: Promise<void>;
  /** Give back every DATA byte at once (stream and connection WINDOW_UPDATE): off for tests of flow control. */
  autoWindow = true;
  /** Acknowledge the peer's SETTINGS. */
  autoAck = true;

  constructor(socket: net.Socket, role: 'client' | 'server') {
    this.socket = socket;
    this.#prefacePending = role === 'server';
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    // The peer may reset the socket after a GOAWAY: only `closed` matters to the tests.
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) => socket.once('close', () => {
      this.closed = true;
      resolve();
    }));
  }

  /** Called for every frame as it is parsed (before any waiter sees it): per-frame checks. */
  onFrame(fn: (f: Frame) => void): void {
    this.#onFrame.push(fn);
  }

  send(...bufs: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs));
  }

  /** The client's preface and its SETTINGS (a server sends only the SETTINGS). */
  preface(settings: readonly (readonly [number, number])[] = []): void {
    this.send(PREFACE, settingsFrame(settings));
  }

  settings(settings: readonly (readonly [number, number])[]): void {
    this.send(settingsFrame(settings));
  }

  ping(data: Buffer, ack = false): void {
    this.send(frame(FRAME_PING, ack ? FLAG_ACK : 0, 0, data));
  }

  windowUpdate(streamId: number, increment: number): void {
    this.send(windowUpdateFrame(streamId, increment));
  }

  rst(streamId: number, code: number): void {
    this.send(rstStreamFrame(streamId, code));
  }

  goaway(lastStreamId: number, code: number): void {
    this.send(goawayFrame(lastStreamId, code));
  }

  /** A header block encoded with this connection's encoder (encode blocks in the order they are sent). */
  block(fields: readonly string[]): Buffer {
    return Buffer.from(this.encoder.encode(fields));
  }

  /** The frames of a header block: HEADERS (padded, with priority, split as asked), then CONTINUATIONs. */
  headersFrames(streamId: number, fields: readonly string[], options: HeadersOptions = {}): Buffer[] {
    const block = this.block(fields);
    const split = options.split ?? 16_384;
    const first = block.subarray(0, split);
    const rest = block.subarray(first.length);
    const last = rest.length === 0;
    let flags = (options.endStream === true ? FLAG_END_STREAM : 0) | (last ? FLAG_END_HEADERS : 0);
    const parts: Buffer[] = [];
    if (options.pad !== undefined) {
      flags |= FLAG_PADDED;
      parts.push(Buffer.from([options.pad]));
    }
    if (options.priority === true) {
      flags |= FLAG_PRIORITY;
      parts.push(Buffer.from([0, 0, 0, 0, 15]));
    }
    parts.push(first);
    if (options.pad !== undefined) parts.push(Buffer.alloc(options.pad));
    const out = [frame(FRAME_HEADERS, flags, streamId, Buffer.concat(parts))];
    for (let at = 0; at < rest.length; at += split) {
      const piece = rest.subarray(at, at + split);
      out.push(frame(FRAME_CONTINUATION, at + split >= rest.length ? FLAG_END_HEADERS : 0, streamId, piece));
    }
    return out;
  }

  headers(streamId: number, fields: readonly string[], options: HeadersOptions = {}): void {
    this.send(...this.headersFrames(streamId, fields, options));
  }

  /** One DATA frame (padded with `pad` zero bytes when given). */
  dataFrame(streamId: number, data: Buffer, endStream = false, pad?: number): Buffer {
    const flags = (endStream ? FLAG_END_STREAM : 0) | (pad !== undefined ? FLAG_PADDED : 0);
    const payload = pad === undefined ? data : Buffer.concat([Buffer.from([pad]), data, Buffer.alloc(pad)]);
    return frame(FRAME_DATA, flags, streamId, payload);
  }

  data(streamId: number, data: Buffer, endStream = false, pad?: number): void {
    this.send(this.dataFrame(streamId, data, endStream, pad));
  }

  /** A GET (or what `extra` says) with END_STREAM: the usual request head. */
  get(streamId: number, path: string, extra: readonly string[] = [], options: HeadersOptions = {}): void {
    this.headers(streamId, [':method', 'GET', ':scheme', 'http', ':authority', 'test', ':path', path, ...extra], { endStream: true, ...options });
  }

  /** The first frame received (not yet taken) that matches, or the next one to arrive, within `timeoutMs`. */
  waitFrame(pred: (f: Frame) => boolean, what: string, timeoutMs = 5000): Promise<Frame> {
    for (const f of this.frames) {
      if (!this.#taken.has(f) && pred(f)) {
        this.#taken.add(f);
        return Promise.resolve(f);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no frame within ${timeoutMs} ms: ${what}; got ${this.describe()}${this.closed ? ' (closed)' : ''}`));
      }, timeoutMs);
      const waiter: Waiter = {
        pred,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  /** GOAWAY, whatever its code: [last stream id, error code]. */
  async waitGoaway(timeoutMs = 5000): Promise<{ lastStreamId: number; code: number; debug: string }> {
    const f = await this.waitFrame((x) => x.type === FRAME_GOAWAY, 'GOAWAY', timeoutMs);
    return { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), debug: f.payload.subarray(8).toString() };
  }

  /** RST_STREAM on `streamId`: its code. */
  async waitRst(streamId: number, timeoutMs = 5000): Promise<number> {
    const f = await this.waitFrame((x) => x.type === FRAME_RST_STREAM && x.streamId === streamId, `RST_STREAM on ${streamId}`, timeoutMs);
    return f.payload.readUInt32BE(0);
  }

  /** The socket closed, within `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the connection did not close within ${timeoutMs} ms; got ${this.describe()}`)), timeoutMs);
    });
    try {
      await Promise.race([this.closedPromise, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The whole response on `streamId`: head, body, trailers, until END_STREAM or RST_STREAM. */
  async response(streamId: number, timeoutMs = 5000): Promise<Response> {
    const r: Response = { status: 0, fields: [], body: Buffer.alloc(0), trailers: null, rstCode: null, informational: [] };
    const parts: Buffer[] = [];
    for (;;) {
      const f = await this.waitFrame((x) => x.streamId === streamId
        && (x.type === FRAME_DATA || x.type === FRAME_RST_STREAM || x.fields !== undefined), `the response on stream ${streamId}`, timeoutMs);
      if (f.type === FRAME_RST_STREAM) {
        r.rstCode = f.payload.readUInt32BE(0);
        break;
      }
      let end: boolean;
      if (f.type === FRAME_DATA) {
        parts.push(dataPayload(f));
        end = (f.flags & FLAG_END_STREAM) !== 0;
      } else {
        const fields = f.fields!;
        const status = fieldOf(fields, ':status');
        if (r.status === 0 && status !== undefined && Number(status) < 200) r.informational.push(fields);
        else if (r.status === 0) {
          r.status = Number(status);
          r.fields = fields;
        } else r.trailers = fields;
        end = f.blockEndStream === true;
      }
      if (end) break;
    }
    r.body = Buffer.concat(parts);
    return r;
  }

  /** The frames received so far, short, for failure messages. */
  describe(): string {
    return this.frames.map((f) => `${TYPE_NAMES[f.type] ?? f.type}(${f.streamId},0x${f.flags.toString(16)},${f.payload.length})`).join(' ') || 'nothing';
  }

  close(): void {
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#prefacePending) {
      if (this.#buf.length < PREFACE.length) return;
      if (!this.#buf.subarray(0, PREFACE.length).equals(PREFACE)) throw new Error('the peer sent no HTTP/2 preface');
      this.#buf = this.#buf.subarray(PREFACE.length);
      this.#prefacePending = false;
    }
    while (this.#buf.length >= 9) {
      const length = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + length) break;
      const f: Frame = {
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buf.subarray(9, 9 + length)),
      };
      this.#buf = this.#buf.subarray(9 + length);
      this.#received(f);
    }
  }

  #received(f: Frame): void {
    if (f.type === FRAME_HEADERS) {
      this.#block = { streamId: f.streamId, endStream: (f.flags & FLAG_END_STREAM) !== 0, parts: [headersPayload(f)] };
    } else if (f.type === FRAME_CONTINUATION && this.#block !== null) {
      this.#block.parts.push(f.payload);
    }
    if ((f.type === FRAME_HEADERS || f.type === FRAME_CONTINUATION) && (f.flags & FLAG_END_HEADERS) !== 0 && this.#block !== null) {
      const block = Buffer.concat(this.#block.parts);
      try {
        f.fields = this.decoder.decode(block, 0, block.length);
        f.blockEndStream = this.#block.endStream;
      } catch (err) {
        this.hpackErrors.push(`stream ${f.streamId}: ${(err as Error).message}`);
      }
      this.#block = null;
    }
    if (f.type === FRAME_SETTINGS && (f.flags & FLAG_ACK) === 0 && this.autoAck) this.send(frame(FRAME_SETTINGS, FLAG_ACK, 0));
    if (f.type === FRAME_DATA && this.autoWindow && f.payload.length > 0) {
      this.send(windowUpdateFrame(0, f.payload.length), windowUpdateFrame(f.streamId, f.payload.length));
    }
    for (const fn of this.#onFrame) fn(f);
    this.frames.push(f);
    const i = this.#waiters.findIndex((w) => w.pred(f));
    if (i !== -1) {
      const [w] = this.#waiters.splice(i, 1);
      this.#taken.add(f);
      w!.resolve(f);
    }
  }
}

const TYPE_NAMES: Record<number, string> = {
  0: 'DATA', 1: 'HEADERS', 2: 'PRIORITY', 3: 'RST_STREAM', 4: 'SETTINGS', 5: 'PUSH_PROMISE', 6: 'PING', 7: 'GOAWAY', 8: 'WINDOW_UPDATE', 9: 'CONTINUATION',
};

/** A DATA frame's data, without its padding. */
export function dataPayload(f: Frame): Buffer {
  if ((f.flags & FLAG_PADDED) === 0) return f.payload;
  return f.payload.subarray(1, f.payload.length - f.payload[0]!);
}

/** A HEADERS frame's block fragment, without padding and priority. */
function headersPayload(f: Frame): Buffer {
  let from = 0;
  let to = f.payload.length;
  if ((f.flags & FLAG_PADDED) !== 0) {
    to -= f.payload[0]!;
    from = 1;
  }
  if ((f.flags & FLAG_PRIORITY) !== 0) from += 5;
  return f.payload.subarray(from, to);
}

/** A SETTINGS frame's pairs as a map. */
export function settingsOf(f: Frame): Map<number, number> {
  const out = new Map<number, number>();
  for (let at = 0; at + 6 <= f.payload.length; at += 6) out.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2));
  return out;
}

/** The first value of `name` in a flat field list. */
export function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** A client connection to 127.0.0.1:`port`, connected (nothing sent yet). */
export async function connectH2(port: number): Promise<RawH2> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return new RawH2(socket, 'client');
}

/** connectH2, then the preface with `settings`, then the server's SETTINGS awaited. */
export async function openH2(port: number, settings: readonly (readonly [number, number])[] = []): Promise<RawH2> {
  const c = await connectH2(port);
  c.preface(settings);
  await c.waitFrame((f) => f.type === FRAME_SETTINGS && (f.flags & FLAG_ACK) === 0, 'the server\'s SETTINGS');
  return c;
}

export interface RawH2Backend {
  readonly port: number;
  readonly url: string;
  /** Every connection accepted, in order. */
  readonly connections: RawH2[];
  close(): Promise<void>;
}

/**
 * A backend that speaks raw frames: each accepted connection becomes a
 * server-side RawH2 that has sent its SETTINGS (`settings`); `onConnection`
 * plays the backend from there (see onRequest).
 */
export async function startRawH2Backend(onConnection: (c: RawH2) => void, settings: readonly (readonly [number, number])[] = []): Promise<RawH2Backend> {
  const connections: RawH2[] = [];
  const server = net.createServer((socket) => {
    const c = new RawH2(socket, 'server');
    connections.push(c);
    c.settings(settings);
    onConnection(c);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections,
    close: () => new Promise<void>((resolve) => {
      for (const c of connections) c.close();
      server.close(() => resolve());
    }),
  };
}

/** Calls `fn` with each request's stream id and fields as its header block ends (a backend's view). */
export function onRequest(c: RawH2, fn: (streamId: number, fields: string[], endStream: boolean) => void): void {
  c.onFrame((f) => {
    if (f.fields !== undefined && f.type !== FRAME_DATA) {
      // onFrame runs before the frame is recorded: a request's first block is the one on a stream not seen before.
      if (!c.frames.some((g) => g.streamId === f.streamId && g.fields !== undefined)) fn(f.streamId, f.fields, f.blockEndStream === true);
    }
  });
}
