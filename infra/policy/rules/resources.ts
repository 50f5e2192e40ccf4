/**
 * Policy rules on what every container declares to the scheduler and the kubelet: requests and
 * limits of cpu, memory and ephemeral-storage (request ≤ limit), and distinct liveness and
 * readiness probes.
 */
import { parseCpuMillis, parseMemoryBytes } from '../../config/quantity';
import { Rule, containersOf, podTemplates, v } from '../manifests';
import type { Violation } from '../types';

const RESOURCE_NAMES = ['cpu', 'memory', 'ephemeral-storage'];
const resources: Rule = {
  id: 'resources',
  description: 'every container requests and limits cpu, memory and ephemeral-storage, request ≤ limit',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of containersOf(spec)) {
        for (const r of RESOURCE_NAMES) {
          const req = c.resources?.requests?.[r];
          const lim = c.resources?.limits?.[r];
          if (req === undefined) out.push(v('resources', owner, `container "${c.name}": no ${r} request`));
          if (lim === undefined) out.push(v('resources', owner, `container "${c.name}": no ${r} limit`));
          if (req !== undefined && lim !== undefined) {
            const parse = r === 'cpu' ? parseCpuMillis : parseMemoryBytes;
            const a = parse(String(req));
            const b = parse(String(lim));
            if (a !== undefined && b !== undefined && a > b) out.push(v('resources', owner, `container "${c.name}": ${r} request ${req} exceeds limit ${lim}`));
          }
        }
      }
    }
    return out;
  },
};

const probes: Rule = {
  id: 'probes',
  description: 'every container has liveness and readiness probes, and they differ',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of spec.containers ?? []) {
        if (!c.livenessProbe) out.push(v('probes', owner, `container "${c.name}": no livenessProbe`));
        if (!c.readinessProbe) out.push(v('probes', owner, `container "${c.name}": no readinessProbe`));
        if (c.livenessProbe && c.readinessProbe && JSON.stringify(c.livenessProbe) === JSON.stringify(c.readinessProbe)) {
          out.push(v('probes', owner, `container "${c.name}": livenessProbe and readinessProbe are identical`));
        }
      }
    }
    return out;
  },
};

export const RESOURCE_RULES: readonly Rule[] = [resources, probes];
