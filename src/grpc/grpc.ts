import type { OutgoingHttpHeaders } from 'node:http2';
import type { ProxyRequest, ProxyResponse } from '../proxy/message';

/**
 * gRPC over a proxy (SPEC 9.1): which requests are gRPC calls, their
 * deadline (`grpc-timeout`), and the trailers-only answer Fulcrum gives a
 * call itself, with gRPC's own mapping of HTTP statuses
 * (https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md).
 */

/** gRPC status codes Fulcrum answers with. */
export const GRPC = {
  OK: 0,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** `content-type: application/grpc`, `application/grpc+proto`, `application/grpc-web...`: a gRPC call. */
export function isGrpc(req: ProxyRequest): boolean {
  const type = req.headers['content-type'];
  return type !== undefined && type.startsWith('application/grpc');
}

const TIMEOUT_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** `grpc-timeout` (1 to 8 digits and a unit: H M S m u n) in ms; undefined when absent or malformed. */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * TIMEOUT_UNITS[m[2]!]!;
}

/** The time left as a `grpc-timeout` value: milliseconds while they fit in 8 digits, else seconds. */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(0, Math.floor(ms));
  return whole <= 99_999_999 ? `${whole}m` : `${Math.min(99_999_999, Math.floor(whole / 1000))}S`;
}

/** SPEC 9.1's mapping of the HTTP status Fulcrum would answer with; `deadline` for a call whose time ran out. */
export function grpcStatusFor(httpStatus: number, deadline = false): number {
  if (deadline || httpStatus === 504) return GRPC.DEADLINE_EXCEEDED;
  switch (httpStatus) {
    case 401: return GRPC.UNAUTHENTICATED;
    case 403: return GRPC.PERMISSION_DENIED;
    case 404: return GRPC.UNIMPLEMENTED;
    case 429: case 502: case 503: return GRPC.UNAVAILABLE;
    default: return GRPC.UNKNOWN;
  }
}

/** grpc-message is percent-encoded: everything outside visible ASCII and space, and `%` itself. */
export function encodeGrpcMessage(message: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(message) ? message : Buffer.from(message, 'utf8').reduce((s, b) => s + (b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`), '');
}

/**
 * Fulcrum's own answer to a gRPC call: HTTP 200 and the status in one
 * HEADERS frame with END_STREAM (a trailers-only response). Over HTTP/1.1
 * (not what gRPC clients use) the same fields as headers of an empty 200.
 * Returns the gRPC status sent.
 */
export function sendGrpcLocal(res: ProxyResponse, httpStatus: number, message: string, deadline = false): number {
  const status = grpcStatusFor(httpStatus, deadline);
  const fields = ['content-type', 'application/grpc', 'grpc-status', String(status), 'grpc-message', encodeGrpcMessage(message)];
  if (!endWithHeaders(res, 200, fields)) {
    res.writeHead(200, [...fields, 'content-length', '0']);
    res.end();
  }
  return status;
}

/** The grpc-status in a flat header list (trailers, or a trailers-only response's headers); undefined if none. */
export function grpcStatusIn(flat: readonly string[]): string | undefined {
  for (let i = 0; i < flat.length; i += 2) {
    // Only a number: it becomes a metric label and goes into the access log unquoted by JSON.
    if (flat[i]!.length === 11 && flat[i]!.toLowerCase() === 'grpc-status') return /^\d{1,3}$/.test(flat[i + 1]!) ? flat[i + 1] : '2';
  }
  return undefined;
}

interface Http2Like {
  readonly stream?: { headersSent: boolean; destroyed: boolean; respond(headers: OutgoingHttpHeaders, options: { endStream: boolean }): void };
}

/**
 * An HTTP/2 response of headers alone: one HEADERS frame with END_STREAM
 * (respond() and then end() would send an empty DATA frame after it).
 * False, nothing sent, when `res` is not an HTTP/2 response.
 */
export function endWithHeaders(res: ProxyResponse, status: number, flat: readonly string[]): boolean {
  const stream = (res as unknown as Http2Like).stream;
  if (stream === undefined || stream.headersSent || stream.destroyed) return false;
  const headers: OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const had = headers[name];
    headers[name] = had === undefined ? flat[i + 1]! : Array.isArray(had) ? [...had, flat[i + 1]!] : [String(had), flat[i + 1]!];
  }
  stream.respond(headers, { endStream: true });
  return true;
}

/**
 * Ends an HTTP/2 response whose headers are out with trailers: how a call
 * the backend broke mid-stream ends for its client (UNAVAILABLE, or
 * DEADLINE_EXCEEDED), rather than a bare RST_STREAM that gRPC reads as INTERNAL.
 */
export function endWithTrailers(res: ProxyResponse, trailers: readonly string[]): boolean {
  const stream = (res as unknown as Http2Like).stream;
  if (stream === undefined || stream.destroyed || res.writeTrailers === undefined) return false;
  res.writeTrailers(trailers);
  res.end();
  return true;
}
