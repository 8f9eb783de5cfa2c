/**
 * HPACK (RFC 7541), the header compression of HTTP/2, for Fulcrum's own HTTP/2
 * implementation (listener and backend sides).
 *
 * Written here rather than taken from npm: the one HPACK codec on npm in wide
 * use, hpack.js, has been unmaintained since 2017, allocates per field and
 * decodes Huffman bit by bit; node:http2 keeps nghttp2's codec internal.
 *
 * Decoder: takes everything a real peer sends (static and dynamic table,
 * Huffman, size updates); Huffman is decoded a nibble at a time by a 256-state
 * machine built at module load from the RFC's code table, as nghttp2 does.
 * Any malformed block throws HpackError (a COMPRESSION_ERROR: the connection
 * must end with GOAWAY, the decoder's state is no longer the peer's).
 *
 * Encoder (CPU first: it runs per request): a full static-table match is one
 * byte; otherwise the static name index; a dynamic table (at most 4096 bytes,
 * whatever the peer allows) with incremental indexing, so a value repeated
 * request after request (user-agent, content-type, server, :authority) costs
 * one or two bytes after the first time; fields whose values change per
 * request (:path, content-length, etag, ...) are sent without indexing so
 * they do not churn the table; credentials are "never indexed". Huffman is
 * used only for literals that enter the dynamic table (sent once per
 * connection), where it saves bytes at no per-request cost; per-request
 * literals are copied raw (measured in bench/hpack.mjs: Huffman costs more CPU
 * than it saves on loopback, and they are short).
 */

/** A COMPRESSION_ERROR (RFC 9113 §4.3): the connection must end with GOAWAY.
 *  With `tooLarge` the block itself was well-formed and fully decoded (the
 *  decoder is still in step with the peer) but the header list exceeded
 *  maxHeaderListSize: the caller may answer 431 and keep the connection. */
export class HpackError extends Error {
  readonly code = 'COMPRESSION_ERROR';
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge = false) {
    super(message);
    this.name = 'HpackError';
    this.tooLarge = tooLarge;
  }
}

// Buffer's latin1 fast paths (on Buffer.prototype in every Node line we run:
// 20 and 26); toString('latin1', a, b) and write(s, o, 'latin1') go through
// an encoding switch and argument checks first.
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number, length: number): number;
}

/** RFC 7541 Appendix A, index 1..61 (index 0 unused). */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ['', ''],
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'],
  [':path', '/index.html'], [':scheme', 'http'], [':scheme', 'https'],
  [':status', '200'], [':status', '204'], [':status', '206'], [':status', '304'],
  [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''],
  ['accept', ''], ['access-control-allow-origin', ''], ['age', ''], ['allow', ''],
  ['authorization', ''], ['cache-control', ''], ['content-disposition', ''],
  ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''],
  ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''],
  ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''],
  ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''],
  ['range', ''], ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''],
  ['set-cookie', ''], ['strict-transport-security', ''], ['transfer-encoding', ''],
  ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];
const STATIC_COUNT = 61;
const STATIC_NAMES: readonly string[] = STATIC_TABLE.map((e) => e[0]);
const STATIC_VALUES: readonly string[] = STATIC_TABLE.map((e) => e[1]);

/** RFC 7541 Appendix B: the code of each symbol (0..255, then EOS = 256),
 *  right-aligned, and its length in bits. From golang.org/x/net/http2/hpack
 *  tables.go; tests/http2/hpack.test.ts checks that they form a complete
 *  canonical prefix code and reproduce Appendix C.4 and C.6. */
const HUFFMAN_CODES = new Uint32Array([
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
  0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
  0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
  0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
  0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
  0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
  0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
  0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
  0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
  0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
  0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
  0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
  0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
  0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
  0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
  0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
  0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
  0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
  0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
  0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
  0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
  0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
  0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
  0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
  0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
  0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
  0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
  0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
  0x3fffffff,
]);
const HUFFMAN_LENGTHS = new Uint8Array([
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
]);

