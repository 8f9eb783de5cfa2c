import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { ProxyRequest, ProxyResponse } from '../proxy/message';
import { connectionTokens, HTTP2_FORBIDDEN, RESPONSE_DROP } from '../proxy/headers';

/**
 * An HTTP/2 client's stream as the proxy's request and response (SPEC 9.2),
 * read straight off node:http2's core API. node:http2's compatibility layer
 * (Http2ServerRequest and Http2ServerResponse) wraps every stream in two
 * more streams and relays each event through them: on Node 26 it cost 20 of
 * the 68 µs a minimal h2-to-h2 proxy spends per request. These two objects
 * relay nothing: the body is the stream itself, the response writes on it.
 */

/** Response headers HTTP/2 forbids; node:http2 throws on them, so they are dropped here (TE means nothing in a response). */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([...HTTP2_FORBIDDEN, 'te']);
/** A backend's response head: the hop-by-hop headers of every response, and what HTTP/2 forbids. */
const BACKEND_SKIP: ReadonlySet<string> = new Set([...RESPONSE_DROP, ...CONNECTION_SPECIFIC]);

const WAIT_FOR_TRAILERS = { waitForTrailers: true } as const;
const END_STREAM = { endStream: true } as const;

/** What the listener does with each stream: its request and its response. */
export type StreamHandler = (req: Http2Request, res: Http2Response) => void;

export class Http2Request implements ProxyRequest {
  readonly stream: ServerHttp2Stream;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** As received, pseudo-headers included (the header passes skip them). */
  readonly rawHeaders: string[];
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) {
    this.stream = stream;
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.method = headers[':method'] as string | undefined;
    this.url = headers[':path'] as string | undefined;
  }

  /** node:http2's stand-in for the connection's socket (remote and local address, PROXY protocol marks). */
  get socket(): Socket {
    return this.stream.session!.socket as Socket;
  }

  /** The client sent all of its request (or the stream is gone). */
  get complete(): boolean {
    const s = this.stream;
    return s.endAfterHeaders || s.readableEnded || s.destroyed;
  }

  /** A reset stream, or one the client abandoned before its request ended. */
  get aborted(): boolean {
    return this.stream.aborted || (this.stream.rstCode ?? 0) !== 0;
  }

  body(): Readable {
    return this.stream;
  }

  watchBody(ms: number, onTimeout: () => void): void {
    const stream = this.stream;
    stream.setTimeout(ms, onTimeout);
    const disarm = () => stream.setTimeout(0);
    stream.once('end', disarm);
    stream.once('close', disarm);
  }
}

export class Http2Response implements ProxyResponse {
  readonly stream: ServerHttp2Stream;
  /** The client can take trailers (it said `TE: trailers`, as every gRPC client does). */
  readonly #trailersAsked: boolean;
  #trailers: OutgoingHttpHeaders | undefined;

  constructor(stream: ServerHttp2Stream, req: Http2Request) {
    this.stream = stream;
    this.#trailersAsked = req.headers.te === 'trailers';
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /**
   * Trailers need node:http2 to hold the end of the stream back (one more
   * event and frame per response), so they are awaited only when they can
   * come and be taken: the client asked for them, or the response is gRPC or
   * announces them with a Trailer field. Otherwise a backend's unannounced
   * trailers are dropped, as RFC 9110 §6.5.1 lets a recipient do.
   */
  writeHead(status: number, flat: readonly string[]): this {
    const stream = this.stream;
    if (stream.headersSent || stream.destroyed) return this;
    const headers: OutgoingHttpHeaders = { ':status': status };
    const trailers = addHeaders(headers, flat, CONNECTION_SPECIFIC, undefined);
    this.#respond(headers, trailers || this.#trailersAsked);
    return this;
  }

  /**
   * A backend's response head in one pass from its raw list: hop-by-hop
   * headers go (as forwardResponseHeaders drops them, a Trailer field
   * noted first), then those `drop` names; `extra` follows. False, nothing
   * written, when a Connection header names more headers to drop.
   */
  writeBackendHead(status: number, raw: readonly string[], extra: readonly string[] | undefined, drop?: ReadonlySet<string>): boolean {
    const stream = this.stream;
    if (stream.headersSent || stream.destroyed) return true;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection' && connectionTokens(raw[i + 1]) !== undefined) return false;
    }
    const headers: OutgoingHttpHeaders = { ':status': status };
    let trailers = addHeaders(headers, raw, BACKEND_SKIP, drop);
    if (extra !== undefined) trailers = addHeaders(headers, extra, CONNECTION_SPECIFIC, undefined) || trailers;
    this.#respond(headers, trailers || this.#trailersAsked);
    return true;
  }

