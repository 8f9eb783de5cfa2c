import { clientAddress } from './headers';

/**
 * Where a connection comes from: the TCP peer today. The one place a
 * connection's source address is read, so a PROXY protocol header (SPEC 9.3)
 * can replace it and the client-address rule (SPEC 8.4) can start from it.
 */
export function peerAddress(socket: { readonly remoteAddress?: string }): string {
  return clientAddress(socket.remoteAddress);
}
