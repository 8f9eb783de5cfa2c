#!/usr/bin/env node
/**
 * Micro-benchmark of src/http2/hpack.ts (built: dist/http2/hpack.js): ns per
 * decode of the request blocks h2load really sends (captured from a real
 * h2load run against a raw HTTP/2 server started here: its first block, with
 * Huffman literals entering the dynamic table, and its steady-state block),
 * and ns per encode of a typical response head and of a typical proxied
 * request, for each encoder policy (dynamic table on/off, Huffman never /
 * for indexed literals / always), with the bytes each produces.
 *
 *   npm run build && flock /tmp/bench.lock node bench/hpack.mjs [--rounds 7]
 */
import { spawnSync, spawn } from 'node:child_process';
import net from 'node:net';
import { HpackDecoder, HpackEncoder } from '../dist/http2/hpack.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 7;

/** Median ns per call of fn over `rounds` rounds of enough calls for ~100 ms. */
function measure(fn) {
  let n = 1000;
  for (;;) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const ns = Number(process.hrtime.bigint() - t);
    if (ns > 50e6) break;
    n *= 2;
  }
  const per = [];
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    per.push(Number(process.hrtime.bigint() - t) / n);
  }
  per.sort((a, b) => a - b);
  return { median: per[per.length >> 1], min: per[0], max: per[per.length - 1] };
}

const fmt = (m) => `${m.median.toFixed(0)} ns (range ${m.min.toFixed(0)}-${m.max.toFixed(0)})`;

function frame(type, flags, stream, payload) {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** The HEADERS blocks of h2load's first requests on one connection. */
async function captureH2load() {
  if (spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load is not installed (Debian: nghttp2-client)');
  const blocks = [];
  const encoder = new HpackEncoder();
  const server = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    let preface = false;
    socket.write(frame(0x4, 0, 0, Buffer.alloc(0)));
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!preface) {
        if (buf.length < 24) return;
        buf = buf.subarray(24);
        preface = true;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const type = buf[3];
        const flags = buf[4];
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        let payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === 0x4 && (flags & 1) === 0) socket.write(frame(0x4, 1, 0, Buffer.alloc(0)));
        if (type !== 0x1) continue;
        if (flags & 0x8) payload = payload.subarray(1, payload.length - payload[0]);
        if (flags & 0x20) payload = payload.subarray(5);
        blocks.push(Buffer.from(payload));
        socket.write(frame(0x1, 0x5, stream, encoder.encode([':status', '200', 'content-type', 'text/plain'])));
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const h2load = spawn('h2load', ['-n', '3', '-c', '1', '-m', '1', `http://127.0.0.1:${port}/`], { stdio: 'ignore' });
  await new Promise((resolve) => h2load.on('exit', resolve));
  server.close();
  if (blocks.length < 2) throw new Error(`captured ${blocks.length} blocks from h2load`);
  return blocks;
}

const blocks = await captureH2load();
const flat = new HpackDecoder().decode(blocks[0], 0, blocks[0].length);
console.log(`node ${process.version}; h2load's request: ${JSON.stringify(flat)}`);
console.log(`  first block ${blocks[0].length} bytes: ${blocks[0].toString('hex')}`);
console.log(`  steady block ${blocks[1].length} bytes: ${blocks[1].toString('hex')}`);

console.log('decode');
console.log(`  first block (fresh decoder each time, Huffman, 5+ insertions): ${fmt(measure(() => new HpackDecoder().decode(blocks[0], 0, blocks[0].length)))}`);
const steady = new HpackDecoder();
steady.decode(blocks[0], 0, blocks[0].length);
const before = JSON.stringify(steady.dynamicTable());
steady.decode(blocks[1], 0, blocks[1].length);
if (JSON.stringify(steady.dynamicTable()) !== before) throw new Error('the steady block changes the table: not repeatable');
console.log(`  steady block (indexed fields only): ${fmt(measure(() => steady.decode(blocks[1], 0, blocks[1].length)))}`);
console.log(`  (new HpackDecoder() alone: ${fmt(measure(() => new HpackDecoder()))})`);

const response = [
  ':status', '200', 'content-type', 'text/plain; charset=utf-8', 'content-length', '1234',
  'date', new Date().toUTCString(), 'server', 'backend/1.0', 'cache-control', 'no-cache', 'vary', 'accept-encoding',
];
const request = [
  ':method', 'GET', ':scheme', 'http', ':authority', '127.0.0.1:8081', ':path', '/api/items?id=12345',
  'user-agent', 'h2load nghttp2/1.52.0', 'accept', '*/*', 'accept-encoding', 'gzip, deflate',
  'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'example.com',
  'x-request-id', '5e1c4d8a-9a3b-4c55-8f0e-2b7c1d9e6f10',
];
// A request with per-request literals, Huffman-coded (as browsers and curl
// send :path): our encoder's steady-state block, repeatable (no insertions).
{
  const e = new HpackEncoder({ huffman: 'always' });
  const d = new HpackDecoder();
  const first = e.encode(request);
  d.decode(first, 0, first.length);
  const block = e.encode(request);
  const before = JSON.stringify(d.dynamicTable());
  d.decode(block, 0, block.length);
  if (JSON.stringify(d.dynamicTable()) !== before) throw new Error('not repeatable');
  console.log(`  proxied request, ${block.length} bytes, Huffman :path and x-request-id, the rest indexed: ${fmt(measure(() => d.decode(block, 0, block.length)))}`);
}

console.log('encode (steady state: the same encoder block after block; bytes per block; first block bytes)');
for (const [what, list] of [['response head', response], ['proxied request', request]]) {
  for (const dynamicTable of [true, false]) {
    for (const huffman of ['never', 'indexed', 'always']) {
      if (!dynamicTable && huffman === 'indexed') continue;
      const e = new HpackEncoder({ dynamicTable, huffman });
      const first = e.encode(list).length;
      const bytes = e.encode(list).length;
      const m = measure(() => e.encode(list));
      console.log(`  ${what}, dynamicTable ${dynamicTable}, huffman ${huffman}: ${fmt(m)}, ${bytes} bytes (first ${first})`);
    }
  }
}
