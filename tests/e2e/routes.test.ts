/**
 * SPEC section 8 end to end: real backends, a real Fulcrum, real clients.
 * Matching (8.1), redirect and respond, rewrite and stripPrefix, header
 * rules in their order, weighted pools, per-route timeouts and retries, and
 * mirroring (8.2).
 */
import http from 'node:http';
import net from 'node:net';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { parseConfig } from '../../src/config';
import { MIRROR_LIMITS, mirrorsInFlight } from '../../src/routes/mirror';
import { request, type Reply } from '../helpers/http';
import { metricsOf } from '../helpers/admin';
import { sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';
import type { TestBackend } from '../helpers/backends';

const { cleanups, backend } = useTeardown();

async function fulcrum(yaml: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(yaml);
  cleanups.push(() => f.stop());
  return f;
}

/** Pools named after their one backend, which answers its name. */
async function namedPools(names: string[]): Promise<{ yaml: string; backends: Record<string, TestBackend> }> {
  const backends: Record<string, TestBackend> = {};
  for (const n of names) backends[n] = await backend(n);
  const yaml = names.map((n) => `  ${n}: { backends: [ { url: ${backends[n]!.url}, name: ${n} } ] }`).join('\n');
  return { yaml, backends };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** The values of every header named `name` in a raw header list, in order. */
function rawValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** A request whose response headers come back raw, in order. */
function rawRequest(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply & { raw: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), raw: res.rawHeaders }));
    });
    req.on('error', reject);
    req.end();
  });
}

const HEADER = `
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
`;

describe('8.1 matching: every condition given must hold, first match wins', () => {
  test('hosts (list, wildcard), exact path, pathRegex, methods, headers (names case-insensitive), query (decoded)', async () => {
    const { yaml } = await namedPools(['hosts', 'exact', 'regex', 'methods', 'headers', 'query', 'prefix', 'fallback']);
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { host: [a.example.com, "*.b.example.com"] }, pool: hosts }
      - { match: { path: /v1/health }, pool: exact }
      - { match: { pathRegex: "^/v1/users/[0-9]+$" }, pool: regex }
      - { match: { pathPrefix: /v1/, methods: [POST, DELETE] }, pool: methods }
      - { match: { pathPrefix: /v1/, headers: { X-Canary: "true", x-tenant: { regex: "^acme-" } } }, pool: headers }
      - { match: { pathPrefix: /v1/, query: { debug: "1", name: "a b/c" } }, pool: query }
      - { match: { pathPrefix: /v1/ }, pool: prefix }
      - pool: fallback
pools:
${yaml}
`);
    const cases: [string, string, Record<string, string>, string][] = [
      ['GET', '/x', { host: 'a.example.com' }, 'hosts'],
      ['GET', '/x', { host: 'deep.b.example.com:8080' }, 'hosts'],
      ['GET', '/x', { host: 'b.example.com' }, 'fallback'],
      ['GET', '/v1/health', {}, 'exact'],
      ['GET', '/v1/health?verbose=1', {}, 'exact'],
      ['GET', '/v1/health/x', {}, 'prefix'],
      ['GET', '/v1/users/12', {}, 'regex'],
      ['GET', '/v1/users/12x', {}, 'prefix'],
      ['POST', '/v1/orders', {}, 'methods'],
      ['DELETE', '/v1/orders', {}, 'methods'],
      ['PUT', '/v1/orders', {}, 'prefix'],
      ['GET', '/v1/orders', { 'x-canary': 'true', 'X-Tenant': 'acme-eu' }, 'headers'],
      ['GET', '/v1/orders', { 'x-canary': 'true', 'x-tenant': 'globex' }, 'prefix'],
      ['GET', '/v1/orders', { 'x-canary': 'true' }, 'prefix'],
      ['GET', '/v1/orders?debug=1&name=a+b%2Fc', {}, 'query'],
      ['GET', '/v1/orders?name=a%20b/c&debug=%31', {}, 'query'],
      ['GET', '/v1/orders?debug=1', {}, 'prefix'],
      ['GET', '/other', {}, 'fallback'],
    ];
    for (const [method, path, headers, expected] of cases) {
      const r = await request(`${f.url()}${path}`, { method, headers });
      expect(`${method} ${path} ${JSON.stringify(headers)} → ${r.body}`).toBe(`${method} ${path} ${JSON.stringify(headers)} → ${expected}`);
    }
  });

  test('no route matches: 404, and the 404 carries no route\'s responseHeaders', async () => {
    const { yaml } = await namedPools(['web']);
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { path: /only }, pool: web, responseHeaders: { set: { x-route: only } } }
pools:
${yaml}
`);
    const miss = await request(`${f.url()}/other`);
    expect(miss.status).toBe(404);
    expect(miss.headers['x-route']).toBeUndefined();
    const hit = await request(`${f.url()}/only`);
    expect([hit.status, hit.headers['x-route']]).toEqual([200, 'only']);
  });
});

