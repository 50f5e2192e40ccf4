/**
 * The edge: load balancing (one algorithm, written out for L7 and the L4 Service), the L7
 * provider's settings (Envoy Gateway, portable Gateway API, legacy ingress-nginx), own or
 * shared Gateway, preview hosts; and the resolved `edge` and {@link LoadBalancing}.
 */
import type { Environment, SettingName, SettingValues } from './settings';
import { settingLabel } from './settings';
import { show } from './problems';
import type { EnvoyEdge, LeveeConfig, LoadBalancing } from './types';

/** Load balancing: one algorithm, written out for L7 and (when present) the L4 Service. */
export function loadBalancingProblems(
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  const problems: string[] = [];
  if (v.loadBalancing !== 'hash') {
    for (const name of ['hashBy', 'hashHeader', 'hashCookie'] as const) {
      if (given(name)) {
        problems.push(`${show(name, raw[name])} contradicts ${show('loadBalancing', raw.loadBalancing)}; allowed: ${name} only with loadBalancing = "hash"`);
      }
    }
  } else {
    if (given('hashHeader') && v.hashBy !== 'header') {
      problems.push(`${show('hashHeader', raw.hashHeader)} contradicts ${show('hashBy', raw.hashBy)}; allowed: hashHeader only with hashBy = "header"`);
    }
    if (given('hashCookie') && v.hashBy !== 'cookie') {
      problems.push(`${show('hashCookie', raw.hashCookie)} contradicts ${show('hashBy', raw.hashBy)}; allowed: hashCookie only with hashBy = "cookie"`);
    }
  }
  const l4 = v.edge === 'l4+l7';
  if (l4 && v.loadBalancing === 'least-request') {
    problems.push(`${show('loadBalancing', raw.loadBalancing)} cannot be written out for the L4 Service (kube-proxy balances connections, not requests) while ${show('edge', raw.edge)}; allowed at L4: round-robin, or hash with hashBy = "client-ip"; or set edge = "l7"`);
  }
  if (l4 && v.loadBalancing === 'hash' && v.hashBy !== 'client-ip') {
    problems.push(`${show('hashBy', raw.hashBy)} cannot be written out for the L4 Service (it sees no headers or cookies) while ${show('edge', raw.edge)}; allowed at L4: hashBy = "client-ip"; or set edge = "l7"`);
  }
  if (given('hashCookieTtl') && (v.loadBalancing !== 'hash' || v.hashBy !== 'cookie')) {
    problems.push(`${show('hashCookieTtl', raw.hashCookieTtl)} contradicts ${v.loadBalancing !== 'hash' ? show('loadBalancing', raw.loadBalancing) : show('hashBy', raw.hashBy)}; allowed: hashCookieTtl only with loadBalancing = "hash" and hashBy = "cookie"`);
  }
  return problems;
}

/** The resolved load balancing. */
export function loadBalancingConfig(v: SettingValues, given: (name: SettingName) => boolean): LoadBalancing {
  return (
    v.loadBalancing === 'hash'
      ? {
          algorithm: 'hash',
          hashBy: v.hashBy,
          ...(v.hashBy === 'header' ? { hashHeader: v.hashHeader } : {}),
          // ingress-nginx gets a cookie lifetime only when one is asked for (today's Ingress otherwise).
          ...(v.hashBy === 'cookie' ? { hashCookie: v.hashCookie, ...(v.l7Provider !== 'ingress-nginx' || given('hashCookieTtl') ? { hashCookieTtl: v.hashCookieTtl } : {}) } : {}),
        }
      : { algorithm: v.loadBalancing }
  );
}

/** Settings that only the envoy-gateway provider writes out (as Envoy Gateway policies). */
export const ENVOY_GATEWAY_SETTINGS = [
  'clientIpDetection', 'xffTrustedHops', 'edgeRequestTimeout', 'edgeIdleTimeout', 'edgeRetries',
  'edgeMaxConnections', 'edgeMaxPendingRequests', 'edgeMaxParallelRequests', 'edgeOutlierFailures', 'edgeRateLimitMultiplier',
] as const satisfies readonly SettingName[];

