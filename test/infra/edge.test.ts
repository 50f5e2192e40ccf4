/**
 * The L7 edge on Gateway API: every load-balancing combination per provider and entry point
 * (written out, or refused with both settings named), the Envoy Gateway defenses and their
 * switches, client IP detection, previews on the shared Gateway, the CEL rules of the CRDs
 * that Levee's objects could break, and the versions the objects target.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadCrdValidators } from './crd-schema';
import { ConfigError, OUTLIER_5XX_NEVER, SUPPORTED_VERSIONS, resolveConfig } from '../../infra';
import { all, DEV, find, manifestsFor, NO_EDGE_DEFENSES, PREVIEW } from './helpers';

const ROOT = join(__dirname, '..', '..');

function problemsOf(settings: Record<string, string>): string[] {
  try {
    resolveConfig(settings);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
}

type Provider = 'envoy-gateway' | 'gateway-api' | 'ingress-nginx';
type Lb = 'round-robin' | 'least-request' | 'hash client-ip' | 'hash header' | 'hash cookie';
const lbSettings = (lb: Lb): Record<string, string> => {
  const [algorithm, hashBy] = lb.split(' ');
  return { loadBalancing: algorithm!, ...(hashBy ? { hashBy } : {}), ...(hashBy === 'header' ? { hashHeader: 'X-Api-Token' } : {}), ...(hashBy === 'cookie' ? { hashCookie: 'sticky' } : {}) };
};

const ENVOY: Record<Lb, unknown> = {
  'round-robin': { type: 'RoundRobin' },
  'least-request': { type: 'LeastRequest' },
  'hash client-ip': { type: 'ConsistentHash', consistentHash: { type: 'SourceIP' } },
  'hash header': { type: 'ConsistentHash', consistentHash: { type: 'Header', header: { name: 'X-Api-Token' } } },
  'hash cookie': { type: 'ConsistentHash', consistentHash: { type: 'Cookie', cookie: { name: 'sticky', ttl: '1h', attributes: { SameSite: 'Lax', Secure: '' } } } },
};
const NGINX: Record<Lb, Record<string, string>> = {
  'round-robin': { 'nginx.ingress.kubernetes.io/load-balance': 'round_robin' },
  'least-request': { 'nginx.ingress.kubernetes.io/load-balance': 'ewma' },
  'hash client-ip': { 'nginx.ingress.kubernetes.io/upstream-hash-by': '$remote_addr' },
  'hash header': { 'nginx.ingress.kubernetes.io/upstream-hash-by': '$http_x_api_token' },
  'hash cookie': { 'nginx.ingress.kubernetes.io/affinity': 'cookie', 'nginx.ingress.kubernetes.io/session-cookie-name': 'sticky' },
};

/** What L4 refuses (kube-proxy balances connections and sees no headers). */
const L4_REFUSES: Partial<Record<Lb, string>> = {
  'least-request': 'LEVEE_LOAD_BALANCING (levee:loadBalancing) = "least-request" cannot be written out for the L4 Service (kube-proxy balances connections, not requests) while LEVEE_EDGE (levee:edge) = "l4+l7"',
  'hash header': 'LEVEE_HASH_BY (levee:hashBy) = "header" cannot be written out for the L4 Service (it sees no headers or cookies) while LEVEE_EDGE (levee:edge) = "l4+l7"',
  'hash cookie': 'LEVEE_HASH_BY (levee:hashBy) = "cookie" cannot be written out for the L4 Service (it sees no headers or cookies) while LEVEE_EDGE (levee:edge) = "l4+l7"',
};
/** What the portable Gateway API objects cannot say. */
const GATEWAY_API_REFUSES: Partial<Record<Lb, string>> = {
  'least-request': 'LEVEE_LOAD_BALANCING (levee:loadBalancing) = "least-request" cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = "gateway-api"',
  'hash client-ip': 'LEVEE_HASH_BY (levee:hashBy) = "client-ip" cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = "gateway-api"',
  'hash header': 'LEVEE_HASH_BY (levee:hashBy) = "header" cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = "gateway-api"',
  'hash cookie': 'LEVEE_HASH_BY (levee:hashBy) = "cookie" cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = "gateway-api"',
};

