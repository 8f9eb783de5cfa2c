import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDnsServer } from '../helpers/dns-server';
import { startFulcrum, waitFor } from '../helpers/fulcrum';
import { request } from '../helpers/http';

function listen(host: string, port: number): Promise<Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.end(host);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

test('DNS discovery through a running Fulcrum: a new A record gets traffic, a removed one stops getting it', async () => {
  // Two backends on different loopback addresses, same port: DNS gives addresses, the config the port.
  const first = await listen('127.0.0.2', 0);
  const port = (first.address() as AddressInfo).port;
  const second = await listen('127.0.0.3', port);
  const dns = await startDnsServer({ 'web.test': { a: ['127.0.0.2'] } });
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners: { public: { listen: 127.0.0.1:0, routes: [ { pool: web } ] } }
pools:
  web:
    discovery: { dns: { name: web.test, port: ${port}, refresh: 100ms, server: ${dns.address} } }
`);
  try {
    const seen = async (n: number) => {
      const s = new Set<string>();
      for (let i = 0; i < n; i++) {
        const r = await request(`${f.url()}/`);
        if (r.status === 200) s.add(r.body);
      }
      return [...s].sort();
    };
    await waitFor(() => f.fulcrum.pools.get('web')!.available.length === 1, 5000, 'first address');
    expect(await seen(6)).toEqual(['127.0.0.2']);
    dns.records.get('web.test')!.a = ['127.0.0.2', '127.0.0.3'];
    await waitFor(() => f.fulcrum.pools.get('web')!.available.length === 2, 5000, 'second address');
    expect(await seen(6)).toEqual(['127.0.0.2', '127.0.0.3']);
    dns.records.get('web.test')!.a = ['127.0.0.3'];
    await waitFor(() => f.fulcrum.pools.get('web')!.backends.length === 1, 5000, 'first address removed');
    expect(await seen(6)).toEqual(['127.0.0.3']);
    const api = JSON.parse((await request(`${f.adminUrl}/api/pools`)).body);
    expect(api.pools[0].backends.map((b: { name: string }) => b.name)).toEqual([`127.0.0.3:${port}`]);
  } finally {
    await f.stop();
    await dns.close();
    for (const s of [first, second]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
});
