import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxyRequest, ProxyResponse } from '../proxy/message';
import { UPSTREAM_ERRORS } from '../upstream/types';

/**
 * What listeners served by node:http's HTTP/1.1 code (TLS listeners, and the
 * FULCRUM_HTTP1=node fallback) need so that a parse error on a connection
 * with requests in flight is answered as Http1Server answers it, in order:
 *
 * node:http emits 'clientError' the moment its parser fails, even while the
 * responses to earlier pipelined requests are still being written; writing a
 * 400 then would answer the wrong request, and a request whose body broke
 * would wait for the rest of it forever. So each such socket counts its
 * responses not yet finished and remembers the chunked body still arriving
 * (only a chunked body can break half-way: Content-Length bytes are opaque).
 * On a parse error that body is ended with a client error (its request's own
 * answer is a 400, nothing is blamed on the backend; node:http's request
 * object itself cannot be failed without destroying the socket), the
 * responses before it finish, and only then is the 400 written (or, if the
 * broken request got its own answer, the connection closed).
 *
 * Cost: a counter and one 'close' listener per request, on these listeners
 * only (Http1Server does this in its connection code).
 */

const IN_FLIGHT = Symbol('fulcrum.inFlight');
const RECEIVING = Symbol('fulcrum.receiving');
/** Once IN_FLIGHT is 0: the error answer to write, or null to just close. */
const THEN = Symbol('fulcrum.then');
/** On a response: its socket (node:http sets the request's and the response's to null once they are done). */
const SOCKET = Symbol('fulcrum.socket');

interface Tracked {
  [IN_FLIGHT]?: number;
  [RECEIVING]?: { readonly req: ProxyRequest; readonly body: Duplex };
  [THEN]?: string | null;
  destroySoon?: () => void;
  end(data?: string): unknown;
}


/** Note a request on a node:http socket (call before anything answers it). */
export function trackRequest(req: ProxyRequest, res: ProxyResponse): void {
  const s = req.socket as unknown as Tracked;
  s[IN_FLIGHT] = (s[IN_FLIGHT] ?? 0) + 1;
  (res as unknown as { [SOCKET]: Tracked })[SOCKET] = s;
  res.on('close', onResponseClosed);
}

/** `body`: the stream a chunked request body reaches the backend through (not the request itself). */
export function trackChunkedBody(req: ProxyRequest, body: Duplex): void {
  const s = req.socket as unknown as Tracked;
  s[RECEIVING] = { req, body };
  (req as unknown as Duplex).on('end', onBodyReceived);
}

function onBodyReceived(this: ProxyRequest): void {
  const s = this.socket as unknown as Tracked | null;
  if (s !== null && s[RECEIVING]?.req === this) s[RECEIVING] = undefined;
}

function onResponseClosed(this: ServerResponse & { [SOCKET]: Tracked }): void {
  const s = this[SOCKET];
  const left = (s[IN_FLIGHT] ?? 1) - 1;
  s[IN_FLIGHT] = left;
  if (left > 0 || s[THEN] === undefined) return;
  const then = s[THEN];
  s[THEN] = undefined;
  if (then === null) s.destroySoon?.();
  else s.end(then);
}

/**
 * A parse error on `socket`: true when it is handled here (answers are in
 * flight; `answer`, a whole HTTP/1.1 response, follows them, or the broken
 * request's own answer does); false when nothing is in flight and the caller
 * answers at once.
 */
export function deferClientError(socket: Duplex, answer: string): boolean {
  const s = socket as unknown as Tracked;
  // node:http reports its parser's error again for every later read: the first one decided.
  if (s[THEN] !== undefined) return true;
  if ((s[IN_FLIGHT] ?? 0) === 0) return false;
  const broken = s[RECEIVING];
  s[RECEIVING] = undefined;
  if (broken !== undefined && !broken.req.complete) {
    s[THEN] = null;
    // The client's error, never the backend's: a 400 in the failure table.
    broken.body.destroy(Object.assign(new Error('the request body is not valid HTTP/1.1'), { code: UPSTREAM_ERRORS.BODY_LENGTH }));
  } else {
    s[THEN] = answer;
  }
  return true;
}