/** Settings of the Gateway Levee creates itself (both Gateway API providers, no shared Gateway). */
const OWN_GATEWAY_SETTINGS = ['gatewayClass', 'httpRedirect'] as const satisfies readonly SettingName[];

/** Cross-setting rules of the edge; every message names both settings, the values and what is allowed. */
export function edgeProblems(
  environment: Environment,
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  const problems: string[] = [];
  const show = (name: SettingName) => `${settingLabel(name)} = ${JSON.stringify(raw[name] ?? '')}`;
  const provider = v.l7Provider;
  const gatewayApi = provider !== 'ingress-nginx';
  const shared = gatewayApi ? v.sharedGateway : undefined;

  // The preview edge is a host name on the shared Gateway (or shared ingress controller), never a load balancer.
  if (environment === 'preview') {
    if (given('host')) problems.push(`${show('host')} cannot be set when ${show('environment')}; allowed: the preview host is always <previewId>.<previewDomain> (set previewDomain)`);
    if (v.edge === 'l4+l7') problems.push(`${show('edge')} contradicts ${show('environment')}; allowed: edge = "l7" (a preview is a host name on the shared Gateway, never a LoadBalancer of its own)`);
    if (gatewayApi && v.sharedGateway === undefined) {
      problems.push(`${show('sharedGateway')} contradicts ${show('environment')}; allowed: <namespace>/<name> of the shared preview Gateway (each Gateway costs a load balancer)`);
    }
  } else if (given('previewDomain')) {
    problems.push(`${show('previewDomain')} is only allowed when ${settingLabel('environment')} = "preview" (got "${environment}")`);
  }

  // Settings of one provider given with another.
  if (!gatewayApi) {
    for (const name of ['gatewayClass', 'sharedGateway', 'sharedGatewayTls', 'httpRedirect'] as const) {
      if (given(name)) problems.push(`${show(name)} contradicts ${show('l7Provider')}; allowed: ${name} only with l7Provider = "envoy-gateway" or "gateway-api"`);
    }
  } else if (given('ingressClass')) {
    problems.push(`${show('ingressClass')} contradicts ${show('l7Provider')}; allowed: ingressClass only with l7Provider = "ingress-nginx" (set gatewayClass instead)`);
  }
  if (provider !== 'envoy-gateway') {
    for (const name of ENVOY_GATEWAY_SETTINGS) {
      if (given(name)) problems.push(`${show(name)} contradicts ${show('l7Provider')}; allowed: ${name} only with l7Provider = "envoy-gateway" (an Envoy Gateway policy)`);
    }
  }

  // Own Gateway or shared one.
  if (gatewayApi && shared !== undefined) {
    for (const name of OWN_GATEWAY_SETTINGS) {
      if (given(name)) problems.push(`${show(name)} contradicts ${show('sharedGateway')}; allowed: ${name} only when Levee creates its own Gateway (sharedGateway = "")`);
    }
    if (given('tlsSecret') && v.tlsSecret !== '') {
      problems.push(`${show('tlsSecret')} contradicts ${show('sharedGateway')}; allowed: tlsSecret = "" (the shared Gateway's listener holds the certificate; see sharedGatewayTls)`);
    }
    if (provider === 'envoy-gateway') {
      for (const name of ['clientIpDetection', 'xffTrustedHops'] as const) {
        if (given(name)) problems.push(`${show(name)} contradicts ${show('sharedGateway')}; allowed: ${name} only on Levee's own Gateway (a ClientTrafficPolicy attaches to the Gateway, which the shared Gateway's owner configures)`);
      }
    }
  } else if (gatewayApi && given('sharedGatewayTls')) {
    problems.push(`${show('sharedGatewayTls')} contradicts ${show('sharedGateway')}; allowed: sharedGatewayTls only with a shared Gateway (<namespace>/<name>)`);
  }
  if (gatewayApi && shared === undefined && v.httpRedirect && given('httpRedirect') && v.tlsSecret === '') {
    problems.push(`${show('httpRedirect')} contradicts ${show('tlsSecret')}; allowed: an HTTPS redirect only with a TLS Secret`);
  }
  if (given('xffTrustedHops') && v.clientIpDetection === 'proxy-protocol') {
    problems.push(`${show('xffTrustedHops')} contradicts ${show('clientIpDetection')}; allowed: xffTrustedHops only with clientIpDetection = "xff"`);
  }

  // Load balancing that a provider cannot write out.
  if (provider === 'gateway-api' && v.loadBalancing !== 'round-robin') {
    const which: SettingName = v.loadBalancing === 'hash' ? 'hashBy' : 'loadBalancing';
    const what = v.loadBalancing === 'hash' ? `hash by ${v.hashBy}` : v.loadBalancing;
    problems.push(
      `${show(which)}${which === 'hashBy' && !given('hashBy') ? ` (the default of ${show('loadBalancing')})` : ''} cannot be written out with ${show('l7Provider')}: the portable Gateway API objects have no way to say ${what}; allowed: loadBalancing = "round-robin" (the implementation's default), or l7Provider = "envoy-gateway" or "ingress-nginx"`,
    );
  }

  // The gateway must believe the proxy, or every client is the proxy's IP to the rate limiter.
  if (gatewayApi && v.trustProxy === '') {
    problems.push(`${show('trustProxy')} contradicts ${show('l7Provider')}: every request through the proxy would carry its pod IP, one rate-limit budget for all clients; allowed: the proxy pods' CIDR(s), e.g. 10.0.0.0/8`);
  }
  return problems;
}

