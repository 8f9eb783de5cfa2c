/**
 * Chaos over real sockets: backends that die, reset, or stall; clients that
 * crawl or vanish. Each time Fulcrum must keep serving everyone else, leave
 * every backend's inFlight at 0, leak no sockets (open file descriptors of
 * this process come back to where they were), and never take the process down.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { startBackend, type Handler, type TestBackend } from '../helpers/backends';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { rawExchange, type RawReply } from '../helpers/raw';

/** Slack for descriptors that are not ours to control (timers, jest's own pipes). */
const FD_SLACK = 5;
/** TCP sockets are ours: only a couple may linger (a connection mid-close). */
const TCP_SLACK = 2;

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Descriptors of this process that are TCP sockets (listeners and connections, IPv4 and IPv6). */
function tcpCount(): number {
  const inodes = new Set<string>();
  for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9) inodes.add(cols[9]!);
    }
  }
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (m !== null && inodes.has(m[1]!)) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

interface Env {
  readonly f: RunningFulcrum;
  readonly backends: Map<string, TestBackend>;
  stop(): Promise<void>;
}

/**
 * Backends by name (each with its handler), and Fulcrum with `pools` YAML
 * (under `pools:`) and `routes` YAML (under the listener's `routes:`).
 * Idle upstream connections close after 300 ms so descriptors settle fast.
 */
async function setup(handlers: Record<string, Handler>, pools: (url: (name: string) => string) => string, routes: string, limits = ''): Promise<Env> {
  const backends = new Map<string, TestBackend>();
  for (const [name, h] of Object.entries(handlers)) backends.set(name, await startBackend(name, h));
  const f = await startFulcrum(`
log: { level: error, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
${limits}
    routes:
${routes}
pools:
${pools((n) => backends.get(n)!.url)}
`);
  return {
    f,
    backends,
    stop: async () => {
      await f.stop();
      await Promise.all([...backends.values()].map((b) => b.close()));
    },
  };
}

/** Every backend of every pool has nothing in flight; descriptors back to `baseline` (+ slack). */
async function settled(env: Env, baseline: { fds: number; tcp: number }): Promise<void> {
  const backends = [...env.f.fulcrum.pools.values()].flatMap((p) => [...env.backends.keys()].map((n) => p.get(n)).filter((b) => b !== undefined));
  await waitFor(() => backends.every((b) => b!.inFlight === 0), 5000, 'every backend to have inFlight 0');
  for (const b of backends) expect({ backend: b!.name, inFlight: b!.inFlight }).toEqual({ backend: b!.name, inFlight: 0 });
  const ok = () => fdCount() <= baseline.fds + FD_SLACK && tcpCount() <= baseline.tcp + TCP_SLACK;
  await waitFor(ok, 6000, 'open descriptors to settle').catch(() => undefined);
  const now = { fds: fdCount(), tcp: tcpCount() };
  const limit = { fds: baseline.fds + FD_SLACK, tcp: baseline.tcp + TCP_SLACK };
  expect({ now, limit, ok: now.fds <= limit.fds && now.tcp <= limit.tcp }).toEqual({ now, limit, ok: true });
}

/** Run `body`, then check that tearing everything down gives the descriptors back too. */
async function chaos(make: () => Promise<Env>, body: (env: Env) => Promise<void>): Promise<void> {
  const before = { fds: fdCount(), tcp: tcpCount() };
  const env = await make();
  try {
    const baseline = { fds: fdCount(), tcp: tcpCount() };
    await body(env);
    await settled(env, baseline);
    // The process still serves after all of it.
    const last = await tryGet(`${env.f.url()}/still-there`);
    expect(last.status).toBeLessThan(500);
  } finally {
    await env.stop();
  }
  const released = () => fdCount() <= before.fds + FD_SLACK && tcpCount() <= before.tcp;
  await waitFor(released, 5000, 'descriptors to be released after shutdown').catch(() => undefined);
  const now = { fds: fdCount(), tcp: tcpCount() };
  expect({ now, before, released: now.fds <= before.fds + FD_SLACK && now.tcp <= before.tcp }).toEqual({ now, before, released: true });
}

