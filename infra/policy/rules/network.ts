/**
 * Policy rules on traffic inside the cluster: every pod covered by a default-deny and its own
 * allow NetworkPolicy, every Service selecting pods of the chart on ports they have, and every
 * StatefulSet with a headless Service of its own.
 */
import { Json, Rule, containersOf, podTemplates, sameNamespace, selects, v } from '../manifests';
import type { Violation } from '../types';

const networkCoverage: Rule = {
  id: 'network-coverage',
  description: 'every pod is covered for ingress and egress by a default deny and by its own allow policy',
  check: (manifests) => {
    const out: Violation[] = [];
    const policies = manifests.filter((m) => m.kind === 'NetworkPolicy');
    const types = (p: Json): string[] => p.spec?.policyTypes ?? (p.spec?.egress ? ['Ingress', 'Egress'] : ['Ingress']);
    for (const t of podTemplates(manifests)) {
      const applying = policies.filter((p) => sameNamespace(p, t.owner) && selects(p.spec?.podSelector, t.labels));
      for (const direction of ['Ingress', 'Egress']) {
        if (!applying.some((p) => types(p).includes(direction))) out.push(v('network-coverage', t.owner, `no NetworkPolicy restricts ${direction.toLowerCase()} of its pods`));
      }
      const own = applying.filter((p) => Object.keys(p.spec?.podSelector?.matchLabels ?? {}).length > 0);
      if (own.length === 0) out.push(v('network-coverage', t.owner, 'no allow policy of its own (only namespace-wide policies select its pods)'));
    }
    const denies = policies.filter((p) => Object.keys(p.spec?.podSelector ?? {}).length === 0 && !(p.spec?.ingress?.length) && !(p.spec?.egress?.length));
    for (const ns of new Set(podTemplates(manifests).map((t) => t.owner.metadata?.namespace ?? 'default'))) {
      const deny = denies.find((p) => (p.metadata?.namespace ?? 'default') === ns);
      if (!deny || !types(deny).includes('Ingress') || !types(deny).includes('Egress')) {
        out.push({ rule: 'network-coverage', object: `Namespace/-/${ns}`, message: 'no default-deny NetworkPolicy for both ingress and egress' });
      }
    }
    return out;
  },
};

const servicesSelectPods: Rule = {
  id: 'service-selects-pods',
  description: 'every Service selects pods of the chart, and its target ports exist on them',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const svc of manifests.filter((m) => m.kind === 'Service' && m.spec?.type !== 'ExternalName')) {
      const selector = svc.spec?.selector;
      if (!selector || Object.keys(selector).length === 0) {
        out.push(v('service-selects-pods', svc, 'has no selector'));
        continue;
      }
      const targets = podTemplates(manifests).filter((t) => sameNamespace(t.owner, svc) && selects({ matchLabels: selector }, t.labels));
      if (targets.length === 0) {
        out.push(v('service-selects-pods', svc, `selector ${JSON.stringify(selector)} matches no pods`));
        continue;
      }
      for (const port of svc.spec?.ports ?? []) {
        const target = port.targetPort ?? port.port;
        const found = targets.some((t) =>
          containersOf(t.spec).some((c: Json) => (c.ports ?? []).some((cp: Json) => cp.name === target || cp.containerPort === target)),
        );
        if (!found) out.push(v('service-selects-pods', svc, `targetPort ${JSON.stringify(target)} is not a port of the selected pods`));
      }
    }
    return out;
  },
};

const statefulSetHeadless: Rule = {
  id: 'statefulset-headless',
  description: 'every StatefulSet names a headless Service that selects its pods',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const sts of manifests.filter((m) => m.kind === 'StatefulSet')) {
      const svc = manifests.find((m) => m.kind === 'Service' && m.metadata?.name === sts.spec?.serviceName && sameNamespace(m, sts));
      if (!svc) out.push(v('statefulset-headless', sts, `serviceName "${sts.spec?.serviceName}" is not a Service of the chart`));
      else if (svc.spec?.clusterIP !== 'None') out.push(v('statefulset-headless', sts, `Service "${svc.metadata.name}" is not headless (clusterIP: None)`));
      else if (!selects({ matchLabels: svc.spec?.selector ?? {} }, sts.spec?.template?.metadata?.labels ?? {}) || !svc.spec?.selector) {
        out.push(v('statefulset-headless', sts, `Service "${svc.metadata.name}" does not select its pods`));
      }
    }
    return out;
  },
};

export const NETWORK_RULES: readonly Rule[] = [networkCoverage, servicesSelectPods, statefulSetHeadless];
