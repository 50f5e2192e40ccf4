/**
 * Policy rules on what a pod may do: Pod Security Standards "restricted" (non-root numeric uid,
 * no privilege escalation, no added capabilities, RuntimeDefault seccomp, no host namespaces or
 * paths) and a read-only root filesystem with an emptyDir at /tmp.
 */
import { Json, Rule, containersOf, podTemplates, v } from '../manifests';
import type { Violation } from '../types';

const pssRestricted: Rule = {
  id: 'pss-restricted',
  description: 'every pod meets Pod Security Standards "restricted" with a numeric uid ≥ 10000',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      const pod = spec.securityContext ?? {};
      if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push(v('pss-restricted', owner, 'uses host namespaces (hostNetwork/hostPID/hostIPC)'));
      for (const vol of spec.volumes ?? []) if (vol.hostPath) out.push(v('pss-restricted', owner, `volume "${vol.name}" is a hostPath`));
      for (const c of containersOf(spec)) {
        const sc = c.securityContext ?? {};
        const where = `container "${c.name}"`;
        if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) out.push(v('pss-restricted', owner, `${where}: runAsNonRoot is not true`));
        const uid = sc.runAsUser ?? pod.runAsUser;
        if (typeof uid !== 'number' || uid < 10000) out.push(v('pss-restricted', owner, `${where}: runAsUser must be a numeric uid ≥ 10000 (got ${JSON.stringify(uid)})`));
        if (sc.allowPrivilegeEscalation !== false) out.push(v('pss-restricted', owner, `${where}: allowPrivilegeEscalation is not false`));
        if (sc.privileged === true) out.push(v('pss-restricted', owner, `${where}: privileged`));
        if (!(sc.capabilities?.drop ?? []).includes('ALL')) out.push(v('pss-restricted', owner, `${where}: capabilities do not drop ALL`));
        const added = (sc.capabilities?.add ?? []).filter((cap: string) => cap !== 'NET_BIND_SERVICE');
        if (added.length > 0) out.push(v('pss-restricted', owner, `${where}: adds capabilities ${added.join(', ')}`));
        const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
        if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(v('pss-restricted', owner, `${where}: seccompProfile is not RuntimeDefault`));
        for (const p of c.ports ?? []) if (p.hostPort) out.push(v('pss-restricted', owner, `${where}: uses hostPort ${p.hostPort}`));
      }
    }
    return out;
  },
};

const readOnlyRoot: Rule = {
  id: 'read-only-root',
  description: 'every container has a read-only root filesystem and an emptyDir at /tmp',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      const emptyDirs = new Set((spec.volumes ?? []).filter((vol: Json) => vol.emptyDir).map((vol: Json) => vol.name));
      for (const c of containersOf(spec)) {
        if (c.securityContext?.readOnlyRootFilesystem !== true) out.push(v('read-only-root', owner, `container "${c.name}": readOnlyRootFilesystem is not true`));
        const tmp = (c.volumeMounts ?? []).find((mnt: Json) => mnt.mountPath === '/tmp');
        if (!tmp || !emptyDirs.has(tmp.name)) out.push(v('read-only-root', owner, `container "${c.name}": no emptyDir mounted at /tmp`));
      }
    }
    return out;
  },
};

export const POD_SECURITY_RULES: readonly Rule[] = [pssRestricted, readOnlyRoot];
