/**
 * Issue 20, F3 and the TLS items of SPEC section 13: TLS connections that
 * never finish a handshake are closed after headersTimeout and at once on
 * drain; tls.minVersion and tls.ciphers hold at start and at reload.
 */
import net from 'node:net';
import tls from 'node:tls';
import { parseConfig } from '../../src/config';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { selfSigned } from '../helpers/tls';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();
const cert = selfSigned();

function yamlFor(backendUrl: string, listener: string, top = ''): string {
  return `${top}
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
${listener}
    routes: [ { pool: p } ]
pools: { p: { backends: [ { url: ${backendUrl}, name: b } ] } }
`;
}

async function fulcrum(listener: string, top = ''): Promise<RunningFulcrum & { yaml: (listener: string) => string }> {
  const b = await backend('b');
  const f = await startFulcrum(yamlFor(b.url, listener, top));
  cleanups.push(() => f.stop());
  return Object.assign(f, { yaml: (l: string) => yamlFor(b.url, l, top) });
}

function tlsBlock(extra = ''): string {
  return `    tls: { cert: ${cert.cert}, key: ${cert.key}${extra} }`;
}

function portOf(f: RunningFulcrum): number {
  return Number(new URL(f.url()).port);
}

/** `n` TCP connections that send nothing; resolves once all are connected. */
async function idleSockets(port: number, n: number): Promise<net.Socket[]> {
  const sockets = await Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  })));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
  });
  for (const s of sockets) s.on('error', () => undefined);
  return sockets;
}

function closed(s: net.Socket): Promise<void> {
  return s.destroyed || s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve()));
}

/** A TLS handshake with `options`: the protocol and cipher it agreed on, or the error it failed with. */
function handshake(port: number, options: tls.ConnectionOptions): Promise<{ ok: true; protocol: string | null; cipher: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.certPem, ...options }, () => {
      resolve({ ok: true, protocol: s.getProtocol(), cipher: s.getCipher().name });
      s.end();
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: String(err.code ?? err.message) }));
  });
}

/** One HTTPS GET over a fresh TLS connection; resolves with the status line. */
function httpsGet(port: number, socket?: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = socket ?? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.certPem, ALPNProtocols: ['http/1.1'] });
    let data = '';
    const onData = (c: Buffer) => {
      data += c.toString('latin1');
      if (data.includes('\r\n\r\n')) {
        s.off('data', onData);
        resolve(data.slice(0, data.indexOf('\r\n')));
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
}

describe.each([
  ['https', ''],
  ['http2 with HTTP/1.1 fallback', '    http2: true\n'],
])('a TLS listener (%s)', (_kind, http2) => {
  test('closes 500 connections that never start a handshake within headersTimeout, and keeps serving', async () => {
    const f = await fulcrum(`${tlsBlock()}\n${http2}    limits: { headersTimeout: 1s }`);
    const port = portOf(f);
    // A connection whose handshake is done is not the handshake timeout's business.
    const done = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.certPem, ALPNProtocols: ['http/1.1'] });
    cleanups.push(async () => {
      done.destroy();
    });
    await new Promise<void>((resolve, reject) => done.once('secureConnect', resolve).once('error', reject));
    // One answer first: from then on it is an idle keep-alive connection
    // (keepAliveTimeout), not one still owing its first headers, which
    // headersTimeout would rightly answer with 408 on a slow run.
    expect(await httpsGet(port, done)).toBe('HTTP/1.1 200 OK');
    const started = Date.now();
    const idle = await idleSockets(port, 500);
    await Promise.all(idle.map(closed));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(4000); // headersTimeout (1s) plus slack for 500 sockets on a shared machine
    await waitFor(() => f.fulcrum.listeners[0]!.handshakes!.size === 0, 2000, 'the server side of each to close');
    // The handshaken connection opened before them is still open and answers.
    expect(done.destroyed).toBe(false);
    expect(await httpsGet(port, done)).toBe('HTTP/1.1 200 OK');
    expect(await httpsGet(port)).toBe('HTTP/1.1 200 OK');
  }, 20_000);

  test('a drain closes idle and handshaking connections at once instead of waiting out shutdownTimeout', async () => {
    const f = await fulcrum(`${tlsBlock()}\n${http2}    limits: { headersTimeout: 20s }`, 'shutdownTimeout: 20s');
    const port = portOf(f);
    const idle = await idleSockets(port, 20);
    // An idle keep-alive connection after one answer, and one that stopped halfway through its handshake.
    const kept = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: cert.certPem, ALPNProtocols: ['http/1.1'] });
    kept.on('error', () => undefined);
    expect(await httpsGet(port, kept)).toBe('HTTP/1.1 200 OK');
    const half = net.connect(port, '127.0.0.1');
    half.on('error', () => undefined);
    await new Promise((resolve) => half.once('connect', resolve));
    half.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40])); // a ClientHello record header, and no more
    await waitFor(() => f.fulcrum.listeners[0]!.handshakes!.size === 21, 5000, 'the connections to be accepted');
    const started = Date.now();
    await f.fulcrum.stop(); // the config's shutdownTimeout: 20s
    expect(Date.now() - started).toBeLessThan(3000);
    await Promise.all([...idle, kept, half].map(closed));
  }, 30_000);
});

