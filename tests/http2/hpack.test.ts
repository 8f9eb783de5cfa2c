import http2 from 'node:http2';
import net from 'node:net';
import fc from 'fast-check';
import { HpackDecoder, HpackEncoder, HpackError, huffmanDecode, huffmanLength, huffmanWrite } from '../../src/http2/hpack';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const decodeAll = (d: HpackDecoder, b: Buffer): string[] => d.decode(b, 0, b.length);
const pairs = (flat: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
};
const flatOf = (list: [string, string][]): string[] => list.flat();

/** The decode of b must throw HpackError (and nothing else). */
function expectHpackError(d: HpackDecoder, b: Buffer): HpackError {
  try {
    decodeAll(d, b);
  } catch (err) {
    expect(err).toBeInstanceOf(HpackError);
    return err as HpackError;
  }
  throw new Error(`decoded ${b.toString('hex')} without an error`);
}

interface Step { block: string; headers: [string, string][]; table: [string, string][]; size: number }

/** RFC 7541 Appendix C: a series of blocks on one decoder, with the decoded
 *  list and the dynamic table (newest first) and its size after each. */
function runSeries(steps: Step[], maxTableSize = 4096): void {
  const d = new HpackDecoder(maxTableSize);
  for (const step of steps) {
    expect(pairs(decodeAll(d, hex(step.block)))).toEqual(step.headers);
    const table = d.dynamicTable();
    expect(table.entries).toEqual(step.table);
    expect(table.size).toBe(step.size);
  }
}

