import type { Socket } from 'node:net';
import {
  CANCEL, COMPRESSION_ERROR, DEFAULT_FRAME_SIZE, DEFAULT_WINDOW, ENHANCE_YOUR_CALM, FLAG_ACK, FLAG_END_HEADERS,
  FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FLOW_CONTROL_ERROR, FRAME_CONTINUATION, FRAME_DATA, FRAME_GOAWAY,
  FRAME_HEADER_SIZE, FRAME_HEADERS, FRAME_PING, FRAME_PRIORITY, FRAME_PUSH_PROMISE, FRAME_RST_STREAM, FRAME_SETTINGS,
  FRAME_SIZE_ERROR, FRAME_WINDOW_UPDATE, MAX_WINDOW, NO_ERROR, PROTOCOL_ERROR, SETTINGS_ACK, SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE, STREAM_CLOSED, frame, frameHead, goawayFrame, putFrameHeader, rstStreamFrame,
  settingsFrame, windowUpdateFrame,
} from './frames';
import { HpackDecoder, HpackEncoder, HpackError } from './hpack';

/**
 * One HTTP/2 connection (RFC 9113) over a socket, Fulcrum's own: the frame
 * layer, SETTINGS, flow control both ways, stream states, PING, GOAWAY and
 * RST_STREAM. What a stream means is its role's: src/http2/server-conn.ts
 * (the listener side) and src/http2/upstream.ts (the backend side) extend
 * H2Connection and H2Stream.
 *
 * Why not node:http2: its sessions and streams cost more than the whole
 * proxy may spend. A bare node:http2 proxy alone (bench/h2-bare-proxy.mjs)
 * was 2.66x nginx's CPU per request on Node 26 and 4.56x on Node 20 under
 * h2load; each frame crosses into nghttp2 and back, each stream is a Duplex
 * with its own events. Here a read is parsed in place (DATA payloads are
 * views of the socket's chunk), and everything written while a read or a
 * backend's answer is handled goes out in one socket write (flushed on
 * process.nextTick).
 *
 * Flow control: our receive windows are widened at the start (streams 1 MiB,
 * the connection 16 MiB) so a big body is not throttled by one round trip
 * per 64 KiB. The connection window is given back as DATA arrives (the
 * streams' windows bound what is held); a stream's only as its reader takes
 * the bytes (consumed()), so a slow reader stops its peer at 1 MiB.
 */

export const STREAM_WINDOW = 1 << 20;
export const CONNECTION_WINDOW = 16 << 20;
/** Frames up to 64 KiB are accepted: a quarter of the frames (and their per-frame work) on a big body. */
export const LOCAL_MAX_FRAME = 1 << 16;
/** Bytes a stream may have queued (window closed or socket full) before its writer is told to wait. */
const STREAM_HIGH_WATER = 64 * 1024;
/** Header block bytes (HEADERS and CONTINUATION) accepted before the connection is closed. */
const MAX_HEADER_BLOCK = 256 * 1024;
/**
 * What the socket may hold unsent while the peer still asks for answers
 * (PING, SETTINGS): a peer that floods those and reads nothing is closed
 * (the "ping flood" and "settings flood" of CVE-2019-9512 and -9515).
 */
const MAX_UNSENT_CONTROL = 4 << 20;
/** Concatenating small writes beats a writev of many buffers; above this, cork and write each. */
const CONCAT_LIMIT = 64 * 1024;

export interface LocalSettings {
  readonly maxConcurrentStreams?: number;
  readonly maxHeaderListSize?: number;
  readonly enablePush?: boolean;
}

/** A connection error (RFC 9113 §5.4.1): the connection goes with a GOAWAY carrying `code`. */
export class H2ConnectionError extends Error {
  readonly code: string;
  readonly h2Code: number;
  constructor(h2Code: number, message: string) {
    super(message);
    this.h2Code = h2Code;
    this.code = 'ERR_HTTP2_SESSION_ERROR';
  }
}

