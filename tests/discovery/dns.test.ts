import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config';
import { BackendPool } from '../../src/pool/pool';
import { DnsDiscovery, dnsBackend, type DnsDiscoveryOptions, type DnsResolverLike } from '../../src/discovery';
import type { Backend } from '../../src/pool/backend';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server';
import { waitFor } from '../helpers/wait';

const DNS_NAME = 'web.internal';

interface LogEntry {
  readonly level: 'info' | 'warn';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

function recordingLogger() {
  const entries: LogEntry[] = [];
  return {
    entries,
    info: (obj: object, msg: string) => void entries.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg: string) => void entries.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
  };
}


function listen(host: string, port: number): Promise<Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.end(`hello from ${host}`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });
}

/** One node:http backend on each of `hosts`, all on the same port (picked by the first). */
async function startSamePort(hosts: string[]): Promise<{ port: number; servers: Server[] }> {
  for (let attempt = 0; ; attempt++) {
    const first = await listen(hosts[0]!, 0);
    const port = (first.address() as AddressInfo).port;
    const servers = [first];
    try {
      for (const h of hosts.slice(1)) servers.push(await listen(h, port));
      return { port, servers };
    } catch (err) {
      await Promise.all(servers.map(closeServer));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

function poolConfigYaml(port: number, dnsAddress: string, staticBackends: string[] = []): string {
  return [
    'listeners:',
    '  main:',
    '    listen: 127.0.0.1:0',
    '    routes:',
    '      - pool: web',
    'pools:',
    '  web:',
    ...(staticBackends.length > 0 ? ['    backends:', ...staticBackends.map((b) => `      - ${b}`)] : []),
    '    discovery:',
    `      dns: { name: ${DNS_NAME}, port: ${port}, refresh: 100ms, server: "${dnsAddress}" }`,
    '',
  ].join('\n');
}

async function get(b: Backend): Promise<string> {
  const res = await b.dispatcher.request({ path: '/', method: 'GET' });
  return res.body.text();
}

describe('DnsDiscovery with a real DNS server and real backends', () => {
  let dns: TestDnsServer;
  let port: number;
  let servers: Server[];
  const pools: BackendPool[] = [];
  const discoveries: DnsDiscovery[] = [];

  beforeAll(async () => {
    ({ port, servers } = await startSamePort(['127.0.0.2', '127.0.0.3', '127.0.0.4']));
  });

  afterAll(async () => {
    await Promise.all(servers.map(closeServer));
  });

  beforeEach(async () => {
    dns = await startDnsServer({ [DNS_NAME]: { a: ['127.0.0.2', '127.0.0.3'] } });
  });

  afterEach(async () => {
    for (const d of discoveries.splice(0)) d.stop();
    await Promise.all(pools.splice(0).map((p) => p.close()));
    await dns.close();
  });

  function setup(staticBackends: string[] = [], options: DnsDiscoveryOptions = {}) {
    const config = parseConfig(poolConfigYaml(port, dns.address, staticBackends), 'test.yaml', {});
    const pc = config.pools[0]!;
    const pool = new BackendPool(pc);
    const logger = recordingLogger();
    const discovery = new DnsDiscovery(pool, pc.discovery!.dns!, { logger, timeoutMs: 100, ...options });
    pools.push(pool);
    discoveries.push(discovery);
    return { pool, discovery, logger, names: (p = pool) => p.backends.map((b) => b.name).sort() };
  }

  const name = (host: string) => `${host}:${port}`;

  test('the schema accepts a pool with discovery and no backends', () => {
    const c = parseConfig(poolConfigYaml(port, dns.address), 'test.yaml', {});
    expect(c.pools[0]!.backends).toEqual([]);
    expect(c.pools[0]!.discovery).toEqual({ dns: { name: DNS_NAME, port, refreshMs: 100, server: dns.address } });
  });

  test('the first resolution adds one backend per address, up, that reaches the right server', async () => {
    const { pool, discovery, names, logger } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    expect(names()).toEqual([name('127.0.0.2'), name('127.0.0.3')]);
    for (const host of ['127.0.0.2', '127.0.0.3']) {
      const b = pool.get(name(host))!;
      expect(b.url).toBe(`http://${host}:${port}`);
      expect(b.state).toBe('up');
      expect(b.weight).toBe(1);
      expect(b.backup).toBe(false);
      expect(await get(b)).toBe(`hello from ${host}`);
    }
    expect(pool.available).toHaveLength(2);
    expect(discovery.backends).toHaveLength(2);
    expect(logger.entries.filter((e) => e.msg.startsWith('backend added'))).toEqual(expect.arrayContaining([
      expect.objectContaining({ level: 'info', obj: expect.objectContaining({ pool: 'web', backend: name('127.0.0.2'), dns: DNS_NAME }) }),
    ]));
    // A and AAAA were both asked.
    expect(new Set(dns.queries.map((q) => q.type))).toEqual(new Set([1, 28]));
  });

  test('a new record adds a backend within a refresh', async () => {
    const { pool, discovery, names } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    dns.records.get(DNS_NAME)!.a.push('127.0.0.4');
    await waitFor(() => pool.backends.length === 3, 1000, 'a third backend');
    expect(names()).toEqual([name('127.0.0.2'), name('127.0.0.3'), name('127.0.0.4')]);
    const b = pool.get(name('127.0.0.4'))!;
    expect(b.state).toBe('up');
    expect(await get(b)).toBe('hello from 127.0.0.4');
  });

  test('a record that goes away drains, and the backend is removed once it has no request in flight', async () => {
    const { pool, discovery, logger } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    const b3 = pool.get(name('127.0.0.3'))!;
    pool.acquire(b3); // a request in flight on it
    dns.records.get(DNS_NAME)!.a = ['127.0.0.2'];
    await waitFor(() => b3.state === 'draining', 3000, 'draining');
    expect(pool.available.map((b) => b.name)).toEqual([name('127.0.0.2')]);
    expect(b3.history.at(-1)?.reason).toBe(`removed from DNS (${DNS_NAME})`);
    // More refreshes come and go; the request still holds it in the pool.
    const seen = dns.queries.length;
    await waitFor(() => dns.queries.length >= seen + 6, 3000, 'three more refreshes');
    expect(pool.get(b3.name)).toBe(b3);
    pool.release(b3, 5, undefined);
    await waitFor(() => pool.get(b3.name) === undefined, 1000, 'removal');
    expect(pool.backends.map((b) => b.name)).toEqual([name('127.0.0.2')]);
    expect(discovery.backends.map((b) => b.name)).toEqual([name('127.0.0.2')]);
    expect(logger.entries.map((e) => e.msg)).toEqual(expect.arrayContaining([
      'backend gone from DNS: draining',
      'backend removed: gone from DNS',
    ]));
  });

  test('with no request in flight, a backend gone from DNS is removed at once', async () => {
    const { pool, discovery } = setup();
    const changes: string[] = [];
    pool.onMembership((b, change) => changes.push(`${change} ${b.name}`));
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    const b2 = pool.get(name('127.0.0.2'))!;
    dns.records.get(DNS_NAME)!.a = ['127.0.0.3'];
    await waitFor(() => pool.get(b2.name) === undefined, 1000, 'removal');
    expect(b2.state).toBe('draining');
    expect(changes).toContain(`removed ${name('127.0.0.2')}`);
  });

  test('an address that comes back while draining is enabled again and kept', async () => {
    const { pool, discovery } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    const b3 = pool.get(name('127.0.0.3'))!;
    pool.acquire(b3);
    dns.records.get(DNS_NAME)!.a = ['127.0.0.2'];
    await waitFor(() => b3.state === 'draining', 3000, 'draining');
    dns.records.get(DNS_NAME)!.a = ['127.0.0.2', '127.0.0.3'];
    await waitFor(() => b3.state === 'up', 3000, 'up again');
    expect(b3.history.at(-1)?.reason).toBe('back in DNS');
    pool.release(b3, 5, undefined);
    const seen = dns.queries.length;
    await waitFor(() => dns.queries.length >= seen + 4, 3000, 'two more refreshes');
    expect(pool.get(b3.name)).toBe(b3);
    expect(pool.available).toHaveLength(2);
  });

  test('SERVFAIL keeps the current backends, and the failure is logged once', async () => {
    const { pool, discovery, logger } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    const before = [...pool.backends];
    dns.fail = 'servfail';
    await waitFor(() => logger.entries.some((e) => e.level === 'warn'), 3000, 'a warning');
    const seen = dns.queries.length;
    await waitFor(() => dns.queries.length >= seen + 6, 3000, 'three more refreshes');
    expect(pool.backends).toEqual(before);
    expect(pool.backends.every((b) => b.state === 'up')).toBe(true);
    const warnings = logger.entries.filter((e) => e.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({ pool: 'web', dns: DNS_NAME, error: 'A: ESERVFAIL, AAAA: ESERVFAIL' });
    // Recovery: answers count again.
    dns.fail = undefined;
    dns.records.get(DNS_NAME)!.a = ['127.0.0.2'];
    await waitFor(() => pool.backends.length === 1, 3000, 'one backend');
    expect(logger.entries.map((e) => e.msg)).toContain('DNS resolution works again');
  });

  test('a resolver timeout keeps the current backends', async () => {
    const { pool, discovery, logger } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    dns.fail = 'drop';
    await waitFor(() => logger.entries.some((e) => e.level === 'warn'), 3000, 'a warning');
    expect(logger.entries.find((e) => e.level === 'warn')!.obj).toMatchObject({ error: 'A: ETIMEOUT, AAAA: ETIMEOUT' });
    expect(pool.backends.map((b) => [b.name, b.state])).toEqual([[name('127.0.0.2'), 'up'], [name('127.0.0.3'), 'up']]);
  });

  test('NXDOMAIN is an answer: the name has no addresses any more', async () => {
    const { pool, discovery, logger } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    dns.records.delete(DNS_NAME);
    await waitFor(() => pool.backends.length === 0, 3000, 'no backends');
    expect(logger.entries.filter((e) => e.level === 'warn')).toEqual([]);
  });

  test('a static backend at an address that is also in DNS is left alone', async () => {
    const { pool, discovery, names } = setup([
      `url: http://127.0.0.2:${port}`,
      `{ url: "http://127.0.0.3:${port}", name: web-static, weight: 5 }`,
    ]);
    const [s2, s3] = pool.backends;
    dns.records.get(DNS_NAME)!.a = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    discovery.start();
    await waitFor(() => pool.backends.length === 3, 3000, 'the one new backend');
    expect(names()).toEqual([name('127.0.0.2'), name('127.0.0.4'), 'web-static']);
    expect(discovery.backends.map((b) => b.name)).toEqual([name('127.0.0.4')]);
    expect(pool.get(name('127.0.0.2'))).toBe(s2);
    expect(pool.get('web-static')).toBe(s3);
    expect(s3!.weight).toBe(5);
    // Gone from DNS: static backends stay up and in the pool.
    dns.records.get(DNS_NAME)!.a = [];
    await waitFor(() => pool.backends.length === 2, 3000, 'the discovered one removed');
    expect(pool.backends).toEqual([s2, s3]);
    expect(pool.backends.every((b) => b.state === 'up')).toBe(true);
  });

  test('an AAAA record gives a bracketed backend that reaches the IPv6 server', async () => {
    const v6 = await listen('::1', port).catch(() => undefined);
    try {
      const { pool, discovery, names } = setup();
      dns.records.set(DNS_NAME, { a: ['127.0.0.2'], aaaa: ['::1'] });
      discovery.start();
      await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
      expect(names()).toEqual([name('127.0.0.2'), `[::1]:${port}`]);
      const b = pool.get(`[::1]:${port}`)!;
      expect(b.url).toBe(`http://[::1]:${port}`);
      expect(b.state).toBe('up');
      if (v6 !== undefined) expect(await get(b)).toBe('hello from ::1');
      // Only AAAA changes: the IPv6 backend goes, the IPv4 one stays.
      dns.records.set(DNS_NAME, { a: ['127.0.0.2'], aaaa: [] });
      await waitFor(() => pool.backends.length === 1, 3000, 'the IPv6 backend removed');
      expect(names()).toEqual([name('127.0.0.2')]);
    } finally {
      if (v6 !== undefined) await closeServer(v6);
    }
  });

  test('stop() stops refreshing', async () => {
    const { pool, discovery } = setup();
    discovery.start();
    await waitFor(() => pool.backends.length === 2, 3000, 'two backends');
    discovery.stop();
    const asked = dns.queries.filter((q) => q.name === DNS_NAME).length;
    // A second discovery on another name is the clock: a few of its refreshes pass.
    dns.records.set('clock.internal', { a: ['127.0.0.9'], aaaa: [] });
    const clockPool = new BackendPool(parseConfig(poolConfigYaml(port, dns.address), 'clock.yaml', {}).pools[0]!);
    pools.push(clockPool);
    const clock = new DnsDiscovery(clockPool, { name: 'clock.internal', port, refreshMs: 100, server: dns.address });
    discoveries.push(clock);
    clock.start();
    await waitFor(() => dns.queries.filter((q) => q.name === 'clock.internal').length >= 8, 3000, 'four clock refreshes');
    dns.records.get(DNS_NAME)!.a.push('127.0.0.4');
    await waitFor(() => dns.queries.filter((q) => q.name === 'clock.internal').length >= 14, 3000, 'three more clock refreshes');
    expect(dns.queries.filter((q) => q.name === DNS_NAME)).toHaveLength(asked);
    expect(pool.backends).toHaveLength(2);
    // refresh() after stop does nothing either.
    await discovery.refresh();
    expect(pool.backends).toHaveLength(2);
  });
});

describe('DnsDiscovery with an injected resolver', () => {
  function pool(port = 8080): BackendPool {
    const c = parseConfig(poolConfigYaml(port, '127.0.0.1:53'), 'test.yaml', {});
    return new BackendPool(c.pools[0]!);
  }
  const config = { name: DNS_NAME, port: 8080, refreshMs: 60_000 };

  test('an answer that arrives after stop() changes nothing', async () => {
    let answer: (a: string[]) => void = () => undefined;
    const resolver: DnsResolverLike = {
      resolve4: () => new Promise((resolve) => { answer = resolve; }),
      resolve6: () => Promise.resolve([]),
    };
    const p = pool();
    const d = new DnsDiscovery(p, config, { resolver });
    const pending = d.refresh();
    await new Promise((r) => setImmediate(r));
    d.stop();
    answer(['10.0.0.1']);
    await pending;
    expect(p.backends).toEqual([]);
    await p.close();
  });

  test('one family failing keeps that family, the other is applied', async () => {
    let v4: string[] | Error = ['10.0.0.1', '10.0.0.2'];
    let v6: string[] | Error = ['2001:db8::1'];
    const answer = (x: string[] | Error) => (x instanceof Error ? Promise.reject(x) : Promise.resolve(x));
    const resolver: DnsResolverLike = { resolve4: () => answer(v4), resolve6: () => answer(v6) };
    const p = pool();
    const d = new DnsDiscovery(p, config, { resolver });
    await d.refresh();
    expect(p.backends.map((b) => b.name)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080', '[2001:db8::1]:8080']);
    v4 = Object.assign(new Error('queryA ETIMEOUT'), { code: 'ETIMEOUT' });
    v6 = [];
    await d.refresh();
    expect(p.backends.map((b) => b.name)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    v4 = Object.assign(new Error('queryA ENODATA'), { code: 'ENODATA' });
    await d.refresh();
    expect(p.backends).toEqual([]);
    d.stop();
    await p.close();
  });

  test('an address an operator drained stays drained when it comes back in DNS', async () => {
    let v4 = ['10.0.0.1'];
    const resolver: DnsResolverLike = { resolve4: () => Promise.resolve(v4), resolve6: () => Promise.resolve([]) };
    const p = pool();
    const d = new DnsDiscovery(p, config, { resolver });
    await d.refresh();
    const b = p.backends[0]!;
    p.transition(b, 'drain', 'admin');
    p.acquire(b);
    v4 = [];
    await d.refresh();
    v4 = ['10.0.0.1'];
    await d.refresh();
    expect(p.get(b.name)).toBe(b);
    expect(b.state).toBe('draining');
    p.release(b, 1, undefined);
    d.stop();
    await p.close();
  });

  test('between refreshes, a short poll removes a drained backend once its last request ends', async () => {
    let v4 = ['10.0.0.1', '10.0.0.2'];
    const resolver: DnsResolverLike = { resolve4: () => Promise.resolve(v4), resolve6: () => Promise.resolve([]) };
    const p = pool();
    const d = new DnsDiscovery(p, config, { resolver, drainPollMs: 20 });
    d.start();
    await waitFor(() => p.backends.length === 2, 3000, 'two backends');
    const b = p.get('10.0.0.2:8080')!;
    p.acquire(b);
    v4 = ['10.0.0.1'];
    await d.refresh();
    expect(b.state).toBe('draining');
    expect(p.get(b.name)).toBe(b);
    p.release(b, 1, undefined);
    // The next refresh is a minute away: only the poll can do it.
    await waitFor(() => p.get(b.name) === undefined, 1000, 'removal');
    d.stop();
    await p.close();
  });

  test('on reload, the previous pool\'s discovered backends are adopted at start', async () => {
    const resolver: DnsResolverLike = { resolve4: () => Promise.resolve(['10.0.0.1', '10.0.0.2']), resolve6: () => Promise.resolve([]) };
    const oldPool = pool();
    const old = new DnsDiscovery(oldPool, config, { resolver });
    await old.refresh();
    old.stop();
    const never: DnsResolverLike = { resolve4: () => new Promise(() => undefined), resolve6: () => new Promise(() => undefined) };
    const next = pool();
    const d = new DnsDiscovery(next, config, { resolver: never, adoptFrom: oldPool });
    d.start(); // synchronously: no window with an empty pool
    expect(next.backends.map((b) => b.name)).toEqual(['10.0.0.1:8080', '10.0.0.2:8080']);
    expect(d.backends).toHaveLength(2);
    d.stop();
    // A different port is a different service: nothing adopted.
    const other = pool();
    const d2 = new DnsDiscovery(other, { ...config, port: 9090 }, { resolver: never, adoptFrom: oldPool });
    d2.start();
    expect(other.backends).toEqual([]);
    d2.stop();
    await Promise.all([oldPool.close(), next.close(), other.close()]);
  });
});

describe('dnsBackend', () => {
  test.each([
    ['10.0.0.1', 8080, 'http://10.0.0.1:8080', '10.0.0.1:8080'],
    ['::1', 80, 'http://[::1]:80', '[::1]:80'],
    ['2001:0db8:0:0:0:0:0:0001', 8080, 'http://[2001:db8::1]:8080', '[2001:db8::1]:8080'],
  ])('%s port %i', (address, port, url, name) => {
    expect(dnsBackend(address, port)).toEqual({ url, name });
  });
  test('not an IP address', () => {
    expect(dnsBackend('web.internal', 80)).toBeUndefined();
  });
});
