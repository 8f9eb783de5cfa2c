import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A self-signed certificate for localhost/127.0.0.1, made with openssl for this test run. */
export function selfSigned(): { dir: string; cert: string; key: string; certPem: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-tls-'));
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  return { dir, cert, key, certPem: readFileSync(cert) };
}

export interface Pki {
  readonly dir: string;
  /** The CA that signed server and client. */
  readonly ca: string;
  /** localhost / 127.0.0.1, signed by `ca`; also names `api.internal`. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** CN=fulcrum-client,O=Fulcrum Tests, signed by `ca`. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** Another CA, and a client certificate it signed (the wrong-CA cases). */
  readonly wrongCa: string;
  readonly wrongClientCert: string;
  readonly wrongClientKey: string;
}

/** A CA with a server and a client certificate, and a second CA with a client of its own, made with openssl. */
export function makePki(): Pki {
  const dir = mkdtempSync(path.join(tmpdir(), 'fulcrum-pki-'));
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore', cwd: dir });
  const ca = (name: string) => openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`), '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, signer: string, subj: string, ext: string) => {
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', subj);
    writeFileSync(f(`${name}.ext`), ext);
    openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${signer}.crt`), '-CAkey', f(`${signer}.key`), '-CAcreateserial',
      '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
  };
  ca('test-ca');
  ca('wrong-ca');
  leaf('server', 'test-ca', '/CN=localhost', 'subjectAltName=DNS:localhost,DNS:api.internal,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'test-ca', '/O=Fulcrum Tests/CN=fulcrum-client', 'extendedKeyUsage=clientAuth\n');
  leaf('wrong-client', 'wrong-ca', '/CN=intruder', 'extendedKeyUsage=clientAuth\n');
  return {
    dir, ca: f('test-ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'),
    clientCert: f('client.crt'), clientKey: f('client.key'),
    wrongCa: f('wrong-ca.crt'), wrongClientCert: f('wrong-client.crt'), wrongClientKey: f('wrong-client.key'),
  };
}
