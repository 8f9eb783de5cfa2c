/**
 * Checks across parts of the file: a route's pool must exist, two sockets
 * cannot share a port, the admin API needs a token off loopback, names are
 * usable in URLs and metric labels. They read the raw (interpolated) data, so
 * they run, and report, even when zod found problems elsewhere; each one only
 * looks at values of the right type and leaves the rest to the schema.
 */
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { DEFAULT_ADMIN } from './schema';
import type { Address } from './types';
import { Invalid, parseBackendUrl, parseListen } from './values';
import { routeProblems } from './routes';

/** Pool and listener names appear in URLs of the admin API and in metric labels. */
const NAME = /^[A-Za-z0-9._-]+$/;

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/**
 * Readable files can still hold no usable PEM, or a key that does not match
 * the certificate: catch that at validation, not at startup.
 */
function unusableKeyPair(baseDir: string, cert: unknown, key: unknown): string | undefined {
  if (typeof cert !== 'string' || typeof key !== 'string' || cert === '' || key === '') return undefined;
  let pair: { cert: Buffer; key: Buffer };
  try {
    const certPath = path.resolve(baseDir, cert);
    const keyPath = path.resolve(baseDir, key);
    // Only regular files: reading a FIFO or a device would block validation.
    if (!fs.statSync(certPath).isFile() || !fs.statSync(keyPath).isFile()) return undefined;
    pair = { cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) };
  } catch {
    return undefined; // reported on the file itself
  }
  try {
    tls.createSecureContext(pair);
    return undefined;
  } catch (err) {
    return `tls cert and key cannot be used together: ${(err as Error).message.split('\n')[0]}`;
  }
}

export type PathSegment = string | number;

export interface CrossProblem {
  readonly path: readonly PathSegment[];
  readonly message: string;
  /** Point at the key of the last path segment rather than at its value. */
  readonly atKey?: boolean;
}

type RawMap = Record<string, unknown>;