describe('8.1 redirect: each part replaces, the query is kept, default ports are never written', () => {
  test('the table: scheme, host, port, path, all of them; every allowed status; 302 by default', async () => {
    const { yaml } = await namedPools(['web']);
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /scheme }, redirect: { scheme: https } }
      - { match: { pathPrefix: /host }, redirect: { host: www.example.com } }
      - { match: { pathPrefix: /port }, redirect: { port: 8443 } }
      - { match: { pathPrefix: /path }, redirect: { path: /landing } }
      - { match: { pathPrefix: /all }, redirect: { scheme: https, host: www.example.com, port: 443, path: /landing, status: 301 } }
      - { match: { pathPrefix: /to-http }, redirect: { scheme: http, port: 80 } }
      - { match: { pathPrefix: /https-port }, redirect: { scheme: https, port: 8443 } }
      - { match: { pathPrefix: /s301 }, redirect: { scheme: https, status: 301 } }
      - { match: { pathPrefix: /s302 }, redirect: { scheme: https, status: 302 } }
      - { match: { pathPrefix: /s303 }, redirect: { scheme: https, status: 303 } }
      - { match: { pathPrefix: /s307 }, redirect: { scheme: https, status: 307 } }
      - { match: { pathPrefix: /s308 }, redirect: { scheme: https, status: 308 } }
      - pool: web
pools:
${yaml}
`);
    const cases: [string, string, number, string][] = [
      // path and query of the request, Host, status, Location
      ['/scheme/a?x=1&y=2', 'shop.test:8080', 302, 'https://shop.test/scheme/a?x=1&y=2'],
      ['/scheme', 'shop.test', 302, 'https://shop.test/scheme'],
      ['/host/a?x=1', 'shop.test:8080', 302, 'http://www.example.com:8080/host/a?x=1'],
      ['/host/a', 'shop.test', 302, 'http://www.example.com/host/a'],
      ['/port/a?x=1', 'shop.test:8080', 302, 'http://shop.test:8443/port/a?x=1'],
      ['/path/deep/er?x=1', 'shop.test:8080', 302, 'http://shop.test:8080/landing?x=1'],
      ['/path', 'shop.test', 302, 'http://shop.test/landing'],
      ['/all/x?q=%20a', 'Old.Example.com:8080', 301, 'https://www.example.com/landing?q=%20a'],
      ['/to-http?a', 'shop.test:8443', 302, 'http://shop.test/to-http?a'],
      ['/https-port/x', 'shop.test', 302, 'https://shop.test:8443/https-port/x'],
      ['/scheme/v6', '[::1]:8080', 302, 'https://[::1]/scheme/v6'],
      ['/s301?k=v', 'shop.test', 301, 'https://shop.test/s301?k=v'],
      ['/s302?k=v', 'shop.test', 302, 'https://shop.test/s302?k=v'],
      ['/s303?k=v', 'shop.test', 303, 'https://shop.test/s303?k=v'],
      ['/s307?k=v', 'shop.test', 307, 'https://shop.test/s307?k=v'],
      ['/s308?k=v', 'shop.test', 308, 'https://shop.test/s308?k=v'],
    ];
    for (const [path, host, status, location] of cases) {
      const r = await request(`${f.url()}${path}`, { headers: { host } });
      expect([path, host, r.status, r.headers.location]).toEqual([path, host, status, location]);
    }
    // A Host that is no authority gets a 400, not a Location built from it.
    const bad = await request(`${f.url()}/scheme`, { headers: { host: 'a b' } });
    expect(bad.status).toBe(400);
    // Redirects are logged and counted like any request, with backend="".
    expect(f.records.filter((r) => r.status >= 301 && r.status <= 308).every((r) => r.backend === '' && r.pool === '')).toBe(true);
  });

  test('http → https on a plain listener: one route', async () => {
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - redirect: { scheme: https, status: 308 }
pools: { unused: { backends: [ { url: "http://127.0.0.1:9" } ] } }
`);
    const r = await request(`${f.url()}/cart?id=7`, { headers: { host: 'shop.example.com' } });
    expect([r.status, r.headers.location]).toEqual([308, 'https://shop.example.com/cart?id=7']);
  });
});

