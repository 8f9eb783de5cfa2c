import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { Http1Request } from './http1';

/**
 * What the proxy reads off a client request. node:http's IncomingMessage,
 * node:http2's compatibility request and our Http1Request all have it.
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
}

/** The request body as a stream: node:http's request is one; ours makes one on demand. */
export function bodyStream(req: ProxyRequest): Readable {
  return req instanceof Http1Request ? req.body() : (req as unknown as Readable);
}
