/**
 * HTTP/2's wire constants (RFC 9113 §6, §7, §11) and the frames Fulcrum
 * writes, for its own HTTP/2 connections (src/http2/connection.ts).
 */

export const FRAME_DATA = 0x0;
export const FRAME_HEADERS = 0x1;
export const FRAME_PRIORITY = 0x2;
export const FRAME_RST_STREAM = 0x3;
export const FRAME_SETTINGS = 0x4;
export const FRAME_PUSH_PROMISE = 0x5;
export const FRAME_PING = 0x6;
export const FRAME_GOAWAY = 0x7;
export const FRAME_WINDOW_UPDATE = 0x8;
export const FRAME_CONTINUATION = 0x9;

export const FLAG_END_STREAM = 0x1;
export const FLAG_ACK = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;

export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const ENHANCE_YOUR_CALM = 0xb;

export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** RFC 9113 §6.9.1: the largest window a peer may open. */
export const MAX_WINDOW = 2 ** 31 - 1;
/** RFC 9113 §6.5.2: the initial window and frame size before any SETTINGS. */
export const DEFAULT_WINDOW = 65_535;
export const DEFAULT_FRAME_SIZE = 16_384;

/** RFC 9113 §3.4: what a client sends first. */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME_HEADER_SIZE = 9;

/** Writes a frame header at `at`. */
export function putFrameHeader(buf: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  buf[at] = length >>> 16;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(streamId, at + 5);
}

/** A frame of header and payload in one buffer. */
export function frame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload === undefined ? 0 : payload.length;
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + length);
  putFrameHeader(buf, 0, length, type, flags, streamId);
  if (payload !== undefined) payload.copy(buf, FRAME_HEADER_SIZE);
  return buf;
}

/** SETTINGS with [id, value] pairs. */
export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 6 * settings.length);
  putFrameHeader(buf, 0, 6 * settings.length, FRAME_SETTINGS, 0, 0);
  let at = FRAME_HEADER_SIZE;
  for (const [id, value] of settings) {
    buf.writeUInt16BE(id, at);
    buf.writeUInt32BE(value, at + 2);
    at += 6;
  }
  return buf;
}

export const SETTINGS_ACK = frame(FRAME_SETTINGS, FLAG_ACK, 0);

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  putFrameHeader(buf, 0, 4, FRAME_WINDOW_UPDATE, 0, streamId);
  buf.writeUInt32BE(increment, FRAME_HEADER_SIZE);
  return buf;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  putFrameHeader(buf, 0, 4, FRAME_RST_STREAM, 0, streamId);
  buf.writeUInt32BE(code, FRAME_HEADER_SIZE);
  return buf;
}

export function goawayFrame(lastStreamId: number, code: number, debug?: string): Buffer {
  const extra = debug === undefined ? 0 : Buffer.byteLength(debug);
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8 + extra);
  putFrameHeader(buf, 0, 8 + extra, FRAME_GOAWAY, 0, 0);
  buf.writeUInt32BE(lastStreamId, FRAME_HEADER_SIZE);
  buf.writeUInt32BE(code, FRAME_HEADER_SIZE + 4);
  if (debug !== undefined) buf.write(debug, FRAME_HEADER_SIZE + 8);
  return buf;
}

/** A frame's header and the start of its payload in front of `data` (DATA and a one-frame HEADERS). */
export function frameHead(length: number, type: number, flags: number, streamId: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  putFrameHeader(buf, 0, length, type, flags, streamId);
  return buf;
}
