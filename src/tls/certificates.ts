import { X509Certificate, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/**
 * What a listener's certificate says (for /api/overview and the dashboard),
 * and the self-signed placeholder an ACME listener serves until its first
 * certificate arrives.
 */

export type CertificateSource = 'file' | 'acme' | 'placeholder';

export interface CertificateInfo {
  readonly source: CertificateSource;
  /** Subject alternative names (DNS and IP), else the subject's CN. */
  readonly names: readonly string[];
  readonly issuer: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

/** The leaf (first) certificate of a PEM chain, described. */
export function describeCertificate(pem: string | Buffer, source: CertificateSource): CertificateInfo {
  const x = new X509Certificate(pem);
  const names = (x.subjectAltName ?? '').split(', ').flatMap((n) => {
    const m = /^(DNS|IP Address):(.+)$/.exec(n);
    return m !== null ? [m[2]!] : [];
  });
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x.subject)?.[1];
  return {
    source,
    names: names.length > 0 ? names : cn !== undefined ? [cn] : [],
    issuer: x.issuer.split('\n').reverse().join(','),
    notAfter: new Date(x.validTo).toISOString(),
  };
}

/** When the leaf certificate of a PEM chain stops being valid (epoch ms). */
export function notAfter(pem: string | Buffer): number {
  return new Date(new X509Certificate(pem).validTo).getTime();
}

// ---- a self-signed certificate, in DER written by hand ---------------------
//
// Node's crypto signs but cannot build a certificate, and the placeholder is
// needed synchronously when a listener is made: an X.509 v3 certificate of
// fixed shape (P-256 key, ECDSA-SHA256, CN and subjectAltName) is a few DER
// elements (RFC 5280 §4.1).

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const SEQUENCE = 0x30;
const ECDSA_SHA256 = der(SEQUENCE, Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]));
const OID_CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
const OID_SAN = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);

function name(cn: string): Buffer {
  return der(SEQUENCE, der(0x31, der(SEQUENCE, OID_CN, der(0x0c, Buffer.from(cn, 'utf8')))));
}

/** UTCTime (RFC 5280 §4.1.2.5.1: until 2049). */
function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14);
  return der(0x17, Buffer.from(`${s}Z`, 'latin1'));
}

/** A self-signed certificate for `names`, valid from an hour ago for `days`. */
export function selfSigned(names: readonly string[], cn: string, days = 7): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serial = randomBytes(16);
  // A positive INTEGER in its shortest form: a leading 0x00 byte (followed by
  // one below 0x80) is padding DER forbids, and OpenSSL refuses it.
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const now = Date.now();
  const san = der(SEQUENCE, ...names.map((n) => der(0x82, Buffer.from(n, 'latin1'))));
  const extensions = der(0xa3, der(SEQUENCE, der(SEQUENCE, OID_SAN, der(0x04, san))));
  const tbs = der(SEQUENCE,
    der(0xa0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, serial),
    ECDSA_SHA256,
    name(cn),
    der(SEQUENCE, utcTime(new Date(now - 3_600_000)), utcTime(new Date(now + days * 86_400_000))),
    name(cn),
    publicKey.export({ type: 'spki', format: 'der' }),
    extensions);
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const cert = der(SEQUENCE, tbs, ECDSA_SHA256, der(0x03, Buffer.from([0]), signature));
  const pem = `-----BEGIN CERTIFICATE-----\n${cert.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
  return { cert: pem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