  #respond(headers: OutgoingHttpHeaders, trailers: boolean): void {
    const stream = this.stream;
    if (!trailers) {
      stream.respond(headers);
      return;
    }
    stream.respond(headers, WAIT_FOR_TRAILERS);
    stream.once('wantTrailers', () => {
      try {
        stream.sendTrailers(this.#trailers ?? {});
      } catch {
        // The stream was reset meanwhile: nothing is left to end.
      }
    });
  }

  /** Trailers for the end of the response, flat (a backend's, gRPC's grpc-status); sent only where writeHead awaited them. */
  writeTrailers(fields: readonly string[]): void {
    addHeaders(this.#trailers ??= {}, fields, CONNECTION_SPECIFIC, undefined);
  }

  write(chunk: Buffer): boolean {
    const stream = this.stream;
    // HEAD, 204 and 304: node:http2 ended the stream with the headers.
    if (stream.writableEnded || stream.destroyed) return true;
    return stream.write(chunk);
  }

  end(data?: string | Buffer): this {
    const stream = this.stream;
    if (!stream.headersSent && !stream.destroyed) stream.respond({ ':status': 200 }, data === undefined ? END_STREAM : undefined);
    if (stream.writableEnded || stream.destroyed) return this;
    if (data === undefined) stream.end();
    else stream.end(data);
    return this;
  }

  destroy(err?: Error): this {
    this.stream.destroy(err);
    return this;
  }

  on(event: 'close', listener: () => void): this {
    this.stream.on(event, listener);
    return this;
  }

  once(event: 'finish' | 'drain', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }
}

/**
 * Adds a flat [name, value, ...] list to an HTTP/2 header object (names
 * lower-cased, repeats as arrays), leaving out the names in `skip` and
 * `drop`. True when the list says trailers may follow: a Trailer field, or a
 * gRPC content-type.
 */
function addHeaders(headers: OutgoingHttpHeaders, flat: readonly string[], skip: ReadonlySet<string>, drop: ReadonlySet<string> | undefined): boolean {
  let trailers = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (name === 'trailer' || (name === 'content-type' && value.startsWith('application/grpc'))) trailers = true;
    if (skip.has(name) || (drop !== undefined && drop.has(name))) continue;
    const had = headers[name];
    if (had === undefined) headers[name] = value;
    else if (Array.isArray(had)) had.push(value);
    else headers[name] = [had as string, value];
  }
  return trailers;
}

/**
 * A server's streams served by `handler` through the two objects above;
 * CONNECT goes to `connect`, and Expect is answered as node:http2's
 * compatibility layer did: 100 Continue for `100-continue`, 417 otherwise.
 */
export function serveStreams(server: http2.Http2Server | http2.Http2SecureServer, handler: StreamHandler, connect: StreamHandler): void {
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
    // A stream nobody else listens to must not take the process down with its error.
    stream.on('error', ignore);
    const req = new Http2Request(stream, headers, raw);
    const res = new Http2Response(stream, req);
    if (req.method === 'CONNECT') {
      connect(req, res);
      return;
    }
    const expect = headers.expect;
    if (expect !== undefined) {
      if (expect.toLowerCase() !== '100-continue') {
        stream.respond({ ':status': 417 }, END_STREAM);
        return;
      }
      stream.additionalHeaders({ ':status': 100 });
    }
    handler(req, res);
  });
}

function ignore(): void {}
