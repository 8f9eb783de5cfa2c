/**
 * SPEC 9.3, listener side, against a real HAProxy in front (send-proxy and
 * send-proxy-v2, TCP mode) for plain, TLS and TLS+h2 listeners: the backend
 * and the access log see the client HAProxy saw, not HAProxy. Raw sockets
 * for what an L4 balancer never sends: no header, a broken one, a slow one.
 */
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { freePort, startPeer } from '../helpers/peers';
import { selfSigned } from '../helpers/tls';
import { expectNoInternalErrors } from '../helpers/listeners';
import { waitFor } from '../helpers/wait';
import { encodeHeader, encodeLocal } from '../../src/proxy-protocol/header';

const t = useTeardown();
const cert = selfSigned();
/** The "client": another loopback address than HAProxy's own 127.0.0.1. */
const CLIENT = '127.0.0.5';

async function fulcrumWith(backendUrl: string, proxyProtocol: string, headersTimeout = '10s'): Promise<RunningFulcrum> {
  const listener = (tls: string) => `
    listen: 127.0.0.1:0
    proxyProtocol: ${proxyProtocol}
    ${tls}
    limits: { headersTimeout: ${headersTimeout} }
    routes: [{ pool: web }]`;
  const f = await startFulcrum(`
log: { level: warn }
admin: { listen: 127.0.0.1:0 }
listeners:
  plain:${listener('')}
  secure:${listener(`tls: { cert: ${cert.cert}, key: ${cert.key} }`)}
  h2:${listener(`tls: { cert: ${cert.cert}, key: ${cert.key} }\n    http2: true`)}
pools:
  web:
    backends: [{ url: ${backendUrl} }]
`);
  t.cleanups.push(() => f.stop());
  return f;
}

function port(f: RunningFulcrum, name: string): number {
  return Number(f.fulcrum.address(name).split(':').pop());
}

/** HAProxy in TCP mode: one frontend per (listener, version), each sending a PROXY header to Fulcrum. */
async function haproxyInFront(f: RunningFulcrum): Promise<Map<string, number>> {
  const ports = new Map<string, number>();
  let cfg = `global\n  log stdout format raw local0\ndefaults\n  mode tcp\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n`;
  for (const l of ['plain', 'secure', 'h2']) {
    for (const v of ['send-proxy', 'send-proxy-v2']) {
      const p = await freePort();
      ports.set(`${l} ${v}`, p);
      cfg += `frontend ${l}_${v}\n  bind 127.0.0.1:${p}\n  default_backend b_${l}_${v}\nbackend b_${l}_${v}\n  server fulcrum 127.0.0.1:${port(f, l)} ${v}\n`;
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-haproxy-'));
  writeFileSync(path.join(dir, 'haproxy.cfg'), cfg);
  const peer = await startPeer('/usr/sbin/haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], [...ports.values()]);
  t.cleanups.push(() => peer.stop());
  return ports;
}

function get(kind: string, p: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    if (kind === 'h2') {
      const session = http2.connect(`https://127.0.0.1:${p}`, { rejectUnauthorized: false, localAddress: CLIENT } as http2.SecureClientSessionOptions);
      session.on('error', reject);
      const req = session.request({ ':path': '/who' });
      let body = '';
      let status = 0;
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => {
        session.close();
        resolve({ status, body });
      });
      req.on('error', reject);
      return;
    }
    const mod = kind === 'plain' ? http : https;
    const req = mod.get({ host: '127.0.0.1', port: p, path: '/who', localAddress: CLIENT, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

/** Bytes on a raw connection; resolves with what came back and whether the server closed it. */
function raw(p: number, chunks: Buffer[], opts: { localAddress?: string; waitMs?: number } = {}): Promise<{ data: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const s = net.connect({ port: p, host: '127.0.0.1', localAddress: opts.localAddress });
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data, closed: false, ms: Date.now() - started });
    }, opts.waitMs ?? 5000);
    s.on('connect', () => { for (const c of chunks) s.write(c); });
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true, ms: Date.now() - started });
    });
  });
}