export abstract class H2Stream {
  readonly id: number;
  /** What we may still send (the peer's window for this stream); may go below 0 when the peer shrinks its SETTINGS. */
  sendWindow: number;
  /** What the peer may still send before our next WINDOW_UPDATE. */
  recvWindow: number;
  /** Bytes taken by the reader since our last WINDOW_UPDATE. */
  unacked = 0;
  /** We sent END_STREAM (or a reset). */
  localClosed = false;
  /** The peer sent END_STREAM (or a reset). */
  remoteClosed = false;
  closed = false;
  /** The reset code that ended it (ours or the peer's), 0 when it ended cleanly. */
  rstCode = 0;
  /** The peer reset it before our side of it ended. */
  peerReset = false;
  /** DATA waiting for the windows or the socket. */
  queue: Buffer[] | null = null;
  queuedBytes = 0;
  /** END_STREAM after the queue (with `trailers` when set). */
  endQueued = false;
  trailers: readonly string[] | null = null;
  /** The writer was told to wait: drained() when the queue has gone out. */
  wantsDrain = false;
  readonly conn: H2Connection;

  constructor(conn: H2Connection, id: number) {
    this.conn = conn;
    this.id = id;
    this.sendWindow = conn.peerInitialWindow;
    this.recvWindow = STREAM_WINDOW;
  }

  /** A header block on this stream (a response, 1xx, or trailers; the server's first one comes through openStream). */
  abstract onHeaders(flat: string[], endStream: boolean): void;
  /** Body bytes, a view of the socket's chunk; the role calls conn.consumed(this, n) once they are taken. */
  abstract onData(chunk: Buffer, endStream: boolean): void;
  /** The stream ended: `code` is the reset's (0 for a clean end), `err` set when the connection went. */
  abstract onClose(code: number, err: Error | undefined): void;
  /** The queue went out after the writer was told to wait. */
  onDrain(): void {}
}

export abstract class H2Connection {
  readonly socket: Socket;
  readonly streams = new Map<number, H2Stream>();
  readonly encoder = new HpackEncoder();
  readonly decoder: HpackDecoder;
  /** The peer's SETTINGS. */
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrame = DEFAULT_FRAME_SIZE;
  peerMaxStreams = Infinity;
  /** What we may send on the connection. */
  sendWindow = DEFAULT_WINDOW;
  /** What the peer may still send on the connection. */
  recvWindow = DEFAULT_WINDOW;
  #connUnacked = 0;
  /** Highest stream id the peer opened (GOAWAY's last stream id). */
  lastPeerStream = 0;
  /** Closed: no more reads or writes. */
  dead = false;
  /** GOAWAY sent or received: no new streams. */
  goingAway = false;
  /** Why the connection ended, for the streams it took with it. */
  failure: Error | undefined;
  /** Bytes of a frame not all read yet, in the pieces they came in, and how many the frame needs in all. */
  #rest: Buffer[] | null = null;
  #restBytes = 0;
  #need = 0;
  /** A DATA frame read in pieces: bytes still to come, its stream (null: dropped), its END_STREAM. */
  #dataLeft = 0;
  #dataStream: H2Stream | null = null;
  #dataEnd = false;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushQueued = false;
  #socketFull = false;
  /** Streams whose DATA waits for the connection window. */
  readonly #blocked = new Set<H2Stream>();
  /** A header block in pieces (HEADERS without END_HEADERS, then CONTINUATION). */
  #blockStream = 0;
  #blockEnd = false;
  #blockParts: Buffer[] = [];
  #blockBytes = 0;
  #onSocketData = (chunk: Buffer) => this.#read(chunk);