describe('8.1 respond: a fixed answer', () => {
  test('status, body, headers; HEAD gets no body; the route\'s responseHeaders apply', async () => {
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - match: { path: /robots.txt }
        respond: { status: 200, body: "User-agent: *\\nDisallow:\\n", headers: { content-type: text/plain, cache-control: max-age=3600 } }
      - match: { pathPrefix: /gone }
        respond: { status: 410 }
      - respond: { status: 503, body: "down for maintenance\\n", headers: { retry-after: "600" } }
        responseHeaders: { set: { x-maintenance: "1" } }
pools: { unused: { backends: [ { url: "http://127.0.0.1:9" } ] } }
`);
    const robots = await request(`${f.url()}/robots.txt`);
    expect([robots.status, robots.body, robots.headers['content-type'], robots.headers['cache-control'], robots.headers['content-length']])
      .toEqual([200, 'User-agent: *\nDisallow:\n', 'text/plain', 'max-age=3600', '24']);
    const gone = await request(`${f.url()}/gone`);
    expect([gone.status, gone.body, gone.headers['content-length']]).toEqual([410, '', '0']);
    const maintenance = await request(`${f.url()}/anything`);
    expect([maintenance.status, maintenance.body, maintenance.headers['retry-after'], maintenance.headers['x-maintenance'], maintenance.headers['content-type']])
      .toEqual([503, 'down for maintenance\n', '600', '1', 'text/plain; charset=utf-8']);
    const head = await request(`${f.url()}/robots.txt`, { method: 'HEAD' });
    expect([head.status, head.body, head.headers['content-length']]).toEqual([200, '', '24']);
  });
});

describe('8.1 stripPrefix and rewrite keep the query string', () => {
  test('stripPrefix, rewrite by regex, rewrite to a fixed path', async () => {
    const seen: string[] = [];
    const b = await backend('web', (req, res) => {
      seen.push(req.url!);
      res.end('ok');
    });
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /api/ }, pool: web, stripPrefix: true }
      - { match: { pathPrefix: /old/ }, pool: web, rewrite: { pathRegex: "^/old/(.*)$", replacement: "/new/$1" } }
      - { match: { pathPrefix: /fixed/ }, pool: web, rewrite: { path: /status } }
      - { match: { pathRegex: "^/users/([0-9]+)/profile$" }, pool: web, rewrite: { pathRegex: "^/users/([0-9]+)/profile$", replacement: "/profiles?id=$1" } }
pools: { web: { backends: [ { url: ${b.url} } ] } }
`);
    for (const p of ['/api/users?id=7', '/api/', '/old/a/b?x=1&y=2', '/old/', '/fixed/anything?full=1', '/users/42/profile']) await request(`${f.url()}${p}`);
    expect(seen).toEqual(['/users?id=7', '/', '/new/a/b?x=1&y=2', '/new/', '/status?full=1', '/profiles?id=42']);
  });
});