const REQ1: [string, string][] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']];
const REQ2: [string, string][] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: [string, string][] = [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']];
const REQ_TABLES: [string, string][][] = [
  [[':authority', 'www.example.com']],
  [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
  [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
];
const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const RES1: [string, string][] = [[':status', '302'], ['cache-control', 'private'], ['date', DATE1], ['location', 'https://www.example.com']];
const RES2: [string, string][] = [[':status', '307'], ['cache-control', 'private'], ['date', DATE1], ['location', 'https://www.example.com']];
const RES3: [string, string][] = [[':status', '200'], ['cache-control', 'private'], ['date', DATE2], ['location', 'https://www.example.com'], ['content-encoding', 'gzip'], ['set-cookie', COOKIE]];
const RES_TABLES: [string, string][][] = [
  [['location', 'https://www.example.com'], ['date', DATE1], ['cache-control', 'private'], [':status', '302']],
  [[':status', '307'], ['location', 'https://www.example.com'], ['date', DATE1], ['cache-control', 'private']],
  [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE2]],
];

describe('RFC 7541 Appendix C, decoded byte for byte', () => {
  test('C.2 field representations', () => {
    runSeries([{ block: '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', headers: [['custom-key', 'custom-header']], table: [['custom-key', 'custom-header']], size: 55 }]);
    runSeries([{ block: '040c 2f73 616d 706c 652f 7061 7468', headers: [[':path', '/sample/path']], table: [], size: 0 }]);
    runSeries([{ block: '1008 7061 7373 776f 7264 0673 6563 7265 74', headers: [['password', 'secret']], table: [], size: 0 }]);
    runSeries([{ block: '82', headers: [[':method', 'GET']], table: [], size: 0 }]);
  });

  test('C.3 requests without Huffman', () => {
    runSeries([
      { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
      { block: '8286 84be 5808 6e6f 2d63 6163 6865', headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
      { block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', headers: REQ3, table: REQ_TABLES[2]!, size: 164 },
    ]);
  });

  test('C.4 requests with Huffman', () => {
    runSeries([
      { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', headers: REQ1, table: REQ_TABLES[0]!, size: 57 },
      { block: '8286 84be 5886 a8eb 1064 9cbf', headers: REQ2, table: REQ_TABLES[1]!, size: 110 },
      { block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', headers: REQ3, table: REQ_TABLES[2]!, size: 164 },
    ]);
  });

  test('C.5 responses without Huffman, 256-byte table with evictions', () => {
    runSeries([
      {
        block: '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        headers: RES1, table: RES_TABLES[0]!, size: 222,
      },
      { block: '4803 3330 37c1 c0bf', headers: RES2, table: RES_TABLES[1]!, size: 222 },
      {
        block: '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
        headers: RES3, table: RES_TABLES[2]!, size: 215,
      },
    ], 256);
  });

  test('C.6 responses with Huffman, 256-byte table with evictions', () => {
    runSeries([
      {
        block: '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        headers: RES1, table: RES_TABLES[0]!, size: 222,
      },
      { block: '4883 640e ffc1 c0bf', headers: RES2, table: RES_TABLES[1]!, size: 222 },
      {
        block: '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
        headers: RES3, table: RES_TABLES[2]!, size: 215,
      },
    ], 256);
  });
});

describe('the Huffman code (RFC 7541 Appendix B)', () => {
  // Huffman strings of Appendix C.4 and C.6.
  const VECTORS: [string, string][] = [
    ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'], ['no-cache', 'a8eb 1064 9cbf'],
    ['custom-key', '25a8 49e9 5ba9 7d7f'], ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
    ['302', '6402'], ['307', '640e ff'], ['private', 'aec3 771a 4b'],
    [DATE1, 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'],
    [DATE2, 'd07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff'],
    ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'], ['gzip', '9bd9 ab'],
    [COOKIE, '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07'],
  ];

  test.each(VECTORS)('%s encodes and decodes as the RFC shows', (text, code) => {
    const want = hex(code);
    const out = Buffer.alloc(want.length + 8);
    expect(huffmanLength(text)).toBe(want.length);
    expect(out.subarray(0, huffmanWrite(text, out, 0)).toString('hex')).toBe(want.toString('hex'));
    expect(huffmanDecode(want, 0, want.length)).toBe(text);
  });

  test('the 257 codes form a complete prefix code: every byte value round-trips, alone and in runs', () => {
    // The decoder's tables are built from the same codes and refuse an
    // incomplete tree at load; here every symbol is checked through both ways.
    let all = '';
    for (let c = 0; c < 256; c++) {
      const s = String.fromCharCode(c);
      all += s;
      const out = Buffer.alloc(8);
      const end = huffmanWrite(s, out, 0);
      expect(huffmanDecode(out, 0, end)).toBe(s);
    }
    const out = Buffer.alloc(huffmanLength(all));
    expect(huffmanWrite(all, out, 0)).toBe(out.length);
    expect(huffmanDecode(out, 0, out.length)).toBe(all);
  });

  test('EOS, padding longer than 7 bits and padding that is not all 1s are refused', () => {
    expect(() => huffmanDecode(hex('ffff ffff'), 0, 4)).toThrow(HpackError); // EOS (30 ones)
    expect(() => huffmanDecode(hex('1fff'), 0, 2)).toThrow(HpackError); // 'a' then 11 ones
    expect(() => huffmanDecode(hex('18'), 0, 1)).toThrow(HpackError); // 'a' then 000
    expect(() => huffmanDecode(hex('ff'), 0, 1)).toThrow(HpackError); // 8 bits of padding
    expect(huffmanDecode(hex('1f'), 0, 1)).toBe('a'); // 'a' then 111: fine
  });
});

describe('encoder', () => {
  test('reproduces C.4 byte for byte (default policy) and C.3 without Huffman', () => {
    const c4 = new HpackEncoder();
    expect(c4.encode(flatOf(REQ1)).toString('hex')).toBe(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff').toString('hex'));
    expect(c4.encode(flatOf(REQ2)).toString('hex')).toBe(hex('8286 84be 5886 a8eb 1064 9cbf').toString('hex'));
    expect(c4.encode(flatOf(REQ3)).toString('hex')).toBe(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf').toString('hex'));
    expect(c4.dynamicTable()).toEqual({ entries: REQ_TABLES[2], size: 164, maxSize: 4096 });
    const c3 = new HpackEncoder({ huffman: 'never' });
    expect(c3.encode(flatOf(REQ1)).toString('hex')).toBe(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d').toString('hex'));
    expect(c3.encode(flatOf(REQ2)).toString('hex')).toBe(hex('8286 84be 5808 6e6f 2d63 6163 6865').toString('hex'));
  });

  test('C.5 and C.6 lists round-trip through a 256-byte table', () => {
    for (const huffman of ['never', 'indexed', 'always'] as const) {
      const e = new HpackEncoder({ huffman });
      e.setMaxTableSize(256);
      const d = new HpackDecoder(256);
      for (const list of [RES1, RES2, RES3]) {
        expect(pairs(decodeAll(d, e.encode(flatOf(list))))).toEqual(list);
        expect(d.dynamicTable()).toEqual(e.dynamicTable());
      }
    }
  });

  test('one byte for full static matches; repeated values cost one byte; credentials are never indexed', () => {
    const e = new HpackEncoder();
    expect([...e.encode([':method', 'GET', ':scheme', 'https', ':status', '200', ':path', '/'])]).toEqual([0x82, 0x87, 0x88, 0x84]);
    const head = ['server', 'fulcrum', 'content-type', 'text/plain'];
    expect(e.encode(head).length).toBeGreaterThan(4);
    expect([...e.encode(head)]).toEqual([0xbf, 0xbe]);
    const secret = e.encode(['authorization', 'Bearer x', 'cookie', 'a=1']);
    expect(secret[0]).toBe(0x10 | 0x0f); // never indexed, name index 23 (15 + 8)
    expect(e.dynamicTable().entries).toEqual([['content-type', 'text/plain'], ['server', 'fulcrum']]);
    // A per-request value goes without indexing, so it does not churn the table.
    e.encode([':path', '/a', 'content-length', '12']);
    expect(e.dynamicTable().entries.length).toBe(2);
  });

  test('each block is a Buffer of its own: later blocks, small or larger than the 64 KiB slab, never overwrite it', () => {
    const e = new HpackEncoder({ dynamicTable: false });
    const d = new HpackDecoder();
    const lists: string[][] = [];
    const blocks: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const list = i % 7 === 3
        ? ['x-big', 'b'.repeat(30_000 + i), 'x-big2', 'c'.repeat(30_000), 'x-big3', String(i).repeat(5000)]
        : [':status', '200', 'x-n', `value ${i} `.repeat(1 + (i % 5) * 40)];
      lists.push(list);
      blocks.push(e.encode(list));
    }
    const copies = blocks.map((b) => Buffer.from(b));
    for (let i = 0; i < 40; i++) e.encode(lists[i]!); // more blocks after them
    blocks.forEach((b, i) => {
      expect(b.equals(copies[i]!)).toBe(true);
      expect(decodeAll(d, b)).toEqual(lists[i]);
    });
  });

  test('headroom: the block starts after the bytes left for the frame header', () => {
    const e = new HpackEncoder();
    const b = e.encode([':status', '200'], 9);
    expect(b.length).toBe(10);
    expect(b[9]).toBe(0x88);
  });

  test('a table size change is signalled at the start of the next block: the smallest, then the final', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    decodeAll(d, e.encode(['x-a', 'one', 'x-b', 'two']));
    e.setMaxTableSize(0);
    e.setMaxTableSize(100);
    const b = e.encode(['x-a', 'one']);
    expect(b[0]).toBe(0x20); // size update to 0
    expect(b[1]).toBe(0x3f); // then to 100 (31 + 69)
    expect(b[2]).toBe(69);
    expect(pairs(decodeAll(d, b))).toEqual([['x-a', 'one']]);
    expect(d.dynamicTable()).toEqual(e.dynamicTable());
    expect(d.dynamicTable().maxSize).toBe(100);
    // The peer allowing more than 4096: the encoder stays at 4096, no update.
    const big = new HpackEncoder();
    big.setMaxTableSize(65536);
    expect(big.encode([':status', '200'])[0]).toBe(0x88);
  });
});

// ---- property tests --------------------------------------------------------

const byteChar = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const latin1 = (maxLength: number) => fc.string({ unit: byteChar, maxLength });
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_'.split(''));
const fieldName = fc.oneof(
  fc.constantFrom(':method', ':path', ':status', ':authority', 'content-type', 'user-agent', 'server', 'cookie', 'authorization', 'content-length', 'set-cookie', 'date', 'accept'),
  fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 }),
  latin1(20),
);
const fieldValue = fc.oneof(
  { weight: 6, arbitrary: latin1(40) },
  { weight: 2, arbitrary: fc.constantFrom('', 'GET', '200', '/', 'text/plain', 'gzip, deflate', 'https') },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 300 }).map((n) => 'v'.repeat(n)) },
  { weight: 1, arbitrary: fc.tuple(byteChar, fc.integer({ min: 16_300, max: 16_600 })).map(([c, n]) => c.repeat(n)) },
);
const headerList = fc.array(fc.tuple(fieldName, fieldValue), { maxLength: 12 });

describe('properties', () => {
  test('any list round-trips; the two dynamic tables stay identical across size updates and evictions', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('never', 'indexed', 'always') as fc.Arbitrary<'never' | 'indexed' | 'always'>,
        fc.boolean(),
        fc.array(fc.tuple(headerList, fc.option(fc.constantFrom(0, 40, 64, 100, 256, 1000, 4096, 8192), { nil: undefined })), { minLength: 1, maxLength: 6 }),
        (huffman, dynamicTable, blocks) => {
          const e = new HpackEncoder({ huffman, dynamicTable });
          const d = new HpackDecoder();
          for (const [list, size] of blocks) {
            if (size !== undefined) e.setMaxTableSize(size);
            const block = e.encode(flatOf(list));
            expect(pairs(decodeAll(d, block))).toEqual(list);
            expect(d.dynamicTable()).toEqual(e.dynamicTable());
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test('random bytes and truncated or corrupted valid blocks: HpackError or a result, nothing else', () => {
    const check = (d: HpackDecoder, b: Buffer, start = 0, end = b.length) => {
      try {
        d.decode(b, start, end);
      } catch (err) {
        if (!(err instanceof HpackError)) throw err;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => check(new HpackDecoder(), Buffer.from(bytes))),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(headerList, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), (list, cut, at, byte) => {
        const e = new HpackEncoder({ huffman: 'always' });
        const block = e.encode(flatOf(list));
        check(new HpackDecoder(), block, 0, block.length === 0 ? 0 : cut % block.length);
        const corrupt = Buffer.from(block);
        if (corrupt.length > 0) corrupt[at % corrupt.length] = byte;
        check(new HpackDecoder(), corrupt);
        // A decode inside a larger buffer reads only [start, end).
        const framed = Buffer.concat([Buffer.from([0xff, 0xff]), block, Buffer.from([0xff])]);
        expect(pairs(new HpackDecoder().decode(framed, 2, 2 + block.length))).toEqual(list);
      }),
      { numRuns: 300 },
    );
  });
});

describe('malformed blocks throw HpackError', () => {
  test.each([
    ['index 0', '80'],
    ['index beyond an empty dynamic table', 'be'],
    ['index 127 + 0', 'ff00'],
    ['a literal name index beyond the tables', '7f00 0161'],
    ['an integer too large', 'ffff ffff ffff 7f'],
    ['an integer with endless continuation bytes', 'ff80 8080 8080 8080 00'],
    ['an integer cut short', 'ff'],
    ['an integer cut short after a continuation byte', 'ff80'],
    ['a string running past the end', '4005 61'],
    ['a literal missing its value', '4001 61'],
    ['a literal missing its name', '40'],
    ['a literal by name index missing its value', '04'],
    ['EOS in a Huffman value', '0001 6184 ffff ffff'],
    ['Huffman padding longer than 7 bits', '0001 6182 1fff'],
    ['Huffman padding not of 1s', '0001 6181 18'],
    ['a size update above our maximum', '3fe2 1f'],
    ['a size update after a field', '8220'],
  ])('%s', (_what, block) => {
    const err = expectHpackError(new HpackDecoder(), hex(block));
    expect(err.tooLarge).toBe(false);
    expect(err.code).toBe('COMPRESSION_ERROR');
  });

  test('size updates at the start are fine, up to our maximum', () => {
    const d = new HpackDecoder();
    expect(pairs(decodeAll(d, hex('3fe1 1f20 3f11 82')))).toEqual([[':method', 'GET']]); // 4096, 0, 48
    expect(d.dynamicTable().maxSize).toBe(48);
    // An entry larger than the whole table empties it (RFC 7541 §4.4).
    expect(pairs(decodeAll(d, hex('4003 6162 6303 7879 7a')))).toEqual([['abc', 'xyz']]);
    expect(d.dynamicTable()).toEqual({ entries: [['abc', 'xyz']], size: 38, maxSize: 48 });
    decodeAll(d, hex(`4014 ${'61'.repeat(20)} 0161`)); // 20 + 1 + 32 > 48
    expect(d.dynamicTable()).toEqual({ entries: [], size: 0, maxSize: 48 });
  });

  test('over maxHeaderListSize: tooLarge, after the whole block, with the table still in step', () => {
    const e = new HpackEncoder();
    const d = new HpackDecoder();
    d.maxHeaderListSize = 200;
    const big = ['x-one', 'a'.repeat(100), 'x-two', 'b'.repeat(100), 'x-three', 'c'];
    const err = expectHpackError(d, e.encode(big));
    expect(err.tooLarge).toBe(true);
    expect(d.dynamicTable()).toEqual(e.dynamicTable()); // all three were inserted
    expect(pairs(decodeAll(d, e.encode(['x-three', 'c', 'x-one', 'a'.repeat(100)])))).toEqual([['x-three', 'c'], ['x-one', 'a'.repeat(100)]]);
  });
});

// ---- interop with nghttp2 (node:http2) ------------------------------------

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

interface Frame { type: number; flags: number; stream: number; payload: Buffer }

/** A raw TCP server that reads a client's preface and frames; `onFrame` sees each frame. */
async function rawH2Server(onFrame: (f: Frame, socket: net.Socket) => void): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    socket.write(frame(SETTINGS, 0, 0, Buffer.alloc(0)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!prefaceSeen) {
        if (buf.length < PREFACE.length) return;
        expect(buf.subarray(0, PREFACE.length).toString('latin1')).toBe(PREFACE);
        buf = buf.subarray(PREFACE.length);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const f = { type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) };
        buf = buf.subarray(9 + len);
        if (f.type === SETTINGS && (f.flags & 1) === 0) socket.write(frame(SETTINGS, 1, 0, Buffer.alloc(0)));
        onFrame(f, socket);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** The header block fragment of a HEADERS frame: padding and priority removed. */
function headersFragment(f: Frame): Buffer {
  let start = 0;
  let end = f.payload.length;
  if (f.flags & 0x8) { end -= f.payload[0]!; start = 1; }
  if (f.flags & 0x20) start += 5;
  return f.payload.subarray(start, end);
}

/** Values with every byte value node:http2 lets through (\t, 0x20-0xff), in
 *  otherwise Huffman-friendly text so that nghttp2 Huffman-codes them. */
function allByteFields(): [string, string][] {
  const out: [string, string][] = [];
  for (let c = 0; c < 256; c++) {
    if (c !== 9 && c < 0x20) continue;
    if (c === 0x7f) continue;
    out.push([`x-b${c}`, `aaaaaaaaaaaaaaaa${String.fromCharCode(c)}aaaaaaaaaaaaaaaa`]);
  }
  return out;
}

describe('interop with node:http2 (nghttp2)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => { while (cleanups.length > 0) await cleanups.pop()!(); });

  test('decodes the request blocks nghttp2 sends, the later ones through its dynamic table', async () => {
    const blocks: Buffer[] = [];
    let pending: Buffer[] = [];
    const server = await rawH2Server((f) => {
      if (f.type === HEADERS) pending = [headersFragment(f)];
      else if (f.type === CONTINUATION) pending.push(f.payload);
      else return;
      if (f.flags & 0x4) blocks.push(Buffer.concat(pending));
    });
    cleanups.push(server.close);
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => {});
    cleanups.push(() => { client.destroy(); });
    const fields = allByteFields();
    const requests: [string, string][][] = [
      [['user-agent', 'hpack-test/1'], ['accept', '*/*'], ['x-custom', 'one'], ['cookie', 'session=abcdefghijklmnopqrstuvwxyz']],
      [['user-agent', 'hpack-test/1'], ['accept', '*/*'], ['x-custom', 'two'], ['cookie', 'session=abcdefghijklmnopqrstuvwxyz']],
      fields.slice(0, 80), fields.slice(80, 160), fields.slice(160),
    ];
    requests.forEach((list, i) => {
      const headers: http2.OutgoingHttpHeaders = { ':method': i === 0 ? 'GET' : 'POST', ':path': `/r/${i}?q=${i}` };
      for (const [name, value] of list) headers[name] = value;
      const req = client.request(headers, { endStream: true });
      req.on('error', () => {});
    });
    const deadline = Date.now() + 5000;
    while (blocks.length < requests.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(blocks.length).toBe(requests.length);
    const d = new HpackDecoder();
    blocks.forEach((block, i) => {
      const got = pairs(decodeAll(d, block));
      const pseudo = new Map(got.filter(([n]) => n.startsWith(':')));
      expect(pseudo.get(':method')).toBe(i === 0 ? 'GET' : 'POST');
      expect(pseudo.get(':path')).toBe(`/r/${i}?q=${i}`);
      expect(pseudo.get(':scheme')).toBe('http');
      expect(pseudo.get(':authority')).toBe(`127.0.0.1:${server.port}`);
      expect(got.filter(([n]) => !n.startsWith(':'))).toEqual(requests[i]);
    });
    // The second request reuses the first's entries: it is much shorter.
    expect(blocks[1]!.length).toBeLessThan(blocks[0]!.length / 2);
    // nghttp2 Huffman-coded the values with every byte.
    expect(blocks[2]!.length).toBeLessThan(fields.slice(0, 80).reduce((n, [a, b]) => n + a.length + b.length, 0));
  });

  test('nghttp2 decodes our response blocks: static, dynamic, Huffman, a table size update', async () => {
    const encoder = new HpackEncoder({ huffman: 'always' });
    const responses: [string, string][][] = [
      [[':status', '200'], ['server', 'fulcrum'], ['content-type', 'text/plain'], ['x-long', 'z'.repeat(20_000)], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']],
      [[':status', '404'], ['server', 'fulcrum'], ['content-type', 'text/plain'], ['x-empty', ''], ['authorization', 'Basic eDp5']],
      ...[0, 1, 2].map((k) => [[':status', '200'], ...allByteFields().slice(k * 80, k * 80 + 80)] as [string, string][]),
    ];
    const server = await rawH2Server((f, socket) => {
      if (f.type === SETTINGS && (f.flags & 1) === 0) {
        for (let i = 0; i + 6 <= f.payload.length; i += 6) {
          if (f.payload.readUInt16BE(i) === 0x1) encoder.setMaxTableSize(f.payload.readUInt32BE(i + 2));
        }
      }
      if (f.type !== HEADERS) return;
      const block = encoder.encode(flatOf(responses[(f.stream - 1) / 2]!));
      // Split at the peer's default max frame size: HEADERS then CONTINUATION.
      for (let at = 0; at < block.length; at += 16384) {
        const last = at + 16384 >= block.length;
        socket.write(frame(at === 0 ? HEADERS : CONTINUATION, (last ? 0x4 : 0) | (at === 0 ? 0x1 : 0), f.stream, block.subarray(at, at + 16384)));
      }
    });
    cleanups.push(server.close);
    // The client's small table makes our encoder send a size update first.
    const client = http2.connect(`http://127.0.0.1:${server.port}`, { settings: { headerTableSize: 256 }, maxHeaderListPairs: 1000 });
    client.on('error', () => {});
    cleanups.push(() => { client.destroy(); });
    const got: http2.IncomingHttpHeaders[] = [];
    for (let i = 0; i < responses.length; i++) {
      got.push(await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = client.request({ ':path': `/${i}` }, { endStream: true });
        req.on('response', resolve);
        req.on('error', reject);
      }));
    }
    responses.forEach((list, i) => {
      const want: Record<string, string | string[]> = {};
      for (const [name, value] of list) {
        if (name === 'set-cookie') want[name] = [...((want[name] as string[] | undefined) ?? []), value];
        else want[name] = value;
      }
      const have: Record<string, unknown> = Object.fromEntries(Object.entries(got[i]!));
      have[':status'] = String(have[':status']);
      expect(Object.keys(have).sort()).toEqual(Object.keys(want).sort());
      for (const name of Object.keys(want)) expect([name, have[name]]).toEqual([name, want[name]]);
    });
    // Our "never indexed" reaches nghttp2 as such.
    expect((got[1] as unknown as Record<symbol, unknown>)[http2.sensitiveHeaders]).toEqual(['authorization']);
  });
});
