import { clientAddress } from './headers';
import { PROXIED } from '../proxy-protocol/accept';
import type { ProxiedConnection } from '../proxy-protocol/header';

/**
 * Where a connection comes from: the TCP peer, or the source of the PROXY
 * protocol header it began with (SPEC 9.3; src/proxy-protocol/accept.ts puts
 * it on the socket). The one place a connection's source address is read, so
 * the client-address rule (SPEC 8.4) can start from it.
 */
export function peerAddress(socket: { readonly remoteAddress?: string }): string {
  const proxied = (socket as { [PROXIED]?: ProxiedConnection })[PROXIED];
  return clientAddress(proxied !== undefined ? proxied.source.address : socket.remoteAddress);
}

/**
 * Both ends of a client connection as a backend's PROXY header tells them:
 * what a PROXY header said, else the TCP peer and the address it reached.
 */
export function connectionEnds(socket: { readonly remoteAddress?: string; readonly remotePort?: number; readonly localAddress?: string; readonly localPort?: number }): ProxiedConnection {
  const proxied = (socket as { [PROXIED]?: ProxiedConnection })[PROXIED];
  if (proxied !== undefined) return proxied;
  return {
    source: { address: clientAddress(socket.remoteAddress), port: socket.remotePort ?? 0 },
    destination: { address: clientAddress(socket.localAddress), port: socket.localPort ?? 0 },
  };
}
