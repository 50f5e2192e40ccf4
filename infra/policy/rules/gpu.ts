/**
 * Policy rules on GPUs and on the renders in flight: GPU pods that can actually land on GPU
 * nodes, no GPU for anything but the model, and workers whose grace period covers a render.
 */
import { Json, Rule, containersOf, podTemplates, v } from '../manifests';
import type { Violation } from '../types';

/** Resources every container has; anything else in its limits is an extended resource (a GPU, …). */
const BASIC = /^(cpu|memory|ephemeral-storage|hugepages-.+)$/;
/** GPUs, whole or sliced (NVIDIA MIG: nvidia.com/mig-1g.5gb). */
const isGpu = (name: string) => /gpu|\/mig-/i.test(name);

const tolerates = (spec: Json): boolean =>
  (spec.tolerations ?? []).some((t: Json) => (t.effect === 'NoSchedule' || t.effect === undefined || t.effect === '') && (t.operator === 'Exists' || t.key));

const gpu: Rule = {
  id: 'gpu',
  description: 'a pod that asks for an extended resource (a GPU) asks as much as it limits and tolerates a NoSchedule taint (GPU nodes are tainted); only the model asks for GPUs',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, labels, spec } of podTemplates(manifests)) {
      for (const c of containersOf(spec)) {
        const limits: Record<string, unknown> = c.resources?.limits ?? {};
        const requests: Record<string, unknown> = c.resources?.requests ?? {};
        for (const name of Object.keys(limits).filter((n) => !BASIC.test(n))) {
          if (String(requests[name]) !== String(limits[name])) out.push(v('gpu', owner, `container "${c.name}": ${name} requested ${JSON.stringify(requests[name])}, limited ${JSON.stringify(limits[name])}; extended resources need requests = limits`));
          if (!tolerates(spec)) out.push(v('gpu', owner, `container "${c.name}" asks for ${name} but the pod tolerates no NoSchedule taint: it can never land on a tainted GPU node`));
          if (isGpu(name) && labels['app.kubernetes.io/component'] !== 'model') out.push(v('gpu', owner, `container "${c.name}" asks for ${name}; only the model asks for GPUs`));
        }
      }
    }
    return out;
  },
};

const workerGrace: Rule = {
  id: 'worker-grace',
  description: "the worker's terminationGracePeriodSeconds covers its longest job (MODEL_TIMEOUT_MS plus, with object storage, IMAGE_S3_TIMEOUT_MS), so scale-in never kills a render mid-way",
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, labels, spec } of podTemplates(manifests)) {
      if (labels['app.kubernetes.io/component'] !== 'worker') continue;
      const env = new Map<string, string>((spec.containers?.[0]?.env ?? []).filter((e: Json) => e.value !== undefined).map((e: Json) => [e.name, String(e.value)]));
      const modelMs = Number(env.get('MODEL_TIMEOUT_MS') ?? 30_000);
      // With object storage a job reads (the check for an earlier render) and writes once each.
      const storeMs = env.get('IMAGE_STORE') === 's3' ? 2 * Number(env.get('IMAGE_S3_TIMEOUT_MS') ?? 15_000) : 0;
      const needed = Math.ceil((modelMs + storeMs) / 1000);
      const grace = spec.terminationGracePeriodSeconds ?? 30;
      if (grace < needed) out.push(v('worker-grace', owner, `terminationGracePeriodSeconds ${grace} is shorter than its longest job, ${needed} s (MODEL_TIMEOUT_MS ${modelMs}${storeMs ? ` + 2 × IMAGE_S3_TIMEOUT_MS ${storeMs / 2}` : ''})`));
    }
    return out;
  },
};

export const GPU_RULES: readonly Rule[] = [gpu, workerGrace];
