/**
 * Policy rules on containers' environment: Kubernetes expands `$(VAR)` in an env value only from
 * variables declared before it in the list (and in a command or argument from the container's
 * variables), and leaves any other reference as it is, silently: a pod would then start with
 * the literal text (e.g. `k8s.pod.name=$(POD_NAME)` in its trace resource).
 */
import { Json, Rule, containersOf, podTemplates, v } from '../manifests';
import type { Violation } from '../types';

/** The names a text refers to as `$(NAME)`; `$$` is an escaped `$`. */
function references(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g)) if (m[1] !== undefined) out.push(m[1]);
  return out;
}

const envReferences: Rule = {
  id: 'env-references',
  description: 'a $(VAR) in an env value names a variable declared before it, and in a command or argument one the container declares (Kubernetes leaves any other as literal text)',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of containersOf(spec)) {
        const env: Json[] = c.env ?? [];
        const declared = new Set<string>();
        for (const e of env) {
          for (const name of typeof e.value === 'string' ? references(e.value) : []) {
            if (!declared.has(name)) out.push(v('env-references', owner, `container "${c.name}": env ${e.name} refers to $(${name}), which is not declared before it (it would stay literal text)`));
          }
          declared.add(e.name);
        }
        for (const arg of [...(c.command ?? []), ...(c.args ?? [])].map(String)) {
          for (const name of references(arg)) {
            if (!declared.has(name)) out.push(v('env-references', owner, `container "${c.name}": command or argument refers to $(${name}), which the container does not declare (it would stay literal text)`));
          }
        }
      }
    }
    return out;
  },
};

export const ENVIRONMENT_RULES: readonly Rule[] = [envReferences];
