#!/usr/bin/env node
// HTTP/1.1 parsers, same process, same messages: Node's llhttp binding
// (`_http_common.HTTPParser`, what src/http1/parser.ts uses) against undici's
// llhttp compiled to WebAssembly (node_modules/undici/lib/llhttp, driven the
// way undici's lib/dispatcher/client-h1.js drives it). Issue 13.
//
//   node scripts/parser-bench.mjs [--rounds 7] [--n 200000] [--socket-n 20000]
//
// Each case parses one canned message N times on one parser (a keep-alive
// connection: one read per message) and turns it into what Fulcrum's code
// needs: method or status, URL, the header list as latin1 strings, keep-alive,
// body chunks as Buffers, the end of the message. Rounds alternate the order
// of the two parsers; the table gives the median ns per message over rounds.
//
// Both are fed from a JS Buffer here, which flatters WASM: in Fulcrum the
// binding reads the socket itself (`consume()`: no 'data' event, no Buffer
// per read in JS), while WASM needs every read as a JS Buffer, then copied
// into its memory (that copy is counted here, the 'data' event is not).
// So a second table measures the whole path on a loopback socket: a writer
// sends one message per write and the next when the parser has seen the
// end of the previous one; the binding consumes the socket as Fulcrum does,
// WASM gets each read from a 'data' event as undici does. CPU time of the
// process per message (the writer's share is the same for both).
import net from 'node:net';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, n: { type: 'string', default: '200000' }, 'socket-n': { type: 'string', default: '20000' } } });
const ROUNDS = Number(values.rounds);
const N = Number(values.n);
const SOCKET_N = Number(values['socket-n']);

// ---- the messages -----------------------------------------------------------

const headers8 = [
  'Host: api.example.com', 'User-Agent: curl/8.5.0', 'Accept: application/json', 'Accept-Encoding: gzip, deflate, br',
  'Accept-Language: en-GB,en;q=0.9', 'X-Request-Id: 5f0c2a9e-8f5b-4d3c-9a6e-1b2c3d4e5f60', 'Cookie: session=abc123; theme=dark', 'Connection: keep-alive',
];
const body1k = 'x'.repeat(1024);
const chunks = Array.from({ length: 4 }, (_, i) => String.fromCharCode(97 + i).repeat(256));
const chunked = `${chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join('')}0\r\n\r\n`;
const resHeaders8 = [
  'Content-Type: application/json', 'Date: Thu, 03 Dec 2026 11:00:00 GMT', 'Server: nginx', 'Cache-Control: no-cache',
  'ETag: "5f0c2a9e"', 'Vary: Accept-Encoding', 'X-Backend: web-1',
];
const CASES = [
  { name: 'server: GET, 8 headers', type: 'REQUEST', bytes: `GET /v1/users/42?fields=name,email HTTP/1.1\r\n${headers8.join('\r\n')}\r\n\r\n`, headers: 8, body: 0 },
  { name: 'server: POST, chunked 1 KiB', type: 'REQUEST', bytes: `POST /v1/upload HTTP/1.1\r\n${headers8.slice(0, 7).join('\r\n')}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`, headers: 8, body: 1024 },
  { name: 'client: 200, 8 headers, 1 KiB', type: 'RESPONSE', bytes: `HTTP/1.1 200 OK\r\n${resHeaders8.join('\r\n')}\r\nContent-Length: 1024\r\n\r\n${body1k}`, headers: 8, body: 1024 },
  { name: 'client: 200, chunked 1 KiB', type: 'RESPONSE', bytes: `HTTP/1.1 200 OK\r\n${resHeaders8.join('\r\n')}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`, headers: 8, body: 1024 },
].map((c) => ({ ...c, buf: Buffer.from(c.bytes, 'latin1') }));

/** What each parser hands on per message (the same for both). */
function sink() {
  return { messages: 0, headers: 0, body: 0, keepAlive: 0, method: undefined, status: 0, url: '', onMessage: null };
}

// ---- Node's binding ---------------------------------------------------------

