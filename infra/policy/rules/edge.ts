/**
 * Policy rules on the L7 edge objects: Ingress and HTTPRoute backends and parents that exist in
 * the chart, Envoy Gateway policies that target real objects, and edge rate limits never below
 * the app's own.
 */
import { Json, Rule, containersOf, podTemplates, sameNamespace, v } from '../manifests';
import type { Violation } from '../types';

const GATEWAY_API = 'gateway.networking.k8s.io';
const isKind = (m: Json, group: string, kind: string) => m.kind === kind && String(m.apiVersion ?? '').split('/')[0] === group && m.apiVersion.includes('/');

/** The object of `group`/`kind` named `name` in `namespace`; the core group is "". */
function findObject(manifests: readonly Json[], group: string, kind: string, name: string, namespace: string): Json | undefined {
  return manifests.find((m) => {
    const apiGroup = String(m.apiVersion ?? '').includes('/') ? String(m.apiVersion).split('/')[0] : '';
    return apiGroup === group && m.kind === kind && m.metadata?.name === name && (m.metadata?.namespace ?? 'default') === namespace;
  });
}

const ns = (m: Json): string => m.metadata?.namespace ?? 'default';

/** Every backend a route or Ingress sends traffic to: Service name and port. */
function routeBackends(m: Json): { name: string; port: unknown; namespace: string; kind: string; group: string }[] {
  if (m.kind === 'Ingress') {
    const paths = (m.spec?.rules ?? []).flatMap((r: Json) => r.http?.paths ?? []);
    const backends = [...paths.map((p: Json) => p.backend), ...(m.spec?.defaultBackend ? [m.spec.defaultBackend] : [])];
    return backends.filter((b: Json) => b?.service).map((b: Json) => ({ name: b.service.name, port: b.service.port?.number ?? b.service.port?.name, namespace: ns(m), kind: 'Service', group: '' }));
  }
  if (isKind(m, GATEWAY_API, 'HTTPRoute')) {
    return (m.spec?.rules ?? []).flatMap((r: Json) => r.backendRefs ?? []).map((b: Json) => ({
      name: b.name, port: b.port, namespace: b.namespace ?? ns(m), kind: b.kind ?? 'Service', group: b.group ?? '',
    }));
  }
  return [];
}

const routeBackendsRule: Rule = {
  id: 'route-backends',
  description: "every Ingress and HTTPRoute backend is a Service of the chart in the route's namespace, on a port that Service has",
  check: (manifests) => {
    const out: Violation[] = [];
    for (const m of manifests) {
      for (const b of routeBackends(m)) {
        const where = `backend ${b.kind} ${b.name}:${b.port}`;
        if (b.group !== '' || b.kind !== 'Service') { out.push(v('route-backends', m, `${where}: only core Services are routed to`)); continue; }
        if (b.namespace !== ns(m)) { out.push(v('route-backends', m, `${where}: in namespace ${b.namespace}, which needs a ReferenceGrant the chart does not write`)); continue; }
        const svc = findObject(manifests, '', 'Service', b.name, b.namespace);
        if (!svc) { out.push(v('route-backends', m, `${where}: no such Service in the chart`)); continue; }
        const ports = (svc.spec?.ports ?? []) as Json[];
        if (!ports.some((p) => p.port === b.port || (typeof b.port === 'string' && p.name === b.port))) {
          out.push(v('route-backends', m, `${where}: Service ${b.name} has no port ${JSON.stringify(b.port)} (it has ${ports.map((p) => p.port).join(', ')})`));
        }
      }
    }
    return out;
  },
};

