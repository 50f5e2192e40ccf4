import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { booleanSetting } from './settings';

/**
 * Which webhook URLs the cluster may call. A webhook URL is a request the cluster makes to a
 * place the client chose (server-side request forgery): by default only https, on 443 or
 * 8443, without credentials, to public unicast addresses. Address classes come from ipaddr.js:
 * everything that is not plain `unicast` is refused (loopback, RFC 1918, link-local with the
 * cloud metadata address, CGNAT, unique-local IPv6, multicast, reserved, and the IPv6 forms
 * that embed an IPv4 address: IPv4-mapped is judged as its IPv4 address, 6to4, NAT64 and
 * Teredo are refused). `allowedCidrs` and `allowHttp` open that up for tests and private
 * deployments. The gateway checks at submit time; the sender checks again at delivery,
 * against the addresses the name resolves to then (a name may be re-pointed: DNS rebinding).
 */
export interface WebhookUrlPolicy {
  /** Addresses allowed even though they are not public (WEBHOOK_ALLOWED_CIDRS). */
  readonly allowedCidrs: readonly (readonly [ipaddr.IPv4 | ipaddr.IPv6, number])[];
  /** `http:` allowed (WEBHOOK_ALLOW_HTTP); then port 80 is allowed too. */
  readonly allowHttp: boolean;
  /** Ports allowed (WEBHOOK_ALLOWED_PORTS). @default 443, 8443 */
  readonly allowedPorts: readonly number[];
}

/** Longest webhook URL accepted (CONTRACT section 3). */
export const WEBHOOK_URL_MAX_LENGTH = 2048;
export const DEFAULT_WEBHOOK_PORTS = [443, 8443] as const;

/** A webhook URL refused by the policy; the message says why, for the client's 400. */
export class WebhookUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookUrlError';
  }
}

/** The settings that make the policy, shared by the gateway and the sender. */
export const webhookUrlSettings = {
  /** Comma-separated CIDRs a webhook may reach although they are not public (tests, private deployments). */
  WEBHOOK_ALLOWED_CIDRS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      try {
        return parseCidrs(v ?? '');
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Allow `http:` webhook URLs (and port 80). */
  WEBHOOK_ALLOW_HTTP: booleanSetting(false),
  /** Ports a webhook URL may name. */
  WEBHOOK_ALLOWED_PORTS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return [...DEFAULT_WEBHOOK_PORTS];
      const ports = v.split(',').map((s) => s.trim());
      if (!ports.every((p) => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535)) {
        ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of ports 1-65535 (e.g. 443,8443)' });
        return z.NEVER;
      }
      return ports.map(Number);
    }),
};

export function webhookUrlPolicy(settings: { WEBHOOK_ALLOWED_CIDRS: WebhookUrlPolicy['allowedCidrs']; WEBHOOK_ALLOW_HTTP: boolean; WEBHOOK_ALLOWED_PORTS: readonly number[] }): WebhookUrlPolicy {
  return { allowedCidrs: settings.WEBHOOK_ALLOWED_CIDRS, allowHttp: settings.WEBHOOK_ALLOW_HTTP, allowedPorts: settings.WEBHOOK_ALLOWED_PORTS };
}

/** The policy with nothing opened up: public https on 443/8443 only. */
export const STRICT_WEBHOOK_POLICY: WebhookUrlPolicy = { allowedCidrs: [], allowHttp: false, allowedPorts: DEFAULT_WEBHOOK_PORTS };

/** "10.0.0.0/8,fd00::/8,127.0.0.1" → parsed CIDRs (a bare address is a /32 or /128). */
export function parseCidrs(list: string): [ipaddr.IPv4 | ipaddr.IPv6, number][] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      try {
        if (entry.includes('/')) return ipaddr.parseCIDR(entry);
        const addr = ipaddr.parse(entry);
        return [addr, addr.kind() === 'ipv4' ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number];
      } catch {
        throw new Error(`must be a comma-separated list of IPs or CIDRs (e.g. 10.0.0.0/8,fd00::/8); "${entry}" is neither`);
      }
    });
}

/**
 * Why the cluster must not call `address`, or undefined when it may. IPv4-mapped IPv6
 * (::ffff:10.0.0.1) is judged as the IPv4 address it is.
 */
