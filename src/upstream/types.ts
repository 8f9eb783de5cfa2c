import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { fulcrumError, type FulcrumErrorCode } from '../errors';

/**
 * What carries requests to one backend, whatever speaks the protocol: our own
 * HTTP/1.1 client (src/http1/client.ts) for http:// backends, undici
 * (undici.ts) for https:// ones and for the fallback path. The proxy
 * (src/proxy/exchange.ts) knows only this.
 */

/** What the proxy hears of one request. After onComplete or onError nothing more is called. */
export interface UpstreamHandler {
  /**
   * The final response's status and headers, flat [name, value, ...] as sent. Never called for 1xx.
   * `endStream`: HTTP/2 only, the response is these headers alone (a gRPC trailers-only answer).
   */
  onHeaders(status: number, headers: readonly string[], endStream?: boolean): void;
  /** A piece of the response body; false stops reading until `resume()`. */
  onData(chunk: Buffer): boolean;
  /** The response's trailers, flat, just before onComplete (gRPC's grpc-status lives there; HTTP/1.1: a chunked body's trailer section). */
  onTrailers?(trailers: readonly string[]): void;
  onComplete(): void;
  /** The attempt failed or was aborted; `err.code` says why (see errors.ts). */
  onError(err: Error): void;
}

export interface UpstreamRequest {
  readonly method: string;
  /** Origin-form target, as it goes on the request line. */
  readonly path: string;
  /** Flat [name, value, ...]; Content-Length, if any, describes `body`. Hop-by-hop headers already gone. */
  readonly headers: readonly string[];
  readonly body: Readable | null;
  /** The client connection it came on: pool proxyProtocol keeps each client's backend connections apart (upstream/per-client.ts). */
  readonly client?: Socket;
  /** A route's timeouts (SPEC 8.1), overriding the backend's for this request; undefined: the backend's. */
  readonly connectMs?: number;
  readonly responseMs?: number;
}

/** A request in flight. */
export interface UpstreamCall {
  /** End the attempt: the handler's onError gets `err` (unless it already ended). */
  abort(err: Error): void;
  /** Read on after onData returned false. */
  resume(): void;
}

/** What carries requests to one backend: this client for http://, undici for https://. */
export interface Upstream {
  /** Never calls the handler before it returns. */
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall;
  /** No new requests; resolves when those in flight or waiting are done and every connection is closed. */
  close(): Promise<void>;
}

export interface UpstreamOptions {
  /** Most connections at once; 0 = no limit. */
  readonly connections: number;
  /** ms an unused connection is kept; 0 = a new connection per request. */
  readonly idleMs: number;
  readonly connectMs: number;
  /** ms from the end of the request to the response headers; 0 = no limit. */
  readonly responseMs: number;
}

/** The codes (src/errors.ts) our own clients fail an attempt with; upstream/errors.ts classifies them with Node's and undici's. */
export const UPSTREAM_ERRORS = {
  CONNECT_TIMEOUT: 'FULCRUM_CONNECT_TIMEOUT',
  RESPONSE_TIMEOUT: 'FULCRUM_RESPONSE_TIMEOUT',
  /** The backend closed the connection before the response was complete. */
  CLOSED: 'FULCRUM_UPSTREAM_CLOSED',
  /** The backend's bytes are not HTTP/1.1 (llhttp's HPE_* reason in the message). */
  BAD_RESPONSE: 'FULCRUM_BAD_RESPONSE',
  /** The client's body did not match its Content-Length. */
  BODY_LENGTH: 'FULCRUM_BODY_LENGTH',
  /** The request cannot be written as HTTP/1.1 (a target with spaces or control characters). */
  INVALID_REQUEST: 'FULCRUM_INVALID_REQUEST',
  /** The client was closed (reload, removal, shutdown). */
  POOL_CLOSED: 'FULCRUM_POOL_CLOSED',
  /** A bug in Fulcrum while this response was read (reported as an internal error; never the backend's fault). */
  INTERNAL: 'FULCRUM_INTERNAL_ERROR',
} as const satisfies Record<string, FulcrumErrorCode>;

export function upstreamError(code: FulcrumErrorCode, message: string): Error {
  return fulcrumError(code, message);
}
