import type { ProxyResponse } from './message';
import { RESPONSE_DROP } from './headers';

/**
 * A backend's trailer fields (RFC 9110 §6.5: gRPC's grpc-status and
 * grpc-message, checksums...) on their way to the client, whichever
 * protocol either side speaks:
 *
 * - HTTP/2 clients get them as the response's trailing HEADERS frame.
 * - HTTP/1.1 clients get them as the trailer section of a chunked response
 *   (RFC 9112 §7.1.2), whether or not the request said `TE: trailers`.
 *   That is what HAProxy does (its HTTP/1 mux writes the trailers of any
 *   chunked message it forwards) and what node:http's addTrailers and Go's
 *   ReverseProxy do; Envoy drops them unless its HTTP/1 codec has
 *   `enable_trailers`. Every HTTP/1.1 recipient of a chunked message must
 *   read a trailer section and may discard what it does not want (RFC 9112
 *   §7.1.2), so sending them never breaks a client; `TE: trailers` only says
 *   it wants them. A response framed by Content-Length, to HEAD, or to an
 *   HTTP/1.0 client has no place for them: they are dropped.
 *
 * Runs only for responses that came with trailers.
 */

/** Never forwarded as trailers: hop-by-hop and framing fields (RFC 9110 §6.5.1), which HTTP/2 also forbids. */
const TRAILER_DROP: ReadonlySet<string> = new Set([...RESPONSE_DROP, 'content-length', 'host']);

/** RFC 9110 §5.1 token, and §5.5 field-value characters (what node:http's addTrailers checks, so it never throws). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** The fields of a backend's flat [name, value, ...] trailers that may go on, names lower-cased; [] when none may. */
export function forwardableTrailers(flat: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (TRAILER_DROP.has(name) || !TOKEN.test(name) || BAD_VALUE.test(value)) continue;
    out.push(name, value);
  }
  return out;
}

interface NodeResponse {
  /** node:http's ServerResponse. */
  addTrailers?(trailers: [string, string][]): void;
}

/** Hands `flat` (the backend's trailers) to the client's response, to go out when it ends. */
export function sendTrailers(res: ProxyResponse, flat: readonly string[]): void {
  const fields = forwardableTrailers(flat);
  if (fields.length === 0) return;
  // Our own HTTP/1.1 server, HTTP/2 streams (src/http2/stream.ts), and compress's wrapper around any response.
  if (res.writeTrailers !== undefined) {
    res.writeTrailers(fields);
    return;
  }
  const r = res as unknown as NodeResponse;
  if (typeof r.addTrailers !== 'function') return;
  // node:http writes these in a chunked response only (the trailer section after the last chunk).
  const pairs: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i]!, fields[i + 1]!]);
  r.addTrailers(pairs);
}
