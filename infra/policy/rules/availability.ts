/**
 * Policy rules on availability: autoscalers that own their workload alone and can scale, and
 * PodDisruptionBudgets that protect pods without ever blocking a node drain.
 */
import { Json, Rule, WORKLOAD_KINDS, podTemplates, ref, sameNamespace, selects, v } from '../manifests';
import type { Violation } from '../types';

/** The minimum replica count each workload can have: its autoscaler's minimum, else `replicas` (default 1). */
function minReplicasByTarget(manifests: readonly Json[]): Map<string, number> {
  const min = new Map<string, number>();
  for (const m of manifests) {
    if (WORKLOAD_KINDS.has(m.kind)) min.set(ref(m), m.spec?.replicas ?? 1);
  }
  for (const m of manifests) {
    const target = m.kind === 'HorizontalPodAutoscaler' ? m.spec?.scaleTargetRef : m.kind === 'ScaledObject' ? m.spec?.scaleTargetRef : undefined;
    if (!target) continue;
    const key = `${target.kind ?? 'Deployment'}/${m.metadata?.namespace ?? '-'}/${target.name}`;
    const value = m.kind === 'HorizontalPodAutoscaler' ? m.spec?.minReplicas ?? 1 : m.spec?.minReplicaCount ?? 0;
    min.set(key, value);
  }
  return min;
}

const autoscalerReplicas: Rule = {
  id: 'autoscaler-replicas',
  description: 'an autoscaled workload has no fixed replicas, exactly one autoscaler, and room to scale (max > min)',
  check: (manifests) => {
    const out: Violation[] = [];
    const workloads = new Map(manifests.filter((m) => WORKLOAD_KINDS.has(m.kind)).map((m) => [ref(m), m] as const));
    const owners = new Map<string, string[]>();
    for (const m of manifests) {
      if (m.kind !== 'HorizontalPodAutoscaler' && m.kind !== 'ScaledObject') continue;
      const t = m.spec?.scaleTargetRef ?? {};
      const key = `${t.kind ?? 'Deployment'}/${m.metadata?.namespace ?? '-'}/${t.name}`;
      const target = workloads.get(key);
      if (!target) {
        out.push(v('autoscaler-replicas', m, `scaleTargetRef ${key} does not exist in the chart`));
        continue;
      }
      owners.set(key, [...(owners.get(key) ?? []), ref(m)]);
      if (target.spec?.replicas !== undefined) out.push(v('autoscaler-replicas', target, `has fixed replicas (${target.spec.replicas}) but is scaled by ${ref(m)}`));
      const min = m.kind === 'HorizontalPodAutoscaler' ? m.spec?.minReplicas ?? 1 : m.spec?.minReplicaCount ?? 0;
      const max = m.kind === 'HorizontalPodAutoscaler' ? m.spec?.maxReplicas : m.spec?.maxReplicaCount ?? 100;
      // An autoscaler that can never change the replica count is a fixed size in disguise.
      if (!(max > min)) out.push(v('autoscaler-replicas', m, `maximum replicas ${max} must be above minimum ${min}, or the autoscaler can never scale`));
      // KEDA creates its own HPA named keda-hpa-<name> or advanced.horizontalPodAutoscalerConfig.name.
      const kedaHpa = m.kind === 'ScaledObject' ? m.spec?.advanced?.horizontalPodAutoscalerConfig?.name ?? `keda-hpa-${m.metadata?.name}` : undefined;
      if (kedaHpa && manifests.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata?.name === kedaHpa && sameNamespace(o, m))) {
        out.push(v('autoscaler-replicas', m, `KEDA would create HorizontalPodAutoscaler "${kedaHpa}", which the chart already defines`));
      }
    }
    for (const [key, list] of owners) {
      if (list.length > 1) out.push(v('autoscaler-replicas', workloads.get(key), `is scaled by more than one autoscaler: ${list.join(', ')}`));
    }
    return out;
  },
};

const disruptionBudgets: Rule = {
  id: 'pdb-drain',
  description: 'a PodDisruptionBudget can never block a node drain',
  check: (manifests) => {
    const out: Violation[] = [];
    const min = minReplicasByTarget(manifests);
    for (const pdb of manifests.filter((m) => m.kind === 'PodDisruptionBudget')) {
      const spec = pdb.spec ?? {};
      const targets = podTemplates(manifests).filter((t) => sameNamespace(t.owner, pdb) && selects(spec.selector, t.labels));
      if (targets.length === 0) {
        out.push(v('pdb-drain', pdb, 'selects no pods of the chart'));
        continue;
      }
      if (spec.unhealthyPodEvictionPolicy !== 'AlwaysAllow') out.push(v('pdb-drain', pdb, 'unhealthyPodEvictionPolicy is not AlwaysAllow (unready pods could block a drain)'));
      for (const t of targets) {
        const floor = min.get(ref(t.owner)) ?? 1;
        if (floor < 2) out.push(v('pdb-drain', pdb, `covers ${ref(t.owner)}, which can run a single replica; a budget there blocks drains`));
        if (spec.maxUnavailable !== undefined) {
          const mu = spec.maxUnavailable;
          const zero = mu === 0 || mu === '0' || mu === '0%';
          if (zero) out.push(v('pdb-drain', pdb, 'maxUnavailable is 0'));
        } else if (spec.minAvailable !== undefined) {
          const ma = spec.minAvailable;
          const blocks = typeof ma === 'number' ? ma >= floor : String(ma) === '100%';
          if (blocks) out.push(v('pdb-drain', pdb, `minAvailable ${ma} is not below the minimum replicas (${floor}) of ${ref(t.owner)}`));
        } else {
          out.push(v('pdb-drain', pdb, 'sets neither maxUnavailable nor minAvailable'));
        }
      }
    }
    return out;
  },
};

export const AVAILABILITY_RULES: readonly Rule[] = [autoscalerReplicas, disruptionBudgets];
