/**
 * SPEC 9.3, pool side, against a real HAProxy backend with `accept-proxy`:
 * it answers (and logs) the client address it learned from Fulcrum's PROXY
 * header, over plain HTTP (our own client) and TLS (undici), health probes
 * included (LOCAL / UNKNOWN), and a backend connection never carries two
 * clients' requests.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { freePort, startPeer } from '../helpers/peers';
import { makePki } from '../helpers/tls';
import { waitFor } from '../helpers/wait';
import { expectNoInternalErrors } from '../helpers/listeners';

const t = useTeardown();
const pki = makePki();

/** One keep-alive client from `localAddress`: `n` requests in a row on one connection. */
async function requests(url: string, localAddress: string, n: number): Promise<string[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress } as http.AgentOptions);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await new Promise<string>((resolve, reject) => {
      http.get(`${url}/who`, { agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      }).on('error', reject);
    }));
  }
  agent.destroy();
  return out;
}

describe('pool proxyProtocol', () => {
  test('HAProxy with accept-proxy learns each client from the header, v1 and v2, plain and TLS; probes send LOCAL/UNKNOWN', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-haproxy-'));
    const pem = path.join(dir, 'server.pem');
    writeFileSync(pem, readFileSync(pki.serverCert, 'utf8') + readFileSync(pki.serverKey, 'utf8'));
    const ports = { v1: await freePort(), v2: await freePort(), tls: await freePort() };
    const front = (name: string, bind: string) => `frontend ${name}\n  bind ${bind}\n  log-format "${name} learned=%ci:%cp path=%HP"\n`
      + '  http-request return status 200 content-type text/plain lf-string "%[src]" if { path /who }\n'
      + '  http-request return status 200 content-type text/plain string "ok"\n';
    writeFileSync(path.join(dir, 'haproxy.cfg'), 'global\n  log stdout format raw local0\ndefaults\n  mode http\n  log global\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n'
      + front('v1', `127.0.0.1:${ports.v1} accept-proxy`)
      + front('v2', `127.0.0.1:${ports.v2} accept-proxy`)
      + front('tls', `127.0.0.1:${ports.tls} accept-proxy ssl crt ${pem}`));
    const haproxy = await startPeer('/usr/sbin/haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], Object.values(ports));
    t.cleanups.push(() => haproxy.stop());
    const check = 'healthCheck: { path: /healthz, interval: 200ms, rise: 1, fall: 1 }';
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  v1: { listen: 127.0.0.1:0, routes: [{ pool: v1 }] }
  v2: { listen: 127.0.0.1:0, routes: [{ pool: v2 }] }
  tls: { listen: 127.0.0.1:0, routes: [{ pool: tls }] }
pools:
  v1: { proxyProtocol: v1, backends: [{ url: "http://127.0.0.1:${ports.v1}" }], ${check} }
  v2: { proxyProtocol: v2, backends: [{ url: "http://127.0.0.1:${ports.v2}" }], ${check} }
  tls:
    proxyProtocol: v2
    tls: { ca: ${pki.ca}, serverName: localhost }
    backends: [{ url: "https://127.0.0.1:${ports.tls}" }]
    ${check}
`);
    t.cleanups.push(() => f.stop());
    for (const name of ['v1', 'v2', 'tls']) {
      // Two clients at once, keep-alive each: every answer names its own client.
      const [a, b] = await Promise.all([requests(f.url(name), '127.0.0.5', 3), requests(f.url(name), '127.0.0.6', 3)]);
      expect({ name, a, b }).toEqual({ name, a: Array(3).fill('200 127.0.0.5'), b: Array(3).fill('200 127.0.0.6') });
    }
    // HAProxy's own log says what it learned: the clients for requests, its peer (Fulcrum, 127.0.0.1) for probes.
    await waitFor(() => ['v1', 'v2', 'tls'].every((n) => new RegExp(`${n} learned=127\\.0\\.0\\.1:\\d+ path=/healthz`).test(haproxy.output())), 5000, 'probes in the log');
    for (const n of ['v1', 'v2', 'tls']) {
      expect(haproxy.output()).toMatch(new RegExp(`${n} learned=127\\.0\\.0\\.5:\\d+ path=/who`));
      expect(haproxy.output()).toMatch(new RegExp(`${n} learned=127\\.0\\.0\\.6:\\d+ path=/who`));
    }
    const pools = await (await fetch(`${f.adminUrl}/api/pools`)).json() as { pools: { backends: { state: string }[] }[] };
    expect(pools.pools.flatMap((p) => p.backends.map((b) => b.state))).toEqual(['up', 'up', 'up']);
    await expectNoInternalErrors(f.adminUrl, f.logs);
  }, 30_000);

  test('a WebSocket upgrade through a proxyProtocol pool carries its own client in the header', async () => {
    // The backend behind HAProxy (accept-proxy, forwardfor) answers the upgrade with the X-Forwarded-For HAProxy set from the header.
    const ws = http.createServer();
    ws.on('upgrade', (req, socket) => {
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Seen: ${req.headers['x-forwarded-for']}\r\n\r\n`);
    });
    await new Promise<void>((resolve) => ws.listen(0, '127.0.0.1', resolve));
    t.cleanups.push(() => new Promise((resolve) => ws.close(() => resolve())));
    const wsPort = (ws.address() as { port: number }).port;
    const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-haproxy-'));
    const p = await freePort();
    writeFileSync(path.join(dir, 'haproxy.cfg'), 'global\n  log stdout format raw local0\ndefaults\n  log global\n  option httplog\n  mode http\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n  timeout tunnel 10s\n'
      + `frontend fe\n  bind 127.0.0.1:${p} accept-proxy\n  option forwardfor\n  default_backend ws\nbackend ws\n  server ws 127.0.0.1:${wsPort}\n`);
    const haproxy = await startPeer('/usr/sbin/haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], [p]);
    t.cleanups.push(() => haproxy.stop());
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners: { a: { listen: 127.0.0.1:0, routes: [{ pool: ws }] } }
pools: { ws: { proxyProtocol: v1, backends: [{ url: "http://127.0.0.1:${p}" }] } }
`);
    t.cleanups.push(() => f.stop());
    const [host, port] = f.fulcrum.address('a').split(':') as [string, string];
    const head = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host, port: Number(port), localAddress: '127.0.0.7' }, () => {
        s.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
      });
      let data = '';
      s.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.includes('\r\n\r\n')) {
          s.destroy();
          resolve(data);
        }
      });
      s.on('error', reject);
    });
    expect(head + haproxy.output()).toMatch(/^HTTP\/1\.1 101/);
    expect(head.toLowerCase()).toContain('x-seen: 127.0.0.7');
  });
});
