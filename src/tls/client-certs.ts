import { X509Certificate, createHash } from 'node:crypto';
import type { Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClientAuth } from '../config/types';

/**
 * Client certificates on TLS listeners (SPEC 9.4, `clientCa`/`clientAuth`).
 * `require` is OpenSSL's own refusal (requestCert + rejectUnauthorized);
 * `optional` asks for a certificate without requiring one, so OpenSSL lets
 * an invalid one through too: such a connection is closed here, as soon as
 * its handshake is done and before any request is read. A verified
 * certificate's X-Forwarded-Client-Cert value is made once per connection.
 */

const XFCC = Symbol('fulcrum.xfcc');
type Marked = { [XFCC]?: string };

/** How node:tls is told to ask for client certificates. */
export function clientAuthOptions(clientAuth: ClientAuth, ca: Buffer | undefined): { ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean } {
  if (clientAuth === 'none' || ca === undefined) return { requestCert: false, rejectUnauthorized: false };
  return { ca, requestCert: true, rejectUnauthorized: clientAuth === 'require' };
}

/** Checks each new TLS connection against `clientAuth()` (read per connection: a reload applies it). */
export function watchClientCertificates(server: NetServer, clientAuth: () => ClientAuth): void {
  server.prependListener('secureConnection' as 'connection', ((socket: TLSSocket) => {
    const mode = clientAuth();
    if (mode === 'none') return;
    if (!socket.authorized) {
      // `optional`: none sent is fine; one that does not verify is not.
      if (hasPeerCertificate(socket)) socket.destroy();
      return;
    }
    const der = socket.getPeerCertificate()?.raw;
    if (der !== undefined) (socket as Marked)[XFCC] = forwardedClientCert(der);
  }) as never);
}

function hasPeerCertificate(socket: TLSSocket): boolean {
  const c = socket.getPeerCertificate();
  return c !== null && c !== undefined && Object.keys(c).length > 0;
}

/** `Hash=<sha256 hex of the DER>;Subject="<subject, RFC 2253 order>"`, as Envoy writes it. */
export function forwardedClientCert(der: Buffer): string {
  const hash = createHash('sha256').update(der).digest('hex');
  const subject = new X509Certificate(der).subject.split('\n').reverse().join(',');
  return `Hash=${hash};Subject="${subject.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The X-Forwarded-Client-Cert of the connection a request came on; undefined without a verified certificate. */
export function clientCertHeader(socket: object): string | undefined {
  return (socket as Marked)[XFCC];
}