const EOS = 256;

// ---- Huffman decoding: a nibble-at-a-time state machine ------------------
//
// The code tree has 257 leaves, so exactly 256 internal nodes: the states.
// HUFFMAN_FSM[state << 4 | nibble] = next state (bits 0-7) | symbol emitted
// (bits 8-15) | EMIT (a symbol ended within the nibble; at most one can, the
// shortest code has 5 bits) | FAIL (EOS was decoded: RFC 7541 §5.2 forbids it).
// HUFFMAN_ACCEPT[state] = 1 where the string may end: at the root, or after at
// most 7 bits that are all 1s (the padding, a prefix of EOS).
const EMIT = 0x10000;
const FAIL = 0x20000;
const HUFFMAN_FSM = new Uint32Array(256 * 16);
const HUFFMAN_ACCEPT = new Uint8Array(256);

function buildHuffmanDecoder(): void {
  // kids[node * 2 + bit]: an internal node (< 256) or 256 + symbol (a leaf).
  const kids = new Int32Array(512).fill(-1);
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const len = HUFFMAN_LENGTHS[sym]!;
    let node = 0;
    for (let bit = len - 1; bit > 0; bit--) {
      const slot = node * 2 + ((code >>> bit) & 1);
      if (kids[slot] === -1) kids[slot] = nodes++;
      node = kids[slot]!;
    }
    kids[node * 2 + (code & 1)] = 256 + sym;
  }
  if (nodes !== 256 || kids.includes(-1)) throw new Error('hpack: the Huffman table is not a complete prefix code');
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const kid = kids[node * 2 + ((nibble >> bit) & 1)]!;
        if (kid < 256) { node = kid; continue; }
        if (kid - 256 === EOS) { entry = FAIL; break; }
        entry = EMIT | ((kid - 256) << 8);
        node = 0;
      }
      HUFFMAN_FSM[(state << 4) | nibble] = entry === FAIL ? FAIL : entry | node;
    }
  }
  let node = 0;
  HUFFMAN_ACCEPT[0] = 1;
  for (let depth = 1; depth <= 7; depth++) {
    node = kids[node * 2 + 1]!;
    HUFFMAN_ACCEPT[node] = 1;
  }
}
buildHuffmanDecoder();

/** Decoded Huffman bytes land here before one latin1Slice (shared: decoding
 *  is synchronous). A string of n bytes decodes to at most 8n/5 symbols. */
let huffmanOut = Buffer.allocUnsafe(4096) as Latin1Buffer;

/** Decodes the Huffman string buf[start, end) (RFC 7541 §5.2). */
export function huffmanDecode(buf: Uint8Array, start: number, end: number): string {
  const most = (((end - start) * 8) / 5) | 0;
  if (most > huffmanOut.length) huffmanOut = Buffer.allocUnsafe(Math.max(most, huffmanOut.length * 2)) as Latin1Buffer;
  const out = huffmanOut;
  let o = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    let e = HUFFMAN_FSM[(state << 4) | (byte >> 4)]!;
    if (e >= FAIL) throw new HpackError('hpack: EOS in a Huffman string');
    if (e >= EMIT) out[o++] = e >> 8;
    state = e & 0xff;
    e = HUFFMAN_FSM[(state << 4) | (byte & 15)]!;
    if (e >= FAIL) throw new HpackError('hpack: EOS in a Huffman string');
    if (e >= EMIT) out[o++] = e >> 8;
    state = e & 0xff;
  }
  if (HUFFMAN_ACCEPT[state] === 0) throw new HpackError('hpack: bad Huffman padding');
  return out.latin1Slice(0, o);
}

// ---- Huffman encoding --------------------------------------------------