const PROVIDERS: Provider[] = ['envoy-gateway', 'gateway-api', 'ingress-nginx'];
const LBS: Lb[] = ['round-robin', 'least-request', 'hash client-ip', 'hash header', 'hash cookie'];
const EDGES = ['l4+l7', 'l7'] as const;
const TABLE = PROVIDERS.flatMap((provider) => EDGES.flatMap((edge) => LBS.map((lb) => [provider, edge, lb] as const)));

describe('load balancing: every provider × entry point × algorithm', () => {
  test('the table covers all 30 combinations', () => {
    expect(new Set(TABLE.map((row) => row.join('|'))).size).toBe(30);
  });

  test.each(TABLE)('%s, edge %s, %s', (provider, edge, lb) => {
    const settings = { l7Provider: provider, edge, ...lbSettings(lb) };
    const expected = [
      ...(edge === 'l4+l7' && L4_REFUSES[lb] ? [L4_REFUSES[lb]] : []),
      ...(provider === 'gateway-api' && GATEWAY_API_REFUSES[lb] ? [GATEWAY_API_REFUSES[lb]] : []),
    ];
    const problems = problemsOf(settings);
    expect(problems).toHaveLength(expected.length);
    expected.forEach((start, i) => expect(problems[i]).toContain(start));
    if (expected.length > 0) return;

    const m = manifestsFor(settings);
    if (provider === 'envoy-gateway') {
      expect(find(m, 'BackendTrafficPolicy', 'levee').spec.loadBalancer).toEqual(ENVOY[lb]);
      expect(find(m, 'BackendTrafficPolicy', 'levee-reads').spec.loadBalancer).toEqual(ENVOY[lb]);
      expect(all(m, 'Ingress')).toEqual([]);
    } else if (provider === 'gateway-api') {
      // Round-robin is the implementation's default: nothing implementation-specific is written.
      expect(m.filter((o) => o.apiVersion.startsWith('gateway.envoyproxy.io/'))).toEqual([]);
      expect(find(m, 'HTTPRoute', 'levee').spec.rules.map((r: any) => r.name)).toEqual(['events', 'api', 'images']);
    } else {
      expect(find(m, 'Ingress', 'levee').metadata.annotations).toMatchObject(NGINX[lb]);
      expect(m.filter((o) => o.apiVersion.startsWith('gateway.'))).toEqual([]);
    }
    const l4 = m.filter((o) => o.kind === 'Service' && o.metadata.name === 'levee-edge');
    if (edge === 'l7') expect(l4).toEqual([]);
    else expect((l4[0] as any).spec.sessionAffinity).toBe(lb === 'hash client-ip' ? 'ClientIP' : 'None');
  });

  test('a cookie is Secure only when the edge is https', () => {
    const noTls = manifestsFor({ edge: 'l7', tlsSecret: '', httpRedirect: 'false', ...lbSettings('hash cookie') });
    // httpRedirect given as false without TLS is fine; only an asked-for redirect needs TLS.
    expect(find(noTls, 'BackendTrafficPolicy', 'levee').spec.loadBalancer.consistentHash.cookie.attributes).toEqual({ SameSite: 'Lax' });
  });
});

