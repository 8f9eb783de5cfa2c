import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import { createHash, X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { selfSigned } from '../helpers/tls';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { Fulcrum } from '../../src/server';
import { Writable } from 'node:stream';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();

async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml);
  cleanups.push(() => f.stop());
  return f;
}

/** A Fulcrum on a config file, so reload has a file to read again. */
async function fromFile(yaml: string): Promise<{ f: Fulcrum; file: string; url: string; admin: string; logs: Record<string, unknown>[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-reload-'));
  const file = path.join(dir, 'fulcrum.yaml');
  writeFileSync(file, yaml);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l) logs.push(JSON.parse(l)); cb(); } });
  const config = loadConfig(file);
  const f = new Fulcrum(config, { logger: createLogger(config.log, sink) });
  await f.start();
  cleanups.push(() => f.stop(2000));
  return { f, file, url: `http://${f.address('public')}`, admin: `http://${f.adminAddress()}`, logs };
}

/** A port for a listener that must keep its number across reloads (port 0 would mean a new one). */
async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

function reloadYaml(port: number, backends: TestBackend[], extra = ''): string {
  return `
log: { level: info, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:${port}
    routes: [ { pool: p } ]
${extra}
pools:
  p:
    retries: { attempts: 2, on: [connect-failure, reset, 503] }
    backends:
${backends.map((b) => `      - { url: ${b.url}, name: ${b.name} }`).join('\n')}
`;
}

describe('reload', () => {
  test('a reload keeps sticky cookies valid (the key of their tokens is the running Fulcrum\'s, not the config generation\'s)', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const port = await freePort();
    const sticky = '    sticky: { cookie: FULCRUM_STICKY }';
    const yaml = (extra: string) => reloadYaml(port, [a, b]).replace('  p:\n', `  p:\n${sticky}\n${extra}`);
    const { f, file, url } = await fromFile(yaml(''));
    const first = await request(`${url}/`);
    const cookie = String(first.headers['set-cookie']?.[0]).split(';')[0];
    writeFileSync(file, yaml('    maxConnectionsPerBackend: 100\n'));
    expect((await f.reload()).ok).toBe(true);
    const after = await request(`${url}/`, { headers: { cookie } });
    expect(after.headers['x-backend']).toBe(first.headers['x-backend']);
    expect(after.headers['set-cookie']).toBeUndefined();
  });

  test('adding a backend under continuous load: zero failures, the new backend gets traffic, the old keep their counters', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const port = await freePort();
    const run = await fromFile(reloadYaml(port, [a]));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    cleanups.push(async () => agent.destroy());
    const statuses: number[] = [];
    let stop = false;
    const loop = async () => {
      const deadline = Date.now() + 20_000;
      while (!stop && Date.now() < deadline) {
        try {
          statuses.push((await request(`${run.url}/x`, { agent })).status);
        } catch {
          statuses.push(0);
        }
      }
    };
    const loops = [loop(), loop(), loop()];
    await waitFor(() => statuses.length > 50, 5000, 'traffic before reload');
    const aBefore = run.f.pools.get('p')!.get('a')!;
    writeFileSync(run.file, reloadYaml(port, [a, b]));
    const res = await run.f.reload();
    expect(res).toEqual({ ok: true, changes: ['pool p: backend b added'], errors: [] });
    const at = statuses.length;
    await waitFor(() => b.seen.length > 20 && statuses.length > at + 100, 10_000, 'traffic to b');
    stop = true;
    await Promise.all(loops);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // The backend that stayed is the same object: counters carried over.
    const aAfter = run.f.pools.get('p')!.get('a')!;
    expect(aAfter).toBe(aBefore);
    expect(aAfter.requests).toBeGreaterThan(50);
    expect(run.logs.some((l) => l.msg === 'config reloaded' && JSON.stringify(l.changes).includes('backend b added'))).toBe(true);
  });

  test('an invalid reload keeps serving, logs every reason and counts the failure', async () => {
    const a = await backend('a');
    const run = await fromFile(reloadYaml(0, [a]));
    writeFileSync(run.file, 'listeners:\n  public:\n    listen: nowhere\n    routes: [ { pool: ghost } ]\npools: {}\nbogus: 1\n');
    const r = await request(`${run.admin}/api/reload`, { method: 'POST' });
    expect(r.status).toBe(400);
    const body = JSON.parse(r.body);
    expect(body.ok).toBe(false);
    expect(body.errors.length).toBeGreaterThanOrEqual(2);
    for (const e of body.errors) expect(e).toMatch(/fulcrum\.yaml:\d+:\d+: /);
    expect((await request(`${run.url}/`)).body).toBe('a');
    const m = parseProm((await request(`${run.admin}/metrics`)).body);
    expect(sum(m, 'fulcrum_config_reloads_total', { result: 'failure' })).toBe(1);
    expect(sum(m, 'fulcrum_config_reloads_total', { result: 'success' })).toBe(0);
    const logged = run.logs.find((l) => l.msg === 'reload refused: the running config stays');
    expect((logged?.errors as string[]).length).toBe(body.errors.length);
  });

  test('removing a backend lets its in-flight request finish; routes change atomically', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => { release = r; });
    const a = await backend('a', (req, res) => {
      req.resume();
      if (req.url === '/slow') void gate.then(() => res.end('a-slow'));
      else res.end('a');
    });
    const b = await backend('b');
    const port = await freePort();
    const run = await fromFile(reloadYaml(port, [a, b]));
    const slow = request(`${run.url}/slow`); // round-robin: a first
    await waitFor(() => a.seen.length === 1, 3000, 'slow request at a');
    writeFileSync(run.file, reloadYaml(port, [b]));
    const res = await run.f.reload();
    expect(res.changes).toEqual(['pool p: backend a removed']);
    for (let i = 0; i < 5; i++) expect((await request(`${run.url}/n`)).body).toBe('b');
    release();
    expect((await slow).body).toBe('a-slow');
  });
});

