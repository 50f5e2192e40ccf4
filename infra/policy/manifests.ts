/**
 * What every policy rule reads manifests with: plain JSON, whatever produced it, and the few
 * Kubernetes semantics the rules share (pod templates, matchLabels selection, namespaces).
 */
import type { Violation } from './types';

// Manifests are untyped JSON here on purpose: the rules must judge any input.
export type Json = any;

export interface Rule {
  readonly id: string;
  readonly description: string;
  readonly check: (manifests: readonly Json[]) => Violation[];
}

export const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

export function ref(m: Json): string {
  return `${m.kind}/${m.metadata?.namespace ?? '-'}/${m.metadata?.name}`;
}

export interface PodTemplate {
  readonly owner: Json;
  readonly labels: Record<string, string>;
  readonly spec: Json;
}

export function podTemplates(manifests: readonly Json[]): PodTemplate[] {
  const out: PodTemplate[] = [];
  for (const m of manifests) {
    if (WORKLOAD_KINDS.has(m.kind)) out.push({ owner: m, labels: m.spec?.template?.metadata?.labels ?? {}, spec: m.spec?.template?.spec ?? {} });
    else if (m.kind === 'CronJob') out.push({ owner: m, labels: m.spec?.jobTemplate?.spec?.template?.metadata?.labels ?? {}, spec: m.spec?.jobTemplate?.spec?.template?.spec ?? {} });
    else if (m.kind === 'Pod') out.push({ owner: m, labels: m.metadata?.labels ?? {}, spec: m.spec ?? {} });
  }
  return out;
}

export function containersOf(spec: Json): Json[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

/** matchLabels-only selector semantics; an empty selector selects everything. */
export function selects(selector: Json, labels: Record<string, string>): boolean {
  if (!selector) return false;
  if (selector.matchExpressions && selector.matchExpressions.length > 0) return false;
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

export function sameNamespace(a: Json, b: Json): boolean {
  return (a.metadata?.namespace ?? 'default') === (b.metadata?.namespace ?? 'default');
}

export function v(rule: string, m: Json, message: string): Violation {
  return { rule, object: ref(m), message };
}