/** The resolved edge: which objects the provider writes and with what. */
export function edgeConfig(environment: Environment, previewId: string | undefined, v: SettingValues, given: (name: SettingName) => boolean): LeveeConfig['edge'] {
  const provider = v.l7Provider;
  const gatewayApi = provider !== 'ingress-nginx';
  const shared = gatewayApi ? v.sharedGateway : undefined;
  const tlsSecret = shared === undefined && v.tlsSecret !== '' ? v.tlsSecret : undefined;
  const legacy = provider === 'ingress-nginx';
  const envoy: EnvoyEdge | undefined =
    provider === 'envoy-gateway'
      ? {
          ...(shared === undefined
            ? { clientIp: v.clientIpDetection === 'xff' ? { mode: 'xff', trustedHops: v.xffTrustedHops } : { mode: 'proxy-protocol' } }
            : {}),
          ...(v.edgeRequestTimeout !== undefined ? { requestTimeout: v.edgeRequestTimeout } : {}),
          ...(v.edgeIdleTimeout !== undefined ? { idleTimeout: v.edgeIdleTimeout } : {}),
          retries: v.edgeRetries,
          circuitBreaker: {
            ...(v.edgeMaxConnections !== undefined ? { maxConnections: v.edgeMaxConnections } : {}),
            ...(v.edgeMaxPendingRequests !== undefined ? { maxPendingRequests: v.edgeMaxPendingRequests } : {}),
            ...(v.edgeMaxParallelRequests !== undefined ? { maxParallelRequests: v.edgeMaxParallelRequests } : {}),
          },
          ...(v.edgeOutlierFailures !== undefined ? { outlierFailures: v.edgeOutlierFailures } : {}),
          ...(v.edgeRateLimitMultiplier !== undefined ? { rateLimitPerSecond: v.edgeRateLimitMultiplier * v.rateLimitPerSecond } : {}),
        }
      : undefined;
  return {
    l4: v.edge === 'l4+l7',
    l7Provider: provider,
    ingressClass: v.ingressClass,
    host: environment === 'preview' ? `${previewId}.${v.previewDomain}` : v.host,
    ...(tlsSecret !== undefined ? { tlsSecret } : {}),
    https: shared !== undefined ? v.sharedGatewayTls : tlsSecret !== undefined,
    // ingress-nginx keeps its own defaults, so switching back to the legacy provider yields today's objects.
    l7Namespace: legacy && !given('l7Namespace') ? 'ingress-nginx' : v.l7Namespace,
    l7ProxyLabels: legacy && !given('l7ProxySelector') ? {} : v.l7ProxySelector,
    ...(gatewayApi
      ? { gateway: { className: v.gatewayClass, ...(shared !== undefined ? { shared } : {}), httpRedirect: shared === undefined && tlsSecret !== undefined && v.httpRedirect } }
      : {}),
    ...(envoy !== undefined ? { envoy } : {}),
  };
}