test('turning TLS on for a listener that keeps its address is refused with the reason, and serving goes on', async () => {
  const a = await backend('a');
  const port = await freePort();
  const run = await fromFile(reloadYaml(port, [a]));
  const tls = selfSigned();
  writeFileSync(run.file, reloadYaml(port, [a]).replace(`listen: 127.0.0.1:${port}`, `listen: 127.0.0.1:${port}\n    tls: { cert: ${tls.cert}, key: ${tls.key} }`));
  const r = await run.f.reload();
  expect(r).toEqual({ ok: false, changes: [], errors: ['listener public: turning tls or http2 on or off needs a restart (or a new address)'] });
  expect((await request(`${run.url}/`)).body).toBe('a');
});

test('certificates reload too: new TLS connections get the new certificate', async () => {
  const a = await backend('a');
  const port = await freePort();
  const first = selfSigned();
  const second = selfSigned();
  const yaml = (cert: string, key: string) => reloadYaml(port, [a]).replace(`listen: 127.0.0.1:${port}`, `listen: 127.0.0.1:${port}\n    tls: { cert: ${cert}, key: ${key} }`);
  const run = await fromFile(yaml(first.cert, first.key));
  const fingerprint = () => new Promise<string>((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
  const fp = (pem: Buffer) => new X509Certificate(pem).fingerprint256;
  expect(await fingerprint()).toBe(fp(first.certPem));
  writeFileSync(run.file, yaml(second.cert, second.key));
  expect((await run.f.reload()).ok).toBe(true);
  expect(await fingerprint()).toBe(fp(second.certPem));
});

describe('graceful stop', () => {
  test('stop with a slow request in flight: it completes, new connections are refused', async () => {
    const a = await backend('a', (req, res) => {
      req.resume();
      setTimeout(() => res.end('done'), 300);
    });
    const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:0, routes: [ { pool: p } ] } }
pools: { p: { backends: [ { url: ${a.url} } ] } }
`);
    const url = f.url();
    const inflight = request(`${url}/slow`);
    await waitFor(() => a.seen.length === 1, 3000, 'request at backend');
    const stopped = f.fulcrum.stop(5000);
    expect(f.fulcrum.ready()).toBe(false);
    const r = await inflight;
    expect(r.status).toBe(200);
    expect(r.body).toBe('done');
    await stopped;
    await expect(request(`${url}/again`)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('TLS and HTTP/2', () => {
  const tls = selfSigned();

  function tlsYaml(b: TestBackend, http2on: boolean): string {
    return `
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  secure:
    listen: 127.0.0.1:0
    tls: { cert: ${tls.cert}, key: ${tls.key} }
    http2: ${http2on}
    routes: [ { pool: p } ]
pools: { p: { backends: [ { url: ${b.url}, name: b } ] } }
`;
  }

  test('HTTPS with a self-signed certificate made in the test', async () => {
    const b = await backend('b', (req, res) => { req.resume(); res.end(`${req.headers['x-forwarded-proto']} ${req.headers.host}`); });
    const f = await fulcrum(tlsYaml(b, false));
    const port = Number(f.fulcrum.address('secure').split(':').at(-1));
    const body = await new Promise<string>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/', ca: tls.certPem, servername: 'localhost', headers: { host: 'localhost' }, agent: false }, (res) => {
        let s = '';
        res.on('data', (c) => { s += c; });
        res.on('end', () => resolve(s));
      }).on('error', reject);
    });
    expect(body).toBe('https localhost');
  });

  test('an h2 request over ALPN reaches an HTTP/1.1 backend with :authority as Host', async () => {
    const b = await backend('b', (req, res) => {
      req.resume();
      res.setHeader('x-seen-version', req.httpVersion);
      res.end(JSON.stringify({ host: req.headers.host, url: req.url, method: req.method, pseudo: Object.keys(req.headers).filter((k) => k.startsWith(':')) }));
    });
    const f = await fulcrum(tlsYaml(b, true));
    const port = Number(f.fulcrum.address('secure').split(':').at(-1));
    const client = http2.connect(`https://localhost:${port}`, { ca: tls.certPem });
    cleanups.push(async () => { client.close(); });
    const { headers, body } = await new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = client.request({ ':path': '/h2?x=1', ':method': 'GET' });
      let h: http2.IncomingHttpHeaders = {};
      let s = '';
      req.on('response', (hh) => { h = hh; });
      req.on('data', (c) => { s += c; });
      req.on('end', () => resolve({ headers: h, body: s }));
      req.on('error', reject);
      req.end();
    });
    expect(client.alpnProtocol).toBe('h2');
    expect(headers[':status']).toBe(200);
    expect(headers['x-seen-version']).toBe('1.1');
    expect(JSON.parse(body)).toEqual({ host: `localhost:${port}`, url: '/h2?x=1', method: 'GET', pseudo: [] });
  });

  test('HTTP/1.1 clients still work on an http2 listener', async () => {
    const b = await backend('b');
    const f = await fulcrum(tlsYaml(b, true));
    const port = Number(f.fulcrum.address('secure').split(':').at(-1));
    const status = await new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/', ca: tls.certPem, servername: 'localhost', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
    expect(status).toBe(200);
  });
});

