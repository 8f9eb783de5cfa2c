/**
 * SPEC 8.3 end to end: allow/deny from distinct loopback addresses,
 * basicAuth (users and an htpasswd file), and forwardAuth against a real
 * auth service (node:http) for every rule the spec gives it.
 */
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { BasicAuth } from '../../src/access/basic-auth';
import { startFulcrum, waitFor, type RunningFulcrum } from '../helpers/fulcrum';
import { request } from '../helpers/http';
import { parseProm, sum } from '../helpers/prom';
import { rawExchange } from '../helpers/raw';
import { useTeardown } from '../helpers/teardown';

const { cleanups, backend } = useTeardown();

// Cost 4: the lowest bcrypt allows, so the tests do not wait on it.
const ALICE = bcrypt.hashSync('wonderland', 4);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A backend that answers with the headers it got, as JSON. */
async function echo() {
  return backend('b', (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c; });
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers: req.headers, body })));
  });
}

async function fulcrum(route: string, pool: string): Promise<RunningFulcrum> {
  const f = await startFulcrum(`
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
    routes:
      - ${route}
pools: { p: { backends: [ { url: ${pool}, name: b } ] } }
`);
  cleanups.push(() => f.stop());
  return f;
}

async function refusals(f: RunningFulcrum, code: string): Promise<number> {
  const text = await (await fetch(`${f.adminUrl}/metrics`)).text();
  return sum(parseProm(text), 'fulcrum_requests_total', { backend: '', code });
}

describe('allow and deny', () => {
  test('a client outside allow or inside deny gets 403 forbidden; deny wins; counted with backend=""', async () => {
    const b = await echo();
    const f = await fulcrum('{ pool: p, access: { allow: [127.0.0.2, 127.0.0.3], deny: [127.0.0.3/32] } }', b.url);
    const from = (local: string) => request(`${f.url()}/`, { localAddress: local });
    expect((await from('127.0.0.2')).status).toBe(200);
    const denied = await from('127.0.0.3');
    expect([denied.status, denied.body]).toEqual([403, 'forbidden\n']);
    expect((await from('127.0.0.1')).status).toBe(403);
    expect(b.seen.length).toBe(1);
    expect(await refusals(f, '403')).toBe(2);
    expect(f.records.filter((r) => r.status === 403).map((r) => r.remoteAddress).sort()).toEqual(['127.0.0.1', '127.0.0.3']);
  });

  test('a WebSocket upgrade is held to the route\'s access too', async () => {
    const b = await echo();
    const f = await fulcrum('{ pool: p, access: { allow: [127.0.0.2] } }', b.url);
    const { port } = new URL(f.url());
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect({ port: Number(port), host: '127.0.0.1', localAddress: '127.0.0.3' });
      let out = '';
      s.on('data', (c) => { out += c; });
      s.on('close', () => resolve(out));
      s.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    expect(answer).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(answer).toMatch(/\r\n\r\nforbidden\n$/);
    expect(b.seen.length).toBe(0);
  });
});