  constructor(socket: Socket, local: LocalSettings) {
    this.socket = socket;
    this.decoder = new HpackDecoder();
    if (local.maxHeaderListSize !== undefined) this.decoder.maxHeaderListSize = local.maxHeaderListSize;
    socket.setNoDelay(true);
    socket.on('data', this.#onSocketData);
    socket.on('drain', () => this.#drained());
    socket.on('error', (err) => {
      this.failure ??= err;
    });
    socket.on('close', () => this.#closed());
    socket.on('end', () => {
      // The peer is done sending: nothing can come for open streams any more.
      this.failure ??= Object.assign(new Error('the peer closed the connection'), { code: 'ECONNRESET' });
      socket.destroy();
    });
  }

  /** The preface's SETTINGS (and the wider connection window): the first thing each side sends. */
  protected sendPreface(prefix: Buffer | undefined, local: LocalSettings): void {
    const settings: [number, number][] = [
      [SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [SETTINGS_MAX_FRAME_SIZE, LOCAL_MAX_FRAME],
    ];
    if (local.maxConcurrentStreams !== undefined) settings.push([SETTINGS_MAX_CONCURRENT_STREAMS, local.maxConcurrentStreams]);
    if (local.maxHeaderListSize !== undefined) settings.push([SETTINGS_MAX_HEADER_LIST_SIZE, local.maxHeaderListSize]);
    if (local.enablePush === false) settings.push([SETTINGS_ENABLE_PUSH, 0]);
    if (prefix !== undefined) this.push(prefix);
    this.push(settingsFrame(settings));
    this.push(windowUpdateFrame(0, CONNECTION_WINDOW - DEFAULT_WINDOW));
    this.recvWindow = CONNECTION_WINDOW;
  }

  // ---- what the roles implement ----

  /** A header block on a stream id with no open stream: the server's new request (the client refuses it). */
  protected abstract openStream(id: number, flat: string[] | null, endStream: boolean): void;
  /** GOAWAY from the peer. */
  protected abstract onGoaway(lastStreamId: number, code: number): void;
  /** The socket is gone; every stream has been closed. */
  protected abstract onConnectionClose(): void;
  /** The peer's SETTINGS were applied. */
  protected onSettings(): void {}

  // ---- reading ----

  /** Bytes read before this connection took the socket (the sniffed preface and what came with it). */
  protected feed(head: Buffer): void {
    this.#read(head);
  }

  #read(chunk: Buffer): void {
    if (this.dead) return;
    let buf = chunk;
    if (this.#rest !== null) {
      // A big DATA frame comes in many reads (TLS records of 16 KiB): joined once, when it is all there.
      this.#rest.push(chunk);
      this.#restBytes += chunk.length;
      if (this.#restBytes < this.#need) return;
      buf = Buffer.concat(this.#rest, this.#restBytes);
      this.#rest = null;
    }
    let off = this.skipPreface(buf);
    if (off < 0) {
      // Not all of the preface yet (or not a preface: the connection failed).
      if (!this.dead) this.#keep(buf, buf.length + 1);
      return;
    }
    const len = buf.length;
    try {
      while (off < len) {
        if (this.#dataLeft > 0) {
          // The rest of a DATA frame begun in an earlier read.
          const n = Math.min(this.#dataLeft, len - off);
          this.#dataLeft -= n;
          const stream = this.#dataStream;
          if (stream !== null) this.#dataPiece(stream, buf.subarray(off, off + n), this.#dataLeft === 0 && this.#dataEnd);
          if (this.dead) return;
          off += n;
          continue;
        }
        if (len - off < FRAME_HEADER_SIZE) break;
        const length = (buf[off]! << 16) | (buf[off + 1]! << 8) | buf[off + 2]!;
        if (length > LOCAL_MAX_FRAME) throw new H2ConnectionError(FRAME_SIZE_ERROR, `a frame of ${length} bytes`);
        const end = off + FRAME_HEADER_SIZE + length;
        const type = buf[off + 3]!;
        const flags = buf[off + 4]!;
        const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
        if (end > len) {
          if (type !== FRAME_DATA || (flags & FLAG_PADDED) !== 0 || this.#blockStream !== 0) break;
          // A DATA frame not all here yet: its bytes go to the stream as
          // they come (a 64 KiB frame over TLS comes in four reads or
          // more), never joined into one buffer first.
          this.#dataStream = this.#dataStart(id, length);
          if (this.dead) return;
          this.#dataEnd = (flags & FLAG_END_STREAM) !== 0;
          this.#dataLeft = length;
          off += FRAME_HEADER_SIZE;
          continue;
        }
        this.#frame(type, flags, id, buf, off + FRAME_HEADER_SIZE, end);
        if (this.dead) return;
        off = end;
      }
    } catch (err) {
      if (err instanceof H2ConnectionError) this.fail(err);
      else if (err instanceof HpackError) this.fail(new H2ConnectionError(COMPRESSION_ERROR, err.message));
      else throw err;
      return;
    }
    if (off < len) {
      const rest = off === 0 ? buf : buf.subarray(off);
      const need = rest.length < FRAME_HEADER_SIZE ? FRAME_HEADER_SIZE
        : FRAME_HEADER_SIZE + ((rest[0]! << 16) | (rest[1]! << 8) | rest[2]!);
      this.#keep(rest, need);
    }
  }

  #keep(rest: Buffer, need: number): void {
    this.#rest = [rest];
    this.#restBytes = rest.length;
    this.#need = need;
  }

  /** The server reads the client's preface first: where frames begin, or -1 when more is needed. */
  protected skipPreface(_buf: Buffer): number {
    return 0;
  }

  #frame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (this.#blockStream !== 0 && type !== FRAME_CONTINUATION) throw new H2ConnectionError(PROTOCOL_ERROR, 'a frame inside a header block');
    switch (type) {
      case FRAME_DATA: return this.#data(flags, id, buf, start, end);
      case FRAME_HEADERS: return this.#headers(flags, id, buf, start, end);
      case FRAME_CONTINUATION: return this.#continuation(flags, id, buf, start, end);
      case FRAME_SETTINGS: return this.#settings(flags, id, buf, start, end);
      case FRAME_WINDOW_UPDATE: return this.#windowUpdate(id, buf, start, end);
      case FRAME_RST_STREAM: return this.#rstStream(id, buf, start, end);
      case FRAME_PING: return this.#ping(flags, id, buf, start, end);
      case FRAME_GOAWAY: return this.#goaway(id, buf, start, end);
      case FRAME_PRIORITY:
        if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (end - start !== 5) this.#streamError(id, FRAME_SIZE_ERROR);
        return;
      case FRAME_PUSH_PROMISE:
        // We say SETTINGS_ENABLE_PUSH 0 (client) or are the server: never allowed.
        throw new H2ConnectionError(PROTOCOL_ERROR, 'PUSH_PROMISE');
      default:
        // RFC 9113 §4.1: unknown frame types are ignored.
        return;
    }
  }

  #data(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    const length = end - start;
    let from = start;
    let to = end;
    if ((flags & FLAG_PADDED) !== 0) {
      if (length < 1) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'DATA padding without its length');
      from = start + 1;
      to = end - buf[start]!;
      if (to < from) throw new H2ConnectionError(PROTOCOL_ERROR, 'DATA padding longer than the frame');
    }
    const stream = this.#dataStart(id, length);
    if (stream === null) return;
    // Padding is nobody's to read: given back at once.
    if (to - from !== length) this.consumed(stream, length - (to - from));
    this.#dataPiece(stream, buf.subarray(from, to), (flags & FLAG_END_STREAM) !== 0);
  }

  /** A DATA frame's header: both windows charged, its stream found (null: the bytes go nowhere). */
  #dataStart(id: number, length: number): H2Stream | null {
    if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'DATA on stream 0');
    this.recvWindow -= length;
    if (this.recvWindow < 0) throw new H2ConnectionError(FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.#creditConnection(length);
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (this.isIdle(id)) throw new H2ConnectionError(PROTOCOL_ERROR, 'DATA on an idle stream');
      // A stream we already closed (reset it, or it ended): its data goes nowhere.
      return null;
    }
    if (stream.remoteClosed) {
      this.#streamError(id, STREAM_CLOSED);
      return null;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      this.#streamError(id, FLOW_CONTROL_ERROR);
      return null;
    }
    return stream;
  }

  /** Body bytes for `stream` (a whole DATA frame's, or a piece of one). */
  #dataPiece(stream: H2Stream, chunk: Buffer, endStream: boolean): void {
    if (stream.closed) return; // reset while its frame was still coming
    if (endStream) stream.remoteClosed = true;
    stream.onData(chunk, endStream);
    if (endStream) this.#maybeClosed(stream);
  }