/** The Huffman-encoded length of s in bytes. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >> 3;
}

/** Writes s Huffman-encoded at out[pos], padded with 1s; returns the end. */
export function huffmanWrite(s: string, out: Uint8Array, pos: number): number {
  let acc = 0; // the pending bits, fewer than 8 between symbols
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = HUFFMAN_CODES[sym]!;
    let len = HUFFMAN_LENGTHS[sym]!;
    if (len > 24) {
      // Keep acc within 31 bits: push the code's high part first.
      acc = (acc << (len - 8)) | (code >>> 8);
      n += len - 8;
      while (n >= 8) { n -= 8; out[pos++] = acc >>> n; }
      acc &= (1 << n) - 1;
      code &= 0xff;
      len = 8;
    }
    acc = (acc << len) | code;
    n += len;
    while (n >= 8) { n -= 8; out[pos++] = acc >>> n; }
    acc &= (1 << n) - 1;
  }
  if (n > 0) out[pos++] = (acc << (8 - n)) | (0xff >> n);
  return pos;
}

// ---- Integers (RFC 7541 §5.1) --------------------------------------------

/** Writes v with an N-bit prefix (mask = 2^N - 1) into out[pos] under the
 *  pattern bits `flags`; returns the end. */
function writeInt(out: Uint8Array, pos: number, mask: number, flags: number, v: number): number {
  if (v < mask) { out[pos] = flags | v; return pos + 1; }
  out[pos++] = flags | mask;
  v -= mask;
  while (v >= 128) { out[pos++] = (v & 0x7f) | 0x80; v >>>= 7; }
  out[pos] = v;
  return pos + 1;
}

/** Larger than any index, length or table size a sane peer sends; the cap
 *  keeps every integer exact and rejects endless continuation bytes. */
const MAX_INT = 0x7fffffff;

// ---- Decoder -------------------------------------------------------------

export class HpackDecoder {
  /** Cap on the decoded list: sum of name + value + 32 per field (RFC 9113
   *  §6.5.2). Over it the block is still decoded to its end (the dynamic
   *  table stays in step), then HpackError with tooLarge = true is thrown. */
  maxHeaderListSize = Infinity;

  /** Our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for. */
  private readonly maxTableSize: number;
  /** The dynamic table's current maximum size (the peer's last size update). */
  private tableSize: number;
  /** The dynamic table's current size (name + value + 32 per entry). */
  private size = 0;
  // The dynamic table as a ring: names[head] is the newest entry (index 62).
  private names: string[];
  private values: string[];
  private mask: number;
  private head = 0;
  private count = 0;
  /** Where the last integer or string read ended. */
  private pos = 0;

