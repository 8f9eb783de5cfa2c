import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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
