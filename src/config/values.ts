/**
 * Leaf parsers for the values of the config file: a raw (interpolated) value
 * in, the normalised value or an Invalid with a human message out. They know
 * nothing of zod; builders.ts `leaf()` turns an Invalid into an issue at the
 * value's path.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { MAX_DURATION_MS, durationError, durationTooLongError, parseDuration, parseSize, show, sizeError } from './units';
import type { Address, HashOn, RateLimitConfig, RetryCondition } from './types';

const RETRY_CONDITIONS: readonly RetryCondition[] = ['connect-failure', 'reset', 'timeout', '502', '503', '504'];

/** Backend names default to host:port, IPv6 included ("[::1]:8080"). */
const BACKEND_NAME = /^[A-Za-z0-9._:[\]-]+$/;
/** RFC 6265 section 4.1.1: a cookie name is an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOSTNAME = /^[A-Za-z0-9_.:-]+$/;

export class Invalid {
  constructor(readonly message: string) {}
}

export function durationValue(v: unknown, positive: boolean): number | Invalid {
  const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined;
  if (ms === undefined) return new Invalid(durationError(v));
  if (positive && ms === 0) return new Invalid(`duration must be greater than 0, got ${show(v)}`);
  if (ms > MAX_DURATION_MS) return new Invalid(durationTooLongError(v));
  return ms;
}

export function sizeValue(v: unknown): number | Invalid {
  const bytes = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
  return bytes === undefined ? new Invalid(sizeError(v)) : bytes;
}

/** "host:port", "[::]:8080" or ":8080" (all interfaces, 0.0.0.0). */
export function parseListen(v: unknown): Address | Invalid {
  const bad = new Invalid(`invalid listen address ${show(v)}: use host:port, e.g. 0.0.0.0:8080, [::]:8080 or :8080`);
  if (typeof v !== 'string') return bad;
  let host: string;
  let port: string;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0 || v[end + 1] !== ':') return bad;
    host = v.slice(1, end);
    port = v.slice(end + 2);
    if (!host.includes(':')) return bad;
  } else {
    const colon = v.lastIndexOf(':');
    if (colon < 0) return bad;
    host = v.slice(0, colon);
    port = v.slice(colon + 1);
    if (host.includes(':')) return new Invalid(`invalid listen address ${show(v)}: write IPv6 addresses in brackets, e.g. [::]:8080`);
    if (host === '') host = '0.0.0.0';
  }
  if (host === '' || !HOSTNAME.test(host)) return bad;
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return new Invalid(`invalid port in ${show(v)}: use a whole number from 0 to 65535`);
  }
  return { host, port: Number(port) };
}

/** `v` as a URL with one of `protocols` ("http:") and a host; undefined for anything else. */
export function urlOf(v: unknown, protocols: readonly string[]): URL | undefined {
  if (typeof v !== 'string') return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return undefined;
  }
  return protocols.includes(u.protocol) && u.hostname !== '' ? u : undefined;
}

const HTTP_SCHEMES = ['http:', 'https:'];

/** A backend URL is an origin: scheme, host, port. The result is normalised with an explicit port. */
export function parseBackendUrl(v: unknown): { url: string; name: string } | Invalid {
  const bad = new Invalid(`backend url must be an origin like http://10.0.0.1:8080 (no path), got ${show(v)}`);
  const u = urlOf(v, HTTP_SCHEMES);
  if (u === undefined || u.pathname !== '/' || u.search !== '' || u.hash !== '') return bad;
  if (u.username !== '' || u.password !== '') return bad;
  const port = u.port !== '' ? u.port : u.protocol === 'https:' ? '443' : '80';
  // URL.hostname keeps IPv6 brackets ("[::1]"), which is what both forms want.
  return { url: `${u.protocol}//${u.hostname}:${port}`, name: `${u.hostname}:${port}` };
}

/** "200-399", "200", "200,204,300-399", 204, or a list of those → inclusive ranges. */
export function parseExpectStatus(v: unknown): [number, number][] | Invalid {
  const bad = new Invalid(`invalid expectStatus ${show(v)}: use status codes and ranges, e.g. 200-399 or "200,204"`);
  const parts: string[] = [];
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) return bad;
  for (const item of items) {
    if (typeof item === 'number') parts.push(String(item));
    else if (typeof item === 'string') parts.push(...item.split(','));
    else return bad;
  }
  const ranges: [number, number][] = [];
  for (const raw of parts) {
    const m = /^\s*(\d{3})(?:\s*-\s*(\d{3}))?\s*$/.exec(raw);
    if (m === null) return bad;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 100 || hi > 599 || lo > hi) return bad;
    ranges.push([lo, hi]);
  }
  return ranges;
}

