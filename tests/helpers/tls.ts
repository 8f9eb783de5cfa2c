import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
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