describe('8.1 header rules: remove, then set, then add, after Fulcrum\'s own passes', () => {
  test('seen at the backend and at the client, in that order', async () => {
    const b = await backend('web', (req, res) => {
      req.resume();
      res.setHeader('x-powered-by', 'node');
      res.setHeader('server', 'test-backend');
      res.setHeader('x-order', 'backend');
      res.setHeader('x-keep', 'kept');
      res.end('ok');
    });
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - pool: web
        requestHeaders:
          remove: [x-debug, X-Order]
          set: { x-env: prod, x-order: set, x-forwarded-proto: https }
          add: { x-seen-by: fulcrum, x-order: add }
        responseHeaders:
          remove: [server, x-powered-by, x-order]
          set: { strict-transport-security: "max-age=63072000", x-order: set }
          add: { x-order: add }
pools: { web: { backends: [ { url: ${b.url} } ] } }
`);
    const r = await rawRequest(`${f.url()}/`, { headers: { 'x-debug': '1', 'x-env': 'dev', 'x-seen-by': 'client', 'x-order': 'client' } });
    const got = b.seen[0]!.rawHeaders;
    expect(rawValues(got, 'x-debug')).toEqual([]);
    expect(rawValues(got, 'x-env')).toEqual(['prod']);
    expect(rawValues(got, 'x-order')).toEqual(['set', 'add']);
    expect(rawValues(got, 'x-seen-by')).toEqual(['client', 'fulcrum']);
    // set wins over Fulcrum's own X-Forwarded-Proto (SPEC 8.1).
    expect(rawValues(got, 'x-forwarded-proto')).toEqual(['https']);
    expect(rawValues(got, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(r.status).toBe(200);
    expect(rawValues(r.raw, 'server')).toEqual([]);
    expect(rawValues(r.raw, 'x-powered-by')).toEqual([]);
    expect(rawValues(r.raw, 'x-order')).toEqual(['set', 'add']);
    expect(rawValues(r.raw, 'x-keep')).toEqual(['kept']);
    expect(rawValues(r.raw, 'strict-transport-security')).toEqual(['max-age=63072000']);
  });

  test('responseHeaders apply to Fulcrum\'s own answers on the route: 429, 502, 503, 504, redirect', async () => {
    const slow = await backend('slow', (req, res) => {
      req.resume();
      setTimeout(() => res.end('late'), 1500);
    });
    const dead = await deadPort();
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    limits: { rateLimit: { requestsPerSecond: 0.001, burst: 4 } }
    routes:
      - { match: { pathPrefix: /slow }, pool: slow, timeouts: { response: 200ms }, responseHeaders: { set: { x-route: slow } } }
      - { match: { pathPrefix: /dead }, pool: dead, responseHeaders: { set: { x-route: dead } } }
      - { match: { pathPrefix: /none }, pool: none, responseHeaders: { set: { x-route: none } } }
      - { match: { pathPrefix: /moved }, redirect: { path: /new }, responseHeaders: { set: { x-route: moved } } }
pools:
  slow: { backends: [ { url: ${slow.url} } ] }
  dead: { backends: [ { url: "http://127.0.0.1:${dead}" } ] }
  none: { backends: [ { url: "http://127.0.0.1:${dead}" } ], healthCheck: { interval: 1m, fall: 1 } }
`);
    await waitFor(async () => (await request(`${f.adminUrl}/api/pools`)).body.includes('"state":"down"'), 5000, 'pool none down');
    const answers = await Promise.all(['/slow', '/dead', '/none', '/moved'].map((p) => request(`${f.url()}${p}`)));
    expect(answers.map((a) => [a.status, a.headers['x-route']])).toEqual([[504, 'slow'], [502, 'dead'], [503, 'none'], [302, 'moved']]);
    const limited = await request(`${f.url()}/slow`);
    expect([limited.status, limited.headers['x-route']]).toEqual([429, 'slow']);
  });
});