describe('basicAuth', () => {
  test('no or wrong credentials: 401 with WWW-Authenticate; right ones pass and Authorization is not forwarded', async () => {
    const b = await echo();
    const y = `$2y$${ALICE.slice(4)}`; // as htpasswd -B writes it
    const f = await fulcrum(`{ pool: p, access: { basicAuth: { realm: ops, users: { alice: "${ALICE}", bob: "${y}" } } } }`, b.url);
    const none = await request(`${f.url()}/`);
    expect([none.status, none.headers['www-authenticate'], none.body]).toEqual([401, 'Basic realm="ops"', 'unauthorized\n']);
    for (const wrong of [basic('alice', 'nope'), basic('carol', 'wonderland'), 'Basic !!!', 'Bearer x', basic('alice', 'wonderland').toLowerCase()]) {
      const r = await request(`${f.url()}/`, { headers: { authorization: wrong } });
      expect([wrong, r.status, r.headers['www-authenticate']]).toEqual([wrong, 401, 'Basic realm="ops"']);
    }
    for (const user of ['alice', 'bob']) {
      for (let i = 0; i < 2; i++) { // the second time from the cache
        const ok = await request(`${f.url()}/`, { headers: { authorization: basic(user, 'wonderland'), 'x-other': 'kept' } });
        expect(ok.status).toBe(200);
        const seen = JSON.parse(ok.body).headers;
        expect(seen.authorization).toBeUndefined();
        expect(seen['x-other']).toBe('kept');
      }
    }
    expect(b.seen.length).toBe(4);
    expect(await refusals(f, '401')).toBe(6);
  });

  test('a refused request with a body leaves its connection usable: the next request on it is read as a request', async () => {
    const b = await echo();
    const f = await fulcrum(`{ pool: p, access: { basicAuth: { realm: ops, users: { alice: "${ALICE}" } } } }`, b.url);
    const body = 'x'.repeat(10_000);
    const reply = await rawExchange(Number(new URL(f.url()).port), [
      `POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      `GET /next HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic('alice', 'wonderland')}\r\n\r\n`,
    ], { done: (r) => r.length >= 2, timeoutMs: 5000 });
    expect(reply.responses.map((r) => r.status)).toEqual([401, 200]);
    expect(b.seen.map((r) => r.url)).toEqual(['/next']);
  });

  test('usersFile: an htpasswd file of bcrypt lines', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-htpasswd-'));
    cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'htpasswd');
    fs.writeFileSync(file, `# staging\nalice:$2y$${ALICE.slice(4)}\n\n`);
    const b = await echo();
    const f = await fulcrum(`{ pool: p, access: { basicAuth: { realm: staging, usersFile: "${file}" } } }`, b.url);
    expect((await request(`${f.url()}/`, { headers: { authorization: basic('alice', 'wonderland') } })).status).toBe(200);
    const wrong = await request(`${f.url()}/`, { headers: { authorization: basic('alice', 'x') } });
    expect([wrong.status, wrong.headers['www-authenticate']]).toEqual([401, 'Basic realm="staging"']);
  });

  test('without basicAuth the client\'s Authorization reaches the backend', async () => {
    const b = await echo();
    const f = await fulcrum('{ pool: p, access: { allow: [127.0.0.0/8] } }', b.url);
    const r = await request(`${f.url()}/`, { headers: { authorization: 'Bearer for-the-backend' } });
    expect(JSON.parse(r.body).headers.authorization).toBe('Bearer for-the-backend');
  });

  test('the cache: a verified credential costs no bcrypt run the second time, a wrong one is never good, memory is bounded', async () => {
    const auth = new BasicAuth('r', { alice: ALICE }, 4);
    const first = auth.verify(basic('alice', 'wonderland'));
    expect(first).toBeInstanceOf(Promise);
    // Concurrent requests with the same credential share the run.
    expect(auth.verify(basic('alice', 'wonderland'))).toBe(first);
    expect(await first).toBe(true);
    expect(auth.verify(basic('alice', 'wonderland'))).toBe(true); // synchronous: from the cache
    expect(await auth.verify(basic('alice', 'wrong'))).toBe(false);
    expect(auth.verify(basic('alice', 'wrong'))).toBe(false);
    expect(auth.cached).toEqual({ good: 1, bad: 1 });
    for (let i = 0; i < 10; i++) expect(await auth.verify(basic('alice', `wrong-${i}`))).toBe(false);
    expect(auth.cached).toEqual({ good: 1, bad: 4 }); // bounded; the good one is not pushed out by wrong ones
    expect(auth.verify(basic('alice', 'wonderland'))).toBe(true);
  });
});

/**
 * A real auth service: decides by the client's Authorization, as an SSO
 * gateway would. Every request it got is kept.
 */
async function authService() {
  const seen: IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    req.resume();
    const auth = req.headers.authorization;
    if (auth === 'Bearer good') res.writeHead(204, { 'x-user-id': 'alice', 'x-user-roles': 'admin', 'x-other': 'not copied' }).end();
    else if (auth === 'Bearer norole') res.writeHead(200, { 'x-user-id': 'bob' }).end('ok');
    else if (auth === 'Bearer login') res.writeHead(302, { location: 'https://sso.example.com/login?rd=%2F', 'set-cookie': 'state=1; Path=/' }).end('to the login page');
    else if (auth === 'Bearer slow') setTimeout(() => res.writeHead(200).end(), 5000).unref();
    else res.writeHead(401, { 'www-authenticate': 'Bearer realm="sso"', 'content-type': 'text/plain' }).end('who are you?');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { seen, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify?from=fulcrum` };
}

describe('forwardAuth', () => {
  const forwardAuth = (url: string, extra = '') => `{ pool: p, access: { forwardAuth: { url: "${url}", timeout: 300ms, responseHeaders: [x-user-id, X-User-Roles]${extra} } } }`;

  test('a 2xx lets the request through with responseHeaders copied; the client\'s own copies are removed first', async () => {
    const auth = await authService();
    const b = await echo();
    const f = await fulcrum(forwardAuth(auth.url), b.url);
    const r = await request(`${f.url()}/orders?id=7`, {
      method: 'POST',
      headers: { authorization: 'Bearer good', 'x-user-id': 'mallory', 'x-user-roles': 'root', 'content-type': 'text/plain' },
      body: 'the order',
    });
    expect(r.status).toBe(200);
    const got = JSON.parse(r.body);
    expect([got.headers['x-user-id'], got.headers['x-user-roles'], got.headers['x-other'], got.body]).toEqual(['alice', 'admin', undefined, 'the order']);
    // A forged header the auth service does not vouch for is removed all the same.
    const bob = JSON.parse((await request(`${f.url()}/`, { headers: { authorization: 'Bearer norole', 'x-user-roles': 'root' } })).body);
    expect([bob.headers['x-user-id'], bob.headers['x-user-roles']]).toEqual(['bob', undefined]);
  });

  test('the auth service gets a GET with every header of the client (by default) and X-Forwarded-*, no body', async () => {
    const auth = await authService();
    const b = await echo();
    const f = await fulcrum(forwardAuth(auth.url), b.url);
    await request(`${f.url()}/orders?id=7`, {
      method: 'POST', localAddress: '127.0.0.2',
      headers: { authorization: 'Bearer good', cookie: 'sid=1', 'x-custom': 'yes', 'x-forwarded-for': '198.51.100.7', 'x-forwarded-uri': '/forged', host: 'shop.example.com' },
      body: 'the order',
    });
    const asked = auth.seen[0]!;
    expect([asked.method, asked.url]).toEqual(['GET', '/verify?from=fulcrum']);
    expect(asked.headers).toMatchObject({
      authorization: 'Bearer good', cookie: 'sid=1', 'x-custom': 'yes',
      'x-forwarded-method': 'POST', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'shop.example.com',
      'x-forwarded-uri': '/orders?id=7', 'x-forwarded-for': '198.51.100.7, 127.0.0.2',
    });
    expect(asked.headers['content-length']).toBeUndefined();
    expect(asked.headers['transfer-encoding']).toBeUndefined();
    expect(asked.headers.host).not.toBe('shop.example.com');
  });

  test('requestHeaders: only the listed headers (plus X-Forwarded-*) go to the auth service', async () => {
    const auth = await authService();
    const b = await echo();
    const f = await fulcrum(forwardAuth(auth.url, ', requestHeaders: [Authorization]'), b.url);
    expect((await request(`${f.url()}/`, { headers: { authorization: 'Bearer good', cookie: 'sid=1', 'x-custom': 'yes' } })).status).toBe(200);
    const h = auth.seen[0]!.headers;
    expect([h.authorization, h.cookie, h['x-custom'], h['x-forwarded-method']]).toEqual(['Bearer good', undefined, undefined, 'GET']);
  });

  test('any other answer reaches the client as it is: a 401 and a 302 with their headers and bodies', async () => {
    const auth = await authService();
    const b = await echo();
    const f = await fulcrum(forwardAuth(auth.url), b.url);
    const denied = await request(`${f.url()}/`, { headers: { authorization: 'Bearer bad' } });
    expect([denied.status, denied.headers['www-authenticate'], denied.headers['content-type'], denied.body]).toEqual([401, 'Bearer realm="sso"', 'text/plain', 'who are you?']);
    const login = await request(`${f.url()}/`, { headers: { authorization: 'Bearer login' } });
    expect([login.status, login.headers.location, login.headers['set-cookie'], login.body]).toEqual([302, 'https://sso.example.com/login?rd=%2F', ['state=1; Path=/'], 'to the login page']);
    expect(b.seen.length).toBe(0);
    expect(await refusals(f, '401')).toBe(1);
    expect(await refusals(f, '302')).toBe(1);
  });

  test('no answer within timeout, or no connection: 503 "the auth service did not answer"', async () => {
    const auth = await authService();
    const b = await echo();
    const slow = await fulcrum(forwardAuth(auth.url), b.url);
    const started = Date.now();
    const r = await request(`${slow.url()}/`, { headers: { authorization: 'Bearer slow' } });
    expect([r.status, r.body]).toEqual([503, 'service unavailable: the auth service did not answer\n']);
    expect(Date.now() - started).toBeLessThan(4000);
    // A port nobody listens on.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await fulcrum(forwardAuth(`http://127.0.0.1:${port}/verify`), b.url);
    const r2 = await request(`${refused.url()}/`, { headers: { authorization: 'Bearer good' } });
    expect([r2.status, r2.body]).toEqual([503, 'service unavailable: the auth service did not answer\n']);
    expect(b.seen.length).toBe(0);
    expect(await refusals(refused, '503')).toBe(1);
  });

  test('a client that leaves while the auth service thinks: the auth call is let go, 499 is logged, the backend sees nothing', async () => {
    const auth = await authService();
    const b = await echo();
    const f = await fulcrum(`{ pool: p, access: { forwardAuth: { url: "${auth.url}", timeout: 10s } } }`, b.url);
    const req = http.get(`${f.url()}/`, { agent: false, headers: { authorization: 'Bearer slow' } });
    req.on('error', () => undefined);
    await waitFor(() => auth.seen.length === 1, 5000, 'the auth service to be asked');
    const closed = new Promise((resolve) => auth.seen[0]!.socket.once('close', resolve));
    req.destroy();
    await closed;
    await waitFor(() => f.records.length === 1, 5000, 'the request to be logged');
    expect([f.records[0]!.status, f.records[0]!.backend]).toEqual([499, '']);
    expect(b.seen.length).toBe(0);
  });

  test('basicAuth and forwardAuth together: both must pass', async () => {
    const auth = await authService();
    const b = await echo();
    const f = await fulcrum(`{ pool: p, access: { allow: [127.0.0.2], basicAuth: { realm: r, users: { alice: "${ALICE}" } }, forwardAuth: { url: "${auth.url}", responseHeaders: [x-user-id] } } }`, b.url);
    const viaBasic = { authorization: basic('alice', 'wonderland'), cookie: 'x' };
    expect((await request(`${f.url()}/`, { localAddress: '127.0.0.3', headers: viaBasic })).status).toBe(403);
    // Basic credentials are not what this auth service accepts: its 401 is relayed.
    expect((await request(`${f.url()}/`, { localAddress: '127.0.0.2', headers: viaBasic })).status).toBe(401);
    expect(auth.seen.length).toBe(1);
  });
});