describe('Envoy Gateway defenses (production defaults)', () => {
  const m = manifestsFor({});
  const backend = find(m, 'BackendTrafficPolicy', 'levee');
  const reads = find(m, 'BackendTrafficPolicy', 'levee-reads');

  test('the route-wide policy targets the HTTPRoute and carries timeouts, circuit breaker, passive health check and the per-client edge limit', () => {
    expect(backend.apiVersion).toBe('gateway.envoyproxy.io/v1alpha1');
    expect(backend.spec.targetRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'levee' }]);
    expect(backend.spec.timeout).toEqual({ http: { requestTimeout: '20s', connectionIdleTimeout: '60s' } });
    expect(backend.spec.circuitBreaker).toEqual({ maxConnections: 2048, maxPendingRequests: 512, maxParallelRequests: 4096 });
    expect(backend.spec.healthCheck).toEqual({
      passive: { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 5, consecutive5XxErrors: OUTLIER_5XX_NEVER, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
    });
    // 3 × RATE_LIMIT_PER_SECOND (10), one bucket per client address, IPv4 and IPv6.
    expect(backend.spec.rateLimit).toEqual({
      local: {
        rules: [
          { clientSelectors: [{ sourceCIDR: { type: 'Distinct', value: '0.0.0.0/0' } }], limit: { requests: 30, unit: 'Second' } },
          { clientSelectors: [{ sourceCIDR: { type: 'Distinct', value: '::/0' } }], limit: { requests: 30, unit: 'Second' } },
        ],
      },
    });
    expect(backend.spec.rateLimit.type).toBeUndefined(); // deprecated in v1.9
  });

  test('only GETs are retried: on connect failure or 503, never POST', () => {
    expect(backend.spec.retry).toBeUndefined();
    expect(reads.spec.retry).toEqual({
      numRetries: 2,
      retryOn: { triggers: ['connect-failure', 'retriable-status-codes'], httpStatusCodes: [503] },
      perRetry: { backOff: { baseInterval: '100ms', maxInterval: '1s' } },
    });
    // The reads policy aims at the GET-only /api rule and at /images (media serves only GETs)…
    expect(reads.spec.targetRefs.map((t: any) => t.sectionName)).toEqual(['api-reads', 'images']);
    const rules = find(m, 'HTTPRoute', 'levee').spec.rules;
    expect(rules.find((r: any) => r.name === 'api-reads').matches).toEqual([{ path: { type: 'PathPrefix', value: '/api' }, method: 'GET' }]);
    // …and a rule aimed at replaces the route-wide policy for it, so it repeats every defense.
    const { retry, targetRefs, ...rest } = reads.spec;
    const { targetRefs: _t, ...routeWide } = backend.spec;
    expect(rest).toEqual(routeWide);
    // POST /api matches only the rule named "api", which no retrying policy targets.
    expect(rules.find((r: any) => r.name === 'api').matches).toEqual([{ path: { type: 'PathPrefix', value: '/api' } }]);
  });

  test('the edge limit follows the app limit and the multiplier', () => {
    const limits = (s: Record<string, string>) => find(manifestsFor(s), 'BackendTrafficPolicy', 'levee').spec.rateLimit.local.rules.map((r: any) => r.limit.requests);
    expect(limits({ rateLimitPerSecond: '25' })).toEqual([75, 75]);
    expect(limits({ rateLimitPerSecond: '25', edgeRateLimitMultiplier: '1' })).toEqual([25, 25]);
  });

  test.each([
    ['edgeRequestTimeout', (s: any) => s.timeout?.http?.requestTimeout],
    ['edgeIdleTimeout', (s: any) => s.timeout?.http?.connectionIdleTimeout],
    ['edgeMaxConnections', (s: any) => s.circuitBreaker?.maxConnections],
    ['edgeMaxPendingRequests', (s: any) => s.circuitBreaker?.maxPendingRequests],
    ['edgeMaxParallelRequests', (s: any) => s.circuitBreaker?.maxParallelRequests],
    ['edgeOutlierFailures', (s: any) => s.healthCheck],
    ['edgeRateLimitMultiplier', (s: any) => s.rateLimit],
  ])('%s = "" switches that defense off and nothing else', (setting, field) => {
    const on = find(manifestsFor({}), 'BackendTrafficPolicy', 'levee').spec;
    const off = find(manifestsFor({ [setting]: '' }), 'BackendTrafficPolicy', 'levee').spec;
    expect(field(on)).toBeDefined();
    expect(field(off)).toBeUndefined();
  });

  test('edgeRetries = 0 leaves one policy and no GET-only rule', () => {
    const m0 = manifestsFor({ edgeRetries: '0' });
    expect(all(m0, 'BackendTrafficPolicy').map((p) => p.metadata.name)).toEqual(['levee', 'levee-events']);
    expect(find(m0, 'HTTPRoute', 'levee').spec.rules.map((r: any) => r.name)).toEqual(['events', 'api', 'images']);
  });

  test('event streams outlive the edge request timeout: their rule turns it off, and their policy has the defenses without it or retries', () => {
    const m = manifestsFor({});
    const events = find(m, 'HTTPRoute', 'levee').spec.rules[0];
    expect(events).toEqual({
      name: 'events',
      matches: [{ path: { type: 'RegularExpression', value: '^/api/images/[^/]+/events$' }, method: 'GET' }],
      backendRefs: [{ group: '', kind: 'Service', name: 'levee-gateway', port: 8080 }],
      timeouts: { request: '0s' },
    });
    for (const path of ['/api/images/0b7c6f1e-1111-4222-8333-944455556666/events']) expect(new RegExp(events.matches[0].path.value).test(path)).toBe(true);
    for (const path of ['/api/images/x/events/more', '/api/images//events', '/api/images/x']) expect(new RegExp(events.matches[0].path.value).test(path)).toBe(false);
    const route = find(m, 'BackendTrafficPolicy', 'levee').spec;
    const policy = find(m, 'BackendTrafficPolicy', 'levee-events').spec;
    expect(route.timeout.http.requestTimeout).toBe('20s');
    expect(policy.targetRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'levee', sectionName: 'events' }]);
    expect(policy.timeout).toEqual({ http: { connectionIdleTimeout: '60s' } });
    expect(policy.retry).toBeUndefined();
    // Everything else is the route's.
    expect({ ...policy, targetRefs: undefined, timeout: undefined }).toEqual({ ...route, targetRefs: undefined, timeout: undefined });
  });

  test('with every defense off the policy only balances the load', () => {
    const spec = find(manifestsFor(NO_EDGE_DEFENSES), 'BackendTrafficPolicy', 'levee').spec;
    expect(Object.keys(spec).sort()).toEqual(['loadBalancer', 'targetRefs']);
  });

  test('dev has the same objects with no defenses; previews keep them (they rehearse production)', () => {
    expect(Object.keys(find(manifestsFor(DEV), 'BackendTrafficPolicy', 'levee').spec).sort()).toEqual(['loadBalancer', 'targetRefs']);
    expect(find(manifestsFor(PREVIEW), 'BackendTrafficPolicy', 'levee').spec).toEqual(backend.spec);
  });
});