/**
 * The smallest [lo, hi] with P(X < lo) + P(X > hi) <= 1e-6 for X ~ Binomial(n, p):
 * a count outside it means the split is wrong, not unlucky (a flake once in a million runs).
 */
function binomialBounds(n: number, p: number, alpha = 1e-6): [number, number] {
  const logPmf = (k: number) => {
    let lc = 0;
    for (let i = 1; i <= k; i++) lc += Math.log(n - k + i) - Math.log(i);
    return lc + k * Math.log(p) + (n - k) * Math.log(1 - p);
  };
  const pmf = Array.from({ length: n + 1 }, (_, k) => Math.exp(logPmf(k)));
  let lo = 0;
  let lower = 0;
  while (lower + pmf[lo]! <= alpha / 2) lower += pmf[lo++]!;
  let hi = n;
  let upper = 0;
  while (upper + pmf[hi]! <= alpha / 2) upper += pmf[hi--]!;
  return [lo, hi];
}

describe('8.1 pools: a weighted split per request', () => {
  test('1000 requests over 90/10 (weight 0 takes nothing) stay within the binomial bound at 1e-6; logs and metrics carry the chosen pool; sticky applies within the chosen pool', async () => {
    const v1 = await backend('v1');
    const v2a = await backend('v2a');
    const v2b = await backend('v2b');
    const off = await backend('off');
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - pools:
          - { pool: shop-v1, weight: 90 }
          - { pool: shop-v2, weight: 10 }
          - { pool: shop-off, weight: 0 }
pools:
  shop-v1: { backends: [ { url: ${v1.url}, name: v1 } ] }
  shop-v2: { backends: [ { url: ${v2a.url}, name: v2a }, { url: ${v2b.url}, name: v2b } ], sticky: { cookie: V2 } }
  shop-off: { backends: [ { url: ${off.url}, name: off } ] }
`);
    // A cookie for v2b, from a request that went there.
    let cookie: string | undefined;
    for (let i = 0; i < 500 && cookie === undefined; i++) {
      const r = await request(`${f.url()}/`);
      if (r.body === 'v2b') cookie = String(r.headers['set-cookie']).split(';')[0];
    }
    expect(cookie).toBeDefined();
    const before = f.records.length;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    cleanups.push(async () => agent.destroy());
    const bodies: string[] = [];
    let issued = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (issued < 1000) {
        issued++;
        bodies.push((await request(`${f.url()}/`, { agent, headers: { cookie: cookie! } })).body);
      }
    }));
    const count = (name: string) => bodies.filter((b) => b === name).length;
    const [lo, hi] = binomialBounds(1000, 0.1);
    expect([lo, hi]).toEqual([expect.any(Number), expect.any(Number)]);
    expect(count('v2a') + count('v2b')).toBeGreaterThanOrEqual(lo);
    expect(count('v2a') + count('v2b')).toBeLessThanOrEqual(hi);
    expect(count('v1') + count('v2a') + count('v2b')).toBe(1000);
    expect(count('off')).toBe(0);
    // Sticky of the chosen pool: every request that went to shop-v2 went to v2b.
    expect(count('v2a')).toBe(0);
    const records = f.records.slice(before);
    expect(records.filter((r) => r.pool === 'shop-v2').length).toBe(count('v2b'));
    expect(records.filter((r) => r.pool === 'shop-v1').length).toBe(count('v1'));
    const m = await metricsOf(f.adminUrl);
    expect(sum(m, 'fulcrum_requests_total', { pool: 'shop-v2' })).toBe(f.records.filter((r) => r.pool === 'shop-v2').length);
    expect(sum(m, 'fulcrum_requests_total', { pool: 'shop-off' })).toBe(0);
  }, 30_000);
});

describe('8.1 per-route timeouts and retries', () => {
  test('timeouts override the pool\'s key by key; retries replace the pool\'s block (left-out keys take the defaults)', async () => {
    const slow = await backend('slow', (req, res) => {
      req.resume();
      setTimeout(() => res.end('slow'), 600);
    });
    const good = await backend('good');
    const bad = await backend('bad', (req, res) => {
      req.resume();
      res.writeHead(502).end('bad');
    });
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /short }, pool: slow, timeouts: { response: 200ms } }
      - { match: { pathPrefix: /long }, pool: slow }
      - { match: { pathPrefix: /no-retry }, pool: mixed, retries: { attempts: 0 } }
      - { match: { pathPrefix: /defaults }, pool: mixed, retries: { attempts: 3 } }
      - { pool: mixed }
pools:
  slow: { backends: [ { url: ${slow.url} } ], timeouts: { response: 5s } }
  mixed:
    strategy: round-robin
    backends: [ { url: ${good.url}, name: good }, { url: ${bad.url}, name: bad } ]
    retries: { attempts: 1, on: [502] }
`);
    expect((await request(`${f.url()}/short`)).status).toBe(504);
    expect((await request(`${f.url()}/long`)).status).toBe(200);
    const statuses = async (path: string) => {
      const out: number[] = [];
      for (let i = 0; i < 6; i++) out.push((await request(`${f.url()}${path}`)).status);
      return out.sort();
    };
    // The pool's block retries a 502 on the good backend.
    expect(await statuses('/pooled')).toEqual([200, 200, 200, 200, 200, 200]);
    // attempts: 0 on this route: the bad backend's 502 reaches the client.
    expect(await statuses('/no-retry')).toEqual([200, 200, 200, 502, 502, 502]);
    // The route's block replaces the pool's: `on` left out is [connect-failure], so a 502 is not retried.
    expect(await statuses('/defaults')).toEqual([200, 200, 200, 502, 502, 502]);
  });
});

