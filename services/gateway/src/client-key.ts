import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The key a client's rate-limit budget (and its Idempotency-Keys) lives under:
 * - an IPv4 address as it is;
 * - an IPv4-mapped IPv6 address (`::ffff:198.51.100.7`, what a dual-stack socket reports
 *   for an IPv4 peer) as its IPv4 address, so one client is one key however it arrives;
 * - any other IPv6 address as its `/prefix` network (`2001:db8:1:2::/64`): a subscriber
 *   holds a /64 or more and could otherwise rotate addresses to dodge the limit.
 * Returns undefined for anything that is not an IP address.
 */
export function clientKey(address: string, ipv6Prefix: number): string | undefined {
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return undefined;
  const v6 = ipaddr.IPv6.parse(address);
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
  if (ipv6Prefix >= 128) return v6.toString();
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${v6.toString()}/${ipv6Prefix}`).toString()}/${ipv6Prefix}`;
}