function bindingParser(type, out) {
  const { HTTPParser, methods } = require('_http_common');
  const parser = new HTTPParser();
  parser.initialize(HTTPParser[type], {}, 0, 0);
  let pieces = [];
  parser[HTTPParser.kOnHeaders] = (h) => {
    for (let i = 0; i < h.length; i++) pieces.push(h[i]);
  };
  parser[HTTPParser.kOnHeadersComplete] = (major, minor, headers, method, url, status, _msg, _upgrade, keepAlive) => {
    if (headers === undefined) {
      headers = pieces;
      pieces = [];
    }
    out.headers += headers.length / 2;
    out.method = methods[method];
    out.url = url;
    out.status = status;
    if (keepAlive) out.keepAlive++;
    return 0;
  };
  parser[HTTPParser.kOnBody] = (b) => {
    out.body += b.length;
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    pieces = [];
    out.messages++;
    out.onMessage?.();
  };
  parser[HTTPParser.kOnExecute] = (r) => {
    if (typeof r !== 'number') throw r;
  };
  return {
    execute(buf) {
      const r = parser.execute(buf);
      if (typeof r !== 'number') throw r;
    },
    /** Fulcrum's path: the socket's reads go to the parser inside Node. */
    attach(socket) {
      parser.consume(socket._handle);
    },
  };
}

// ---- undici's WebAssembly llhttp ---------------------------------------------

const { TYPE, ERROR } = require('undici/lib/llhttp/constants.js');
const wasmModule = (() => {
  try {
    return new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js'));
  } catch {
    return new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js'));
  }
})();

/** One instance per parser here (undici shares one per process: the same per call). */
function wasmParser(type, out) {
  let chunk = null; // the Buffer being parsed: callbacks slice it, as undici's do
  let bufPtr = 0;
  let bufSize = 0;
  let headers = [];
  let url = '';
  let lastWasValue = true;
  const slice = (at, len) => at - bufPtr + chunk.byteOffset;
  const instance = new WebAssembly.Instance(wasmModule, {
    env: {
      wasm_on_message_begin: () => {
        headers = [];
        url = '';
        lastWasValue = true;
        return 0;
      },
      wasm_on_url: (_p, at, len) => {
        const s = slice(at, len);
        url += chunk.latin1Slice(s - chunk.byteOffset, s - chunk.byteOffset + len);
        return 0;
      },
      wasm_on_status: () => 0,
      wasm_on_header_field: (_p, at, len) => {
        const s = at - bufPtr;
        const text = chunk.latin1Slice(s, s + len);
        if (lastWasValue) headers.push(text, '');
        else headers[headers.length - 2] += text;
        lastWasValue = false;
        return 0;
      },
      wasm_on_header_value: (_p, at, len) => {
        const s = at - bufPtr;
        headers[headers.length - 1] += chunk.latin1Slice(s, s + len);
        lastWasValue = true;
        return 0;
      },
      wasm_on_headers_complete: (p, status, _upgrade, keepAlive) => {
        out.headers += headers.length / 2;
        out.method = type === 'REQUEST' ? llhttp.llhttp_get_method(p) : undefined;
        out.url = url;
        out.status = status;
        if (keepAlive === 1) out.keepAlive++;
        // Fulcrum needs the version too (HTTP/1.0 answers, keep-alive rules).
        llhttp.llhttp_get_http_major(p);
        llhttp.llhttp_get_http_minor(p);
        return 0;
      },
      wasm_on_body: (_p, at, len) => {
        // A Buffer over the JS chunk, no copy (undici's FastBuffer).
        const b = Buffer.from(chunk.buffer, at - bufPtr + chunk.byteOffset, len);
        out.body += b.length;
        return 0;
      },
      wasm_on_message_complete: () => {
        out.messages++;
        out.onMessage?.();
        return 0;
      },
    },
  });
  const llhttp = instance.exports;
  const ptr = llhttp.llhttp_alloc(TYPE[type]);
  return {
    execute(buf) {
      if (buf.length > bufSize) {
        if (bufPtr) llhttp.free(bufPtr);
        bufSize = Math.ceil(buf.length / 4096) * 4096;
        bufPtr = llhttp.malloc(bufSize);
      }
      // Every read crosses into WASM memory.
      new Uint8Array(llhttp.memory.buffer, bufPtr, bufSize).set(buf);
      chunk = buf;
      const ret = llhttp.llhttp_execute(ptr, bufPtr, buf.length);
      chunk = null;
      if (ret !== ERROR.OK) throw new Error(`llhttp error ${ret}`);
    },
    /** undici's path: each read is a 'data' event with a Buffer. */
    attach(socket) {
      socket.on('data', (b) => this.execute(b));
    },
  };
}

