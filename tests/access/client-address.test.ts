/**
 * SPEC 8.4: the client address behind trusted proxies, and everything that
 * uses it (access, rateLimit key ip, hashOn ip, the access log), with real
 * clients on distinct loopback addresses (127.0.0.2, 127.0.0.3).
 */
import { AddressSet, clientBehindProxies } from '../../src/access';
import { startFulcrum, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();

describe('AddressSet (net.BlockList)', () => {
  const set = new AddressSet(['10.0.0.0/8', '192.168.1.7/32', '2001:db8::/32', '::1/128']);
  test.each([
    ['10.255.0.1', true], ['11.0.0.1', false], ['192.168.1.7', true], ['192.168.1.8', false],
    ['2001:db8:1::5', true], ['2001:db9::1', false], ['::1', true], ['0:0:0:0:0:0:0:1', true],
    // IPv4-mapped IPv6 matches the IPv4 rule.
    ['::ffff:10.1.2.3', true], ['::ffff:11.1.2.3', false],
    ['unknown', false], ['', false], ['10.0.0.1:80', false],
  ])('%s → %s', (address, expected) => {
    expect(set.has(address)).toBe(expected);
  });

  test('an IPv4-mapped rule matches the plain IPv4 address', () => {
    expect(new AddressSet(['::ffff:10.0.0.0/104']).has('10.9.9.9')).toBe(true);
  });
});

describe('clientBehindProxies', () => {
  const trusted = new AddressSet(['127.0.0.2/32', '10.0.0.0/8', 'fd00::/8']);
  const xff = (...values: string[]) => values.flatMap((v) => ['X-Forwarded-For', v]);
  test.each([
    ['an untrusted peer: its own address, whatever it claims', '127.0.0.3', xff('198.51.100.7'), '127.0.0.3'],
    ['a trusted peer without the header', '127.0.0.2', [], '127.0.0.2'],
    ['a trusted peer: the right-most entry', '127.0.0.2', xff('198.51.100.7'), '198.51.100.7'],
    ['trusted hops are skipped', '127.0.0.2', xff('203.0.113.5, 198.51.100.7, 10.1.1.1, 10.2.2.2'), '198.51.100.7'],
    ['several fields are one list', '127.0.0.2', xff('198.51.100.7', '10.1.1.1'), '198.51.100.7'],
    ['every entry trusted: the left-most', '127.0.0.2', xff('10.0.0.1, 10.0.0.2'), '10.0.0.1'],
    ['IPv6 entries', '127.0.0.2', xff('2001:db8::7, fd00::1'), '2001:db8::7'],
    ['ports and brackets', '127.0.0.2', xff('[2001:db8::7]:443, 198.51.100.7:5000'), '198.51.100.7'],
    ['an IPv4-mapped entry is written as IPv4', '127.0.0.2', xff('::ffff:198.51.100.7'), '198.51.100.7'],
    ['garbage stops the walk: the peer stays the client', '127.0.0.2', xff('198.51.100.7, unknown'), '127.0.0.2'],
    ['an empty entry is garbage too', '127.0.0.2', xff('198.51.100.7,,'), '127.0.0.2'],
  ])('%s', (_what, peer, raw, expected) => {
    expect(clientBehindProxies(peer, raw, trusted)).toBe(expected);
  });
});

async function fulcrum(listener: string, pools: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
${listener}
pools:
${pools}
`);
  cleanups.push(() => f.stop());
  return f;
}

/** A backend that answers with the X-Forwarded-For it got. */
async function xffBackend(name = 'b') {
  return backend(name, (req, res) => {
    req.resume();
    res.writeHead(200, { 'x-backend': name }).end(String(req.headers['x-forwarded-for']));
  });
}

describe('end to end', () => {
  test('without trustedProxies a client\'s X-Forwarded-For is passed on but never believed', async () => {
    const b = await xffBackend();
    const f = await fulcrum('    routes: [ { pool: p } ]', `  p: { backends: [ { url: ${b.url} } ] }`);
    const r = await request(`${f.url()}/`, { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect([r.status, r.body]).toEqual([200, '198.51.100.7, 127.0.0.2']);
    expect(f.records.at(-1)!.remoteAddress).toBe('127.0.0.2');
  });

  test('behind a trusted proxy: the client it names is the access log\'s remoteAddress; X-Forwarded-For is the chain plus the peer', async () => {
    const b = await xffBackend();
    const f = await fulcrum(`    trustedProxies: [127.0.0.2, 10.0.0.0/8]
    routes: [ { pool: p } ]`, `  p: { backends: [ { url: ${b.url} } ] }`);
    const chain = '203.0.113.5, 198.51.100.7, 10.1.1.1';
    const viaProxy = await request(`${f.url()}/`, { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': chain } });
    expect(viaProxy.body).toBe(`${chain}, 127.0.0.2`);
    expect(f.records.at(-1)!.remoteAddress).toBe('198.51.100.7');
    // The same header from a peer that is not trusted is not believed.
    const direct = await request(`${f.url()}/`, { localAddress: '127.0.0.3', headers: { 'x-forwarded-for': chain } });
    expect(direct.body).toBe(`${chain}, 127.0.0.3`);
    expect(f.records.at(-1)!.remoteAddress).toBe('127.0.0.3');
    // Every hop trusted: the left-most.
    await request(`${f.url()}/`, { localAddress: '127.0.0.2', headers: { 'x-forwarded-for': '10.0.0.1, 10.0.0.2' } });
    expect(f.records.at(-1)!.remoteAddress).toBe('10.0.0.1');
  });

  test('access allow/deny and the rate limit key on the client address behind the proxy', async () => {
    const b = await xffBackend();
    const f = await fulcrum(`    trustedProxies: [127.0.0.2]
    limits: { rateLimit: { requestsPerSecond: 0.01, burst: 1, key: ip } }
    routes:
      - { pool: p, access: { allow: [198.51.100.0/24], deny: [198.51.100.66] } }`, `  p: { backends: [ { url: ${b.url} } ] }`);
    const from = (client: string, local = '127.0.0.2') => request(`${f.url()}/`, { localAddress: local, headers: { 'x-forwarded-for': client } });
    expect((await from('198.51.100.7')).status).toBe(200);
    expect((await from('198.51.100.8')).status).toBe(200); // another client: its own bucket
    expect((await from('198.51.100.7')).status).toBe(429); // the first client's bucket is empty
    const denied = await from('198.51.100.66');
    expect([denied.status, denied.body]).toEqual([403, 'forbidden\n']);
    expect((await from('203.0.113.1')).status).toBe(403);
    // A peer that is not trusted is judged by its own address (outside allow).
    expect((await from('198.51.100.9', '127.0.0.3')).status).toBe(403);
  });

  test('IPv6: a trusted proxy on ::1 names an IPv6 client, and access judges it', async () => {
    const b = await xffBackend();
    const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: "[::1]:0"
    trustedProxies: ["::1"]
    routes: [ { pool: p, access: { allow: ["2001:db8::/32"] } } ]
pools: { p: { backends: [ { url: ${b.url} } ] } }
`);
    cleanups.push(() => f.stop());
    const ok = await request(`${f.url()}/`, { headers: { 'x-forwarded-for': '2001:db8::7' } });
    expect([ok.status, ok.body]).toEqual([200, '2001:db8::7, ::1']);
    expect(f.records.at(-1)!.remoteAddress).toBe('2001:db8::7');
    expect((await request(`${f.url()}/`, { headers: { 'x-forwarded-for': '2001:db9::7' } })).status).toBe(403);
  });

  test('consistent-hash on ip hashes the client address behind the proxy', async () => {
    const bs = await Promise.all(['a', 'b', 'c', 'd'].map((n) => xffBackend(n)));
    const pools = `  p:
    strategy: consistent-hash
    hashOn: ip
    backends: [${bs.map((b) => `{ url: ${b.url}, name: ${b.name} }`).join(', ')}]`;
    const f = await fulcrum(`    trustedProxies: [127.0.0.2]
    routes: [ { pool: p } ]`, pools);
    const backendFor = async (client: string, local: string) =>
      (await request(`${f.url()}/`, { localAddress: local, headers: { 'x-forwarded-for': client } })).headers['x-backend'];
    const viaProxy = new Set<unknown>();
    const direct = new Set<unknown>();
    for (let i = 1; i <= 24; i++) {
      const client = `198.51.100.${i}`;
      const first = await backendFor(client, '127.0.0.2');
      expect(await backendFor(client, '127.0.0.2')).toBe(first); // the same client stays on its backend
      viaProxy.add(first);
      direct.add(await backendFor(client, '127.0.0.3'));
    }
    expect(viaProxy.size).toBeGreaterThan(1);
    expect(direct.size).toBe(1); // one untrusted peer is one client, whatever it claims
  });
});
