import type { Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/**
 * The connections of a TLS listener that have not finished their handshake
 * (issue 20, F3). node:http only learns of a TLS connection once its
 * handshake is done, so neither headersTimeout nor closeIdleConnections ever
 * sees one that stalls before: 8,000 of them held 8,000 fds, and a drain
 * waited the whole shutdownTimeout for them. Here each one is closed if it is
 * still not done after `timeoutMs()` (the listener's headersTimeout, read per
 * connection so that a reload applies it; node:tls's own handshakeTimeout is
 * fixed when the server is made), and all of them at once on drain.
 * The cost is one timer per connection, until its handshake completes.
 */
export class PendingHandshakes {
  readonly #pending = new Map<Socket, NodeJS.Timeout>();

  constructor(server: NetServer, timeoutMs: () => number) {
    // tls.Server's own 'connection' listener came first: the TLSSocket over `raw` exists.
    server.on('connection', (raw: Socket) => {
      const timer = setTimeout(destroy, timeoutMs(), raw);
      this.#pending.set(raw, timer);
      raw.once('close', () => this.#settle(raw));
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      // A server-side TLSSocket keeps the TCP socket it wraps as `_parent`
      // (tests/e2e/tls-hardening pins that a completed handshake is not cut).
      const raw = (socket as unknown as { _parent?: Socket | null })._parent;
      if (raw != null) this.#settle(raw);
    });
  }

  /** Connections still in their handshake. */
  get size(): number {
    return this.#pending.size;
  }

  /** Drain: nothing was asked on these yet, so they close now. */
  closeAll(): void {
    for (const raw of this.#pending.keys()) raw.destroy();
  }

  #settle(raw: Socket): void {
    const timer = this.#pending.get(raw);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#pending.delete(raw);
  }
}

function destroy(raw: Socket): void {
  raw.destroy();
}
