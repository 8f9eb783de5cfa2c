/**
 * SPEC section 4 under failure, black box: the built CLI in front of real
 * node:http (and raw TCP) backends that fail in each way a backend can. For
 * each, what the client gets, the access-log line (status, backend, error)
 * and the figures in /metrics and /api/pools.
 */
import http from 'node:http';
import net from 'node:net';
import { addresses, backendsYaml, startCli, tempDir, waitFor, writeFile, type CliProcess, type LogLine } from '../cli/harness';
import type { Handler } from '../helpers/backends';
import { request } from '../helpers/http';
import { sum } from '../helpers/prom';
import { useTeardown } from '../helpers/teardown';
import { backendsOf, metricsOf } from '../helpers/admin';

const { cleanups, backend, switchable } = useTeardown({ blackBox: true });

/** A raw TCP backend on 127.0.0.1, port 0: `onSocket` does whatever the test needs with each connection. */
async function rawBackend(onSocket: (s: net.Socket) => void): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => connections };
}

interface Running {
  readonly cli: CliProcess;
  readonly url: string;
  readonly admin: string;
}

/** One listener → pool "web", whose body (indented by 4) is `pool`. */
async function start(pool: string): Promise<Running> {
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', `shutdownTimeout: 2s
log: { level: info, access: true }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes: [ { pool: web } ]
pools:
  web:
${pool}`);
  const cli = startCli(['--config', file], { cwd: dir });
  const { url, adminUrl } = await addresses(cli);
  return { cli, url, admin: adminUrl };
}

/** The access line(s) for `url`, once `n` of them are in. */
async function accessFor(r: Running, url: string, n = 1): Promise<LogLine[]> {
  const lines = () => r.cli.logs.filter((l) => l.msg === 'request' && l.url === url);
  await waitFor(() => lines().length >= n, 5000, `${n} access line(s) for ${url}`);
  return lines();
}

/** A GET that reports a broken response instead of failing: what arrived, and the error if the body broke. */
function get(url: string, agent: http.Agent | false = false): Promise<{ status: number; body: string; error?: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: Date.now() - t0 }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: res.statusCode!, body, error: err.code ?? err.message, ms: Date.now() - t0 }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, body: '', error: err.code ?? err.message, ms: Date.now() - t0 }));
  });
}

async function stateIs(r: Running, name: string, state: string): Promise<void> {
  await waitFor(async () => (await backendsOf(r.admin))[name]?.state === state, 5000, `${name} to be ${state}`);
}

describe('a backend that fails', () => {
  test('mid-response body: the client sees the body break (never a second status line); logged with its backend and a reset', async () => {
    const b = await backend('b', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setTimeout(() => res.socket!.destroy(), 20);
    });
    const r = await start(`    retries: { attempts: 1, on: [connect-failure, reset, 502] }\n${backendsYaml([b])}`);
    const got = await get(`${r.url}/mid`);
    expect(got.status).toBe(200);
    expect(got.body).toBe('partial');
    expect(got.error).toBeDefined();
    const [line] = await accessFor(r, '/mid');
    expect(line).toMatchObject({ status: 200, backend: 'b', pool: 'web', bytes: 7, retries: 0 });
    expect(String(line!.error)).toMatch(/^reset: /);
    expect((await backendsOf(r.admin)).b).toMatchObject({ requests: 1, failures: 1, activeRequests: 0 });
    const m = await metricsOf(r.admin);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'b', code: '200' })).toBe(1);
    expect(sum(m, 'fulcrum_retries_total')).toBe(0);
  });

  test('resetting the connection before headers: a GET is retried, a POST is not; then 502 with one line', async () => {
    const handler: Handler = (req) => req.socket.destroy();
    const b = await backend('b', handler);
    const c = await backend('c', handler);
    const r = await start(`    retries: { attempts: 1, on: [connect-failure, reset] }\n${backendsYaml([b, c])}`);
    const g = await request(`${r.url}/get`);
    expect(g.status).toBe(502);
    expect(g.body).toBe('bad gateway: the backend closed the connection\n');
    const p = await request(`${r.url}/post`, { method: 'POST', body: 'x', headers: { 'content-length': '1' } });
    expect(p.status).toBe(502);
    const [gl] = await accessFor(r, '/get');
    expect(gl).toMatchObject({ status: 502, backend: '', retries: 1 });
    expect(String(gl!.error)).toMatch(/^reset: /);
    const [pl] = await accessFor(r, '/post');
    expect(pl).toMatchObject({ status: 502, backend: '', retries: 0 });
    const bs = await backendsOf(r.admin);
    // The GET: first try, its one resend (a reset may be a stale socket), the retry; the POST once.
    expect(bs.b!.requests + bs.c!.requests).toBe(4);
    expect(bs.b!.failures + bs.c!.failures).toBe(3);
    const m = await metricsOf(r.admin);
    expect(sum(m, 'fulcrum_requests_total', { backend: '', code: '502' })).toBe(2);
    expect(sum(m, 'fulcrum_retries_total', { pool: 'web' })).toBe(1);
  });

  // Regression: undici checks headersTimeout on coarse timers (~0.5 s ticks),
  // so `response: 250ms` gave its 504 after about a second.
  test('accepting and never answering: 504 once timeouts.response is over, not a second later', async () => {
    const silent = await rawBackend((s) => s.resume());
    const r = await start(`    retries: { attempts: 0 }\n    timeouts: { response: 250ms }\n${backendsYaml([{ name: 'silent', url: silent.url }])}`);
    const replies = await Promise.all(Array.from({ length: 4 }, () => get(`${r.url}/silent`)));
    for (const got of replies) {
      expect(got.status).toBe(504);
      expect(got.body).toBe('gateway timeout: the backend did not answer in time\n');
      expect(got.ms).toBeGreaterThanOrEqual(240);
      expect(got.ms).toBeLessThan(750);
    }
    const lines = await accessFor(r, '/silent', 4);
    for (const l of lines) {
      expect(l).toMatchObject({ status: 504, backend: '', pool: 'web' });
      expect(String(l.error)).toMatch(/^timeout: /);
    }
    expect((await backendsOf(r.admin)).silent).toMatchObject({ requests: 4, failures: 4, activeRequests: 0 });
    expect(sum(await metricsOf(r.admin), 'fulcrum_requests_total', { backend: '', code: '504' })).toBe(4);
  });

  test('answering slowly after the headers: timeouts.response does not cut the body', async () => {
    const b = await backend('b', (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      let i = 0;
      const t = setInterval(() => {
        res.write(`chunk${i}\n`);
        if (++i === 5) {
          clearInterval(t);
          res.end();
        }
      }, 120);
    });
    const r = await start(`    timeouts: { response: 200ms }\n${backendsYaml([b])}`);
    const got = await get(`${r.url}/slow`);
    expect(got).toMatchObject({ status: 200, body: 'chunk0\nchunk1\nchunk2\nchunk3\nchunk4\n' });
    expect(got.error).toBeUndefined();
    expect(got.ms).toBeGreaterThan(500);
    const [line] = await accessFor(r, '/slow');
    expect(line).toMatchObject({ status: 200, backend: 'b', bytes: 35 });
    expect(line!.error).toBeUndefined();
    expect((await backendsOf(r.admin)).b).toMatchObject({ requests: 1, failures: 0 });
  });
});

/**
 * A backend that closes every keep-alive connection as the next request
 * arrives on it: the race of a backend closing an idle socket just as a
 * request is written, made to happen every time.
 */
async function oneRequestPerConnection() {
  return rawBackend((s) => {
    let buf = '';
    let answered = false;
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      if (answered) {
        s.destroy();
        return;
      }
      answered = true;
      buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok');
    });
  });
}

describe('stale keep-alive connections to a backend', () => {
  // Regression: a GET written on a socket the backend was closing came back as a 502.
  test('an idempotent request on a socket the backend closes is sent again on a new one: no client error, no retry, no failure', async () => {
    const stale = await oneRequestPerConnection();
    const r = await start(backendsYaml([{ name: 'stale', url: stale.url }]));
    // The first leaves one idle socket; the second goes out on it, is cut, and goes again on a new one.
    expect(await get(`${r.url}/first`)).toMatchObject({ status: 200, body: 'ok' });
    expect(await get(`${r.url}/second`)).toMatchObject({ status: 200, body: 'ok' });
    expect(stale.connections()).toBe(2);
    expect((await accessFor(r, '/second'))[0]).toMatchObject({ status: 200, backend: 'stale', retries: 0 });
    const m = await metricsOf(r.admin);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'stale', code: '200' })).toBe(2);
    expect(sum(m, 'fulcrum_retries_total')).toBe(0);
    expect((await backendsOf(r.admin)).stale).toMatchObject({ failures: 0 });
  });

  test('also with retries off', async () => {
    const stale = await oneRequestPerConnection();
    const r = await start(`    retries: { attempts: 0 }\n${backendsYaml([{ name: 'stale', url: stale.url }])}`);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(`${r.url}/ka${i}`)).status);
    expect(statuses).toEqual(Array(10).fill(200));
  });

  test('but only once, and never a POST: a backend that cuts every request is a 502', async () => {
    const cutter = await rawBackend((s) => s.on('data', () => s.destroy()));
    const r = await start(`    retries: { attempts: 0 }\n${backendsYaml([{ name: 'cutter', url: cutter.url }])}`);
    expect((await get(`${r.url}/get`)).status).toBe(502);
    expect(cutter.connections()).toBe(2); // the request and its one resend
    expect((await request(`${r.url}/post`, { method: 'POST', body: 'x' })).status).toBe(502);
    expect(cutter.connections()).toBe(3);
  });
});

describe('when backends are down', () => {
  test('all of them: 503 with Retry-After, logged with backend "", /readyz 503, fulcrum_backend_up 0', async () => {
    const a = await switchable('a');
    a.health = 500;
    const r = await start(`    healthCheck: { path: /health, interval: 50ms, fall: 1, rise: 1 }\n${backendsYaml([a])}`);
    await stateIs(r, 'a', 'down');
    const got = await request(`${r.url}/none`);
    expect(got.status).toBe(503);
    expect(got.headers['retry-after']).toBe('1');
    expect(got.body).toBe('service unavailable: no backend available\n');
    const [line] = await accessFor(r, '/none');
    expect(line).toMatchObject({ status: 503, backend: '', pool: 'web', retries: 0 });
    expect((await request(`${r.admin}/readyz`)).status).toBe(503);
    const m = await metricsOf(r.admin);
    expect(sum(m, 'fulcrum_backend_up', { backend: 'a' })).toBe(0);
    expect(sum(m, 'fulcrum_requests_total', { backend: '', code: '503' })).toBe(1);
    expect((await backendsOf(r.admin)).a).toMatchObject({ state: 'down', requests: 0 });
  });

  test('the primaries: the backup takes over, and gives the traffic back when one returns', async () => {
    const p = await switchable('p');
    const k = await switchable('k');
    const r = await start(`    healthCheck: { path: /health, interval: 50ms, fall: 1, rise: 1 }\n${backendsYaml([p, k], (n) => (n === 'k' ? ', backup: true' : ''))}`);
    for (let i = 0; i < 4; i++) expect((await request(`${r.url}/before`)).body).toBe('p');
    p.health = 500;
    await stateIs(r, 'p', 'down');
    for (let i = 0; i < 4; i++) expect((await request(`${r.url}/backup`)).body).toBe('k');
    expect((await accessFor(r, '/backup', 4)).map((l) => l.backend)).toEqual(['k', 'k', 'k', 'k']);
    expect((await request(`${r.admin}/readyz`)).status).toBe(200);
    p.health = 200;
    await stateIs(r, 'p', 'up');
    for (let i = 0; i < 4; i++) expect((await request(`${r.url}/after`)).body).toBe('p');
    const m = await metricsOf(r.admin);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'k' })).toBe(4);
    expect(sum(m, 'fulcrum_requests_total', { backend: 'p' })).toBe(8);
    expect((await backendsOf(r.admin)).k).toMatchObject({ state: 'up', requests: 4, failures: 0 });
  });

  test('below panicThreshold: traffic spreads over every primary, whatever its state; a backup does not take part', async () => {
    const bs = [await switchable('a'), await switchable('b'), await switchable('c'), await switchable('d')];
    const k = await switchable('k');
    const r = await start(`    strategy: round-robin
    panicThreshold: 50
    healthCheck: { path: /health, interval: 50ms, fall: 1, rise: 1 }
${backendsYaml([...bs, k], (n) => (n === 'k' ? ', backup: true' : ''))}`);
    for (const b of bs.slice(1)) b.health = 500;
    for (const b of bs.slice(1)) await stateIs(r, b.name, 'down');
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add((await request(`${r.url}/panic`)).body);
    expect([...seen].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(sum(await metricsOf(r.admin), 'fulcrum_backend_up')).toBe(2); // a and the backup
  });
});
