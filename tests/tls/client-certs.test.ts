/**
 * SPEC 9.4, listener `clientCa` / `clientAuth`, with real TLS clients and
 * openssl certificates: require refuses clients without a valid certificate
 * in the handshake, optional lets those without one through but not those
 * with a bad one, and a verified certificate reaches the backend as
 * X-Forwarded-Client-Cert; a client's own header never does.
 */
import https from 'node:https';
import http2 from 'node:http2';
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startFulcrum } from '../helpers/fulcrum';
import { useTeardown } from '../helpers/teardown';
import { makePki } from '../helpers/tls';
import { expectNoInternalErrors } from '../helpers/listeners';

const t = useTeardown();
const pki = makePki();
const clientDer = new X509Certificate(readFileSync(pki.clientCert)).raw;
const XFCC = `Hash=${createHash('sha256').update(clientDer).digest('hex')};Subject="CN=fulcrum-client,O=Fulcrum Tests"`;

type Who = 'good' | 'wrong' | 'none';

function get(port: number, who: Who): Promise<string> {
  const creds = who === 'good' ? { cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) }
    : who === 'wrong' ? { cert: readFileSync(pki.wrongClientCert), key: readFileSync(pki.wrongClientKey) } : {};
  return new Promise((resolve) => {
    const req = https.get({
      host: '127.0.0.1', port, path: '/', ca: readFileSync(pki.ca), servername: 'localhost', agent: false, ...creds,
      headers: { 'x-forwarded-client-cert': 'Hash=forged;Subject="CN=admin"' },
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
      res.on('error', () => resolve('refused'));
    });
    req.on('error', () => resolve('refused'));
  });
}

describe('listener client certificates', () => {
  test('require, optional, and X-Forwarded-Client-Cert (HTTP/1.1 and h2)', async () => {
    const backend = await t.backend('b', (req, res) => res.end(String(req.headers['x-forwarded-client-cert'] ?? '-')));
    const tls = (auth: string) => `{ cert: ${pki.serverCert}, key: ${pki.serverKey}, clientCa: ${pki.ca}, clientAuth: ${auth} }`;
    const f = await startFulcrum(`
admin: { listen: 127.0.0.1:0 }
listeners:
  require: { listen: 127.0.0.1:0, tls: ${tls('require')}, routes: [{ pool: web }] }
  optional: { listen: 127.0.0.1:0, tls: ${tls('optional')}, routes: [{ pool: web }] }
  h2: { listen: 127.0.0.1:0, http2: true, tls: ${tls('require')}, routes: [{ pool: web }] }
  plain: { listen: 127.0.0.1:0, routes: [{ pool: web }] }
pools:
  web: { backends: [{ url: ${backend.url} }] }
`);
    t.cleanups.push(() => f.stop());
    const port = (name: string) => Number(f.fulcrum.address(name).split(':').pop());
    expect(await get(port('require'), 'good')).toBe(`200 ${XFCC}`);
    expect(await get(port('require'), 'wrong')).toBe('refused');
    expect(await get(port('require'), 'none')).toBe('refused');
    expect(await get(port('optional'), 'good')).toBe(`200 ${XFCC}`);
    expect(await get(port('optional'), 'none')).toBe('200 -');
    expect(await get(port('optional'), 'wrong')).toBe('refused');
    // HTTP/2: the certificate of the connection, for each stream.
    const session = http2.connect(`https://127.0.0.1:${port('h2')}`, {
      ca: readFileSync(pki.ca), servername: 'localhost', cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey),
    });
    const h2 = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':path': '/', 'x-forwarded-client-cert': 'forged' });
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => resolve(body));
      req.on('error', reject);
    });
    session.close();
    expect(h2).toBe(XFCC);
    // A plain listener never passes a client's own header on.
    const plain = await fetch(`${f.url('plain')}/`, { headers: { 'x-forwarded-client-cert': 'forged' } });
    expect(await plain.text()).toBe('-');
    await expectNoInternalErrors(f.adminUrl, f.logs);
  });
});
