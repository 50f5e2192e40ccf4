/**
 * Policy rules on credentials: no Secret objects or literal secret values in the manifests, and
 * every pod on a ServiceAccount of its own without an automounted token.
 */
import { Rule, containersOf, podTemplates, sameNamespace, v } from '../manifests';
import type { Violation } from '../types';

const noLiteralSecrets: Rule = {
  id: 'no-literal-secrets',
  description: 'no Secret objects and no literal password/token env values in the manifests',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const m of manifests) if (m.kind === 'Secret') out.push(v('no-literal-secrets', m, 'Secrets are created outside the manifests (kubectl or Pulumi)'));
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of containersOf(spec)) {
        for (const e of c.env ?? []) {
          if (/PASSWORD|SECRET|TOKEN|AUTH|ACCESS_KEY/i.test(e.name) && e.value !== undefined) out.push(v('no-literal-secrets', owner, `container "${c.name}": env ${e.name} has a literal value`));
        }
      }
    }
    return out;
  },
};

const serviceAccounts: Rule = {
  id: 'service-account',
  description: 'every pod runs as its own ServiceAccount without an automounted token',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      const name = spec.serviceAccountName;
      const sa = manifests.find((m) => m.kind === 'ServiceAccount' && m.metadata?.name === name && sameNamespace(m, owner));
      if (!name || name === 'default' || !sa) out.push(v('service-account', owner, `serviceAccountName ${JSON.stringify(name)} is not a dedicated ServiceAccount of the chart`));
      // The pod's setting wins over the ServiceAccount's.
      const automount = spec.automountServiceAccountToken ?? sa?.automountServiceAccountToken ?? true;
      if (automount !== false) out.push(v('service-account', owner, 'automounts a service account token'));
    }
    return out;
  },
};

export const CREDENTIAL_RULES: readonly Rule[] = [noLiteralSecrets, serviceAccounts];
