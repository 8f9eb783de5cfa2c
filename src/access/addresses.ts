import net from 'node:net';
import { clientAddress } from '../proxy/headers';

/**
 * A set of addresses and CIDRs (config values "ADDRESS/PREFIX", already
 * checked), on node's net.BlockList: no dependency, IPv4 and IPv6, and it
 * matches an IPv4-mapped IPv6 address ("::ffff:10.0.0.1") against IPv4 rules
 * and the other way round (checked on Node 20 and 26), which is all ipaddr.js
 * would have added.
 */
export class AddressSet {
  readonly #list = new net.BlockList();

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const slash = c.lastIndexOf('/');
      const address = c.slice(0, slash);
      this.#list.addSubnet(address, Number(c.slice(slash + 1)), net.isIPv4(address) ? 'ipv4' : 'ipv6');
    }
  }

  /** Whether `address` (as peerAddress() writes it) is in the set; anything that is no address is not. */
  has(address: string): boolean {
    const family = net.isIP(address);
    if (family === 0) return false;
    return this.#list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * SPEC 8.4: the client address behind trusted proxies. With the TCP peer (or
 * the PROXY header's source) in `trusted`, it is the right-most
 * X-Forwarded-For entry that is not itself trusted, or the left-most when all
 * are (nginx's real_ip_recursive). An entry that is no address stops the walk
 * and the peer stays the client, as nginx does: garbage is not believed.
 */
export function clientBehindProxies(peer: string, raw: readonly string[], trusted: AddressSet): string {
  if (!trusted.has(peer)) return peer;
  const chain = forwardedFor(raw);
  if (chain === undefined) return peer;
  let client = peer;
  let end = chain.length;
  while (end > 0) {
    const comma = chain.lastIndexOf(',', end - 1);
    const entry = forwardedAddress(chain.slice(comma + 1, end));
    if (entry === undefined) return peer;
    client = entry;
    if (!trusted.has(entry)) return entry;
    end = comma === -1 ? 0 : comma;
  }
  return client;
}

/** Every X-Forwarded-For field of a raw header list, joined as one list; undefined without one. */
function forwardedFor(raw: readonly string[]): string | undefined {
  let chain: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') chain = chain === undefined ? raw[i + 1]! : `${chain},${raw[i + 1]!}`;
  }
  return chain;
}

/** One X-Forwarded-For entry as an address: "1.2.3.4", "1.2.3.4:5678", "2001:db8::1", "[2001:db8::1]:80"; undefined if it is none. */
function forwardedAddress(text: string): string | undefined {
  let a = text.trim();
  if (a.startsWith('[')) {
    const close = a.indexOf(']');
    if (close === -1) return undefined;
    a = a.slice(1, close);
  } else if (a.indexOf(':') !== -1 && a.indexOf(':') === a.lastIndexOf(':')) {
    a = a.slice(0, a.indexOf(':')); // IPv4 with a port
  }
  return net.isIP(a) === 0 ? undefined : clientAddress(a);
}
