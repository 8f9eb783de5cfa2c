import type { Server as NetServer, Socket, AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ListenerConfig } from './config/types';
import type { PendingHandshakes } from './proxy/tls-handshake';
import { FulcrumError } from './errors';

/**
 * Sockets we listen on: binding with an error that says what went wrong,
 * closing, and draining a server's connections on a graceful stop.
 */

export function listen(server: NetServer, host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'address already in use'
        : err.code === 'EACCES' ? 'permission denied'
          : err.code === 'EADDRNOTAVAIL' ? 'address not available on this machine'
            : err.message;
      reject(new FulcrumError('FULCRUM_LISTEN_FAILED', `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port} (${what}): ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** An HTTP/2 connection, node:http2's session or Fulcrum's own (src/http2/serve.ts): close() is graceful (GOAWAY). */
interface Session {
  close(): void;
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

/** While draining, how often HTTP/1.1 connections are checked for a finished last response. */
const DRAIN_POLL_MS = 50;

/**
 * Connections of one server, so a stop can close idle ones now and the rest
 * at the deadline, for HTTP/1.1 and HTTP/2 alike.
 */
export class Connections {
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Session>();
  readonly #handshakes: PendingHandshakes | undefined;

  constructor(server: NetServer, handshakes?: PendingHandshakes) {
    this.#handshakes = handshakes;
    const track = (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    };
    server.on('connection', track);
    server.on('session', (session: Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
    });
  }

  /**
   * Stop serving more than what is in flight. HTTP/2: GOAWAY, open streams
   * finish. HTTP/1.1: idle keep-alive sockets close now, busy ones as soon as
   * their response is done (a request that arrives meanwhile is answered with
   * `Connection: close`), as HAProxy and nginx do on a graceful stop; else a
   * keep-alive client would hold the process until the deadline. Connections
   * that never asked for anything close now too: those that sent no byte yet
   * and TLS ones still in their handshake (issue 20: idle TLS sockets held a
   * drain for the whole shutdownTimeout). Returns the function that stops the
   * polling.
   */
  drain(server: NetServer): () => void {
    for (const s of this.#sessions) s.close();
    this.#handshakes?.closeAll();
    // bytesRead is the TCP handle's count, whoever reads it (our parser, TLS).
    for (const s of this.#sockets) if (s.bytesRead === 0) s.destroy();
    const h1 = server as { closeIdleConnections?: () => void };
    const lastOnItsConnection = (_req: IncomingMessage, res: ServerResponse) => {
      res.shouldKeepAlive = false;
    };
    server.prependListener('request', lastOnItsConnection);
    h1.closeIdleConnections?.();
    const poll = setInterval(() => h1.closeIdleConnections?.(), DRAIN_POLL_MS);
    poll.unref();
    return () => {
      clearInterval(poll);
      server.off('request', lastOnItsConnection);
    };
  }

  destroyAll(): void {
    for (const s of this.#sessions) s.destroy();
    for (const s of this.#sockets) s.destroy();
  }
}

export function close(server: NetServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });
}

/**
 * Close `server` gracefully: it stops accepting, `conns` drain, and whatever
 * is still open at `timeoutMs` is destroyed.
 */
export async function closeGracefully(server: NetServer, conns: Connections | undefined, timeoutMs: number): Promise<void> {
  const closing = close(server);
  const stopDraining = conns?.drain(server);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      conns?.destroyAll();
      resolve();
    }, timeoutMs);
    timer.unref();
  });
  await Promise.race([closing, deadline]);
  clearTimeout(timer);
  stopDraining?.();
}

export function sameAddress(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.host === b.host && a.port === b.port;
}

export function sameProtocol(a: ListenerConfig, b: ListenerConfig): boolean {
  return (a.tls === undefined) === (b.tls === undefined) && a.http2 === b.http2;
}

/** Same socket and protocol: the server stays; routes, certificates and limits change in place. */
export function sameListenerSocket(a: ListenerConfig, b: ListenerConfig): boolean {
  return sameAddress(a, b) && sameProtocol(a, b);
}

export function formatAddress(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