describe('client IP', () => {
  test('the ClientTrafficPolicy on the Gateway trusts the set number of X-Forwarded-For hops and sets the client idle timeout', () => {
    const ctp = find(manifestsFor({ xffTrustedHops: '1' }), 'ClientTrafficPolicy', 'levee');
    expect(ctp.spec).toEqual({
      targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'levee' }],
      clientIPDetection: { xForwardedFor: { numTrustedHops: 1 } },
      timeout: { http: { idleTimeout: '60s' } },
    });
  });

  test('with the PROXY protocol Envoy takes the client address from the load balancer header', () => {
    const ctp = find(manifestsFor({ clientIpDetection: 'proxy-protocol' }), 'ClientTrafficPolicy', 'levee');
    expect(ctp.spec.proxyProtocol).toEqual({});
    expect(ctp.spec.clientIPDetection).toBeUndefined();
  });

  test('on a shared Gateway there is no ClientTrafficPolicy (the Gateway is not ours)', () => {
    expect(all(manifestsFor({ sharedGateway: 'edge-system/public' }), 'ClientTrafficPolicy')).toEqual([]);
    expect(all(manifestsFor(PREVIEW), 'ClientTrafficPolicy')).toEqual([]);
  });
});

describe('accept or create the Gateway', () => {
  test('attached to a shared Gateway: no Gateway, no redirect, the route points across namespaces without a listener', () => {
    const m = manifestsFor({ sharedGateway: 'edge-system/public' });
    expect(all(m, 'Gateway')).toEqual([]);
    expect(m.filter((o) => o.kind === 'HTTPRoute').map((o) => o.metadata.name)).toEqual(['levee']);
    expect(find(m, 'HTTPRoute', 'levee').spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'edge-system', name: 'public' }]);
  });

  test('own Gateway without TLS: one HTTP listener that serves the route', () => {
    const m = manifestsFor({ tlsSecret: '' });
    expect(find(m, 'Gateway', 'levee').spec.listeners.map((l: any) => l.name)).toEqual(['http']);
    expect(find(m, 'HTTPRoute', 'levee').spec.parentRefs.map((p: any) => p.sectionName)).toEqual(['http']);
    expect(all(m, 'HTTPRoute').map((r) => r.metadata.name)).toEqual(['levee']);
  });

  test('own Gateway with TLS and no redirect: the route on both listeners', () => {
    const m = manifestsFor({ httpRedirect: 'false' });
    expect(find(m, 'HTTPRoute', 'levee').spec.parentRefs.map((p: any) => p.sectionName)).toEqual(['https', 'http']);
    expect(all(m, 'HTTPRoute').map((r) => r.metadata.name)).toEqual(['levee']);
  });

  test('the class name is a setting', () => {
    expect(find(manifestsFor({ gatewayClass: 'envoy-internet' }), 'Gateway', 'levee').spec.gatewayClassName).toBe('envoy-internet');
  });
});

