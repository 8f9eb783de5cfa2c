import { newRequestId } from './request-id';

/**
 * Header passes, in the order they run. Each is a small function over the flat
 * [name, value, name, value, ...] arrays node:http gives (`req.rawHeaders`) and
 * undici takes, so names keep their case and repeated headers stay repeated.
 *
 * Request:  1. drop hop-by-hop headers (RFC 9110 §7.6.1) and collect Connection's tokens
 *           2. drop every header Connection names (but never Host), X-Forwarded-For included
 *           3. append X-Forwarded-For, set X-Forwarded-Proto / -Host, keep or make X-Request-Id
 * Response: 1. drop hop-by-hop headers and those Connection names
 */

/** Hop-by-hop on both sides. `expect` is answered by node:http itself; `http2-settings` only rides with h2c upgrades. */
const REQUEST_DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'expect', 'http2-settings',
  // Set by us from what we saw, never trusted from the client.
  'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-client-cert',
]);
/** Exported for Http1Response.writeBackendHead, which drops the same names from raw header bytes. */
export const RESPONSE_DROP: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

/**
 * Fields HTTP/2 forbids (RFC 9113 §8.2.2; TE is allowed only as "trailers"):
 * node:http2 throws on them, so both HTTP/2 sides leave them out.
 */
export const HTTP2_FORBIDDEN: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

/**
 * Underscore spellings of the headers we set: some frameworks read
 * X_Forwarded_For as X-Forwarded-For, so a client could smuggle a spoofed
 * value past ours (nginx drops underscored names for the same reason).
 */
const UNDERSCORE_TWINS = new Set(['x_forwarded_for', 'x_forwarded_proto', 'x_forwarded_host', 'x_request_id', 'x_real_ip']);

export interface ForwardedHeaders {
  /** Flat name/value list for undici. */
  readonly headers: string[];
  readonly requestId: string;
  /** The client's Host (empty when it sent none). */
  readonly host: string;
  /** More than one Host header (RFC 9112 §3.2: answer 400). */
  readonly duplicateHost: boolean;
}

/** Connection's tokens other than close/keep-alive, lower-cased; undefined when there are none (the value names no header to drop). */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // Nearly every Connection header is just one of these (every keep-alive response has one).
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return undefined;
  }
  let tokens: Set<string> | undefined;
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive') continue;
    (tokens ??= new Set()).add(t);
  }
  return tokens;
}

function dropNamed(headers: string[], named: Set<string>, keep: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i].toLowerCase();
    if (named.has(lower) && lower !== keep) continue;
    out.push(headers[i], headers[i + 1]);
  }
  return out;
}

/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) is written as "10.0.0.1". */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

export function forwardRequestHeaders(raw: readonly string[], clientIp: string, proto: string): ForwardedHeaders {
  let out: string[] = [];
  let connection: string | undefined;
  let xff: string | undefined;
  let requestId: string | undefined;
  let host = '';
  let authority: string | undefined;
  let duplicateHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name.charCodeAt(0) === 58 /* : */) {
      // HTTP/2 pseudo-headers (RFC 9113 §8.3) do not exist in HTTP/1.1;
      // :authority becomes Host when the client sent no Host.
      if (name === ':authority') authority = value;
      continue;
    }
    const lower = name.toLowerCase();
    if (REQUEST_DROP.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
      continue;
    }
    if (lower === 'x-forwarded-for') {
      xff = xff === undefined ? value : `${xff}, ${value}`;
      continue;
    } else if (lower === 'host') {
      if (host !== '') duplicateHost = true;
      host = value;
    } else if (lower.charCodeAt(1) === 95 /* _ */ && UNDERSCORE_TWINS.has(lower)) {
      continue;
    } else if (lower === 'x-request-id' && requestId === undefined) {
      requestId = value;
    }
    out.push(name, value);
  }
  if (host === '' && authority !== undefined) {
    host = authority;
    out.push('host', authority);
  }
  const named = connectionTokens(connection);
  if (named !== undefined) {
    out = dropNamed(out, named, 'host');
    // A hop-by-hop X-Forwarded-For is the client's to drop, not a chain to extend (RFC 9110 §7.6.1).
    if (named.has('x-forwarded-for')) xff = undefined;
  }
  out.push('x-forwarded-for', xff === undefined ? clientIp : `${xff}, ${clientIp}`);
  out.push('x-forwarded-proto', proto);
  if (host !== '') out.push('x-forwarded-host', host);
  if (requestId === undefined || named?.has('x-request-id')) {
    requestId = newRequestId();
    out.push('x-request-id', requestId);
  }
  return { headers: out, requestId, host, duplicateHost };
}

/** The backend's response headers, without hop-by-hop ones, for node:http's writeHead. */
export function forwardResponseHeaders(raw: readonly string[]): string[] {
  let out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    const lower = name.toLowerCase();
    if (RESPONSE_DROP.has(lower)) {
      if (lower === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
      continue;
    }
    out.push(name, value);
  }
  const named = connectionTokens(connection);
  if (named !== undefined) out = dropNamed(out, named, '');
  return out;
}
