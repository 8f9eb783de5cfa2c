/**
 * SPEC 9.4 `tls.acme` against a real ACME server: pebble, with
 * pebble-challtestsrv answering its DNS lookups with 127.0.0.1 and its
 * httpPort pointed at Fulcrum's plain listener, so the HTTP-01 challenge is
 * really fetched from Fulcrum. A stored certificate is reused at the next
 * start (pebble stopped); a pebble that is down at start leaves Fulcrum on
 * its placeholder, retrying, until pebble is up.
 */
import tls from 'node:tls';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { freePort, startPeer, type Peer } from '../helpers/peers';
import { makePki } from '../helpers/tls';
import { waitFor } from '../helpers/wait';
import { expectNoInternalErrors } from '../helpers/listeners';
import type { OverviewJson } from '../../src/admin/api-json';

const t = useTeardown();
const pki = makePki();
const DOMAIN = 'fulcrum.test';

/** DNS for pebble: every A query is 127.0.0.1, no AAAA. */
async function startDns(): Promise<{ port: number; peer: Peer }> {
  const port = await freePort();
  const management = await freePort();
  const peer = await startPeer('/usr/bin/pebble-challtestsrv', [
    '-dns01', `127.0.0.1:${port}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${management}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ], [management]);
  t.cleanups.push(() => peer.stop());
  return { port, peer };
}

/** pebble on `port`, validating HTTP-01 on `httpPort` (Fulcrum's plain listener). */
async function startPebble(port: number, httpPort: number, dnsPort: number): Promise<Peer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-pebble-'));
  const config = path.join(dir, 'pebble.json');
  writeFileSync(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`, managementListenAddress: `127.0.0.1:${await freePort()}`,
      certificate: pki.serverCert, privateKey: pki.serverKey,
      httpPort, tlsPort: await freePort(), ocspResponderURL: '', externalAccountBindingRequired: false,
    },
  }));
  const peer = await startPeer('/usr/bin/pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], [port], {
    // No random waits before validating, and no refused nonces: a quick, deterministic CA.
    PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0',
  });
  t.cleanups.push(() => peer.stop());
  return peer;
}

function yaml(directoryPort: number, storage: string, plainPort = 0): string {
  return `
log: { level: info }
admin: { listen: 127.0.0.1:0 }
listeners:
  plain: { listen: 127.0.0.1:${plainPort}, routes: [{ pool: web }] }
  secure:
    listen: 127.0.0.1:0
    tls:
      acme: { directory: "https://127.0.0.1:${directoryPort}/dir", email: ops@fulcrum.test, domains: [${DOMAIN}], storage: ${storage}, ca: ${pki.ca} }
    routes: [{ pool: web }]
pools:
  web: { backends: [{ url: "http://127.0.0.1:1" }] }
`;
}

async function certificate(f: RunningFulcrum): Promise<OverviewJson['certificates'][number]> {
  const o = await (await fetch(`${f.adminUrl}/api/overview`)).json() as OverviewJson;
  return o.certificates.find((c) => c.listener === 'secure')!;
}

/** The issuer of the certificate the listener presents for DOMAIN. */
function presented(f: RunningFulcrum): Promise<string> {
  const [host, port] = f.fulcrum.address('secure').split(':') as [string, string];
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port: Number(port), servername: DOMAIN, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve(`${c.issuer.CN} for ${c.subjectaltname}`);
    });
    s.on('error', reject);
  });
}