  constructor(maxTableSize = 4096) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0) throw new RangeError('hpack: maxTableSize must be a non-negative integer');
    this.maxTableSize = maxTableSize;
    this.tableSize = maxTableSize;
    this.names = new Array<string>(32).fill('');
    this.values = new Array<string>(32).fill('');
    this.mask = 31;
  }

  /** The dynamic table's entries, newest first, and its size (for tests). */
  dynamicTable(): { entries: [string, string][]; size: number; maxSize: number } {
    const entries: [string, string][] = [];
    for (let k = 0; k < this.count; k++) {
      const slot = (this.head - k) & this.mask;
      entries.push([this.names[slot]!, this.values[slot]!]);
    }
    return { entries, size: this.size, maxSize: this.tableSize };
  }

  decode(buf: Buffer, start: number, end: number): string[] {
    if (start < 0 || end > buf.length) throw new RangeError(`hpack: [${start}, ${end}) is outside the buffer (${buf.length} bytes)`);
    const out: string[] = [];
    const limit = this.maxHeaderListSize;
    let listSize = 0;
    let tooLarge = false;
    let fields = false; // a field was decoded: no more size updates
    let pos = start;
    while (pos < end) {
      const b = buf[pos++]!;
      let name: string;
      let value: string;
      if (b >= 0x80) {
        // Indexed field (§6.1).
        let index = b & 0x7f;
        if (index === 0x7f) { index = this.intTail(buf, pos, end, index); pos = this.pos; }
        if (index <= STATIC_COUNT) {
          if (index === 0) throw new HpackError('hpack: index 0');
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const k = index - STATIC_COUNT - 1;
          if (k >= this.count) throw new HpackError(`hpack: index ${index} beyond the tables`);
          const slot = (this.head - k) & this.mask;
          name = this.names[slot]!;
          value = this.values[slot]!;
        }
      } else if (b >= 0x20 && b < 0x40) {
        // Dynamic table size update (§6.3).
        if (fields) throw new HpackError('hpack: dynamic table size update after a field');
        let size = b & 0x1f;
        if (size === 0x1f) { size = this.intTail(buf, pos, end, size); pos = this.pos; }
        if (size > this.maxTableSize) throw new HpackError(`hpack: dynamic table size update to ${size}, above our ${this.maxTableSize}`);
        this.tableSize = size;
        this.evictTo(size);
        continue;
      } else {
        // Literal field (§6.2): with incremental indexing (01), without
        // indexing (0000) or never indexed (0001).
        const indexing = b >= 0x40;
        const mask = indexing ? 0x3f : 0x0f;
        let index = b & mask;
        if (index === mask) { index = this.intTail(buf, pos, end, index); pos = this.pos; }
        this.pos = pos;
        if (index === 0) {
          name = this.string(buf, end);
        } else if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index]!;
        } else {
          const k = index - STATIC_COUNT - 1;
          if (k >= this.count) throw new HpackError(`hpack: index ${index} beyond the tables`);
          name = this.names[(this.head - k) & this.mask]!;
        }
        value = this.string(buf, end);
        pos = this.pos;
        if (indexing) this.insert(name, value);
      }
      fields = true;
      listSize += name.length + value.length + 32;
      if (listSize > limit) tooLarge = true;
      else out.push(name, value);
    }
    if (tooLarge) throw new HpackError(`hpack: header list larger than ${limit} bytes`, true);
    return out;
  }

  /** The continuation bytes of an integer whose prefix was all 1s (prefix =
   *  its value); leaves this.pos after them. */
  private intTail(buf: Buffer, pos: number, end: number, prefix: number): number {
    let v = prefix;
    let scale = 1;
    for (;;) {
      if (pos >= end) throw new HpackError('hpack: integer runs past the end of the block');
      const b = buf[pos++]!;
      v += (b & 0x7f) * scale;
      if (v > MAX_INT) throw new HpackError('hpack: integer too large');
      if (b < 0x80) break;
      scale *= 128;
      if (scale > MAX_INT) throw new HpackError('hpack: integer too long');
    }
    this.pos = pos;
    return v;
  }

  /** The string literal (§5.2) at this.pos; leaves this.pos after it. */
  private string(buf: Buffer, end: number): string {
    let pos = this.pos;
    if (pos >= end) throw new HpackError('hpack: string missing at the end of the block');
    const b = buf[pos++]!;
    let len = b & 0x7f;
    if (len === 0x7f) { len = this.intTail(buf, pos, end, len); pos = this.pos; }
    const stop = pos + len;
    if (stop > end) throw new HpackError('hpack: string runs past the end of the block');
    this.pos = stop;
    if (b >= 0x80) return huffmanDecode(buf, pos, stop);
    return (buf as Latin1Buffer).latin1Slice(pos, stop);
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.tableSize) { this.evictTo(0); return; } // §4.4: the table ends empty
    this.evictTo(this.tableSize - size);
    if (this.count === this.names.length) this.grow();
    this.head = (this.head + 1) & this.mask;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.size += size;
  }

  /** Evicts the oldest entries until the table's size is at most max. */
  private evictTo(max: number): void {
    while (this.size > max) {
      const slot = (this.head - this.count + 1) & this.mask;
      this.size -= this.names[slot]!.length + this.values[slot]!.length + 32;
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
  }

  private grow(): void {
    const cap = this.names.length * 2;
    const names = new Array<string>(cap).fill('');
    const values = new Array<string>(cap).fill('');
    // Oldest first at 0, newest at count - 1.
    for (let k = 0; k < this.count; k++) {
      const slot = (this.head - this.count + 1 + k) & this.mask;
      names[k] = this.names[slot]!;
      values[k] = this.values[slot]!;
    }
    this.names = names;
    this.values = values;
    this.mask = cap - 1;
    this.head = this.count - 1;
  }
}

