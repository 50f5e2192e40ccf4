/**
 * Policy rules on monitoring: metrics ports never public, ServiceMonitors and PodMonitors that
 * select objects of the chart by ports they have, and alerts with severity, summary,
 * description and runbook.
 */
import { Json, PodTemplate, Rule, containersOf, podTemplates, ref, sameNamespace, selects, v } from '../manifests';
import type { Violation } from '../types';

/** The ports a pod template exposes for metrics: a container port named `metrics`, or the one its prometheus.io/port annotation names. */
function metricsPorts(t: PodTemplate, owner: Json): { names: Set<string>; numbers: Set<number> } {
  const names = new Set<string>();
  const numbers = new Set<number>();
  const annotated = Number(owner.spec?.template?.metadata?.annotations?.['prometheus.io/port']);
  for (const c of containersOf(t.spec)) {
    for (const p of c.ports ?? []) {
      if (p.name === 'metrics' || p.containerPort === annotated) {
        if (p.name) names.add(p.name);
        numbers.add(p.containerPort);
      }
    }
  }
  return { names, numbers };
}

/** Whether a Service port (by its number or name) leads to a metrics port of the pods it selects. */
function serviceLeadsToMetrics(manifests: readonly Json[], svc: Json, port: Json): boolean {
  const target = port.targetPort ?? port.port;
  return podTemplates(manifests)
    .filter((t) => sameNamespace(t.owner, svc) && selects({ matchLabels: svc.spec?.selector ?? {} }, t.labels) && Object.keys(svc.spec?.selector ?? {}).length > 0)
    .some((t) => {
      const metrics = metricsPorts(t, t.owner);
      return metrics.names.has(target) || metrics.numbers.has(target);
    });
}

/** The Service ports an L7 route sends traffic to: Ingress backends and HTTPRoute backendRefs. */
function routedServicePorts(m: Json): { service: string; port: number | string }[] {
  if (m.kind === 'Ingress') {
    const backends = [m.spec?.defaultBackend, ...(m.spec?.rules ?? []).flatMap((r: Json) => (r.http?.paths ?? []).map((p: Json) => p.backend))];
    return backends.filter((b) => b?.service).map((b) => ({ service: b.service.name, port: b.service.port?.number ?? b.service.port?.name }));
  }
  if (m.kind === 'HTTPRoute' || m.kind === 'GRPCRoute') {
    return (m.spec?.rules ?? []).flatMap((r: Json) => (r.backendRefs ?? []).filter((b: Json) => (b.kind ?? 'Service') === 'Service').map((b: Json) => ({ service: b.name, port: b.port })));
  }
  return [];
}

const metricsPrivate: Rule = {
  id: 'metrics-private',
  description: 'metrics ports are never public: no LoadBalancer/NodePort Service or L7 route reaches them, and no NetworkPolicy opens them to every source',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const svc of manifests.filter((m) => m.kind === 'Service' && (m.spec?.type === 'LoadBalancer' || m.spec?.type === 'NodePort'))) {
      for (const port of svc.spec?.ports ?? []) {
        if (serviceLeadsToMetrics(manifests, svc, port)) out.push(v('metrics-private', svc, `${svc.spec.type} port ${port.port} leads to a metrics port`));
      }
    }
    for (const route of manifests) {
      for (const backend of routedServicePorts(route)) {
        const svc = manifests.find((m) => m.kind === 'Service' && m.metadata?.name === backend.service && sameNamespace(m, route));
        const port = svc?.spec?.ports?.find((p: Json) => p.port === backend.port || p.name === backend.port);
        if (svc && port && serviceLeadsToMetrics(manifests, svc, port)) out.push(v('metrics-private', route, `routes to ${backend.service}:${backend.port}, a metrics port`));
      }
    }
    for (const policy of manifests.filter((m) => m.kind === 'NetworkPolicy')) {
      for (const rule of policy.spec?.ingress ?? []) {
        if (rule.from && rule.from.length > 0) continue; // restricted to named peers
        for (const t of podTemplates(manifests).filter((t) => sameNamespace(t.owner, policy) && selects(policy.spec?.podSelector, t.labels))) {
          const metrics = metricsPorts(t, t.owner);
          if (metrics.numbers.size === 0) continue;
          const open = !rule.ports || rule.ports.length === 0 || rule.ports.some((p: Json) => metrics.numbers.has(p.port) || metrics.names.has(p.port));
          if (open) out.push(v('metrics-private', policy, `opens the metrics port of ${ref(t.owner)} to every source`));
        }
      }
    }
    return out;
  },
};

const SEVERITIES = new Set(['critical', 'warning', 'info']);

const monitoringObjects: Rule = {
  id: 'monitoring',
  description: 'ServiceMonitors and PodMonitors select objects of the chart by a port they have; every alert has a severity, a summary, a description and an https runbook_url',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const sm of manifests.filter((m) => m.kind === 'ServiceMonitor')) {
      const services = manifests.filter((m) => m.kind === 'Service' && sameNamespace(m, sm) && selects(sm.spec?.selector, m.metadata?.labels ?? {}));
      if (services.length === 0) out.push(v('monitoring', sm, `selector ${JSON.stringify(sm.spec?.selector)} matches no Service`));
      for (const e of sm.spec?.endpoints ?? []) {
        const missing = services.filter((svc) => !(svc.spec?.ports ?? []).some((p: Json) => p.name === e.port));
        if (!e.port || missing.length > 0) out.push(v('monitoring', sm, `endpoint port ${JSON.stringify(e.port)} is not a named port of ${missing.map(ref).join(', ') || 'the Service'}`));
      }
    }
    for (const pm of manifests.filter((m) => m.kind === 'PodMonitor')) {
      const pods = podTemplates(manifests).filter((t) => sameNamespace(t.owner, pm) && selects(pm.spec?.selector, t.labels));
      if (pods.length === 0) out.push(v('monitoring', pm, `selector ${JSON.stringify(pm.spec?.selector)} matches no pods`));
      for (const e of pm.spec?.podMetricsEndpoints ?? []) {
        const missing = pods.filter((t) => !containersOf(t.spec).some((c: Json) => (c.ports ?? []).some((p: Json) => p.name === e.port)));
        if (!e.port || missing.length > 0) out.push(v('monitoring', pm, `endpoint port ${JSON.stringify(e.port)} is not a named container port of ${missing.map((t) => ref(t.owner)).join(', ') || 'the pods'}`));
      }
    }
    for (const pr of manifests.filter((m) => m.kind === 'PrometheusRule')) {
      for (const group of pr.spec?.groups ?? []) {
        for (const r of (group.rules ?? []).filter((r: Json) => r.alert !== undefined)) {
          const problems = [
            !SEVERITIES.has(r.labels?.severity) && `severity ${JSON.stringify(r.labels?.severity)} (allowed: critical, warning, info)`,
            !r.annotations?.summary && 'no summary',
            !r.annotations?.description && 'no description',
            !/^https:\/\/[^#\s]+#[a-z0-9-]+$/.test(r.annotations?.runbook_url ?? '') && `runbook_url ${JSON.stringify(r.annotations?.runbook_url)} is not https://…#section`,
          ].filter(Boolean);
          if (problems.length > 0) out.push(v('monitoring', pr, `alert ${r.alert}: ${problems.join(', ')}`));
        }
      }
    }
    return out;
  },
};

export const MONITORING_RULES: readonly Rule[] = [metricsPrivate, monitoringObjects];
