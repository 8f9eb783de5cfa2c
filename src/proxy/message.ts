import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * What the proxy reads off a client request: the one interface of the three
 * servers (our Http1Server's Http1Request, node:http's IncomingMessage,
 * an HTTP/2 stream's Http2Request, src/http2/stream.ts). The optional members are our servers'
 * fast paths; the proxy takes them where they exist, never by asking which
 * server a request came from.
 */
export interface ProxyRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly socket: Socket;
  readonly complete: boolean;
  /** The body as a stream, made on demand (node:http's requests are the stream themselves). */
  body?(): Readable;
  /** Calls `onTimeout` when no body byte arrives for `ms` (node:http's requests use their socket's timeout). */
  watchBody?(ms: number, onTimeout: () => void): void;
}

/** What the proxy does with a response, on whichever server the request came in. */
export interface ProxyResponse {
  writeHead(status: number, headers: string[]): unknown;
  write(chunk: Buffer): boolean;
  end(data?: string): unknown;
  destroy(err?: Error): unknown;
  on(event: 'close', listener: () => void): unknown;
  once(event: 'finish' | 'drain', listener: () => void): unknown;
  readonly headersSent: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  /**
   * Writes a backend's response head from its raw header list in one pass,
   * dropping hop-by-hop headers (and those `drop` names, lower-cased), `extra` after; false (nothing written) when
   * the caller must filter the headers itself. Our server's fast path.
   */
  writeBackendHead?(status: number, raw: readonly string[], extra: readonly string[] | undefined, drop?: ReadonlySet<string>): boolean;
  /**
   * Trailer fields ([name, value, ...], already held to RFC 9110 by
   * proxy/trailers.ts) to end the body with, before end(). Our server's
   * (node:http's and node:http2's responses have addTrailers).
   */
  writeTrailers?(fields: readonly string[]): void;
}

/** The request body as a stream: node:http's request is one; ours makes one on demand. */
export function bodyStream(req: ProxyRequest): Readable {
  return req.body !== undefined ? req.body() : (req as unknown as Readable);
}