describe('tls.acme against pebble', () => {
  test('placeholder, then a certificate through a real HTTP-01 challenge; a restart serves the stored one with pebble gone', async () => {
    const dns = await startDns();
    const storage = mkdtempSync(path.join(tmpdir(), 'fulcrum-acme-'));
    const pebblePort = await freePort();
    const f = await startFulcrum(yaml(pebblePort, storage), {}, { acme: { firstRetryMs: 200 } });
    let stopped = false;
    t.cleanups.push(async () => { if (!stopped) await f.stop(); });
    const plainPort = Number(f.fulcrum.address('plain').split(':').pop());
    // Until pebble answers: the placeholder, and a log line saying why.
    expect(await certificate(f)).toMatchObject({ source: 'placeholder', names: [DOMAIN] });
    expect(f.logs.some((l) => String(l.msg).includes('serving a self-signed placeholder'))).toBe(true);
    expect(await presented(f)).toBe(`Fulcrum ACME placeholder for DNS:${DOMAIN}`);
    // Pebble was down at start: the order failed, is logged, and is retried.
    await waitFor(() => f.logs.some((l) => String(l.msg).startsWith('acme: the order failed')), 5000, 'a failed order');
    const pebble = await startPebble(pebblePort, plainPort, dns.port);
    await waitFor(async () => (await certificate(f)).source === 'acme', 20_000, 'the certificate from pebble');
    const got = await certificate(f);
    expect(got.names).toEqual([DOMAIN]);
    expect(got.issuer).toMatch(/Pebble/);
    expect(await presented(f)).toMatch(new RegExp(`^Pebble Intermediate CA .* for DNS:${DOMAIN.replace('.', '\\.')}$`));
    // The challenge was fetched from Fulcrum's plain listener, before routing (the pool has no backend that answers).
    const challenges = f.records.filter((r) => r.url.startsWith('/.well-known/acme-challenge/'));
    expect(challenges.length).toBeGreaterThan(0);
    expect(challenges.every((r) => r.status === 200 && r.listener === 'plain' && r.pool === '')).toBe(true);
    // Another path under the prefix is routed as usual.
    expect((await fetch(`${f.url('plain')}/.well-known/acme-challenge/unknown`)).status).toBe(502);
    expect(readdirSync(storage).sort()).toEqual(['account.key', 'certificates']);
    // Backoff: the first retry after firstRetryMs, then doubling.
    const delays = f.logs.filter((l) => String(l.msg).startsWith('acme: the order failed')).map((l) => l.retryInMs);
    expect(delays).toEqual([200, 400, 800, 1600, 3200, 6400].slice(0, delays.length));
    await expectNoInternalErrors(f.adminUrl, f.logs);
    stopped = true;
    await f.stop();

    // Pebble gone; a new start serves the stored certificate at once.
    await pebble.stop();
    const again = await startFulcrum(yaml(pebblePort, storage), {}, { acme: { firstRetryMs: 60_000 } });
    t.cleanups.push(() => again.stop());
    expect(await certificate(again)).toEqual(got);
    expect(await presented(again)).toMatch(/^Pebble Intermediate CA/);
    expect(again.logs.some((l) => l.msg === 'acme: serving the stored certificate')).toBe(true);
    expect(again.logs.some((l) => String(l.msg).includes('placeholder'))).toBe(false);
  }, 45_000);
});

describe('tls.acme renewal', () => {
  test('a stored certificate within 30 days of its end is served and renewed at once', async () => {
    const { selfSigned } = await import('../../src/tls/certificates');
    const { writeCertificate } = await import('../../src/acme/store');
    const storage = mkdtempSync(path.join(tmpdir(), 'fulcrum-acme-'));
    const soon = selfSigned([DOMAIN], 'expiring', 10);
    const closedPort = await freePort();
    writeCertificate({ directory: '', domains: [DOMAIN], storage }, soon);
    const f = await startFulcrum(yaml(closedPort, storage), {}, { acme: { firstRetryMs: 60_000 } });
    t.cleanups.push(() => f.stop());
    expect(await certificate(f)).toMatchObject({ source: 'acme', issuer: 'CN=expiring' });
    await waitFor(() => f.logs.some((l) => l.msg === 'acme: renewing the certificate'), 5000, 'a renewal');
    await waitFor(() => f.logs.some((l) => l.msg === 'acme: the order failed; retrying in 60s'), 5000, 'the failed renewal');
    // The old certificate is still served while the CA is away.
    expect(await presented(f)).toBe(`expiring for DNS:${DOMAIN}`);
  });
});