// ---- the run ------------------------------------------------------------------

const ENGINES = { binding: bindingParser, wasm: wasmParser };

function run(engine, c, n) {
  const out = sink();
  const p = ENGINES[engine](c.type, out);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) p.execute(c.buf);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (out.messages !== n || out.headers !== n * c.headers || out.body !== n * c.body || out.keepAlive !== n) {
    throw new Error(`${engine} ${c.name}: parsed ${JSON.stringify(out)}`);
  }
  if (c.type === 'REQUEST' ? out.url === '' : out.status !== 200) throw new Error(`${engine} ${c.name}: no url/status`);
  return ns;
}

/** CPU µs per message through a loopback socket (see the header). */
async function runSocket(engine, c, n) {
  const out = sink();
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const writer = net.connect(server.address().port, '127.0.0.1');
  writer.setNoDelay(true);
  const [reader] = await Promise.all([new Promise((r) => server.once('connection', r)), new Promise((r) => writer.once('connect', r))]);
  const p = ENGINES[engine](c.type, out);
  // The next message once the parser has seen the end of the previous one: one message per read.
  const done = new Promise((resolve) => {
    out.onMessage = () => {
      if (out.messages === n) resolve();
      else writer.write(c.buf);
    };
  });
  p.attach(reader);
  const cpu0 = process.cpuUsage();
  writer.write(c.buf);
  await done;
  const cpu = process.cpuUsage(cpu0);
  writer.destroy();
  reader.destroy();
  server.close();
  if (out.body !== n * c.body || out.headers !== n * c.headers) throw new Error(`${engine} ${c.name}: parsed ${JSON.stringify(out)}`);
  return ((cpu.user + cpu.system) / n) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

console.log(`Node ${process.version}, undici ${require('undici/package.json').version}, ${ROUNDS} rounds of ${N} messages per case and parser`);
// Warm-up: both parsers, every case, until the JIT has settled.
for (const c of CASES) for (const e of Object.keys(ENGINES)) run(e, c, Math.min(N, 50_000));
const rows = [];
for (const c of CASES) {
  const times = { binding: [], wasm: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['binding', 'wasm'] : ['wasm', 'binding'];
    for (const e of order) times[e].push(run(e, c, N));
  }
  const ratios = times.wasm.map((w, i) => w / times.binding[i]);
  rows.push({
    case: c.name, bytes: c.buf.length,
    'binding ns/msg': median(times.binding).toFixed(0), 'wasm ns/msg': median(times.wasm).toFixed(0),
    'wasm ÷ binding': `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})`,
  });
}
console.table(rows);

console.log(`The whole path, a loopback socket: ${ROUNDS} rounds of ${SOCKET_N} messages, CPU ns per message (writer included)`);
const socketRows = [];
for (const c of CASES) {
  const times = { binding: [], wasm: [] };
  for (const e of Object.keys(ENGINES)) await runSocket(e, c, Math.min(SOCKET_N, 2000));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['binding', 'wasm'] : ['wasm', 'binding'];
    for (const e of order) times[e].push(await runSocket(e, c, SOCKET_N));
  }
  const ratios = times.wasm.map((w, i) => w / times.binding[i]);
  socketRows.push({
    case: c.name, 'binding ns/msg': median(times.binding).toFixed(0), 'wasm ns/msg': median(times.wasm).toFixed(0),
    'wasm − binding': (median(times.wasm) - median(times.binding)).toFixed(0),
    'wasm ÷ binding': `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)})`,
  });
}
console.table(socketRows);