describe('the shared preview Gateway of infra/l7/README.md', () => {
  const readme = readFileSync(join(ROOT, 'infra', 'l7', 'README.md'), 'utf8');
  const block = /## Previews[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1]!;
  const docs = parseAllDocuments(block).map((d) => d.toJS());
  const gateway = docs.find((d) => d.kind === 'Gateway');
  const m = manifestsFor(PREVIEW);
  const route = find(m, 'HTTPRoute', 'levee');

  test('is schema-valid and is the Gateway a preview route attaches to', () => {
    expect(loadCrdValidators().get('gateway.networking.k8s.io/v1/Gateway')!.validate(gateway)).toEqual([]);
    expect(route.spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: gateway.metadata.namespace, name: gateway.metadata.name }]);
  });

  test("admits the preview's namespace (by its labels) and host name (by the wildcard)", () => {
    const namespaceLabels = find(m, 'Namespace', 'levee-pr-7').metadata.labels;
    const [listener] = gateway.spec.listeners;
    expect(listener.allowedRoutes.namespaces.from).toBe('Selector');
    expect(namespaceLabels).toMatchObject(listener.allowedRoutes.namespaces.selector.matchLabels);
    expect(find(manifestsFor({}), 'Namespace', 'levee').metadata.labels).not.toMatchObject(listener.allowedRoutes.namespaces.selector.matchLabels);
    const [host] = route.spec.hostnames;
    expect(listener.hostname.startsWith('*.')).toBe(true);
    expect(host.endsWith(listener.hostname.slice(1))).toBe(true);
  });
});