/** Minimal RFC 6455 frames for the test: a masked client text frame, and parsing an unmasked server one. */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

describe('WebSocket', () => {
  test('an echo through Fulcrum, both directions', async () => {
    // A tiny WebSocket echo backend: accept, then echo each (masked) text frame back unmasked.
    const server = http.createServer((_req, res) => res.end('not ws'));
    const upgraded = new Set<import('node:stream').Duplex>();
    server.on('upgrade', (req, socket) => {
      upgraded.add(socket);
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Backend: ws\r\n\r\n`);
      socket.on('data', (buf: Buffer) => {
        const len = buf[1] & 0x7f;
        const mask = buf.subarray(2, 6);
        const data = Buffer.from(buf.subarray(6, 6 + len).map((byte, i) => byte ^ mask[i % 4]));
        socket.write(Buffer.concat([Buffer.from([0x81, data.length]), data]));
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    // Upgraded sockets leave node:http's bookkeeping: close them ourselves.
    cleanups.push(() => new Promise((r) => { for (const s of upgraded) s.destroy(); server.close(() => r()); }));
    const port = (server.address() as net.AddressInfo).port;
    const f = await fulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:0, routes: [ { pool: p } ] } }
pools: { p: { backends: [ { url: http://127.0.0.1:${port}, name: ws } ] } }
`);
    const proxyPort = Number(new URL(f.url()).port);
    const key = Buffer.from('0123456789abcdef').toString('base64');
    const sock = net.connect(proxyPort, '127.0.0.1');
    cleanups.push(async () => { sock.destroy(); });
    let data = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => { data = Buffer.concat([data, c]); });
    sock.write(`GET /chat HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await waitFor(() => data.includes('\r\n\r\n'), 3000, 'the 101');
    const head = data.subarray(0, data.indexOf('\r\n\r\n') + 4).toString();
    expect(head).toMatch(/^HTTP\/1.1 101/);
    expect(head.toLowerCase()).toContain(`sec-websocket-accept: ${createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64').toLowerCase()}`);
    data = data.subarray(data.indexOf('\r\n\r\n') + 4);
    sock.write(clientFrame('hello'));
    await waitFor(() => data.length >= 7, 3000, 'the echo');
    expect(data[0]).toBe(0x81);
    expect(data.subarray(2, 2 + data[1]).toString()).toBe('hello');
    const pool = f.fulcrum.pools.get('p')!;
    expect(pool.get('ws')!.inFlight).toBe(1);
    sock.destroy();
    await waitFor(() => pool.get('ws')!.inFlight === 0, 3000, 'tunnel closed');
    await waitFor(() => f.records.some((r) => r.status === 101 && r.backend === 'ws'), 3000, 'record');
  });

  test('a backend that refuses the upgrade is a 502 and the process lives on', async () => {
    const b = await backend('plain');
    const f = await fulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:0, routes: [ { pool: p } ] } }
pools: { p: { backends: [ { url: ${b.url}, name: plain } ] } }
`);
    const r = await request(`${f.url()}/ws`, { headers: { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'x', 'sec-websocket-version': '13' } });
    expect(r.status).toBe(502);
    expect((await request(`${f.url()}/`)).status).toBe(200);
  });

  test('h2c and other upgrades are refused with 400', async () => {
    const b = await backend('plain');
    const f = await fulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:0, routes: [ { pool: p } ] } }
pools: { p: { backends: [ { url: ${b.url} } ] } }
`);
    const r = await request(`${f.url()}/`, { headers: { upgrade: 'h2c', connection: 'Upgrade, HTTP2-Settings', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' } });
    expect(r.status).toBe(400);
    expect(b.seen.length).toBe(0);
  });
});
