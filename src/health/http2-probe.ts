import type { BackendEdge } from '../pool/backend';
import { backendTlsOptions } from '../upstream/backend-tls';
import http2, { type IncomingHttpHeaders } from 'node:http2';
import type { HealthCheckConfig } from '../config/types';
import { isLocalResourceError } from '../upstream/errors';
import type { ProbeOutcome } from './active';

/**
 * Probes for pools with `protocol: http2` (SPEC 9.1): a GET on `path` over
 * HTTP/2, or `grpc.health.v1.Health/Check` for `healthCheck.grpc`, where
 * SERVING passes. Each probe opens its own session (as HTTP/1.1 probes open
 * their own connection: a probe also tests that the backend accepts new
 * ones), bounded by `timeoutMs`.
 */

const CHECK_PATH = '/grpc.health.v1.Health/Check';

/** grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING */
const SERVING = 1;
const STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** A HealthCheckRequest { string service = 1; } as one gRPC message (uncompressed, length-prefixed). */
export function healthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const field = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(field.length, 1);
  return Buffer.concat([prefix, field]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** The `status` of a HealthCheckResponse message (after its 5-byte prefix); 0 (UNKNOWN) when absent. */
export function servingStatus(body: Buffer): number {
  if (body.length < 5) return -1;
  const end = Math.min(body.length, 5 + body.readUInt32BE(1));
  let i = 5;
  while (i < end) {
    const key = body[i++]!;
    if (key === 0x08) {
      let v = 0;
      let shift = 0;
      while (i < end) {
        const b = body[i++]!;
        v |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) return v;
        shift += 7;
      }
      return -1;
    }
    // Another field: skip it by its wire type (varint, 64-bit, length-delimited, 32-bit).
    const type = key & 7;
    if (type === 0) while (i < end && (body[i++]! & 0x80) !== 0);
    else if (type === 1) i += 8;
    else if (type === 5) i += 4;
    else if (type === 2) {
      let len = 0;
      let shift = 0;
      while (i < end) {
        const b = body[i++]!;
        len |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) break;
        shift += 7;
      }
      i += len;
    } else return -1;
  }
  return 0;
}

export function probeHttp2(url: string, config: HealthCheckConfig, edge: BackendEdge = {}): Promise<ProbeOutcome> {
  const started = performance.now();
  const grpc = config.grpc;
  return new Promise((resolve) => {
    let settled = false;
    const session = http2.connect(url, { ...(edge.tls === undefined ? { rejectUnauthorized: false } : backendTlsOptions(edge.tls)), settings: { enablePush: false } });
    const done = (o: Omit<ProbeOutcome, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve({ ...o, latencyMs: Math.round((performance.now() - started) * 100) / 100 });
    };
    const timer = setTimeout(() => done({ ok: false, error: `timed out after ${config.timeoutMs}ms` }), config.timeoutMs);
    session.on('error', (err: NodeJS.ErrnoException) => done(isLocalResourceError(err)
      ? { ok: false, error: `not probed: ${err.code} (Fulcrum is out of file descriptors or memory)`, localCode: err.code }
      : { ok: false, error: describe(err) }));
    const stream = grpc === undefined
      ? session.request({ ':method': 'GET', ':path': config.path, 'user-agent': 'fulcrum-health-check' }, { endStream: true })
      : session.request({
          ':method': 'POST', ':path': CHECK_PATH, 'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'fulcrum-health-check',
        });
    stream.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: describe(err) }));
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    stream.on('response', (h) => {
      headers = h;
      status = Number(h[':status']);
      if (grpc === undefined) {
        const ok = config.expectStatus.some(([lo, hi]) => status >= lo && status <= hi);
        done(ok ? { ok, status } : { ok, status, error: `status ${status}` });
      }
    });
    if (grpc === undefined) return;
    stream.on('data', (chunk: Buffer) => body.push(chunk));
    let trailers: IncomingHttpHeaders = {};
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.on('end', () => {
      const code = trailers['grpc-status'] ?? headers['grpc-status'];
      if (status !== 200) return done({ ok: false, status, error: `status ${status}` });
      if (code !== '0') {
        const message = trailers['grpc-message'] ?? headers['grpc-message'];
        return done({ ok: false, status, error: `grpc-status ${String(code)}${message !== undefined ? `: ${decodeURIComponent(String(message))}` : ''}` });
      }
      const serving = servingStatus(Buffer.concat(body));
      done(serving === SERVING ? { ok: true, status } : { ok: false, status, error: `health: ${STATUS_NAMES[serving] ?? `status ${serving}`}` });
    });
    stream.end(healthCheckRequest(grpc.service));
  });
}

function describe(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connect refused';
    case 'ECONNRESET': return 'connection reset';
    default: return err.message || String(err.code);
  }
}