describe('the CRDs\' CEL rules that Levee\'s objects could break (the API server evaluates them; the schema check cannot)', () => {
  const objects = [manifestsFor({}), manifestsFor(PREVIEW), manifestsFor({ clientIpDetection: 'proxy-protocol' }), manifestsFor({ edge: 'l7', ...lbSettings('hash header') }), manifestsFor({ edge: 'l7', ...lbSettings('hash cookie') })].flat();
  const btps = objects.filter((o) => o.kind === 'BackendTrafficPolicy') as any[];
  const ctps = objects.filter((o) => o.kind === 'ClientTrafficPolicy') as any[];

  test('policies: targetRefs only, of group gateway.networking.k8s.io and an allowed kind', () => {
    for (const p of [...btps, ...ctps]) {
      expect(p.spec.targetRef).toBeUndefined();
      expect(p.spec.targetRefs.length).toBeGreaterThan(0);
      for (const t of p.spec.targetRefs) {
        expect(t.group).toBe('gateway.networking.k8s.io');
        expect(p.kind === 'ClientTrafficPolicy' ? ['Gateway', 'ListenerSet'] : ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']).toContain(t.kind);
      }
    }
  });

  test('BackendTrafficPolicy: consistentHash set exactly when the type is ConsistentHash, with the field of its hash type; local limits without response cost or fromMetadata', () => {
    for (const p of btps) {
      const lb = p.spec.loadBalancer;
      expect(lb.consistentHash !== undefined).toBe(lb.type === 'ConsistentHash');
      if (lb.consistentHash) {
        expect(lb.consistentHash.header !== undefined).toBe(lb.consistentHash.type === 'Header');
        expect(lb.consistentHash.cookie !== undefined).toBe(lb.consistentHash.type === 'Cookie');
      }
      for (const r of p.spec.rateLimit?.local?.rules ?? []) {
        expect(r.cost?.response).toBeUndefined();
        expect(r.limit.fromMetadata).toBeUndefined();
      }
    }
    expect(btps.map((p) => p.spec.loadBalancer.type)).toEqual(expect.arrayContaining(['RoundRobin', 'ConsistentHash']));
  });

  test('ClientTrafficPolicy: exactly one client IP detection source, and one of numTrustedHops or trustedCIDRs', () => {
    for (const p of ctps) {
      const d = p.spec.clientIPDetection;
      if (d === undefined) {
        expect(p.spec.proxyProtocol).toBeDefined();
        continue;
      }
      expect([d.xForwardedFor, d.customHeader, d.directSourceIP].filter((x) => x !== undefined)).toHaveLength(1);
      expect([d.xForwardedFor.numTrustedHops, d.xForwardedFor.trustedCIDRs].filter((x) => x !== undefined)).toHaveLength(1);
    }
    expect(ctps.length).toBeGreaterThanOrEqual(2);
  });

  const routeVariants = [manifestsFor({}), manifestsFor({ httpRedirect: 'false' }), manifestsFor({ tlsSecret: '' }), manifestsFor(PREVIEW), manifestsFor({ l7Provider: 'gateway-api' })].flat();

  test('HTTPRoute: a redirect never with backendRefs, every Service backend with a port, absolute clean paths, distinct sectionNames for one parent', () => {
    const routes = routeVariants.filter((o) => o.kind === 'HTTPRoute') as any[];
    expect(routes.some((r) => r.spec.parentRefs.length === 2)).toBe(true);
    for (const r of routes) {
      for (const rule of r.spec.rules) {
        if ((rule.filters ?? []).some((f: any) => f.type === 'RequestRedirect')) expect(rule.backendRefs).toBeUndefined();
        for (const b of rule.backendRefs ?? []) expect(typeof b.port).toBe('number');
        // The CRD checks the characters of Exact and PathPrefix values; a RegularExpression is the implementation's to check.
        for (const m of (rule.matches ?? []).filter((x: any) => x.path.type !== 'RegularExpression')) {
          expect(m.path.value).toMatch(/^\/[-A-Za-z0-9/._~!$&'()*+,;=:@]*$/);
          expect(m.path.value).not.toMatch(/\/\/|\/\.\.?(\/|$)|%2f|#/i);
        }
      }
      const byParent = new Map<string, (string | undefined)[]>();
      for (const p of r.spec.parentRefs) byParent.set(`${p.namespace ?? ''}/${p.name}`, [...(byParent.get(`${p.namespace ?? ''}/${p.name}`) ?? []), p.sectionName]);
      for (const sections of byParent.values()) {
        if (sections.length > 1) {
          expect(sections.every((x) => x !== undefined)).toBe(true);
          expect(new Set(sections).size).toBe(sections.length);
        }
      }
    }
  });

  test('Gateway: TLS only on HTTPS listeners, mode Terminate with certificateRefs; unique listener names and port/protocol/hostname', () => {
    const gateways = routeVariants.filter((o) => o.kind === 'Gateway') as any[];
    expect(gateways.length).toBeGreaterThanOrEqual(3);
    for (const g of gateways) {
      for (const l of g.spec.listeners) {
        if (l.protocol === 'HTTPS') expect(l.tls).toMatchObject({ mode: 'Terminate', certificateRefs: [expect.objectContaining({ name: expect.any(String) })] });
        else expect(l.tls).toBeUndefined();
      }
      expect(new Set(g.spec.listeners.map((l: any) => l.name)).size).toBe(g.spec.listeners.length);
      expect(new Set(g.spec.listeners.map((l: any) => `${l.port}/${l.protocol}/${l.hostname}`)).size).toBe(g.spec.listeners.length);
    }
  });

  test('the rules quoted above are the CRDs\' own', () => {
    const rules = (file: string) => JSON.stringify(parse(readFileSync(join(ROOT, 'infra', 'crds', file), 'utf8')));
    expect(rules('gateway.envoyproxy.io_backendtrafficpolicies.yaml')).toContain("self.type == 'ConsistentHash' ? has(self.consistentHash) : !has(self.consistentHash)");
    expect(rules('gateway.envoyproxy.io_backendtrafficpolicies.yaml')).toContain("self.all(r, !has(r.limit.fromMetadata))");
    expect(rules('gateway.envoyproxy.io_clienttrafficpolicies.yaml')).toContain('[has(self.xForwardedFor), has(self.customHeader), has(self.directSourceIP)].filter(x, x).size() == 1');
    expect(rules('gateway.envoyproxy.io_clienttrafficpolicies.yaml')).toContain("self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet'])");
    expect(rules('gateway.networking.k8s.io_httproutes.yaml')).toContain('RequestRedirect filter must not be used together with backendRefs');
    expect(rules('gateway.networking.k8s.io_httproutes.yaml')).toContain('sectionName must be unique when parentRefs includes 2 or more references to the same parent');
    expect(rules('gateway.networking.k8s.io_gateways.yaml')).toContain('tls mode must be Terminate for protocol HTTPS');
    expect(rules('gateway.networking.k8s.io_gateways.yaml')).toContain('Combination of port, protocol and hostname must be unique for each listener');
  });
});

describe('versions', () => {
  test('the Gateway API CRDs are the standard channel of the version the objects target', () => {
    for (const file of ['gateway.networking.k8s.io_gateways.yaml', 'gateway.networking.k8s.io_httproutes.yaml']) {
      const crd = parse(readFileSync(join(ROOT, 'infra', 'crds', file), 'utf8'));
      expect(crd.metadata.annotations['gateway.networking.k8s.io/bundle-version']).toBe(SUPPORTED_VERSIONS.gatewayApi);
      expect(crd.metadata.annotations['gateway.networking.k8s.io/channel']).toBe('standard');
    }
  });

  test('the docs state the targeted Envoy Gateway and Gateway API versions', () => {
    for (const doc of ['infra/README.md', 'infra/crds/README.md']) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      expect(text).toContain(`Envoy Gateway ${SUPPORTED_VERSIONS.envoyGateway}`);
      expect(text).toContain(`Gateway API ${SUPPORTED_VERSIONS.gatewayApi}`);
    }
  });

  test('cdk8s.yaml imports exactly the committed CRDs, and each has its generated module', () => {
    const config = parse(readFileSync(join(ROOT, 'cdk8s.yaml'), 'utf8')) as { imports: string[] };
    const imports = config.imports.map((spec) => spec.split(':=') as [string, string]);
    expect(imports.map(([, file]) => file).sort()).toEqual([
      'infra/crds/gateway.envoyproxy.io_backendtrafficpolicies.yaml',
      'infra/crds/gateway.envoyproxy.io_clienttrafficpolicies.yaml',
      'infra/crds/gateway.networking.k8s.io_gateways.yaml',
      'infra/crds/gateway.networking.k8s.io_httproutes.yaml',
    ]);
    for (const [name, file] of imports) {
      const group = parse(readFileSync(join(ROOT, file), 'utf8')).spec.group;
      expect(readFileSync(join(ROOT, 'imports', `${name}-${group}.ts`), 'utf8')).toMatch(/^\/\/ generated by cdk8s/);
    }
  });

  test('the committed imports are exactly what `cdk8s import` generates from the committed CRDs, offline', () => {
    const config = parse(readFileSync(join(ROOT, 'cdk8s.yaml'), 'utf8')) as { imports: string[] };
    const out = mkdtempSync(join(tmpdir(), 'levee-import-'));
    try {
      for (const spec of config.imports) {
        const [name, file] = spec.split(':=') as [string, string];
        // --no-save: leave cdk8s.yaml alone; CDK8S_CHECK_UPGRADE=false: no registry request.
        const r = spawnSync(join(ROOT, 'node_modules', '.bin', 'cdk8s'), ['import', spec, '--output', out, '--no-save'], {
          cwd: ROOT,
          env: { PATH: process.env.PATH ?? '', HOME: out, CDK8S_CHECK_UPGRADE: 'false' },
          encoding: 'utf8',
        });
        expect(r.status).toBe(0);
        const group = parse(readFileSync(join(ROOT, file), 'utf8')).spec.group;
        const module = `${name}-${group}.ts`;
        expect(readFileSync(join(out, module), 'utf8') === readFileSync(join(ROOT, 'imports', module), 'utf8')).toBe(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
