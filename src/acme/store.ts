import fs from 'node:fs';
import path from 'node:path';
import type { AcmeConfig } from '../config/types';
import type { KeyPair } from '../tls/certificates';

/**
 * What ACME leaves on disk under `storage`, reused across restarts:
 *   account.key                      the account's private key (PEM)
 *   certificates/<first domain>.crt  the certificate chain (PEM)
 *   certificates/<first domain>.key  its private key (PEM)
 * Files are written to a temporary name and renamed, so a crash mid-write
 * never leaves half a certificate; keys are readable by their owner only.
 */

function certificateBase(config: AcmeConfig): string {
  // "*.example.com" is a name no file system minds, but a shell does.
  return path.join(config.storage, 'certificates', config.domains[0]!.replace(/^\*\./, '_wildcard.'));
}

function writeAtomic(file: string, data: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

export function readAccountKey(storage: string): string | undefined {
  try {
    return fs.readFileSync(path.join(storage, 'account.key'), 'utf8');
  } catch {
    return undefined;
  }
}

export function writeAccountKey(storage: string, pem: string): void {
  writeAtomic(path.join(storage, 'account.key'), pem, 0o600);
}

export function readCertificate(config: AcmeConfig): KeyPair | undefined {
  const base = certificateBase(config);
  try {
    return { cert: fs.readFileSync(`${base}.crt`, 'utf8'), key: fs.readFileSync(`${base}.key`, 'utf8') };
  } catch {
    return undefined;
  }
}

export function writeCertificate(config: AcmeConfig, pair: KeyPair): void {
  const base = certificateBase(config);
  // Key first: a certificate on disk always has its key beside it.
  writeAtomic(`${base}.key`, pair.key, 0o600);
  writeAtomic(`${base}.crt`, pair.cert, 0o644);
}
