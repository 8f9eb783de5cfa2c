/**
 * Regressions of issue 20 (Hardening II), one test per finding of the outside
 * attack run, against a real Fulcrum process (a crash must show as a dead
 * process, not as a failed jest worker) with a plain listener, a TLS listener
 * (node:https) and a TLS listener with http2 (HTTP/1.1 clients over ALPN
 * http/1.1 are served by node:http's code there). After every attack the
 * same process must still answer a normal request on a fresh connection, and
 * `fulcrum_internal_errors_total` must be 0 at the end.
 */
import http, { type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import { useTeardown } from '../helpers/teardown';
import { addresses, startCli, tempDir, waitFor, writeFile, type CliProcess } from '../cli/harness';
import { request } from '../helpers/http';
import { metricsOf } from '../helpers/admin';
import { sum } from '../helpers/prom';
import { selfSigned } from '../helpers/tls';
import { LISTENERS, expectNoInternalErrors, sendRaw, type ListenerName, type RawAnswer } from '../helpers/listeners';

const { backend } = useTeardown({ blackBox: true });

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

interface Setup {
  readonly proc: CliProcess;
  readonly seen: Seen[];
  readonly adminUrl: string;
  /** Listener name → port. */
  readonly ports: Record<'public' | 'secure' | 'h2', number>;
}


async function setup(extraPublic = ''): Promise<Setup> {
  const seen: Seen[] = [];
  const b = await backend('b1', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('latin1') });
      res.end(`${req.method} ${req.url}`);
    });
  });
  const cert = selfSigned();
  const dir = tempDir();
  const file = writeFile(dir, 'fulcrum.yaml', [
    'shutdownTimeout: 2s',
    'log: { level: info, access: true }',
    'admin: { listen: 127.0.0.1:0 }',
    'listeners:',
    '  public:',
    '    listen: 127.0.0.1:0',
    '    limits: { maxBodySize: 1kb }',
    '    routes: [ { match: { pathPrefix: /nowhere/ }, pool: empty }, { match: { pathPrefix: / }, pool: web } ]',
    extraPublic,
    '  secure:',
    '    listen: 127.0.0.1:0',
    `    tls: { cert: ${cert.cert}, key: ${cert.key} }`,
    '    limits: { maxBodySize: 1kb }',
    '    routes: [ { match: { pathPrefix: /nowhere/ }, pool: empty }, { match: { pathPrefix: / }, pool: web } ]',
    '  h2:',
    '    listen: 127.0.0.1:0',
    `    tls: { cert: ${cert.cert}, key: ${cert.key} }`,
    '    http2: true',
    '    limits: { maxBodySize: 1kb }',
    '    routes: [ { match: { pathPrefix: /nowhere/ }, pool: empty }, { match: { pathPrefix: / }, pool: web } ]',
    'pools:',
    '  web:',
    `    backends: [ { url: ${b.url}, name: b1 } ]`,
    '  empty:',
    // A backend nobody listens on, ejected at once: the pool has nothing available (503).
    '    backends: [ { url: "http://127.0.0.1:1", name: gone } ]',
    '    healthCheck: { path: /, interval: 100ms, timeout: 100ms, fall: 1 }',
    '',
  ].filter((l) => l !== '').join('\n'));
  const proc = startCli(['--config', file]);
  const { adminUrl } = await addresses(proc);
  const ports = {} as Record<ListenerName, number>;
  for (const name of LISTENERS) {
    const l = await proc.waitForLog((x) => x.msg === 'listening' && x.listener === name, 10_000, name);
    ports[name] = Number(String(l.address).split(':').pop());
  }
  await proc.waitForLog((x) => x.msg === 'backend state changed' && x.backend === 'gone' && x.to === 'down', 10_000, 'the empty pool down');
  return { proc, seen, adminUrl, ports };
}

/** Raw bytes to one of this setup's listeners (see sendRaw). */
function send(s: Setup, listener: ListenerName, chunks: string | string[], options: { hangUp?: boolean; timeoutMs?: number } = {}): Promise<RawAnswer> {
  return sendRaw(s.ports[listener], listener, chunks, options);
}

