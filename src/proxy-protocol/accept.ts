import type { Server as NetServer, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseHeader, type ProxiedConnection } from './header';
import type { AddressSet } from '../access/addresses';
import { clientAddress } from '../proxy/headers';

/**
 * Listener side of SPEC 9.3: every connection begins with a PROXY header,
 * read here before TLS and before HTTP see a byte. The header's source is
 * kept on the socket (PROXIED, read by peerAddress()); the bytes after it are
 * put back for the server (Http1Server feeds them to its parser, TLS reads
 * them as its first records).
 */

/** The connection a PROXY header described, on the raw socket and (TLS) on its TLSSocket. */
export const PROXIED = Symbol('fulcrum.proxied');
/**
 * On a TLS listener's TLSSocket, the socket itself: HTTP/2 requests show a
 * per-stream proxy of it as `req.socket`, and whatever keys on a client
 * connection (pool proxyProtocol) reads the real one through it.
 */
export const CONNECTION = Symbol('fulcrum.connection');
type Marked = { [PROXIED]?: ProxiedConnection };

/** What a listener's `proxyProtocol` becomes at load: the peers allowed to send a header (null: any). */
export interface ProxyProtocolPolicy {
  readonly trusted: AddressSet | null;
}

export function proxiedConnection(socket: object): ProxiedConnection | undefined {
  return (socket as Marked)[PROXIED];
}

/**
 * Puts a PROXY protocol reader in front of `server`'s own connection
 * handling. `policy()` is read per connection, so a reload turns it on, off
 * or changes `trusted` for connections from then on; null passes every
 * connection straight through. `timeoutMs()`: how long a header may take
 * (the listener's headersTimeout).
 */
export function guardConnections(server: NetServer, policy: () => ProxyProtocolPolicy | null, timeoutMs: () => number, options: { resume?: boolean } = {}): void {
  const inner = server.listeners('connection') as ((s: Socket) => void)[];
  server.removeAllListeners('connection');
  const handOver = (socket: Socket) => {
    for (const l of inner) l.call(server, socket);
  };
  // node:http reads what was put back through its 'data' listener, once the socket flows again.
  const handOverPaused = options.resume === true
    ? (socket: Socket) => {
        handOver(socket);
        socket.resume();
      }
    : handOver;
  server.on('connection', (socket: Socket) => {
    const p = policy();
    if (p === null) handOver(socket);
    else readHeader(socket, p, timeoutMs(), handOverPaused);
  });
  // TLS: requests see the TLSSocket, which takes the header's connection from the socket it wraps.
  server.prependListener('secureConnection' as 'connection', ((tlsSocket: TLSSocket) => {
    (tlsSocket as { [CONNECTION]?: Socket })[CONNECTION] = tlsSocket;
    const raw = (tlsSocket as unknown as { _parent?: Socket | null })._parent;
    const c = raw != null ? proxiedConnection(raw) : undefined;
    if (c !== undefined) (tlsSocket as Marked)[PROXIED] = c;
  }) as never);
}

function readHeader(socket: Socket, policy: ProxyProtocolPolicy, timeoutMs: number, handOver: (s: Socket) => void): void {
  // Not a peer we take headers from: closed at once, without an answer.
  if (policy.trusted !== null && !policy.trusted.has(clientAddress(socket.remoteAddress))) {
    socket.destroy();
    return;
  }
  let buffered: Buffer = Buffer.alloc(0);
  const fail = () => {
    cleanup();
    socket.destroy();
  };
  const timer = setTimeout(fail, timeoutMs);
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const r = parseHeader(buffered);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'invalid') {
      fail();
      return;
    }
    cleanup();
    socket.pause();
    if (r.connection !== null) (socket as Marked)[PROXIED] = r.connection;
    const rest = buffered.subarray(r.length);
    if (rest.length > 0) socket.unshift(rest);
    handOver(socket);
  };
  const cleanup = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', fail);
    socket.off('error', fail);
  };
  socket.on('data', onData);
  socket.on('end', fail);
  socket.on('error', fail);
}