/** `ip | header:NAME | cookie:NAME | path`. Header names are case-insensitive, so lower-cased. */
export function parseHashOn(v: unknown): HashOn | Invalid {
  const bad = new Invalid(`invalid hashOn ${show(v)}: expected ip, path, header:NAME or cookie:NAME`);
  if (typeof v !== 'string') return bad;
  if (v === 'ip') return { kind: 'ip' };
  if (v === 'path') return { kind: 'path' };
  const m = /^(header|cookie):(.+)$/.exec(v);
  if (m === null || !TOKEN.test(m[2]!)) return bad;
  return m[1] === 'header' ? { kind: 'header', name: m[2]!.toLowerCase() } : { kind: 'cookie', name: m[2]! };
}

export function parseRateLimitKey(v: unknown): RateLimitConfig['key'] | Invalid {
  const bad = new Invalid(`invalid rate limit key ${show(v)}: expected ip or header:NAME`);
  if (v === 'ip') return { kind: 'ip' };
  if (typeof v !== 'string') return bad;
  const m = /^header:(.+)$/.exec(v);
  if (m === null || !TOKEN.test(m[1]!)) return bad;
  return { kind: 'header', name: m[1]!.toLowerCase() };
}

export function retryCondition(v: unknown): RetryCondition | Invalid {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s === 'string' && (RETRY_CONDITIONS as readonly string[]).includes(s)) return s as RetryCondition;
  return new Invalid(`unknown retry condition ${show(v)}: expected one of ${RETRY_CONDITIONS.join(', ')}`);
}

export function workersValue(v: unknown): number | 'auto' | Invalid {
  if (v === 'auto') return 'auto';
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1) return v;
  return new Invalid(`expected a whole number of at least 1 or "auto", got ${show(v)}`);
}

/** Route hosts are compared with the request's Host without its port: lower-case, port dropped. */
export function matchHost(v: unknown): string | Invalid {
  const bad = new Invalid(`invalid match.host ${show(v)}: expected a host name such as api.example.com or *.example.com`);
  if (typeof v !== 'string') return bad;
  let host = v.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed !== null) host = bracketed[1]!;
  else if (/^[^:]+:\d+$/.test(host)) host = host.slice(0, host.indexOf(':'));
  // A "*" is allowed only as a whole first label: "*.example.com" matches any subdomain.
  const wild = host.startsWith('*.') ? host.slice(2) : host;
  return wild !== '' && /^[a-z0-9_.:-]+$/.test(wild) ? host : bad;
}

export function pathPrefix(v: unknown): string | Invalid {
  return typeof v === 'string' && v.startsWith('/') ? v : new Invalid(`path must start with "/", got ${show(v)}`);
}

export function backendName(v: unknown): string | Invalid {
  return typeof v === 'string' && BACKEND_NAME.test(v)
    ? v
    : new Invalid(`invalid backend name ${show(v)}: use letters, digits and . _ : - [ ]`);
}

export function cookieName(v: unknown): string | Invalid {
  return typeof v === 'string' && TOKEN.test(v)
    ? v
    : new Invalid(`invalid cookie name ${show(v)}: use letters, digits and !#$%&'*+-.^_\`|~`);
}

/** A sticky cookie's key: shared by replicas that must agree on tokens; long enough not to be guessed. */
export function stickySecret(v: unknown): string | Invalid {
  return typeof v === 'string' && v.length >= 16
    ? v
    : new Invalid('must be a string of at least 16 characters (for example "${FULCRUM_STICKY_SECRET}")');
}

export function dnsName(v: unknown): string | Invalid {
  return typeof v === 'string' && /^[A-Za-z0-9_.-]+$/.test(v)
    ? v
    : new Invalid(`invalid dns name ${show(v)}: expected a host name such as web.internal`);
}

/** A resolver as "host:port"; a bare host means port 53. */
export function resolverAddress(v: unknown): string | Invalid {
  if (typeof v === 'string' && v !== '' && !v.includes(':') && HOSTNAME.test(v)) return `${v}:53`;
  const a = parseListen(v);
  if (a instanceof Invalid || a.port === 0) return new Invalid(`invalid dns server ${show(v)}: expected host:port, e.g. 10.0.0.2:53`);
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** TLS files are named relative to the config file; they must exist now, not at first handshake. */
export function tlsFile(baseDir: string, what: string) {
  return (v: unknown): string | Invalid => {
    if (typeof v !== 'string' || v === '') return new Invalid(`${what} must be a file path, got ${show(v)}`);
    const resolved = path.resolve(baseDir, v);
    try {
      fs.accessSync(resolved, fs.constants.R_OK);
      if (!fs.statSync(resolved).isFile()) return new Invalid(`cannot read ${what} file ${show(v)} (${resolved}): not a file`);
    } catch (err) {
      return new Invalid(`cannot read ${what} file ${show(v)} (${resolved}): ${fsReason(err)}`);
    }
    return resolved;
  };
}

/**
 * Mozilla's "intermediate" profile (ssl-config.mozilla.org, v5.7): forward
 * secrecy (ECDHE) with AEAD ciphers (AES-GCM, ChaCha20-Poly1305) only, so no
 * CBC and no static-RSA key exchange. TLS 1.3 suites are OpenSSL's own.
 */
export const DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** An OpenSSL cipher list, checked by OpenSSL itself now rather than at the first handshake. */
export function cipherList(v: unknown): string | Invalid {
  if (typeof v !== 'string' || v.trim() === '') return new Invalid(`tls ciphers must be an OpenSSL cipher list such as ${DEFAULT_CIPHERS.split(':')[1]}, got ${show(v)}`);
  try {
    tls.createSecureContext({ ciphers: v });
  } catch (err) {
    return new Invalid(`OpenSSL refuses the tls cipher list ${show(v)}: ${(err as Error).message.split('\n')[0]}`);
  }
  return v;
}

export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err instanceof Error ? err.message : String(err);
}

