/**
 * One error family with stable codes, in one table (as fastify's
 * lib/errors.js): each FULCRUM_* code says what kind of failure it is and
 * what it leads to, an exit code at start-up or a status and one-line answer
 * for a request. Callers classify by `.code`, never by `instanceof` (jest
 * runs tests in separate realms, and undici's errors come from another
 * module graph). Node's and undici's own codes join ours in the failure
 * table of src/upstream/errors.ts.
 *
 * Kinds: `startup` and `usage` end the process with `exit`; `client` is the
 * request's own doing (never the backend's); the rest are the failure
 * table's kinds of an attempt on a backend, in the words `retries.on` uses.
 */
export const ERRORS = {
  // Start-up and the command line: a one-line message on stderr, then `exit`.
  /** The config file has problems. */
  FULCRUM_CONFIG_INVALID: { kind: 'startup', exit: 1 },
  /** The config file is missing or unreadable. */
  FULCRUM_CONFIG_UNREADABLE: { kind: 'startup', exit: 1 },
  /** A port cannot be bound. */
  FULCRUM_LISTEN_FAILED: { kind: 'startup', exit: 1 },
  /** An environment variable Fulcrum reads has a value it does not know. */
  FULCRUM_ENV_INVALID: { kind: 'startup', exit: 1 },
  /** A bad command line. */
  FULCRUM_USAGE: { kind: 'usage', exit: 2 },

  // A request's own failures: answered, never counted against a backend.
  /** A chunked body past limits.maxBodySize. */
  FULCRUM_BODY_TOO_LARGE: { kind: 'client', status: 413, message: 'payload too large' },
  /** No body byte for limits.bodyTimeout. */
  FULCRUM_BODY_TIMEOUT: { kind: 'client', status: 408, message: 'request timeout: the body stopped arriving' },
  /** The client went away first (logged as 499, as nginx does). */
  FULCRUM_CLIENT_GONE: { kind: 'client', status: 499, message: 'client closed the connection' },

  // An attempt on a backend (src/upstream/errors.ts holds them with Node's and undici's codes).
  FULCRUM_CONNECT_TIMEOUT: { kind: 'connect-failure', status: 504, message: 'gateway timeout: the backend did not accept the connection in time' },
  FULCRUM_RESPONSE_TIMEOUT: { kind: 'timeout', status: 504, message: 'gateway timeout: the backend did not answer in time' },
  /** The backend closed the connection before the response was complete. */
  FULCRUM_UPSTREAM_CLOSED: { kind: 'reset', status: 502, message: 'bad gateway: the backend closed the connection' },
  /** HTTP/2: the backend refused the stream or never processed it (REFUSED_STREAM, past a GOAWAY): safe to send elsewhere. */
  FULCRUM_STREAM_REFUSED: { kind: 'connect-failure', status: 502, message: 'bad gateway: the backend refused the stream' },
  /** HTTP/2: the backend reset the stream, or its connection ended (GOAWAY with an error, a close) under it. */
  FULCRUM_STREAM_RESET: { kind: 'reset', status: 502, message: 'bad gateway: the backend reset the stream' },
  /** A gRPC call's grpc-timeout ran out (SPEC 9.1: DEADLINE_EXCEEDED). */
  FULCRUM_DEADLINE: { kind: 'timeout', status: 504, message: 'gateway timeout: the call\'s deadline passed' },
  /** The backend's bytes are not HTTP/1.1 (llhttp's HPE_* reason in the error's message). */
  FULCRUM_BAD_RESPONSE: { kind: 'error', status: 502, message: 'bad gateway: the backend failed' },
  /** The client's body did not match its Content-Length, or broke mid-way. */
  FULCRUM_BODY_LENGTH: { kind: 'invalid-request', status: 400, message: 'bad request: the request cannot be forwarded as sent' },
  /** The request cannot be written as HTTP/1.1 (a target with spaces or control characters). */
  FULCRUM_INVALID_REQUEST: { kind: 'invalid-request', status: 400, message: 'bad request: the request cannot be forwarded as sent' },
  /** Our own connection pool was closed under the request (reload, removal, shutdown). */
  FULCRUM_POOL_CLOSED: { kind: 'unavailable', status: 503, message: 'service unavailable: the backend is shutting down' },
  /** A bug in Fulcrum (reported as an internal error; never the backend's fault). */
  FULCRUM_INTERNAL_ERROR: { kind: 'internal', status: 500, message: 'internal error' },
} as const satisfies Record<`FULCRUM_${string}`, ErrorRow>;

interface ErrorRow {
  readonly kind: string;
  readonly exit?: number;
  readonly status?: number;
  readonly message?: string;
}

export type FulcrumErrorCode = keyof typeof ERRORS;

export class FulcrumError extends Error {
  readonly code: FulcrumErrorCode;
  constructor(code: FulcrumErrorCode, message: string) {
    super(message);
    this.name = 'FulcrumError';
    this.code = code;
  }
}

/** A plain Error with one of our codes (as Node's own errors are: classified by `.code`). */
export function fulcrumError(code: FulcrumErrorCode, message: string): Error & { code: FulcrumErrorCode } {
  return Object.assign(new Error(message), { code });
}

/** A position-tagged problem in a config file. `line` and `col` are 1-based. */
export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}

export class ConfigError extends FulcrumError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super('FULCRUM_CONFIG_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

/** An error with one of the table's codes (by `.code`: from any realm). */
export function isFulcrumError(err: unknown): err is FulcrumError {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** The process's exit code for a start-up or usage error. */
export function exitCodeOf(err: FulcrumError): number {
  const row: ErrorRow = ERRORS[err.code];
  return row.exit ?? 1;
}
