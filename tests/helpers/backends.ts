import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import http2, { type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface TestBackend {
  readonly name: string;
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Requests this backend saw, in order (headers as received). */
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Default handler: 200 with the backend's name in the body and `x-backend`. */
export function nameHandler(name: string): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(name);
    });
  };
}

/** A real node:http backend on 127.0.0.1, port 0 (`options` go to http.createServer). */
export async function startBackend(name: string, handler: Handler = nameHandler(name), options: http.ServerOptions = {}): Promise<TestBackend> {
  const seen: IncomingMessage[] = [];
  const server = http.createServer(options, (req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export async function startBackends(names: string[], handler?: (name: string) => Handler): Promise<TestBackend[]> {
  return Promise.all(names.map((n) => startBackend(n, handler ? handler(n) : undefined)));
}

export interface H2Backend {
  readonly url: string;
  readonly server: Http2Server;
  /** Sessions (connections) opened to it. */
  sessions: number;
  /** Request headers of every stream, in order. */
  readonly seen: IncomingHttpHeaders[];
  /** Streams open right now, and the most at once. */
  open: number;
  peak: number;
  close(): Promise<void>;
}

/** A real node:http2 (h2c) backend on 127.0.0.1, port 0: `onStream` answers each stream. */
export async function startH2Backend(onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, b: H2Backend) => void, settings: http2.Settings = {}): Promise<H2Backend> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  const b: H2Backend = {
    server,
    sessions: 0,
    seen: [],
    open: 0,
    peak: 0,
    url: '',
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sessions) s.destroy();
    }),
  };
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
    b.sessions++;
    s.on('error', () => undefined);
  });
  server.on('stream', (stream, headers) => {
    b.seen.push(headers);
    b.open++;
    b.peak = Math.max(b.peak, b.open);
    stream.on('error', () => undefined);
    stream.once('close', () => b.open--);
    onStream(stream, headers, b);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (b as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return b;
}
