/** Service discovery: backends added and removed at run time. */
export { DnsDiscovery, dnsBackend } from './dns';
export type { DnsDiscoveryOptions, DnsResolverLike, DiscoveryLogger } from './dns';
