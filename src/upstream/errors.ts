import { ERRORS, type FulcrumErrorCode } from '../errors';
import { UPSTREAM_ERRORS } from './types';

/**
 * The one place where an upstream failure becomes a status code. Projects
 * disagree here (reply-from sends ENOTFOUND to 503, http-proxy-middleware sends
 * ECONNREFUSED to 504); ours follows SPEC section 4 and is pinned by a table test.
 */

/** What went wrong, in the words `retries.on` uses. */
export type FailureKind = 'connect-failure' | 'reset' | 'timeout' | 'unavailable' | 'invalid-request' | 'local-resource' | 'internal' | 'error';

export interface UpstreamFailure {
  readonly kind: FailureKind;
  readonly status: 400 | 500 | 502 | 503 | 504;
  /** One line for the client and the log. */
  readonly message: string;
}

/** A row of src/errors.ts as the failure table holds it. */
function ours(code: FulcrumErrorCode): UpstreamFailure {
  const row = ERRORS[code] as { kind: FailureKind; status: UpstreamFailure['status']; message: string };
  return { kind: row.kind, status: row.status, message: row.message };
}

// Node's and undici's codes share the rows of ours that mean the same.
const CONNECT_FAILURE: UpstreamFailure = { kind: 'connect-failure', status: 502, message: 'bad gateway: could not connect to the backend' };
const CONNECT_TIMEOUT = ours('FULCRUM_CONNECT_TIMEOUT');
const RESET = ours('FULCRUM_UPSTREAM_CLOSED');
const RESPONSE_TIMEOUT = ours('FULCRUM_RESPONSE_TIMEOUT');
const UNAVAILABLE = ours('FULCRUM_POOL_CLOSED');
const INVALID = ours('FULCRUM_INVALID_REQUEST');
const INTERNAL = ours('FULCRUM_INTERNAL_ERROR');
const LOCAL: UpstreamFailure = { kind: 'local-resource', status: 503, message: 'service unavailable: the proxy is out of file descriptors or memory' };
const OTHER = ours('FULCRUM_BAD_RESPONSE');

// Codes of our own HTTP/1.1 client (src/http1/client.ts) and of undici (https:// backends, WebSocket).
const BY_CODE: Readonly<Record<string, UpstreamFailure>> = {
  // Nothing reached the backend: always safe to try another one.
  ECONNREFUSED: CONNECT_FAILURE,
  EHOSTUNREACH: CONNECT_FAILURE,
  ENETUNREACH: CONNECT_FAILURE,
  EHOSTDOWN: CONNECT_FAILURE,
  ENOTFOUND: CONNECT_FAILURE,
  EAI_AGAIN: CONNECT_FAILURE,
  EADDRNOTAVAIL: CONNECT_FAILURE,
  UND_ERR_CONNECT_TIMEOUT: CONNECT_TIMEOUT,
  [UPSTREAM_ERRORS.CONNECT_TIMEOUT]: CONNECT_TIMEOUT,
  // The connection broke after the request (or part of it) went out.
  ECONNRESET: RESET,
  EPIPE: RESET,
  ECONNABORTED: RESET,
  UND_ERR_SOCKET: RESET,
  [UPSTREAM_ERRORS.CLOSED]: RESET,
  // HTTP/2 (src/http2/client.ts): a stream never processed may go elsewhere; a reset is a reset.
  FULCRUM_STREAM_REFUSED: ours('FULCRUM_STREAM_REFUSED'),
  FULCRUM_STREAM_RESET: ours('FULCRUM_STREAM_RESET'),
  ERR_HTTP2_STREAM_ERROR: RESET,
  ERR_HTTP2_SESSION_ERROR: RESET,
  ERR_HTTP2_GOAWAY_SESSION: RESET,
  ERR_HTTP2_STREAM_CANCEL: RESET,
  ERR_HTTP2_INVALID_SESSION: RESET,
  ERR_HTTP2_ERROR: RESET,
  // No response headers within timeouts.response (or a gRPC call's deadline).
  FULCRUM_DEADLINE: ours('FULCRUM_DEADLINE'),
  UND_ERR_HEADERS_TIMEOUT: RESPONSE_TIMEOUT,
  ETIMEDOUT: RESPONSE_TIMEOUT,
  [UPSTREAM_ERRORS.RESPONSE_TIMEOUT]: RESPONSE_TIMEOUT,
  // Our own dispatcher was closed (reload, shutdown) under the request.
  UND_ERR_CLOSED: UNAVAILABLE,
  UND_ERR_DESTROYED: UNAVAILABLE,
  [UPSTREAM_ERRORS.POOL_CLOSED]: UNAVAILABLE,
  // undici refused the request before sending it (e.g. a duplicate Host):
  // the client's doing, never counted against the backend.
  UND_ERR_INVALID_ARG: INVALID,
  UND_ERR_NOT_SUPPORTED: INVALID,
  // The client's body did not match its own Content-Length (HTTP/2 clients can send that).
  [UPSTREAM_ERRORS.BODY_LENGTH]: INVALID,
  [UPSTREAM_ERRORS.INVALID_REQUEST]: INVALID,
  // A bug of ours (reported as an internal error), never the backend's doing.
  [UPSTREAM_ERRORS.INTERNAL]: INTERNAL,
  // Fulcrum itself could not open a socket (issue 20, F3: an fd flood marked
  // healthy backends down). Says nothing about the backend, and another one
  // would fail the same way: no retry.
  EMFILE: LOCAL,
  ENFILE: LOCAL,
  ENOMEM: LOCAL,
  ENOBUFS: LOCAL,
};

/** Failures that say nothing about the backend's health. */
export function blamesBackend(kind: FailureKind): boolean {
  return kind !== 'unavailable' && kind !== 'invalid-request' && kind !== 'local-resource' && kind !== 'internal';
}

/** A local resource failure (EMFILE, ENFILE, ENOMEM, ENOBUFS): never counted against a backend. */
export function isLocalResourceError(err: unknown): boolean {
  return classifyUpstreamError(err) === LOCAL;
}

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return (typeof code === 'string' && BY_CODE[code]) || OTHER;
}