// ---- Encoder -------------------------------------------------------------

/** How a field is sent. */
const INDEX = 0; // incremental indexing (the default)
const NO_INDEX = 1; // without indexing: its value changes per request
const NEVER = 2; // never indexed: a credential (RFC 7541 §7.1.3)
const COOKIE = 3; // never indexed when shorter than 20 bytes (as nghttp2: short cookies are guessable), else indexed

/** nghttp2's choice of the fields not indexed, plus Fulcrum's per-request
 *  ids and trace context; the credentials. */
const POLICIES: ReadonlyMap<string, number> = new Map([
  [':path', NO_INDEX], ['content-length', NO_INDEX], ['age', NO_INDEX], ['etag', NO_INDEX],
  ['if-modified-since', NO_INDEX], ['if-none-match', NO_INDEX], ['location', NO_INDEX],
  ['set-cookie', NO_INDEX], ['x-request-id', NO_INDEX], ['traceparent', NO_INDEX], ['tracestate', NO_INDEX],
  ['authorization', NEVER], ['proxy-authorization', NEVER], ['cookie', COOKIE],
]);

/** What the encoder knows of one name: one Map lookup per field gives it. */
interface NameState {
  /** Its first static index, 0 when not in the static table. */
  readonly staticIndex: number;
  readonly policy: number;
  /** value → -(static index) for a full static match, or the insertion
   *  number of the newest dynamic entry with that value. */
  readonly values: Map<string, number>;
  /** The newest dynamic entry with this name, 0 when none. */
  latest: number;
}

/** The names with something to know before any dynamic entry: static-table
 *  names and names with a policy. Each encoder copies the ones it meets. */
const KNOWN_NAMES = buildKnownNames();

function buildKnownNames(): Map<string, NameState> {
  const known = new Map<string, NameState>();
  for (let i = STATIC_COUNT; i >= 1; i--) {
    // Backwards, so each name ends with its first index.
    const name = STATIC_NAMES[i]!;
    const values = known.get(name)?.values ?? new Map<string, number>();
    values.set(STATIC_VALUES[i]!, -i);
    known.set(name, { staticIndex: i, policy: POLICIES.get(name) ?? INDEX, values, latest: 0 });
  }
  for (const [name, policy] of POLICIES) if (!known.has(name)) known.set(name, { staticIndex: 0, policy, values: new Map(), latest: 0 });
  return known;
}

/** The encoder's own cap on its dynamic table, whatever the peer allows:
 *  4096 bytes per connection is what every implementation uses. */
const ENCODER_TABLE_CAP = 4096;

export interface HpackEncoderOptions {
  /** Use a dynamic table (default true). false: static table and literals only. */
  dynamicTable?: boolean;
  /** 'indexed' (default): Huffman for literals entering the dynamic table,
   *  when shorter; 'always': every literal, when shorter; 'never'. */
  huffman?: 'never' | 'indexed' | 'always';
}

/** Blocks are encoded straight into a shared slab (encoding is synchronous)
 *  and handed out as views of it that never overlap and are never written
 *  again: a fresh Buffer for the caller without a copy (as Buffer.allocUnsafe
 *  hands out views of Node's pool). A new slab when one is used up. */
const SLAB_SIZE = 64 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE) as Latin1Buffer;
let slabUsed = 0;