interface Outcome {
  status?: number;
  body: string;
  /** The response arrived whole. */
  complete: boolean;
  error?: string;
}

/** A GET that reports a broken response instead of throwing. */
function tryGet(url: string, timeoutMs = 5000): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { body: '', complete: false };
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(out);
    };
    const timer = setTimeout(() => {
      out.error = 'client timeout';
      req.destroy();
      finish();
    }, timeoutMs);
    const req = http.get(url, { agent: false }, (res) => {
      out.status = res.statusCode;
      res.setEncoding('latin1');
      res.on('data', (c: string) => { out.body += c; });
      res.on('end', () => {
        out.complete = res.complete;
        finish();
      });
      res.on('error', (e) => { out.error = e.message; });
      res.on('close', () => {
        if (!res.complete) out.error ??= 'aborted';
        finish();
      });
    });
    req.on('error', (e) => {
      out.error = e.message;
      finish();
    });
  });
}

/** 200 with `name` as body after `delayMs`. */
function delayed(name: string, delayMs: number): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': name.length, 'x-backend': name });
        res.end(name);
      }, delayMs);
    });
  };
}

describe('chaos', () => {
  test('a backend killed under load: every request still gets a 200 (retries), and serving goes on', async () => {
    await chaos(() => setup(
      { a: delayed('a', 5), b: delayed('b', 5), c: delayed('c', 5) },
      (url) => `
  p:
    strategy: round-robin
    retries: { attempts: 2, on: [connect-failure, reset, 502, 503, 504] }
    outlierDetection: { consecutiveFailures: 2, baseEjectionTime: 10s, maxEjectionPercent: 50 }
    timeouts: { idle: 300ms }
    backends:
      - { url: ${url('a')}, name: a }
      - { url: ${url('b')}, name: b }
      - { url: ${url('c')}, name: c }`,
      '      - pool: p',
    ), async (env) => {
      const url = `${env.f.url()}/load`;
      const started = Date.now();
      const results: { sentAt: number; outcome: Outcome }[] = [];
      let killedAt = 0;
      const worker = async () => {
        while (Date.now() - started < 2000) {
          const sentAt = Date.now();
          const outcome = await tryGet(url);
          results.push({ sentAt, outcome });
        }
      };
      const killer = (async () => {
        await waitFor(() => results.length >= 40, 3000, 'load to build up');
        const b = env.backends.get('b')!;
        // Kill: stop accepting, and cut every open connection (in-flight ones too).
        b.server.close();
        b.server.closeAllConnections();
        killedAt = Date.now();
      })();
      await Promise.all([...Array.from({ length: 8 }, worker), killer]);

      const bad = results.filter((r) => r.outcome.status !== 200 || !r.outcome.complete);
      expect(bad.map((r) => r.outcome)).toEqual([]);
      expect(killedAt).toBeGreaterThan(0);
      // Requests sent after the kill can only have been answered by the survivors.
      const after = results.filter((r) => r.sentAt > killedAt);
      expect(after.length).toBeGreaterThan(20);
      expect(new Set(after.map((r) => r.outcome.body))).toEqual(new Set(['a', 'c']));
      const killed = env.f.fulcrum.pools.get('p')!.get('b')!;
      expect(killed.failures).toBeGreaterThan(0);
      // And afterwards, sequentially: still all 200.
      for (let i = 0; i < 10; i++) expect((await tryGet(url)).status).toBe(200);
    });
  });

  test('a backend that resets mid-response: that client sees a broken response, the rest are served', async () => {
    await chaos(() => setup(
      {
        bad: (req, res) => {
          req.resume();
          req.on('end', () => {
            res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000, 'x-backend': 'bad' });
            res.write('x'.repeat(500), () => setTimeout(() => req.socket.destroy(), 10));
          });
        },
        good: delayed('good', 0),
        other: delayed('other', 0),
      },
      (url) => `
  p:
    strategy: round-robin
    retries: { attempts: 2, on: [connect-failure, reset, 502] }
    timeouts: { idle: 300ms }
    backends:
      - { url: ${url('bad')}, name: bad }
      - { url: ${url('good')}, name: good }
  healthy:
    timeouts: { idle: 300ms }
    backends:
      - { url: ${url('other')}, name: other }`,
      '      - match: { pathPrefix: /healthy }\n        pool: healthy\n      - pool: p',
    ), async (env) => {
      const mixed = Promise.all(Array.from({ length: 6 }, () => tryGet(`${env.f.url()}/mixed`)));
      const healthy = Promise.all(Array.from({ length: 20 }, () => tryGet(`${env.f.url()}/healthy`)));
      const [m, h] = await Promise.all([mixed, healthy]);

      expect(h.map((o) => [o.status, o.body, o.complete])).toEqual(h.map(() => [200, 'other', true]));
      const broken = m.filter((o) => !o.complete);
      const whole = m.filter((o) => o.complete);
      // Round-robin over two: half each. A broken one got headers and part of the body, never all of it.
      expect(broken.length).toBe(3);
      for (const o of broken) {
        expect(o.status).toBe(200);
        expect(o.body.length).toBeLessThan(1000);
        expect(o.error).toBeDefined();
      }
      expect(whole.map((o) => [o.status, o.body])).toEqual(whole.map(() => [200, 'good']));
      const pool = env.f.fulcrum.pools.get('p')!;
      await waitFor(() => pool.get('bad')!.inFlight === 0, 3000, 'bad inFlight 0');
      expect(pool.get('bad')!.failures).toBe(3);
      expect(pool.get('good')!.failures).toBe(0);
      expect((await tryGet(`${env.f.url()}/healthy`)).status).toBe(200);
    });
  });

  test('a backend that stalls: 504 after timeouts.response, others keep being served meanwhile', async () => {
    await chaos(() => setup(
      { stall: (req) => { req.resume(); }, ok: delayed('ok', 0) },
      (url) => `
  stall:
    retries: { attempts: 0 }
    timeouts: { response: 300ms, idle: 300ms }
    backends:
      - { url: ${url('stall')}, name: stall }
  ok:
    timeouts: { idle: 300ms }
    backends:
      - { url: ${url('ok')}, name: ok }`,
      '      - match: { pathPrefix: /stall }\n        pool: stall\n      - pool: ok',
    ), async (env) => {
      const t0 = Date.now();
      let stallsPending = true;
      const stalled = Promise.all(Array.from({ length: 5 }, () => tryGet(`${env.f.url()}/stall`).then((o) => ({ o, ms: Date.now() - t0 }))))
        .finally(() => { stallsPending = false; });
      // While those hang, the other pool keeps answering.
      const fast: Outcome[] = [];
      while (stallsPending) fast.push(await tryGet(`${env.f.url()}/ok`));
      const s = await stalled;

      expect(fast.length).toBeGreaterThanOrEqual(5);
      expect(fast.map((o) => [o.status, o.body])).toEqual(fast.map(() => [200, 'ok']));
      for (const { o, ms } of s) {
        expect(o.status).toBe(504);
        expect(o.body).toMatch(/^gateway timeout[^\n]*\n$/);
        expect(ms).toBeGreaterThanOrEqual(280);
        expect(ms).toBeLessThan(2000);
      }
      expect(env.f.fulcrum.pools.get('stall')!.get('stall')!.inFlight).toBe(0);
      expect((await tryGet(`${env.f.url()}/ok`)).status).toBe(200);
    });
  });

  test('50 slow clients with half a header are cut off after headersTimeout while others are served', async () => {
    await chaos(() => setup(
      { b: delayed('b', 0) },
      (url) => `
  p:
    timeouts: { idle: 300ms }
    backends:
      - { url: ${url('b')}, name: b }`,
      '      - pool: p',
      '    limits: { headersTimeout: 1s }',
    ), async (env) => {
      const port = Number(new URL(env.f.url()).port);
      const t0 = Date.now();
      let slowDone = false;
      const slow = Promise.all(Array.from({ length: 50 }, () =>
        rawExchange(port, ['GET /slow HTTP/1.1\r\nHost: fulcrum.test\r\nX-Slow: '], { timeoutMs: 5000 }).then((r) => ({ r, ms: Date.now() - t0 })),
      )).finally(() => { slowDone = true; });
      // Normal traffic during the whole time the slow ones hang.
      const normal: Outcome[] = [];
      while (!slowDone) normal.push(await tryGet(`${env.f.url()}/normal`));
      const results = await slow;

      const describe = (x: { r: RawReply; ms: number }) => ({ statuses: x.r.responses.map((y) => y.status), closed: x.r.closedByPeer, timedOut: x.r.timedOut, ms: x.ms });
      for (const x of results) {
        const d = describe(x);
        expect({ ...d, ok: d.closed && !d.timedOut && (d.statuses.length === 0 || (d.statuses.length === 1 && d.statuses[0] === 408)) })
          .toEqual({ ...d, ok: true });
        expect(x.ms).toBeGreaterThanOrEqual(900);
        expect(x.ms).toBeLessThan(4500);
      }
      expect(normal.length).toBeGreaterThan(10);
      expect(normal.map((o) => o.status)).toEqual(normal.map(() => 200));
      const seen = env.backends.get('b')!.seen.map((r) => r.url);
      expect(seen.filter((u) => u === '/slow')).toEqual([]);
    });
  });

  test('a client that aborts mid-upload: the upstream request is aborted, the backend is not blamed, the next request works', async () => {
    const upload = { bytes: 0, ended: false, aborted: false, closed: false };
    await chaos(() => setup(
      {
        up: (req, res) => {
          if (req.url !== '/upload') {
            delayed('up', 0)(req, res);
            return;
          }
          req.on('data', (c: Buffer) => { upload.bytes += c.length; });
          req.on('end', () => {
            upload.ended = true;
            res.end('got it');
          });
          req.on('aborted', () => { upload.aborted = true; });
          req.on('error', () => { upload.aborted = true; });
          req.on('close', () => { upload.closed = true; });
        },
      },
      (url) => `
  p:
    retries: { attempts: 2, on: [connect-failure, reset, 502, 503, 504] }
    outlierDetection: { consecutiveFailures: 1, baseEjectionTime: 30s, maxEjectionPercent: 100 }
    timeouts: { idle: 300ms }
    backends:
      - { url: ${url('up')}, name: up }`,
      '      - pool: p',
    ), async (env) => {
      const port = Number(new URL(env.f.url()).port);
      const client = net.connect(port, '127.0.0.1');
      client.on('error', () => undefined);
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      client.write('POST /upload HTTP/1.1\r\nHost: fulcrum.test\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n');
      client.write(Buffer.alloc(100 * 1024, 0x61));
      await waitFor(() => upload.bytes >= 64 * 1024, 3000, 'the backend to receive part of the upload');
      client.destroy();

      await waitFor(() => upload.closed, 3000, 'the upstream request to close');
      expect(upload).toEqual({ bytes: expect.any(Number), ended: false, aborted: true, closed: true });
      expect(upload.bytes).toBeLessThan(10_000_000);
      const up = env.f.fulcrum.pools.get('p')!.get('up')!;
      await waitFor(() => up.inFlight === 0, 3000, 'inFlight 0');
      expect({ failures: up.failures, state: up.state, inFlight: up.inFlight }).toEqual({ failures: 0, state: 'up', inFlight: 0 });
      await waitFor(() => env.f.records.some((r) => r.url === '/upload'), 3000, 'the request record');
      expect(env.f.records.find((r) => r.url === '/upload')!.status).toBe(499);
      const next = await request(`${env.f.url()}/after`);
      expect([next.status, next.body]).toEqual([200, 'up']);
    });
  });
});