describe('8.2 mirror', () => {
  const mirrorMetric = async (f: RunningFulcrum, pool: string, result: string) =>
    sum(await metricsOf(f.adminUrl), 'fulcrum_mirror_requests_total', { pool, result });

  test('a copy goes to the mirror pool with the same method, path (rewritten), headers and body; its answer is thrown away; percent 0 sends none', async () => {
    const copies: { method: string; url: string; body: string; env: string | undefined }[] = [];
    const shadow = await backend('shadow', (req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        copies.push({ method: req.method!, url: req.url!, body, env: req.headers['x-env'] as string | undefined });
        res.writeHead(500).end('shadow says no');
      });
    });
    const web = await backend('web');
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /never }, pool: web, mirror: { pool: shadow, percent: 0 } }
      - { match: { pathPrefix: /small }, pool: web, mirror: { pool: shadow, maxBodySize: 10b } }
      - match: { pathPrefix: /api/ }
        pool: web
        stripPrefix: true
        requestHeaders: { set: { x-env: prod } }
        mirror: { pool: shadow }
pools:
  web: { backends: [ { url: ${web.url} } ] }
  shadow: { backends: [ { url: ${shadow.url} } ] }
`);
    const get = await request(`${f.url()}/api/items?x=1`);
    expect([get.status, get.body]).toEqual([200, 'web']);
    const post = await request(`${f.url()}/api/items`, { method: 'POST', body: 'hello mirror' });
    expect([post.status, post.body]).toEqual([200, 'web']);
    // Chunked (no Content-Length): copied once the body has arrived.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${f.url()}/api/chunked`, { method: 'PUT', agent: false }, (res) => { res.resume(); resolve(res.statusCode!); });
      req.on('error', reject);
      req.write('part1-');
      setTimeout(() => req.end('part2'), 50);
    });
    expect(chunked).toBe(200);
    await waitFor(() => copies.length === 3, 5000, 'three copies');
    expect(copies).toEqual(expect.arrayContaining([
      { method: 'GET', url: '/items?x=1', body: '', env: 'prod' },
      { method: 'POST', url: '/items', body: 'hello mirror', env: 'prod' },
      { method: 'PUT', url: '/chunked', body: 'part1-part2', env: 'prod' },
    ]));
    await waitFor(async () => (await mirrorMetric(f, 'shadow', 'sent')) === 3, 5000, 'sent = 3');
    // Bodies over maxBodySize are skipped, by Content-Length or as they stream.
    expect((await request(`${f.url()}/small`, { method: 'POST', body: 'more than ten bytes' })).status).toBe(200);
    expect((await request(`${f.url()}/small`, { method: 'POST', body: 'tiny' })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await request(`${f.url()}/never`)).status).toBe(200);
    await waitFor(async () => (await mirrorMetric(f, 'shadow', 'sent')) === 4, 5000, 'sent = 4');
    expect(await mirrorMetric(f, 'shadow', 'skipped')).toBe(1);
    expect(await mirrorMetric(f, 'shadow', 'failed')).toBe(0);
    expect(copies.length).toBe(4);
    // Mirrored requests are not client requests.
    const m = await metricsOf(f.adminUrl);
    expect(sum(m, 'fulcrum_requests_total', { pool: 'shadow' })).toBe(0);
    expect(sum(m, 'fulcrum_requests_total', { pool: 'web' })).toBe(10);
  });

  test('a mirror that sleeps 5 s, one that is down and one with no backend: client requests stay fast and 200; sent, failed, skipped as 8.2 says', async () => {
    const sleepers: http.ServerResponse[] = [];
    const sleepy = await backend('sleepy', (req, res) => {
      req.resume();
      sleepers.push(res);
      setTimeout(() => res.end('late'), 5000);
    });
    const web = await backend('web');
    const dead = await deadPort();
    const drained = await backend('drained');
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { pathPrefix: /slow }, pool: web, mirror: { pool: sleepy } }
      - { match: { pathPrefix: /down }, pool: web, mirror: { pool: down } }
      - { match: { pathPrefix: /empty }, pool: web, mirror: { pool: empty } }
pools:
  web: { backends: [ { url: ${web.url} } ] }
  sleepy: { backends: [ { url: ${sleepy.url} } ], timeouts: { response: 30s } }
  down: { backends: [ { url: "http://127.0.0.1:${dead}" } ] }
  empty: { backends: [ { url: ${drained.url}, name: drained } ] }
`);
    await request(`${f.adminUrl}/api/pools/empty/backends/drained/drain`, { method: 'POST' });
    const started = performance.now();
    for (const path of ['/slow', '/down', '/empty']) {
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        const r = await request(`${f.url()}${path}/${i}`, { method: i % 2 === 0 ? 'GET' : 'POST', body: i % 2 === 0 ? undefined : 'body' });
        expect([path, r.status, r.body]).toEqual([path, 200, 'web']);
        // Generous for a loaded 2-core machine, and far below the mirror's 5 s.
        expect(performance.now() - t0).toBeLessThan(2000);
      }
    }
    expect(performance.now() - started).toBeLessThan(4500);
    await waitFor(async () => (await mirrorMetric(f, 'down', 'failed')) === 10, 5000, 'down: failed = 10');
    expect(await mirrorMetric(f, 'empty', 'skipped')).toBe(10);
    expect(sleepers.length).toBe(10);
    expect(await mirrorMetric(f, 'sleepy', 'sent')).toBe(0);
    await waitFor(async () => (await mirrorMetric(f, 'sleepy', 'sent')) === 10, 10_000, 'sleepy: sent = 10');
    const m = await metricsOf(f.adminUrl);
    expect(sum(m, 'fulcrum_requests_total', { pool: 'web', code: '200' })).toBe(30);
    expect(sum(m, 'fulcrum_requests_total', { pool: 'sleepy' }) + sum(m, 'fulcrum_requests_total', { pool: 'down' })).toBe(0);
    expect(drained.seen.length).toBe(0);
  }, 30_000);
});

describe('8.2 mirror memory is bounded', () => {
  test('beyond the cap on copies in flight, copies are skipped, never queued', async () => {
    const held: http.ServerResponse[] = [];
    const shadow = await backend('shadow', (req, res) => {
      req.resume();
      held.push(res);
    });
    const web = await backend('web');
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { pool: web, mirror: { pool: shadow } }
pools:
  web: { backends: [ { url: ${web.url} } ] }
  shadow: { backends: [ { url: ${shadow.url} } ] }
`);
    const saved = MIRROR_LIMITS.inFlight;
    MIRROR_LIMITS.inFlight = mirrorsInFlight() + 3;
    cleanups.push(async () => { MIRROR_LIMITS.inFlight = saved; });
    for (let i = 0; i < 6; i++) expect((await request(`${f.url()}/${i}`)).status).toBe(200);
    const metric = async (result: string) => sum(await metricsOf(f.adminUrl), 'fulcrum_mirror_requests_total', { pool: 'shadow', result });
    expect(await metric('skipped')).toBe(3);
    await waitFor(() => held.length === 3, 5000, 'three copies held');
    for (const res of held) res.end('late');
    await waitFor(async () => (await metric('sent')) === 3, 5000, 'sent = 3');
    expect(held.length).toBe(3);
  });
});