/** The process is alive and each listener serves a normal request on a fresh connection. */
async function stillServing(s: Setup): Promise<void> {
  expect(s.proc.exited()).toBe(false);
  for (const listener of LISTENERS) {
    const r = await send(s, listener, ['GET /alive HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n']);
    expect(r.responses.map((x) => x.status)).toEqual([200]);
  }
}

function noInternalErrors(s: Setup): Promise<void> {
  return expectNoInternalErrors(s.adminUrl, s.proc.logs);
}

describe('issue 20, F1: an HTTP/1.x connection\'s "HTTP/2.0" request line', () => {
  test.each(LISTENERS)('on %s gets 505 and a closed connection; the process lives', async (listener) => {
    const s = await setup();
    for (const version of ['HTTP/2.0', 'HTTP/0.9']) {
      const r = await send(s, listener, [`GET / ${version}\r\nHost: x\r\n\r\n`]);
      expect(r.responses.map((x) => x.status)).toEqual([505]);
      expect(r.responses[0].body.toString()).toBe('http version not supported\n');
      expect(r.closed).toBe(true);
      // With a body that claims HTTP/2 framing, and pipelined behind a good request.
      const p = await send(s, listener, ['GET /first HTTP/1.1\r\nHost: x\r\n\r\n', `POST / ${version}\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc`]);
      expect(p.responses.map((x) => x.status)).toEqual([200, 505]);
    }
    expect(s.seen.map((x) => x.url)).toEqual(['/first', '/first']);
    await stillServing(s);
    await waitFor(() => s.proc.logs.filter((l) => l.status === 505 && l.msg === 'request').length === 4, 5000, 'four 505 access-log lines');
    await noInternalErrors(s);
  });
});

describe('issue 20, F2: a method is never changed', () => {
  // Every method node's parser knows, but CONNECT (a forward proxy's; the connection is closed).
  const methods = http.METHODS.filter((m) => m !== 'CONNECT');

  test.each(LISTENERS)('every method llhttp parses reaches the backend as sent, body and all (%s)', async (listener) => {
    const s = await setup();
    for (const m of methods) {
      const r = await send(s, listener, [`${m} /m/${m} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody`]);
      expect([m, r.responses.map((x) => x.status)]).toEqual([m, [200]]);
      if (m !== 'HEAD') expect(r.responses[0].body.toString()).toBe(`${m} /m/${m}`);
    }
    expect(s.seen.map((x) => x.method)).toEqual(methods);
    expect(s.seen.map((x) => x.body)).toEqual(methods.map(() => 'body'));
    expect(s.seen.find((x) => x.method === 'QUERY')?.url).toBe('/m/QUERY');
    await noInternalErrors(s);
  });

  test('a method the parser knows but HTTP/1.1 does not name (RTSP\'s DESCRIBE) gets 501, never a GET', async () => {
    const s = await setup();
    for (const listener of LISTENERS) {
      const r = await send(s, listener, ['DESCRIBE /x RTSP/1.0\r\nHost: x\r\nCSeq: 1\r\n\r\n']);
      expect([listener, r.responses.map((x) => x.status)]).toEqual([listener, [501]]);
      expect(r.closed).toBe(true);
    }
    expect(s.seen).toEqual([]);
    await stillServing(s);
    await noInternalErrors(s);
  });
});