  #headers(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'HEADERS on stream 0');
    let from = start;
    let to = end;
    // The Pad Length and priority fields its flags announce must be there (read past `end` they are the next frame's bytes, or none).
    const fixed = ((flags & FLAG_PADDED) !== 0 ? 1 : 0) + ((flags & FLAG_PRIORITY) !== 0 ? 5 : 0);
    if (end - start < fixed) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'HEADERS too short for its padding and priority fields');
    if ((flags & FLAG_PADDED) !== 0) {
      to = end - buf[start]!;
      from++;
    }
    if ((flags & FLAG_PRIORITY) !== 0) {
      if ((buf.readUInt32BE(from) & 0x7fffffff) === id) {
        throw new H2ConnectionError(PROTOCOL_ERROR, 'a stream depending on itself');
      }
      from += 5;
    }
    if (to < from) throw new H2ConnectionError(PROTOCOL_ERROR, 'HEADERS padding longer than the frame');
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if ((flags & FLAG_END_HEADERS) !== 0) {
      this.#block(id, endStream, buf, from, to);
      return;
    }
    this.#blockStream = id;
    this.#blockEnd = endStream;
    // A copy: the socket's chunk is not kept beyond this read.
    this.#blockParts = [Buffer.from(buf.subarray(from, to))];
    this.#blockBytes = to - from;
  }

  #continuation(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (this.#blockStream === 0 || id !== this.#blockStream) throw new H2ConnectionError(PROTOCOL_ERROR, 'CONTINUATION out of place');
    this.#blockBytes += end - start;
    if (this.#blockBytes > MAX_HEADER_BLOCK) throw new H2ConnectionError(ENHANCE_YOUR_CALM, 'a header block over 256 KiB');
    this.#blockParts.push(Buffer.from(buf.subarray(start, end)));
    if ((flags & FLAG_END_HEADERS) === 0) return;
    const block = Buffer.concat(this.#blockParts, this.#blockBytes);
    this.#blockStream = 0;
    this.#blockParts = [];
    this.#block(id, this.#blockEnd, block, 0, block.length);
  }

  /** A whole header block: decoded (always, the HPACK state is the connection's), then the stream's or a new one. */
  #block(id: number, endStream: boolean, buf: Buffer, start: number, end: number): void {
    let flat: string[] | null;
    try {
      flat = this.decoder.decode(buf, start, end);
    } catch (err) {
      if (!(err instanceof HpackError && err.tooLarge)) throw err;
      flat = null; // over maxHeaderListSize: the role answers (431) or resets
    }
    const stream = this.streams.get(id);
    if (stream === undefined) {
      this.openStream(id, flat, endStream);
      return;
    }
    if (stream.remoteClosed) {
      this.#streamError(id, STREAM_CLOSED);
      return;
    }
    if (flat === null) {
      this.#streamError(id, PROTOCOL_ERROR);
      return;
    }
    if (endStream) stream.remoteClosed = true;
    stream.onHeaders(flat, endStream);
    if (endStream) this.#maybeClosed(stream);
  }

  #settings(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & FLAG_ACK) !== 0) {
      if (end !== start) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if ((end - start) % 6 !== 0) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'SETTINGS of a length not a multiple of 6');
    for (let at = start; at < end; at += 6) {
      const key = buf.readUInt16BE(at);
      const value = buf.readUInt32BE(at + 2);
      switch (key) {
        case SETTINGS_HEADER_TABLE_SIZE:
          this.encoder.setMaxTableSize(value);
          break;
        case SETTINGS_ENABLE_PUSH:
          if (value > 1) throw new H2ConnectionError(PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH neither 0 nor 1');
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = value;
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new H2ConnectionError(FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) throw new H2ConnectionError(FLOW_CONTROL_ERROR, 'a stream window over 2^31-1');
          }
          break;
        }
        case SETTINGS_MAX_FRAME_SIZE:
          if (value < DEFAULT_FRAME_SIZE || value > 16_777_215) throw new H2ConnectionError(PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
          this.peerMaxFrame = value;
          break;
        default:
          break; // unknown settings are ignored (§6.5.2)
      }
    }
    this.#answer(SETTINGS_ACK);
    this.onSettings();
    // A larger window may let queued DATA go.
    for (const s of this.streams.values()) if (s.queue !== null || s.endQueued) this.#pump(s);
  }

  #windowUpdate(id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'WINDOW_UPDATE not 4 bytes');
    const increment = buf.readUInt32BE(start) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new H2ConnectionError(FLOW_CONTROL_ERROR, 'the connection window over 2^31-1');
      if (this.#blocked.size > 0) {
        const blocked = [...this.#blocked];
        this.#blocked.clear();
        for (const s of blocked) this.#pump(s);
      }
      return;
    }
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (this.isIdle(id)) throw new H2ConnectionError(PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (increment === 0) {
      this.#streamError(id, PROTOCOL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      this.#streamError(id, FLOW_CONTROL_ERROR);
      return;
    }
    if (stream.queue !== null || stream.endQueued) this.#pump(stream);
  }

  #rstStream(id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (end - start !== 4) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'RST_STREAM not 4 bytes');
    const stream = this.streams.get(id);
    if (stream === undefined) {
      if (this.isIdle(id)) throw new H2ConnectionError(PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    stream.peerReset = !stream.localClosed;
    this.#end(stream, buf.readUInt32BE(start), undefined);
  }

  #ping(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'PING on a stream');
    if (end - start !== 8) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'PING not 8 bytes');
    if ((flags & FLAG_ACK) !== 0) return;
    this.#answer(frame(FRAME_PING, FLAG_ACK, 0, buf.subarray(start, end)));
  }

  #goaway(id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) throw new H2ConnectionError(PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (end - start < 8) throw new H2ConnectionError(FRAME_SIZE_ERROR, 'GOAWAY under 8 bytes');
    this.goingAway = true;
    this.onGoaway(buf.readUInt32BE(start) & 0x7fffffff, buf.readUInt32BE(start + 4));
  }

  /** An answer the peer asked for, unless it asks faster than it reads. */
  #answer(buf: Buffer): void {
    if (this.socket.writableLength + this.#outBytes > MAX_UNSENT_CONTROL) {
      throw new H2ConnectionError(ENHANCE_YOUR_CALM, 'the peer asks for answers it does not read');
    }
    this.push(buf);
  }

  /** True for a stream id that was never opened (by either side). */
  protected abstract isIdle(id: number): boolean;

  // ---- flow control ----

  #creditConnection(n: number): void {
    this.#connUnacked += n;
    if (this.#connUnacked < CONNECTION_WINDOW / 2) return;
    this.push(windowUpdateFrame(0, this.#connUnacked));
    this.recvWindow += this.#connUnacked;
    this.#connUnacked = 0;
  }

  /** The reader took `n` bytes of `stream`'s DATA: its window opens again (in halves, not per frame). */
  consumed(stream: H2Stream, n: number): void {
    stream.unacked += n;
    if (stream.unacked < STREAM_WINDOW / 2 || stream.remoteClosed || stream.closed) return;
    this.push(windowUpdateFrame(stream.id, stream.unacked));
    stream.recvWindow += stream.unacked;
    stream.unacked = 0;
  }

  // ---- writing ----

  /** Queues bytes for the socket; they go out together on the next tick. */
  push(buf: Buffer): void {
    if (this.dead) return;
    this.#out.push(buf);
    this.#outBytes += buf.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      process.nextTick(flush, this);
    }
  }

  /** @internal */
  flush(): void {
    this.#flushQueued = false;
    const out = this.#out;
    if (out.length === 0 || this.dead) return;
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const socket = this.socket;
    let ok: boolean;
    if (out.length === 1) ok = socket.write(out[0]!);
    else if (bytes <= CONCAT_LIMIT) ok = socket.write(Buffer.concat(out, bytes));
    else {
      socket.cork();
      ok = true;
      for (const b of out) ok = socket.write(b);
      socket.uncork();
    }
    if (!ok) this.#socketFull = true;
  }

  #drained(): void {
    this.#socketFull = false;
    for (const s of this.streams.values()) {
      if (s.wantsDrain && s.queue === null) {
        s.wantsDrain = false;
        s.onDrain();
      }
    }
  }

  /** A header block for `stream` as HEADERS (and CONTINUATION when it is over the peer's frame size). */
  writeHeaders(stream: H2Stream, flat: readonly string[], endStream: boolean): void {
    if (stream.localClosed || this.dead) return;
    // The block comes with room for the frame header in front of it: no copy.
    const framed = this.encoder.encode(flat, FRAME_HEADER_SIZE);
    const length = framed.length - FRAME_HEADER_SIZE;
    const flags = endStream ? FLAG_END_STREAM : 0;
    const max = this.peerMaxFrame;
    if (length <= max) {
      putFrameHeader(framed, 0, length, FRAME_HEADERS, flags | FLAG_END_HEADERS, stream.id);
      this.push(framed);
    } else {
      const block = framed.subarray(FRAME_HEADER_SIZE);
      for (let at = 0; at < block.length; at += max) {
        const to = Math.min(at + max, block.length);
        const last = to === block.length;
        const type = at === 0 ? FRAME_HEADERS : FRAME_CONTINUATION;
        this.push(frameHead(to - at, type, (at === 0 ? flags : 0) | (last ? FLAG_END_HEADERS : 0), stream.id));
        this.push(block.subarray(at, to));
      }
    }
    if (endStream) this.#localEnd(stream);
  }

  /**
   * Body bytes for `stream`: sent now as far as the windows allow, the rest
   * queued. False when the writer should wait for the stream's onDrain().
   */
  writeData(stream: H2Stream, chunk: Buffer, endStream: boolean): boolean {
    if (stream.localClosed || stream.endQueued || this.dead) return true;
    if (chunk.length > 0) {
      if (stream.queue === null) stream.queue = [chunk];
      else stream.queue.push(chunk);
      stream.queuedBytes += chunk.length;
    }
    if (endStream) stream.endQueued = true;
    this.#pump(stream);
    if (stream.queuedBytes < STREAM_HIGH_WATER && !this.#socketFull) return true;
    stream.wantsDrain = true;
    return false;
  }

  /** Ends `stream` with trailers, after whatever DATA is still queued. */
  writeTrailers(stream: H2Stream, flat: readonly string[]): void {
    if (stream.localClosed || stream.endQueued || this.dead) return;
    stream.trailers = flat;
    stream.endQueued = true;
    this.#pump(stream);
  }

  /** Sends what the windows allow of `stream`'s queue, then its end. */
  #pump(stream: H2Stream): void {
    if (stream.closed || stream.localClosed) return;
    const queue = stream.queue;
    if (queue !== null) {
      while (queue.length > 0) {
        const room = Math.min(stream.sendWindow, this.sendWindow, this.peerMaxFrame);
        if (room <= 0) {
          if (this.sendWindow <= 0) this.#blocked.add(stream);
          return;
        }
        let chunk = queue[0]!;
        if (chunk.length > room) {
          queue[0] = chunk.subarray(room);
          chunk = chunk.subarray(0, room);
        } else queue.shift();
        const n = chunk.length;
        stream.sendWindow -= n;
        this.sendWindow -= n;
        stream.queuedBytes -= n;
        const last = queue.length === 0 && stream.endQueued && stream.trailers === null;
        this.push(frameHead(n, FRAME_DATA, last ? FLAG_END_STREAM : 0, stream.id));
        this.push(chunk);
        if (last) {
          stream.queue = null;
          this.#localEnd(stream);
          return;
        }
      }
      stream.queue = null;
    }
    if (stream.endQueued) {
      if (stream.trailers !== null) this.writeHeaders(stream, stream.trailers, true);
      else {
        this.push(frameHead(0, FRAME_DATA, FLAG_END_STREAM, stream.id));
        this.#localEnd(stream);
      }
      return;
    }
    if (stream.wantsDrain && !this.#socketFull) {
      stream.wantsDrain = false;
      stream.onDrain();
    }
  }

  #localEnd(stream: H2Stream): void {
    stream.localClosed = true;
    stream.endQueued = true;
    if (stream.remoteClosed) this.#end(stream, 0, undefined);
    else this.localEnded(stream);
  }

  /** Our side of a stream ended before the peer's (a server answered before the whole request came). */
  protected localEnded(_stream: H2Stream): void {}

  #maybeClosed(stream: H2Stream): void {
    if (stream.localClosed && stream.remoteClosed) this.#end(stream, 0, undefined);
  }

  /** Resets `stream` with `code` (RST_STREAM) and closes it. */
  reset(stream: H2Stream, code: number): void {
    if (stream.closed) return;
    this.push(rstStreamFrame(stream.id, code));
    this.#end(stream, code, undefined);
  }

  #streamError(id: number, code: number): void {
    const stream = this.streams.get(id);
    if (stream !== undefined) this.reset(stream, code);
    else this.push(rstStreamFrame(id, code));
  }

  /** The stream is over: out of the map, its role told. */
  #end(stream: H2Stream, code: number, err: Error | undefined): void {
    if (stream.closed) return;
    stream.closed = true;
    stream.localClosed = true;
    stream.remoteClosed = true;
    stream.rstCode = code;
    stream.queue = null;
    this.streams.delete(stream.id);
    this.#blocked.delete(stream);
    stream.onClose(code, err);
    this.streamClosed(stream);
  }

  /** A stream left the map (roles count their streams here). */
  protected streamClosed(_stream: H2Stream): void {}

  /** No new streams: GOAWAY with the last stream we take (graceful unless `code`). */
  goaway(code = NO_ERROR, debug?: string): void {
    if (this.dead) return;
    this.goingAway = true;
    this.push(goawayFrame(this.lastPeerStream, code, debug));
  }

  /** A connection error: GOAWAY, then the socket goes once it has been written. */
  fail(err: H2ConnectionError): void {
    if (this.dead) return;
    this.failure ??= err;
    this.goaway(err.h2Code, err.message);
    this.flush();
    this.#shutdown(err);
    this.socket.end();
    this.socket.destroySoon();
  }

  /** Closes the socket now; open streams end with `err`. */
  destroy(err?: Error): void {
    if (err !== undefined) this.failure ??= err;
    this.flush();
    this.#shutdown(this.failure);
    this.socket.destroy();
  }

  /** Every open stream ends with the connection. */
  #shutdown(err: Error | undefined): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.off('data', this.#onSocketData);
    const why = err ?? Object.assign(new Error('the connection closed'), { code: 'ECONNRESET' });
    for (const s of [...this.streams.values()]) this.#end(s, CANCEL, why);
  }

  #closed(): void {
    this.#shutdown(this.failure);
    this.onConnectionClose();
  }
}

function flush(conn: H2Connection): void {
  conn.flush();
}