describe('the admin API and the dashboard show the route kinds', () => {
  test('/api/overview: pool, pools, redirect, respond, mirror, rewrite, header rules', async () => {
    const { yaml } = await namedPools(['web', 'v2', 'shadow']);
    const f = await fulcrum(`${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - { match: { host: [a.test, "*.b.test"], pathPrefix: /api/ }, pool: web, stripPrefix: true, mirror: { pool: shadow, percent: 10 }, requestHeaders: { set: { x-a: b } } }
      - { match: { pathPrefix: /shop/ }, pools: [ { pool: web, weight: 90 }, { pool: v2, weight: 10 } ] }
      - { match: { host: old.test }, redirect: { scheme: https, host: www.test, status: 301 } }
      - { match: { path: /robots.txt, methods: [GET] }, respond: { status: 200, body: x }, responseHeaders: { remove: [server] } }
pools:
${yaml}
`);
    const overview = JSON.parse((await request(`${f.adminUrl}/api/overview`)).body) as { listeners: { routes: Record<string, unknown>[] }[] };
    const routes = overview.listeners[0]!.routes;
    expect(routes.map((r) => r.kind)).toEqual(['pool', 'pools', 'redirect', 'respond']);
    expect(routes[0]).toMatchObject({ host: 'a.test, *.b.test', hosts: ['a.test', '*.b.test'], pathPrefix: '/api/', pool: 'web', mirror: { pool: 'shadow', percent: 10 }, rewrite: 'strip /api/', requestHeaders: true, responseHeaders: false });
    expect(routes[1]).toMatchObject({ pool: null, pools: [{ pool: 'web', weight: 90 }, { pool: 'v2', weight: 10 }] });
    expect(routes[2]).toMatchObject({ redirect: { scheme: 'https', host: 'www.test', port: null, path: null, status: 301 } });
    expect(routes[3]).toMatchObject({ path: '/robots.txt', methods: ['GET'], respond: { status: 200 }, responseHeaders: true });
  });
});

describe('reload applies routes like any other key', () => {
  test('a pool route becomes a maintenance page and back, without a restart', async () => {
    const web = await backend('web');
    const text = (route: string) => `${HEADER}
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - ${route}
pools: { web: { backends: [ { url: ${web.url} } ] } }
`;
    const f = await fulcrum(text('pool: web'));
    expect((await request(`${f.url()}/`)).body).toBe('web');
    const down = await f.fulcrum.apply(parseConfig(text('respond: { status: 503, body: "maintenance" }'), 'test.yaml', {}));
    expect(down).toMatchObject({ ok: true, changes: ['listener public: routes changed'] });
    expect(await request(`${f.url()}/`)).toMatchObject({ status: 503, body: 'maintenance' });
    await f.fulcrum.apply(parseConfig(text('pool: web'), 'test.yaml', {}));
    expect((await request(`${f.url()}/`)).body).toBe('web');
  });
});