function isMap(v: unknown): v is RawMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A map keyed by "__proto__" loses the entry in JavaScript (the schema's records drop it). */
const RESERVED = new Set(['__proto__']);

export function crossCheck(raw: RawMap, baseDir: string): CrossProblem[] {
  const problems: CrossProblem[] = [];
  const pools = isMap(raw.pools) ? raw.pools : undefined;
  const listeners = isMap(raw.listeners) ? raw.listeners : undefined;
  const addresses: { label: string; address: Address; path: PathSegment[] }[] = [];

  // Admin: a token is required once the API is reachable from other hosts.
  const admin = isMap(raw.admin) ? raw.admin : {};
  const adminAddress = admin.listen === undefined ? DEFAULT_ADMIN : parseListen(admin.listen);
  if (!(adminAddress instanceof Invalid)) {
    addresses.push({ label: 'admin.listen', address: adminAddress, path: ['admin', 'listen'] });
    const token = admin.token;
    if (!isLoopback(adminAddress.host) && (token === undefined || token === null || token === '')) {
      problems.push({ path: ['admin', 'listen'], message: 'admin.listen is not a loopback address: set admin.token' });
    }
  }

  if (listeners !== undefined) {
    if (Object.keys(listeners).length === 0) {
      problems.push({ path: ['listeners'], message: 'at least one listener is required' });
    }
    for (const [name, l] of Object.entries(listeners)) {
      if (!NAME.test(name)) {
        problems.push({ path: ['listeners', name], atKey: true, message: `invalid listener name ${JSON.stringify(name)}: use letters, digits and . _ -` });
      } else if (RESERVED.has(name)) {
        problems.push({ path: ['listeners', name], atKey: true, message: `${JSON.stringify(name)} cannot be a listener name` });
      }
      if (!isMap(l)) continue;
      const tlsProblem = isMap(l.tls) ? unusableKeyPair(baseDir, l.tls.cert, l.tls.key) : undefined;
      if (tlsProblem !== undefined) problems.push({ path: ['listeners', name, 'tls'], message: tlsProblem });
      if (isMap(l.tls)) problems.push(...listenerTlsProblems(l.tls, ['listeners', name, 'tls'], raw.workers));
      const address = parseListen(l.listen);
      if (!(address instanceof Invalid)) {
        addresses.push({ label: `listener "${name}"`, address, path: ['listeners', name, 'listen'] });
      }
      if (Array.isArray(l.routes)) {
        l.routes.forEach((r, i) => problems.push(...routeProblems(r, ['listeners', name, 'routes', i], pools)));
      }
    }
  }

  // Two sockets on one port: the second bind would fail at start-up (EADDRINUSE).
  for (let i = 0; i < addresses.length; i++) {
    const a = addresses[i]!;
    if (a.address.port === 0) continue;
    const clash = addresses.slice(0, i).find((b) => b.address.port === a.address.port
      && (b.address.host === a.address.host || isWildcard(b.address.host) || isWildcard(a.address.host)));
    if (clash !== undefined) {
      problems.push({ path: a.path, message: `port ${a.address.port} is already used by ${clash.label}` });
    }
  }

  if (pools !== undefined) {
    for (const [name, p] of Object.entries(pools)) {
      if (!NAME.test(name)) {
        problems.push({ path: ['pools', name], atKey: true, message: `invalid pool name ${JSON.stringify(name)}: use letters, digits and . _ -` });
      } else if (RESERVED.has(name)) {
        problems.push({ path: ['pools', name], atKey: true, message: `${JSON.stringify(name)} cannot be a pool name` });
      }
      if (!isMap(p)) continue;
      const strategy = p.strategy ?? 'round-robin';
      if (p.hashOn !== undefined && typeof strategy === 'string' && strategy !== 'consistent-hash') {
        problems.push({
          path: ['pools', name, 'hashOn'],
          message: `hashOn only applies to strategy consistent-hash (this pool uses ${strategy})`,
        });
      }
      problems.push(...protocolProblems(name, p));
      const backends = Array.isArray(p.backends) ? p.backends : [];
      const hasDns = isMap(p.discovery) && p.discovery.dns !== undefined && p.discovery.dns !== null;
      if (backends.length === 0 && !hasDns && (p.backends === undefined || Array.isArray(p.backends))) {
        problems.push({
          path: p.backends === undefined ? ['pools', name] : ['pools', name, 'backends'],
          atKey: p.backends === undefined,
          message: `pool "${name}" needs at least one backend or a discovery block`,
        });
      }
      problems.push(...poolEdgeProblems(p, ['pools', name], baseDir, backends, hasDns));
      const seen = new Set<string>();
      backends.forEach((b, i) => {
        if (!isMap(b)) return;
        let backendName: string | undefined;
        if (typeof b.name === 'string') backendName = b.name;
        else if (b.name === undefined) {
          const u = parseBackendUrl(b.url);
          if (!(u instanceof Invalid)) backendName = u.name;
        }
        if (backendName === undefined) return;
        if (seen.has(backendName)) {
          problems.push({
            path: ['pools', name, 'backends', i, b.name !== undefined ? 'name' : 'url'],
            message: `duplicate backend name ${JSON.stringify(backendName)} in pool "${name}": give each backend a unique name`,
          });
        }
        seen.add(backendName);
      });
    }
  }
  problems.push(...clusterScopes(raw, pools, listeners));
  return problems;
}

/** `scope: cluster` shares state through the top-level `cluster` block: without it there is no one to share with. */
function clusterScopes(raw: RawMap, pools: RawMap | undefined, listeners: RawMap | undefined): CrossProblem[] {
  if (isMap(raw.cluster)) return [];
  const out: CrossProblem[] = [];
  const message = (what: string) => `${what}.scope cluster needs a top-level cluster block (cluster: { redis, name })`;
  for (const [name, l] of Object.entries(listeners ?? {})) {
    const rl = isMap(l) && isMap(l.limits) && isMap(l.limits.rateLimit) ? l.limits.rateLimit : undefined;
    if (rl?.scope === 'cluster') out.push({ path: ['listeners', name, 'limits', 'rateLimit', 'scope'], message: message('rateLimit') });
  }
  for (const [name, p] of Object.entries(pools ?? {})) {
    const od = isMap(p) && isMap(p.outlierDetection) ? p.outlierDetection : undefined;
    if (od?.scope === 'cluster') out.push({ path: ['pools', name, 'outlierDetection', 'scope'], message: message('outlierDetection') });
  }
  return out;
}

/** Listener `tls`: a certificate from files or from ACME, and client certificates only with a CA to check them. */
function listenerTlsProblems(t: RawMap, at: PathSegment[], workers: unknown): CrossProblem[] {
  const out: CrossProblem[] = [];
  const has = (k: string) => t[k] !== undefined && t[k] !== null;
  if (has('acme')) {
    if (has('cert') || has('key')) out.push({ path: [...at, 'acme'], atKey: true, message: 'tls takes cert and key, or acme, not both' });
    // The worker that orders must be the one asked for the challenge, and one order per process set, not per worker.
    if (workers !== undefined && workers !== 1) out.push({ path: [...at, 'acme'], atKey: true, message: 'tls.acme needs workers: 1 (certificates are ordered and the HTTP-01 challenge answered by one process)' });
  } else if (!has('cert') && !has('key')) {
    out.push({ path: at, message: 'tls needs cert and key, or acme' });
  } else if (!has('cert') || !has('key')) {
    out.push({ path: at, message: `tls needs ${has('cert') ? 'key' : 'cert'} too` });
  }
  const auth = t.clientAuth ?? 'none';
  if ((auth === 'optional' || auth === 'require') && !has('clientCa')) {
    out.push({ path: [...at, 'clientAuth'], message: `clientAuth ${auth} needs clientCa: the CAs client certificates are checked against` });
  }
  if (auth === 'none' && has('clientCa')) {
    out.push({ path: [...at, 'clientCa'], atKey: true, message: 'clientCa has no effect with clientAuth none: set clientAuth to optional or require' });
  }
  return out;
}

/** Pool `proxyProtocol` and `tls` (SPEC 9.3, 9.4). */
function poolEdgeProblems(p: RawMap, at: PathSegment[], baseDir: string, backends: unknown[], hasDns: boolean): CrossProblem[] {
  const out: CrossProblem[] = [];
  if (p.proxyProtocol !== undefined && p.protocol === 'http2') {
    out.push({ path: [...at, 'proxyProtocol'], message: 'proxyProtocol cannot be used with protocol http2: an HTTP/2 connection carries the streams of many clients' });
  }
  const t = p.tls;
  if (!isMap(t)) return out;
  const hasCert = t.cert !== undefined && t.cert !== null;
  const hasKey = t.key !== undefined && t.key !== null;
  if (hasCert !== hasKey) out.push({ path: [...at, 'tls'], message: `pool tls needs ${hasCert ? 'key' : 'cert'} too (a client certificate is a pair)` });
  const pair = hasCert && hasKey ? unusableKeyPair(baseDir, t.cert, t.key) : undefined;
  if (pair !== undefined) out.push({ path: [...at, 'tls'], message: pair });
  const urls = backends.flatMap((b) => (isMap(b) && typeof b.url === 'string' ? [b.url] : []));
  if (!hasDns && urls.length > 0 && urls.every((u) => u.startsWith('http:'))) {
    out.push({ path: [...at, 'tls'], atKey: true, message: 'pool tls applies to https:// backends, and every backend of this pool is http://' });
  }
  return out;
}

/** Combinations of a pool's protocol and health check that cannot work (SPEC 9.1). */
function protocolProblems(name: string, p: RawMap): CrossProblem[] {
  const out: CrossProblem[] = [];
  const hc = isMap(p.healthCheck) ? p.healthCheck : undefined;
  if (hc === undefined || hc.grpc === undefined) return out;
  if (hc.path !== undefined) {
    out.push({ path: ['pools', name, 'healthCheck', 'grpc'], atKey: true, message: 'healthCheck takes either path (a GET) or grpc (grpc.health.v1), not both' });
  }
  if (hc.expectStatus !== undefined) {
    out.push({ path: ['pools', name, 'healthCheck', 'expectStatus'], atKey: true, message: 'expectStatus does not apply to a grpc health check (SERVING passes)' });
  }
  if (p.protocol !== 'http2') {
    out.push({ path: ['pools', name, 'healthCheck', 'grpc'], atKey: true, message: `a grpc health check needs protocol: http2 (pool "${name}" speaks ${typeof p.protocol === 'string' ? p.protocol : 'http1'})` });
  }
  return out;
}
