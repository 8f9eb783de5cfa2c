/**
 * SPEC 9.4, pool `tls`: an https:// backend that requires a client
 * certificate (mTLS), with certificates made by openssl: the right CA and
 * client pass; a wrong CA, a missing client certificate, a wrong server
 * name fail, for requests and health probes alike; verify: false is logged;
 * a reload reads renewed files.
 */
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { startFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { makePki } from '../helpers/tls';
import { waitFor } from '../helpers/wait';
import { loadConfig } from '../../src/config';
import { Fulcrum } from '../../src/server';
import { createLogger } from '../../src/log';
import { probe } from '../../src/health/active';

const t = useTeardown();
const pki = makePki();

/** An https backend that requires a client certificate signed by the test CA; answers with the client's CN and the SNI it got. */
async function mtlsBackend(): Promise<{ url: string; port: number }> {
  const server = https.createServer({
    cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.ca),
    requestCert: true, rejectUnauthorized: true,
  }, (req, res) => {
    const s = req.socket as TLSSocket;
    res.end(`${s.getPeerCertificate().subject?.CN} sni=${(s as unknown as { servername?: string }).servername}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const port = (server.address() as AddressInfo).port;
  return { url: `https://127.0.0.1:${port}`, port };
}

async function answer(url: string): Promise<string> {
  const res = await fetch(`${url}/`);
  return `${res.status} ${await res.text()}`;
}

describe('pool tls', () => {
  test('ca + client certificate: requests and probes pass; the backend sees the client and the SNI', async () => {
    const b = await mtlsBackend();
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  ok: { listen: 127.0.0.1:0, routes: [{ pool: ok }] }
  named: { listen: 127.0.0.1:0, routes: [{ pool: named }] }
pools:
  ok:
    backends: [{ url: ${b.url} }]
    tls: { ca: ${pki.ca}, cert: ${pki.clientCert}, key: ${pki.clientKey} }
    healthCheck: { interval: 200ms, rise: 1, fall: 1 }
  named:
    backends: [{ url: ${b.url} }]
    tls: { ca: ${pki.ca}, cert: ${pki.clientCert}, key: ${pki.clientKey}, serverName: api.internal }
`);
    t.cleanups.push(() => f.stop());
    expect(await answer(f.url('ok'))).toBe('200 fulcrum-client sni=false');
    expect(await answer(f.url('named'))).toBe('200 fulcrum-client sni=api.internal');
    await waitFor(() => f.fulcrum.pools.get('ok')!.backends[0]!.probes.length >= 2, 3000, 'two probes');
    expect(f.fulcrum.pools.get('ok')!.backends[0]!.probes.every((p) => p.ok)).toBe(true);
  });

  test('wrong CA, no client certificate, a name the certificate does not hold: 502, and probes fail too', async () => {
    const b = await mtlsBackend();
    const pool = (name: string, tls: string) => `  ${name}:\n    backends: [{ url: ${b.url} }]\n    tls: ${tls}\n    retries: { attempts: 0 }\n`;
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  wrongca: { listen: 127.0.0.1:0, routes: [{ pool: wrongca }] }
  nocert: { listen: 127.0.0.1:0, routes: [{ pool: nocert }] }
  wrongname: { listen: 127.0.0.1:0, routes: [{ pool: wrongname }] }
  wrongclient: { listen: 127.0.0.1:0, routes: [{ pool: wrongclient }] }
  unverified: { listen: 127.0.0.1:0, routes: [{ pool: unverified }] }
pools:
${pool('wrongca', `{ ca: ${pki.wrongCa}, cert: ${pki.clientCert}, key: ${pki.clientKey} }`)}
${pool('nocert', `{ ca: ${pki.ca} }`)}
${pool('wrongname', `{ ca: ${pki.ca}, cert: ${pki.clientCert}, key: ${pki.clientKey}, serverName: other.internal }`)}
${pool('wrongclient', `{ ca: ${pki.ca}, cert: ${pki.wrongClientCert}, key: ${pki.wrongClientKey} }`)}
${pool('unverified', `{ ca: ${pki.wrongCa}, cert: ${pki.clientCert}, key: ${pki.clientKey}, verify: false }`)}
`);
    t.cleanups.push(() => f.stop());
    const check = { path: '/', intervalMs: 1000, timeoutMs: 2000, rise: 1, fall: 1, expectStatus: [[200, 399]] as [number, number][] };
    for (const name of ['wrongca', 'nocert', 'wrongname', 'wrongclient']) {
      expect({ name, status: (await fetch(`${f.url(name)}/`)).status }).toEqual({ name, status: 502 });
      // A probe with the same settings fails the same way.
      const backend = f.fulcrum.pools.get(name)!.backends[0]!;
      expect({ name, ok: (await probe(backend.url, check, backend.edge)).ok }).toEqual({ name, ok: false });
    }
    const ok = f.fulcrum.pools.get('unverified')!.backends[0]!;
    expect((await probe(ok.url, check, ok.edge)).ok).toBe(true);
    // verify: false trusts any certificate, and says so at start.
    expect(await answer(f.url('unverified'))).toBe('200 fulcrum-client sni=false');
    expect(f.logs.some((l) => l.level === 40 && String(l.msg).includes('pool unverified: tls.verify is false'))).toBe(true);
  });

  test('a reload reads the certificate files again', async () => {
    const b = await mtlsBackend();
    const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-tlsreload-'));
    copyFileSync(pki.wrongClientCert, path.join(dir, 'client.crt'));
    copyFileSync(pki.wrongClientKey, path.join(dir, 'client.key'));
    const file = path.join(dir, 'fulcrum.yaml');
    writeFileSync(file, `
admin: { listen: 127.0.0.1:0 }
listeners: { a: { listen: 127.0.0.1:0, routes: [{ pool: p }] } }
pools:
  p:
    backends: [{ url: ${b.url} }]
    tls: { ca: ${pki.ca}, cert: ./client.crt, key: ./client.key }
    retries: { attempts: 0 }
`);
    const fulcrum = new Fulcrum(loadConfig(file), { logger: createLogger({ level: 'error', access: false }, new Writable({ write: (_c, _e, cb) => cb() })) });
    await fulcrum.start();
    t.cleanups.push(() => fulcrum.stop(1000));
    const url = `http://${fulcrum.address('a')}`;
    expect((await fetch(`${url}/`)).status).toBe(502);
    copyFileSync(pki.clientCert, path.join(dir, 'client.crt'));
    copyFileSync(pki.clientKey, path.join(dir, 'client.key'));
    const r = await fulcrum.reload();
    expect(r.changes).toContain('pool p: settings changed');
    expect(await answer(url)).toBe('200 fulcrum-client sni=false');
  });
});