describe('listener proxyProtocol', () => {
  test('behind HAProxy send-proxy and send-proxy-v2: the backend and the access log see the original client, on plain, TLS and h2 listeners', async () => {
    const backend = await t.backend('b', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
    const f = await fulcrumWith(backend.url, 'true');
    const ports = await haproxyInFront(f);
    for (const [what, p] of ports) {
      const r = await get(what.split(' ')[0]!, p);
      expect({ what, ...r }).toEqual({ what, status: 200, body: CLIENT });
    }
    expect(f.records).toHaveLength(6);
    for (const r of f.records) expect(r.remoteAddress).toBe(CLIENT);
    await expectNoInternalErrors(f.adminUrl, f.logs);
  }, 30_000);

  test('no header, a broken header, a slow header: closed without an answer, and Fulcrum serves on', async () => {
    const backend = await t.backend('b', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
    const f = await fulcrumWith(backend.url, 'true', '700ms');
    const plain = port(f, 'plain');
    const request = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    for (const name of ['plain', 'secure', 'h2']) {
      const p = port(f, name);
      // HTTP (or a ClientHello) straight away: closed at once.
      const none = await raw(p, [request]);
      expect(none).toMatchObject({ data: '', closed: true });
      const broken = await raw(p, [Buffer.from('PROXY TCP4 1.2.3.4 nonsense\r\n'), request]);
      expect(broken).toMatchObject({ data: '', closed: true });
      // Half a header and then silence: closed at headersTimeout, not held open.
      const slow = await raw(p, [Buffer.from('PROXY TCP4 1.2.3.4 ')], { waitMs: 8000 });
      expect(slow).toMatchObject({ data: '', closed: true });
      expect(slow.ms).toBeGreaterThanOrEqual(600);
      // A v2 signature cut short, then the client leaves.
      const cut = await raw(p, [encodeLocal('v2').subarray(0, 7)], { waitMs: 200 });
      expect(cut.data).toBe('');
    }
    // The header and the request in one write; then the source is the header's.
    const one = await raw(plain, [Buffer.concat([encodeHeader('v1', { source: { address: '203.0.113.9', port: 4000 }, destination: { address: '127.0.0.1', port: plain } }), request])]);
    expect(one.data).toMatch(/^HTTP\/1\.1 200[\s\S]*203\.0\.113\.9$/);
    // The header in pieces, the request after.
    const v2 = encodeHeader('v2', { source: { address: '2001:db8::9', port: 4000 }, destination: { address: '::1', port: plain } });
    const pieces = await raw(plain, [v2.subarray(0, 3), v2.subarray(3, 20), v2.subarray(20), request]);
    expect(pieces.data).toMatch(/2001:db8::9$/);
    // TLS: the header and the ClientHello in one segment (the TLS layer reads what the header reader put back).
    for (const name of ['secure', 'h2']) {
      const p = port(f, name);
      const body = await new Promise<string>((resolve, reject) => {
        const sock = net.connect({ port: p, host: '127.0.0.1' });
        sock.cork();
        sock.write(encodeHeader('v2', { source: { address: '192.0.2.44', port: 9 }, destination: { address: '127.0.0.1', port: p } }));
        const tlsSock = tls.connect({ socket: sock, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
        process.nextTick(() => sock.uncork());
        let data = '';
        tlsSock.on('secureConnect', () => tlsSock.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
        tlsSock.on('data', (d: Buffer) => { data += d.toString(); });
        tlsSock.on('end', () => resolve(data));
        tlsSock.on('error', reject);
      });
      expect(body).toMatch(/192\.0\.2\.44$/);
    }
    // v2 LOCAL and v1 UNKNOWN: the TCP peer is the client.
    for (const local of [encodeLocal('v2'), encodeLocal('v1')]) {
      const r = await raw(plain, [local, request], { localAddress: CLIENT });
      expect(r.data).toMatch(new RegExp(`${CLIENT.replace(/\./g, '\\.')}$`));
    }
    await expectNoInternalErrors(f.adminUrl, f.logs);
  }, 40_000);

  test('trusted: other peers are closed at once; trusted ones must still send the header; a reload turns it off', async () => {
    const backend = await t.backend('b', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
    const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-pp-'));
    const file = path.join(dir, 'f.yaml');
    const yaml = (pp: string) => `
admin: { listen: 127.0.0.1:0 }
listeners:
  plain:
    listen: 127.0.0.1:0
    proxyProtocol: ${pp}
    routes: [{ pool: web }]
pools:
  web:
    backends: [{ url: ${backend.url} }]
`;
    writeFileSync(file, yaml('{ trusted: [127.0.0.1/32, "::1"] }'));
    const { loadConfig } = await import('../../src/config');
    const { Fulcrum } = await import('../../src/server');
    const { createLogger } = await import('../../src/log');
    const { Writable } = await import('node:stream');
    const fulcrum = new Fulcrum(loadConfig(file), { logger: createLogger({ level: 'error', access: false }, new Writable({ write: (_c, _e, cb) => cb() })) });
    await fulcrum.start();
    t.cleanups.push(() => fulcrum.stop(1000));
    const p = Number(fulcrum.address('plain').split(':').pop());
    const request = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const header = encodeHeader('v1', { source: { address: '198.51.100.3', port: 1 }, destination: { address: '127.0.0.1', port: p } });
    // Not trusted: closed before it sends anything (so even a valid header is never read).
    const outsider = await raw(p, [], { localAddress: CLIENT, waitMs: 3000 });
    expect(outsider).toMatchObject({ data: '', closed: true });
    expect((await raw(p, [header, request], { localAddress: CLIENT })).data).toBe('');
    expect((await raw(p, [header, request])).data).toMatch(/198\.51\.100\.3$/);
    expect((await raw(p, [request])).data).toBe('');
    writeFileSync(file, yaml('false'));
    const result = await fulcrum.reload();
    expect(result.changes).toContain('listener plain: proxyProtocol changed');
    await waitFor(async () => (await raw(p, [request], { localAddress: CLIENT })).data.endsWith(CLIENT), 3000, 'plain HTTP after the reload');
  }, 30_000);
});