export class HpackEncoder {
  private readonly dynamic: boolean;
  private readonly huffmanIndexed: boolean;
  private readonly huffmanAll: boolean;
  /** The dynamic table's maximum size, as the peer's decoder knows it. */
  private tableSize = ENCODER_TABLE_CAP;
  private size = 0;
  /** Insertion numbers: the newest entry is number `inserted`. */
  private inserted = 0;
  private count = 0;
  // The entries by insertion number & mask.
  private names: string[];
  private values: string[];
  private mask = 31;
  /** The names met so far that are static, have a policy or have dynamic entries. */
  private readonly byName = new Map<string, NameState>();
  // A size update pending for the next block: the smallest size since the
  // last block, then the final one (RFC 7541 §4.2); -1: none.
  private pendingMin = -1;
  private pendingFinal = -1;

  constructor(options: HpackEncoderOptions = {}) {
    this.dynamic = options.dynamicTable ?? true;
    const huffman = options.huffman ?? 'indexed';
    this.huffmanAll = huffman === 'always';
    this.huffmanIndexed = huffman !== 'never';
    this.names = new Array<string>(32).fill('');
    this.values = new Array<string>(32).fill('');
    if (!this.dynamic) this.setMaxTableSize(0);
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE changed. The table follows it
   *  (capped at 4096); the next block starts with the size update(s). */
  setMaxTableSize(n: number): void {
    const size = this.dynamic ? Math.min(n, ENCODER_TABLE_CAP) : 0;
    if (this.pendingMin >= 0) {
      this.pendingMin = Math.min(this.pendingMin, size);
      this.pendingFinal = size;
    } else if (size !== this.tableSize) {
      this.pendingMin = size;
      this.pendingFinal = size;
    }
  }

  /** Encodes one header block from flat [name, value, ...] (names lower-case,
   *  pseudo-headers first, as given). Returns a fresh Buffer owned by the
   *  caller: `headroom` unused bytes (e.g. 9 for the frame header), then the
   *  block. */
  encode(flat: readonly string[], headroom = 0): Buffer {
    if (slabUsed + headroom + 1024 > slab.length) newSlab(headroom + 1024);
    let out = slab;
    let base = slabUsed;
    let pos = base + headroom;
    if (this.pendingMin >= 0) {
      if (this.pendingMin < this.pendingFinal) {
        pos = writeInt(out, pos, 0x1f, 0x20, this.pendingMin);
        this.resize(this.pendingMin);
      }
      pos = writeInt(out, pos, 0x1f, 0x20, this.pendingFinal);
      this.resize(this.pendingFinal);
      this.pendingMin = this.pendingFinal = -1;
    }
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = flat[i]!;
      const value = flat[i + 1]!;
      // Room for the field at its longest: 3 integers of at most 6 bytes, raw strings.
      if (pos + name.length + value.length + 18 > out.length) {
        // Move the block so far to a slab with room for the rest.
        const done = pos - base;
        newSlab(done + name.length + value.length + 18 + 1024);
        out.copy(slab, 0, base, pos);
        out = slab;
        base = 0;
        pos = done;
      }
      let state = this.byName.get(name);
      if (state === undefined) state = this.meet(name);
      let policy = INDEX;
      let index = 0;
      if (state !== undefined) {
        policy = state.policy;
        if (policy === COOKIE) policy = value.length < 20 ? NEVER : INDEX;
        if (policy !== NEVER) {
          const at = state.values.get(value);
          if (at !== undefined) {
            if (at < 0) out[pos++] = 0x80 | -at;
            else pos = writeInt(out, pos, 0x7f, 0x80, STATIC_COUNT + 1 + this.inserted - at);
            continue;
          }
        }
        index = state.staticIndex;
        if (index === 0 && state.latest !== 0) index = STATIC_COUNT + 1 + this.inserted - state.latest;
      }
      const entrySize = name.length + value.length + 32;
      const indexing = policy === INDEX && entrySize * 4 <= this.tableSize * 3;
      if (indexing) pos = writeInt(out, pos, 0x3f, 0x40, index);
      else pos = writeInt(out, pos, 0x0f, policy === NEVER ? 0x10 : 0x00, index);
      const huffman = this.huffmanAll || (indexing && this.huffmanIndexed);
      if (index === 0) pos = writeString(out, pos, name, huffman);
      pos = writeString(out, pos, value, huffman);
      if (indexing) this.insert(name, value, entrySize, state);
    }
    slabUsed = (pos + 7) & ~7; // the next block starts 8-aligned
    return out.subarray(base, pos);
  }