test('a drain closes a plain listener\'s connections that sent nothing yet at once', async () => {
  const f = await fulcrum('    limits: { headersTimeout: 20s }', 'shutdownTimeout: 20s');
  const idle = await idleSockets(portOf(f), 20);
  const started = Date.now();
  await f.fulcrum.stop();
  expect(Date.now() - started).toBeLessThan(3000);
  await Promise.all(idle.map(closed));
}, 30_000);

test('a reload applies a new headersTimeout to handshakes', async () => {
  const f = await fulcrum(`${tlsBlock()}\n    limits: { headersTimeout: 30s }`);
  const result = await f.fulcrum.apply(parseConfig(f.yaml(`${tlsBlock()}\n    limits: { headersTimeout: 1s }`), 'test.yaml', {}));
  expect(result.ok).toBe(true);
  const started = Date.now();
  const [s] = await idleSockets(portOf(f), 1);
  await closed(s!);
  expect(Date.now() - started).toBeLessThan(4000);
}, 20_000);

describe('tls.minVersion and tls.ciphers', () => {
  // Ciphers a TLS 1.2 client may offer that the intermediate profile leaves out: CBC, static RSA.
  const WEAK = 'AES128-SHA:AES256-SHA:AES128-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384';

  test('by default: TLS 1.2 and 1.3 with forward-secret AEAD ciphers; TLS 1.1 and CBC or static-RSA offers are refused', async () => {
    const f = await fulcrum(tlsBlock());
    const port = portOf(f);
    expect(await handshake(port, {})).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toMatchObject({ ok: true, protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' });
    expect(await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' })).toMatchObject({ ok: true, cipher: 'ECDHE-RSA-CHACHA20-POLY1305' });
    expect(await handshake(port, { maxVersion: 'TLSv1.2', ciphers: WEAK })).toMatchObject({ ok: false });
    expect(await handshake(port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })).toMatchObject({ ok: false });
    expect(await httpsGet(port)).toBe('HTTP/1.1 200 OK');
  });

  test('minVersion TLSv1.3 refuses a client that stops at TLS 1.2', async () => {
    const f = await fulcrum(tlsBlock(', minVersion: TLSv1.3'));
    const port = portOf(f);
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toMatchObject({ ok: false });
    expect(await handshake(port, {})).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
  });

  test('a cipher list of its own is what a TLS 1.2 client gets', async () => {
    const f = await fulcrum(tlsBlock(', ciphers: "ECDHE-RSA-AES256-GCM-SHA384"'));
    const port = portOf(f);
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toMatchObject({ ok: true, cipher: 'ECDHE-RSA-AES256-GCM-SHA384' });
    expect(await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).toMatchObject({ ok: false });
  });

  test('a reload applies minVersion and ciphers to new connections', async () => {
    const f = await fulcrum(tlsBlock());
    const port = portOf(f);
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toMatchObject({ ok: true });
    const result = await f.fulcrum.apply(parseConfig(f.yaml(tlsBlock(', minVersion: TLSv1.3')), 'test.yaml', {}));
    expect(result).toMatchObject({ ok: true, changes: ['listener public: tls changed'] });
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toMatchObject({ ok: false });
    await f.fulcrum.apply(parseConfig(f.yaml(tlsBlock(', ciphers: "ECDHE-RSA-AES256-GCM-SHA384"')), 'test.yaml', {}));
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).toMatchObject({ ok: true, cipher: 'ECDHE-RSA-AES256-GCM-SHA384' });
  });
});
