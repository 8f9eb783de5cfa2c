import type { ConnectionOptions } from 'node:tls';
import type { PoolTlsConfig } from '../config/types';

/**
 * Pool `tls` (SPEC 9.4) as node:tls options, shared by what carries requests
 * (undici for https:// backends) and by health probes, so both trust and
 * present the same certificates. Without a `tls` block requests keep Node's
 * defaults (its root CAs, verification on) and probes their old leniency.
 */
export function backendTlsOptions(tls: PoolTlsConfig | undefined): ConnectionOptions {
  if (tls === undefined) return {};
  return {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
    // SNI and the name checked (node:tls checks servername when it is given).
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    rejectUnauthorized: tls.verify,
  };
}