describe('issue 20, F4: an answer given while the body is unread, then a hang-up', () => {
  // Each is answered before the body is read; the client then closes with the body half sent.
  const cases: [string, string][] = [
    ['400 (a second Host)', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nHost: a\r\n\r\nhi'],
    ['413 (Content-Length over maxBodySize)', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\nhi'],
    ['413 (a chunked body over maxBodySize)', `POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'x'.repeat(2048)}\r\n1`],
    ['503 (no backend available)', 'POST /nowhere/x HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nhi'],
    ['400 (no Host)', 'POST /x HTTP/1.1\r\nContent-Length: 50\r\n\r\nhi'],
    ['505 (HTTP/2.0)', 'POST /x HTTP/2.0\r\nHost: a\r\nContent-Length: 50\r\n\r\nhi'],
    ['400 (bad transfer coding)', 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhi'],
  ];

  test.each(LISTENERS)('none of them ends the process (%s)', async (listener) => {
    const s = await setup();
    for (const [what, bytes] of cases) {
      const r = await send(s, listener, [bytes], { hangUp: true });
      expect([what, r.responses.length]).toEqual([what, 1]);
      expect(s.proc.exited()).toBe(false);
    }
    await stillServing(s);
    await noInternalErrors(s);
  });
});

describe('issue 20, smaller findings', () => {
  test('an HTTP/1.1 request without Host gets a one-line 400 and an access-log line', async () => {
    const s = await setup();
    for (const listener of LISTENERS) {
      const r = await send(s, listener, ['GET /nohost HTTP/1.1\r\n\r\n']);
      expect(r.responses.map((x) => x.status)).toEqual([400]);
      expect(r.responses[0].body.toString()).toBe('bad request: no Host header\n');
      expect(r.closed).toBe(true);
    }
    // HTTP/1.0 may omit Host (RFC 9112 §3.2 is about 1.1).
    const ok = await send(s, 'public', ['GET /old HTTP/1.0\r\n\r\n']);
    expect(ok.responses.map((x) => x.status)).toEqual([200]);
    await s.proc.waitForLog((l) => l.msg === 'request' && l.url === '/nohost' && l.status === 400 && l.listener === 'h2', 5000, 'the h2 listener\'s 400 line');
    expect(s.proc.logs.filter((l) => l.msg === 'request' && l.url === '/nohost')).toHaveLength(3);
    expect(s.seen.map((x) => x.url)).toEqual(['/old']);
  });

  test('an X-Forwarded-For the client names in Connection does not reach the backend; ours does', async () => {
    const s = await setup();
    for (const listener of LISTENERS) {
      const r = await send(s, listener, [`GET /xff-${listener} HTTP/1.1\r\nHost: x\r\nConnection: x-forwarded-for, close\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`]);
      expect(r.responses.map((x) => x.status)).toEqual([200]);
    }
    expect(s.seen.map((x) => x.headers['x-forwarded-for'])).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
    const kept = await request(`http://127.0.0.1:${s.ports.public}/xff-kept`, { headers: { 'x-forwarded-for': '6.6.6.6' } });
    expect(kept.status).toBe(200);
    expect(s.seen.at(-1)?.headers['x-forwarded-for']).toBe('6.6.6.6, 127.0.0.1');
  });

  test('fulcrum_internal_errors_total is exported from the start', async () => {
    const s = await setup();
    const samples = await metricsOf(s.adminUrl);
    expect(samples.filter((x) => x.name === 'fulcrum_internal_errors_total')).toEqual([{ name: 'fulcrum_internal_errors_total', labels: {}, value: 0 }]);
  });
});

/**
 * What the wire fuzz (tests/fuzz/wire.fuzz.test.ts) found beyond F1-F4, one
 * test each, named after the finding, with the fuzz's minimised input.
 */
describe('issue 20, wire fuzz findings', () => {
  test.each(LISTENERS)('fuzz: a chunked body that breaks mid-way ends neither the process nor the connection\'s order (%s)', async (listener) => {
    const s = await setup();
    const r = await send(s, listener, ['POST /broken HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nZZ\r\n']);
    expect(r.responses.map((x) => x.status)).toEqual([400]);
    expect(r.closed).toBe(true);
    await stillServing(s);
    await noInternalErrors(s);
  });

  test.each(LISTENERS)('fuzz: a parse error behind pipelined requests answers them first, in order (%s)', async (listener) => {
    const s = await setup();
    const r = await send(s, listener, ['GET /p/a HTTP/1.1\r\nHost: a\r\n\r\nGET /p/b HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\n']);
    expect(r.responses.map((x) => [x.status, x.body.toString()])).toEqual([[200, 'GET /p/a'], [200, 'GET /p/b'], [400, 'bad request\n']]);
    expect(r.closed).toBe(true);
    await noInternalErrors(s);
  });

  test.each(LISTENERS)('fuzz: a broken chunked body behind a pipelined GET: the GET is answered, the broken one gets 400, no backend request is left open (%s)', async (listener) => {
    const s = await setup();
    const r = await send(s, listener, [`GET /q/a HTTP/1.1\r\nHost: a\r\n\r\nPOST /q/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000ea60\r\n${'b'.repeat(3000)}`]);
    expect(r.responses.map((x) => x.status)).toEqual([200, 400]);
    expect(r.closed).toBe(true);
    // The backend saw the GET, and nothing of the broken request is still open there.
    expect(s.seen.map((x) => x.url)).toEqual(['/q/a']);
    await stillServing(s);
    await noInternalErrors(s);
  });

  test.each(LISTENERS)('fuzz: CONNECT, alone or pipelined, gets 501 after the answers before it (%s)', async (listener) => {
    const s = await setup();
    const alone = await send(s, listener, ['CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n']);
    expect(alone.responses.map((x) => x.status)).toEqual([501]);
    const piped = await send(s, listener, ['GET /c/a HTTP/1.1\r\nHost: a\r\n\r\nCONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nGET /c/never HTTP/1.1\r\nHost: a\r\n\r\n']);
    expect(piped.responses.map((x) => x.status)).toEqual([200, 501]);
    expect(piped.closed).toBe(true);
    expect(s.seen.map((x) => x.url)).toEqual(['/c/a']);
    await noInternalErrors(s);
  });

  test.each(LISTENERS)('fuzz: an absolute-form target reaches the backend as its path and query were sent, a bare "?" included (%s)', async (listener) => {
    const s = await setup();
    for (const target of ['http://localhost/abs/a?', 'http://localhost/abs/b?x=1&y', 'HTTP://localhost?z', 'https://localhost/abs/%2e%2e/c']) {
      const r = await send(s, listener, [`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`]);
      expect([target, r.responses.map((x) => x.status)]).toEqual([target, [200]]);
    }
    expect(s.seen.map((x) => x.url)).toEqual(['/abs/a?', '/abs/b?x=1&y', '/?z', '/abs/%2e%2e/c']);
  });

  test('campaign: an HTTP/2 :path with bytes HTTP/1.1 cannot carry ("/x/ÿ") gets 400, never reaches a backend, blames none', async () => {
    const s = await setup();
    const session = http2.connect(`https://127.0.0.1:${s.ports.h2}`, { rejectUnauthorized: false });
    try {
      for (const path of ['/h2/\u00ff', '/h2/caf\u00e9']) {
        const status = await new Promise<number>((resolve, reject) => {
          const st = session.request({ ':method': 'GET', ':path': path, ':scheme': 'https', ':authority': 'localhost' }, { endStream: true });
          st.on('response', (h) => resolve(Number(h[':status'])));
          st.on('error', reject);
          st.resume();
        });
        expect([path, status]).toEqual([path, 400]);
      }
    } finally {
      session.close();
    }
    expect(s.seen).toEqual([]);
    expect(sum(await metricsOf(s.adminUrl), 'fulcrum_backend_failures_total')).toBe(0);
  });

  test('campaign: a malformed %-escape in an admin API path is a 400, not a 500', async () => {
    const s = await setup();
    for (const path of ['/api/pools/web/backends/b1%', '/api/pools/%ZZ/backends/b1', '/api/pools/web/backends/b1%/drain']) {
      const r = await request(`${s.adminUrl}${path}`);
      expect([path, r.status, r.body]).toEqual([path, 400, JSON.stringify({ error: 'bad request: malformed percent-encoding in the path' })]);
    }
  });

  test('fuzz: an HTTP/2 method HTTP/1.1 cannot carry (":method: get") gets 501, never reaches a backend, blames none', async () => {
    const s = await setup();
    const session = http2.connect(`https://127.0.0.1:${s.ports.h2}`, { rejectUnauthorized: false });
    try {
      for (const method of ['get', 'FOO', 'CONNECT']) {
        const headers: http2.OutgoingHttpHeaders = method === 'CONNECT' ? { ':method': method, ':authority': 'example.test:443' } : { ':method': method, ':path': '/h2/m', ':scheme': 'https', ':authority': 'localhost' };
        const status = await new Promise<number>((resolve, reject) => {
          const st = session.request(headers, { endStream: method !== 'CONNECT' });
          st.on('response', (h) => resolve(Number(h[':status'])));
          st.on('error', reject);
          st.resume();
          if (method === 'CONNECT') st.end();
        });
        expect([method, status]).toEqual([method, 501]);
      }
    } finally {
      session.close();
    }
    expect(s.seen).toEqual([]);
    const failures = sum(await metricsOf(s.adminUrl), 'fulcrum_backend_failures_total');
    expect(failures).toBe(0);
    await noInternalErrors(s);
  });
});
