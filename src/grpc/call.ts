import type { ProxyRequest, ProxyResponse } from '../proxy/message';
import { fulcrumError } from '../errors';
import { encodeGrpcMessage, endWithHeaders, endWithTrailers, formatGrpcTimeout, grpcStatusFor, grpcStatusIn, isGrpc, parseGrpcTimeout } from './grpc';

/** What a GrpcCall needs of its exchange: to be told the deadline passed. */
export interface DeadlineTarget {
  deadline(err: Error): void;
}

/** gRPC's CANCELLED: the client went away. */
const CANCELLED = '1';

/**
 * What a gRPC call to an http2 pool adds to an Exchange (SPEC 9.1): the
 * client's `grpc-timeout` bounds the whole call, retries included, and each
 * attempt tells its backend the time left; the response's trailers go on to
 * the client; a call the backend breaks mid-stream ends with its status in
 * trailers; and the grpc-status the client got is what the access log and
 * metrics record.
 */
export class GrpcCall {
  /** performance.now() at which the call's time is up; undefined without grpc-timeout. */
  readonly #deadlineAt: number | undefined;
  /** Where the forwarded grpc-timeout's value sits in the request's header list. */
  readonly #timeoutAt: number;
  readonly #headers: string[];
  #timer: NodeJS.Timeout | undefined;
  #status: string | undefined;
  #httpStatus = 0;
  /** The deadline passed: no retry, DEADLINE_EXCEEDED. */
  expired = false;

  /** A GrpcCall for a gRPC request (and `te: trailers` kept for the backend); null for any other request. */
  static of(req: ProxyRequest, headers: string[], startedAt: number, target: DeadlineTarget): GrpcCall | null {
    keepTrailersTe(req, headers);
    return isGrpc(req) ? new GrpcCall(req, headers, startedAt, target) : null;
  }

  private constructor(req: ProxyRequest, headers: string[], startedAt: number, target: DeadlineTarget) {
    this.#headers = headers;
    const ms = parseGrpcTimeout(req.headers['grpc-timeout']);
    this.#timeoutAt = -1;
    if (ms === undefined) return;
    this.#deadlineAt = startedAt + ms;
    for (let i = 0; i < headers.length; i += 2) {
      if (headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'grpc-timeout') this.#timeoutAt = i + 1;
    }
    const left = Math.max(0, this.#deadlineAt - performance.now());
    this.#timer = setTimeout(() => {
      this.expired = true;
      target.deadline(fulcrumError('FULCRUM_DEADLINE', `grpc-timeout of ${req.headers['grpc-timeout']} passed`));
    }, left);
  }

  /** Before each attempt: the backend hears the time left, not the time the client first gave. */
  beforeAttempt(): void {
    if (this.#deadlineAt === undefined || this.#timeoutAt === -1) return;
    this.#headers[this.#timeoutAt] = formatGrpcTimeout(this.#deadlineAt - performance.now());
  }

  onHeaders(flat: readonly string[]): void {
    this.#status = grpcStatusIn(flat);
  }

  /** The backend answered with headers alone (trailers-only): the client gets the same single frame. */
  endWithHeaders(res: ProxyResponse, status: number, flat: readonly string[]): boolean {
    this.#httpStatus = status;
    return endWithHeaders(res, status, flat);
  }

  /** The backend's trailers: their grpc-status is the call's. */
  onTrailers(flat: readonly string[]): void {
    this.#status = grpcStatusIn(flat) ?? this.#status;
  }

  /** The response broke after its headers went out: end it with a status (true) rather than a reset. */
  endBroken(res: ProxyResponse, httpStatus: number, message: string): boolean {
    const status = String(grpcStatusFor(httpStatus, this.expired));
    if (!endWithTrailers(res, ['grpc-status', status, 'grpc-message', encodeGrpcMessage(message)])) return false;
    this.#status = status;
    return true;
  }

  /** The exchange is over. */
  end(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The grpc-status the client got: the backend's, or what its HTTP status maps to; CANCELLED if the client left. */
  status(clientGone: boolean, httpStatus: number): string {
    if (clientGone) return CANCELLED;
    if (this.#status !== undefined) return this.#status;
    const http = this.#httpStatus || httpStatus;
    return http === 200 || http === 0 ? '' : String(grpcStatusFor(http));
  }
}

/** SPEC 9.1: `te: trailers` is the one TE value passed on, and only to http2 backends (the header passes drop TE). */
function keepTrailersTe(req: ProxyRequest, headers: string[]): void {
  const te = req.headers.te;
  if (te !== undefined && /(^|,)\s*trailers\s*(;|,|$)/i.test(String(te))) headers.push('te', 'trailers');
}