const routeParents: Rule = {
  id: 'route-parents',
  description: "an HTTPRoute's parentRefs in its own namespace name a Gateway of the chart and one of its listeners, whose hostname admits the route",
  check: (manifests) => {
    const out: Violation[] = [];
    for (const route of manifests.filter((m) => isKind(m, GATEWAY_API, 'HTTPRoute'))) {
      const parents = (route.spec?.parentRefs ?? []) as Json[];
      if (parents.length === 0) out.push(v('route-parents', route, 'has no parentRefs: it attaches to nothing'));
      for (const p of parents) {
        const namespace = p.namespace ?? ns(route);
        // A Gateway in another namespace (a shared one) is not part of the chart; its allowedRoutes decide.
        if (namespace !== ns(route)) continue;
        const gateway = findObject(manifests, p.group ?? GATEWAY_API, p.kind ?? 'Gateway', p.name, namespace);
        if (!gateway) { out.push(v('route-parents', route, `parentRef ${p.kind ?? 'Gateway'} ${p.name} is not in the chart`)); continue; }
        const listeners = ((gateway.spec?.listeners ?? []) as Json[]).filter((l) => p.sectionName === undefined || l.name === p.sectionName);
        if (listeners.length === 0) { out.push(v('route-parents', route, `parentRef ${p.name} names listener ${JSON.stringify(p.sectionName)}, which Gateway ${p.name} does not have`)); continue; }
        const hostnames = (route.spec?.hostnames ?? []) as string[];
        for (const l of listeners) {
          const admits = (h: string) => l.hostname === undefined || l.hostname === h || (l.hostname.startsWith('*.') && h.endsWith(l.hostname.slice(1)));
          if (hostnames.length > 0 && !hostnames.some(admits)) out.push(v('route-parents', route, `listener ${l.name} of Gateway ${p.name} (hostname ${l.hostname}) admits none of ${hostnames.join(', ')}`));
        }
      }
    }
    return out;
  },
};

const POLICY_GROUP = 'gateway.envoyproxy.io';

const policyTargets: Rule = {
  id: 'policy-targets',
  description: "an Envoy Gateway policy's targetRefs name objects of the chart in its namespace (and route rules or listeners that exist)",
  check: (manifests) => {
    const out: Violation[] = [];
    for (const policy of manifests.filter((m) => String(m.apiVersion ?? '').startsWith(`${POLICY_GROUP}/`) && /Policy$/.test(m.kind))) {
      const refs = [...(policy.spec?.targetRef ? [policy.spec.targetRef] : []), ...(policy.spec?.targetRefs ?? [])] as Json[];
      if (refs.length === 0 && !(policy.spec?.targetSelectors?.length > 0)) out.push(v('policy-targets', policy, 'targets nothing'));
      for (const t of refs) {
        const target = findObject(manifests, t.group, t.kind, t.name, ns(policy));
        const what = `targetRef ${t.kind} ${t.name}${t.sectionName ? `/${t.sectionName}` : ''}`;
        if (!target) { out.push(v('policy-targets', policy, `${what}: no such object in the chart`)); continue; }
        if (t.sectionName !== undefined) {
          const sections = t.kind === 'Gateway' ? (target.spec?.listeners ?? []) : (target.spec?.rules ?? []);
          if (!(sections as Json[]).some((s) => s.name === t.sectionName)) out.push(v('policy-targets', policy, `${what}: ${t.kind} ${t.name} has no ${t.kind === 'Gateway' ? 'listener' : 'rule'} named ${t.sectionName}`));
        }
      }
    }
    return out;
  },
};

const UNIT_SECONDS: Record<string, number> = { Second: 1, Minute: 60, Hour: 3600, Day: 86400, Week: 604800, Month: 2592000, Year: 31536000 };

const edgeRateLimit: Rule = {
  id: 'edge-rate-limit',
  description: "an edge (Envoy) rate limit never admits less than the app's own RATE_LIMIT_PER_SECOND: the edge sheds floods, the app's exact limit stays the contract",
  check: (manifests) => {
    const out: Violation[] = [];
    for (const policy of manifests.filter((m) => isKind(m, POLICY_GROUP, 'BackendTrafficPolicy'))) {
      const appLimits = podTemplates(manifests)
        .filter((t) => sameNamespace(t.owner, policy))
        .flatMap((t) => containersOf(t.spec).flatMap((c: Json) => (c.env ?? []).filter((e: Json) => e.name === 'RATE_LIMIT_PER_SECOND').map((e: Json) => Number(e.value))));
      if (appLimits.length === 0) continue;
      const app = Math.max(...appLimits);
      const rules = [...(policy.spec?.rateLimit?.local?.rules ?? []), ...(policy.spec?.rateLimit?.global?.rules ?? [])] as Json[];
      for (const r of rules) {
        const perSecond = Number(r.limit?.requests) / (UNIT_SECONDS[r.limit?.unit] ?? NaN);
        if (!(perSecond >= app)) out.push(v('edge-rate-limit', policy, `edge limit ${r.limit?.requests}/${r.limit?.unit} is below the app's RATE_LIMIT_PER_SECOND ${app}`));
      }
    }
    return out;
  },
};

export const EDGE_RULES: readonly Rule[] = [routeBackendsRule, routeParents, policyTargets, edgeRateLimit];