  /** The dynamic table's entries, newest first, and its size (for tests). */
  dynamicTable(): { entries: [string, string][]; size: number; maxSize: number } {
    const entries: [string, string][] = [];
    for (let at = this.inserted; at > this.inserted - this.count; at--) entries.push([this.names[at & this.mask]!, this.values[at & this.mask]!]);
    return { entries, size: this.size, maxSize: this.tableSize };
  }

  /** A name seen for the first time: this encoder's copy of what is known of it, if anything. */
  private meet(name: string): NameState | undefined {
    const known = KNOWN_NAMES.get(name);
    if (known === undefined) return undefined;
    const state: NameState = { staticIndex: known.staticIndex, policy: known.policy, values: new Map(known.values), latest: 0 };
    this.byName.set(name, state);
    return state;
  }

  private insert(name: string, value: string, size: number, state: NameState | undefined): void {
    this.evictTo(this.tableSize - size);
    if (this.count === this.names.length) this.grow();
    const at = ++this.inserted;
    this.names[at & this.mask] = name;
    this.values[at & this.mask] = value;
    this.count++;
    this.size += size;
    // Eviction may have dropped the name's state: look again.
    if (state === undefined || state.latest === 0 && state.staticIndex === 0) state = this.byName.get(name);
    if (state === undefined) {
      this.byName.set(name, { staticIndex: 0, policy: INDEX, values: new Map([[value, at]]), latest: at });
    } else {
      state.values.set(value, at);
      state.latest = at;
    }
  }

  private resize(max: number): void {
    this.tableSize = max;
    this.evictTo(max);
  }

  /** Evicts the oldest entries until the table's size is at most max. */
  private evictTo(max: number): void {
    while (this.size > max) {
      const at = this.inserted - this.count + 1;
      const slot = at & this.mask;
      const name = this.names[slot]!;
      const value = this.values[slot]!;
      const state = this.byName.get(name)!;
      if (state.values.get(value) === at) state.values.delete(value);
      if (state.latest === at) {
        // It was the only entry with this name (the oldest and the newest).
        state.latest = 0;
        if (state.staticIndex === 0 && state.policy === INDEX) this.byName.delete(name);
      }
      this.size -= name.length + value.length + 32;
      this.names[slot] = '';
      this.values[slot] = '';
      this.count--;
    }
  }

  private grow(): void {
    const cap = this.names.length * 2;
    const names = new Array<string>(cap).fill('');
    const values = new Array<string>(cap).fill('');
    for (let at = this.inserted - this.count + 1; at <= this.inserted; at++) {
      names[at & (cap - 1)] = this.names[at & this.mask]!;
      values[at & (cap - 1)] = this.values[at & this.mask]!;
    }
    this.names = names;
    this.values = values;
    this.mask = cap - 1;
  }
}

function newSlab(need: number): void {
  slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, need)) as Latin1Buffer;
  slabUsed = 0;
}

/** A string literal (§5.2): Huffman when asked and shorter, else raw latin1. */
function writeString(out: Latin1Buffer, pos: number, s: string, huffman: boolean): number {
  const len = s.length;
  if (huffman) {
    const hlen = huffmanLength(s);
    if (hlen < len) return huffmanWrite(s, out, writeInt(out, pos, 0x7f, 0x80, hlen));
  }
  pos = writeInt(out, pos, 0x7f, 0x00, len);
  if (len < 32) for (let i = 0; i < len; i++) out[pos + i] = s.charCodeAt(i);
  else out.latin1Write(s, pos, len);
  return pos + len;
}