/** tracing.otlp.endpoint: the collector's OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces. */
export function otlpEndpoint(v: unknown): string | Invalid {
  const u = urlOf(v, HTTP_SCHEMES);
  if (u === undefined || u.hash !== '') return new Invalid(`must be an OTLP/HTTP http:// or https:// URL such as http://127.0.0.1:4318/v1/traces, got ${show(v)}`);
  return u.href;
}

/** tracing.otlp.headers: sent with every export (a collector's token); names are tokens, values one line. */
export function otlpHeaders(v: unknown): Record<string, string> | Invalid {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return new Invalid(`must be a map of header names to values, got ${show(v)}`);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(v as Record<string, unknown>)) {
    if (!TOKEN.test(name)) return new Invalid(`invalid header name ${show(name)}: use letters, digits and !#$%&'*+-.^_\`|~`);
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) return new Invalid(`header ${name} must be a one-line string, got ${show(value)}`);
    out[name.toLowerCase()] = value;
  }
  return out;
}

/** An ACME directory: an http(s) URL. */
export function directoryUrl(v: unknown): string | Invalid {
  const bad = new Invalid(`acme directory must be the URL of an ACME directory, e.g. https://acme-staging-v02.api.letsencrypt.org/directory, got ${show(v)}`);
  return urlOf(v, HTTP_SCHEMES) !== undefined ? v as string : bad;
}

/** A name a public certificate can carry: a DNS name, or a wildcard one level deep. */
export function certificateDomain(v: unknown): string | Invalid {
  if (typeof v !== 'string' || !/^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(v) || v.length > 253) {
    return new Invalid(`acme domains must be DNS names such as example.com, got ${show(v)}`);
  }
  return v.toLowerCase();
}

/** A folder for Fulcrum to write in, relative to the config file; made at start when missing. */
export function storageDir(baseDir: string) {
  return (v: unknown): string | Invalid => {
    if (typeof v !== 'string' || v === '') return new Invalid(`acme storage must be a folder path, got ${show(v)}`);
    const resolved = path.resolve(baseDir, v);
    try {
      if (!fs.statSync(resolved).isDirectory()) return new Invalid(`acme storage ${show(v)} (${resolved}) is not a folder`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return new Invalid(`cannot use acme storage ${show(v)} (${resolved}): ${fsReason(err)}`);
    }
    return resolved;
  };
}

/** A TLS server name (SNI): a DNS name or an address. */
export function serverNameValue(v: unknown): string | Invalid {
  if (typeof v !== 'string' || v === '' || !HOSTNAME.test(v)) return new Invalid(`tls serverName must be a host name such as api.internal, got ${show(v)}`);
  return v;
}

/** SPEC section 10: `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS). */
export function parseRedisUrl(v: unknown): string | Invalid {
  const bad = new Invalid(`invalid cluster.redis ${show(v)}: expected redis://host:6379/0 or rediss://host:6380`);
  const u = urlOf(v, ['redis:', 'rediss:']);
  if (u === undefined) return bad;
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/\d{1,2}$/.test(u.pathname)) {
    return new Invalid(`invalid database in cluster.redis ${show(v)}: expected a number such as /0`);
  }
  if (u.search !== '' || u.hash !== '') return bad;
  return v as string;
}

/** The cluster's name is the prefix of its keys in Redis: kept to characters that need no escaping. */
export function clusterName(v: unknown): string | Invalid {
  return typeof v === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(v)
    ? v
    : new Invalid(`invalid cluster.name ${show(v)}: use 1 to 64 letters, digits and . _ -`);
}

/** A replica's name (default hostname:pid), as /api/cluster shows it. */
export function replicaName(v: unknown): string | Invalid {
  return typeof v === 'string' && /^[A-Za-z0-9._:[\]-]{1,128}$/.test(v)
    ? v
    : new Invalid(`invalid cluster.replica ${show(v)}: use 1 to 128 letters, digits and . _ : - [ ]`);
}