test('a reload applies new access rules and trustedProxies to the next request', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-access-reload-'));
  cleanups.push(async () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'fulcrum.yaml');
  const b = await echo();
  const yamlWith = (listener: string, access: string) => `
log: { level: warn, access: false }
admin: { listen: 127.0.0.1:0 }
listeners:
  public:
    listen: 127.0.0.1:0
${listener}
    routes: [ { pool: p, access: ${access} } ]
pools: { p: { backends: [ { url: ${b.url}, name: b } ] } }
`;
  const f = await startFulcrum(yamlWith('', '{ allow: [127.0.0.2] }'), {}, { file });
  cleanups.push(() => f.stop());
  const from = (local: string, xff?: string) => request(`${f.url()}/`, { localAddress: local, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });
  expect([(await from('127.0.0.2')).status, (await from('127.0.0.3')).status]).toEqual([200, 403]);
  fs.writeFileSync(file, yamlWith('    trustedProxies: [127.0.0.3]', '{ allow: [198.51.100.7] }'));
  const reloaded = await f.fulcrum.reload();
  expect(reloaded.changes).toEqual(['listener public: routes changed', 'listener public: trustedProxies changed']);
  expect([(await from('127.0.0.2')).status, (await from('127.0.0.3', '198.51.100.7')).status]).toEqual([403, 200]);
});

test('the route\'s responseHeaders apply to its refusals (SPEC 8.1: every answer on the route)', async () => {
  const b = await echo();
  const f = await fulcrum(`{ pool: p, responseHeaders: { set: { x-frame-options: DENY } }, access: { allow: [127.0.0.2], basicAuth: { realm: r, users: { alice: "${ALICE}" } } } }`, b.url);
  const forbidden = await request(`${f.url()}/`, { localAddress: '127.0.0.3' });
  expect([forbidden.status, forbidden.headers['x-frame-options']]).toEqual([403, 'DENY']);
  const unauthorized = await request(`${f.url()}/`, { localAddress: '127.0.0.2' });
  expect([unauthorized.status, unauthorized.headers['x-frame-options'], unauthorized.headers['www-authenticate']]).toEqual([401, 'DENY', 'Basic realm="r"']);
});