export function forbiddenAddress(address: string, policy: Pick<WebhookUrlPolicy, 'allowedCidrs'>): string | undefined {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(address);
  } catch {
    return `${address} is not an IP address`;
  }
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  for (const [net, bits] of policy.allowedCidrs) if (net.kind() === addr.kind() && addr.match(net, bits)) return undefined;
  const range = addr.range();
  return range === 'unicast' ? undefined : `${address} is a ${range} address`;
}

/**
 * The checks that need no DNS: scheme, credentials, port, and the address when the host is
 * an IP literal. Returns the parsed URL; throws WebhookUrlError.
 */
export function checkWebhookUrlSyntax(raw: string, policy: WebhookUrlPolicy): URL {
  if (raw.length > WEBHOOK_URL_MAX_LENGTH) throw new WebhookUrlError(`webhookUrl is longer than ${WEBHOOK_URL_MAX_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError('webhookUrl must be an absolute URL (https://…)');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) throw new WebhookUrlError(`webhookUrl must use https (not ${url.protocol.replace(/:$/, '')})`);
  if (url.username || url.password) throw new WebhookUrlError('webhookUrl must not carry credentials');
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const ports = policy.allowHttp ? [...policy.allowedPorts, 80] : policy.allowedPorts;
  if (!ports.includes(port)) throw new WebhookUrlError(`webhookUrl port ${port} is not allowed (allowed: ${[...new Set(ports)].join(', ')})`);
  const host = hostOf(url);
  if (!host) throw new WebhookUrlError('webhookUrl has no host');
  if (net.isIP(host)) {
    const why = forbiddenAddress(host, policy);
    if (why) throw new WebhookUrlError(`webhookUrl must not target a non-public address: ${why}`);
  }
  return url;
}

/** The URL's host without the brackets of an IPv6 literal. */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

export type Lookup = (hostname: string) => Promise<LookupAddress[]>;

/** dns.lookup (the system resolver: /etc/hosts, search domains), every address. */
export const systemLookup: Lookup = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

/**
 * The whole check: the syntax, then every address the host resolves to (a name that resolves
 * to one non-public address among public ones is refused: the connection could pick it).
 * `timeoutMs` bounds the lookup. Throws WebhookUrlError.
 */
export async function checkWebhookUrl(raw: string, policy: WebhookUrlPolicy, lookup: Lookup = systemLookup, timeoutMs = 2000): Promise<URL> {
  const url = checkWebhookUrlSyntax(raw, policy);
  const host = hostOf(url);
  if (net.isIP(host)) return url;
  let addresses: LookupAddress[];
  try {
    addresses = await withTimeout(lookup(host), timeoutMs);
  } catch (err) {
    throw new WebhookUrlError(`webhookUrl host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  checkResolved(host, addresses, policy);
  return url;
}

/** Throws WebhookUrlError unless every address is allowed (and there is at least one). */
export function checkResolved(host: string, addresses: readonly LookupAddress[], policy: Pick<WebhookUrlPolicy, 'allowedCidrs'>): void {
  if (addresses.length === 0) throw new WebhookUrlError(`webhookUrl host ${host} resolves to no address`);
  for (const { address } of addresses) {
    const why = forbiddenAddress(address, policy);
    if (why) throw new WebhookUrlError(`webhookUrl host ${host} resolves to a non-public address: ${why}`);
  }
}

/**
 * A `lookup` for http(s).Agent that refuses non-public addresses at connection time: the
 * address checked is the address connected to, so a name re-pointed after the submit
 * (DNS rebinding) is refused too. (IP literals skip `lookup` in Node: checkWebhookUrlSyntax
 * covers them.)
 */
export function guardedLookup(policy: Pick<WebhookUrlPolicy, 'allowedCidrs'>): net.LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true, verbatim: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      try {
        checkResolved(hostname, addresses, policy);
      } catch (refused) {
        return callback(Object.assign(refused as Error, { code: 'EWEBHOOKADDRESS' }) as NodeJS.ErrnoException, '', 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0]!;
      callback(null, first.address, first.family);
    });
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEOUT' })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
