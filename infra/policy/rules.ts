/**
 * Policy rules over synthesized manifests (plain JSON, whatever produced them).
 * `npm run synth` runs every rule and refuses to write when one fails.
 */
import { parseCpuMillis, parseMemoryBytes } from '../config/quantity';
import { EGRESS_RULES } from './egress';
import { GPU_RULES } from './gpu';
import { Json, PodTemplate, Rule, WORKLOAD_KINDS, containersOf, podTemplates, ref, sameNamespace, selects, v } from './manifests';
import type { Violation } from './types';

export type { Rule } from './manifests';


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

const pinnedImages: Rule = {
  id: 'pinned-image',
  description: 'every image is pinned to a tag other than latest, or to a digest',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of containersOf(spec)) {
        const image = String(c.image ?? '');
        const digest = /@sha256:[a-f0-9]{64}$/.test(image);
        const tag = /:([A-Za-z0-9_][A-Za-z0-9_.-]*)$/.exec(image.replace(/@.*$/, ''))?.[1];
        const lastSegment = image.replace(/@.*$/, '').split('/').pop() ?? '';
        const hasTag = tag !== undefined && lastSegment.includes(':');
        if (!digest && (!hasTag || tag === 'latest')) out.push(v('pinned-image', owner, `container "${c.name}": image "${image}" is not pinned (tag missing or "latest")`));
      }
    }
    return out;
  },
};

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

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function redisBytes(text: string | undefined): number | undefined {
  const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(text ?? '');
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase();
  return Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as Record<string, number>)[unit]!;
}

const ENV_NAME = '[A-Za-z_][A-Za-z0-9_]*';
const fromSecret = (c: Json, name: string | undefined) => !!(c.env ?? []).find((e: Json) => e.name === name)?.valueFrom?.secretKeyRef;

/** The `sh -c` script of a container, or '' when its command is not one. */
function shellScript(c: Json): string {
  const command: string[] = (c.command ?? []).map(String);
  return ['sh', '/bin/sh'].includes(command[0] ?? '') && command[1] === '-c' ? command[2] ?? '' : '';
}

/** A Redis Sentinel: redis-server started with --sentinel. */
function isSentinel(c: Json): boolean {
  const argv: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
  return argv.includes('--sentinel') || /(^|\s)--sentinel(\s|$)/.test(shellScript(c));
}

/** Config lines that carry a password: their value must be `$VAR` with VAR from a Secret. */
const PASSWORD_LINE = /^\s*(requirepass|masterauth|sentinel\s+auth-pass\s+\S+|sentinel\s+sentinel-pass)\s+(.*?)\s*$/gm;

/**
 * The Redis password must never be a process argument (`ps`, /proc/<pid>/cmdline are
 * world-readable): no `--requirepass` (not even `$(VAR)`, which Kubernetes expands into
 * argv), and instead `sh -c` feeding `requirepass $VAR` (and `masterauth`, and a Sentinel's
 * `sentinel auth-pass` / `sentinel sentinel-pass`) to `redis-server` on stdin (`-`), with VAR
 * from a secretKeyRef. redis-cli in the probes authenticates through REDISCLI_AUTH (from a
 * secretKeyRef), never `-a`/`--pass`.
 */
function redisPassword(c: Json, args: string[], replicated: boolean): string[] {
  const out: string[] = [];
  if (args.some((a) => /(^|\s)--(requirepass|masterauth)(\s|$)/.test(a))) {
    out.push('the password is a process argument (--requirepass/--masterauth); feed "requirepass $VAR" to "redis-server -" on stdin instead');
  }
  const script = shellScript(c);
  const lines = [...script.matchAll(PASSWORD_LINE)].map((m) => ({
    directive: m[1]!.startsWith('sentinel auth-pass') ? 'sentinel auth-pass' : m[1]!.replace(/\s+/g, ' '),
    value: m[2]!,
  }));
  const feedsStdin = /\bexec redis-server (- |[^\n]*\s- *<<)/.test(script);
  if (!feedsStdin || !lines.some((l) => l.directive === 'requirepass')) {
    out.push('no password on stdin: expected command sh -c with "exec redis-server … -" fed a "requirepass $VAR" line');
  }
  for (const { directive, value } of lines) {
    const envName = new RegExp(`^"?\\$(?:\\{(${ENV_NAME})\\}|(${ENV_NAME}))"?$`).exec(value);
    const name = envName?.[1] ?? envName?.[2];
    // The value itself is never echoed: it may be a literal password.
    if (!name || !fromSecret(c, name)) out.push(`the ${directive} value must be $VAR with VAR from a secretKeyRef (never a literal password)`);
  }
  const has = (d: string) => lines.some((l) => l.directive === d);
  if (isSentinel(c) && !has('sentinel auth-pass')) out.push('a Sentinel without "sentinel auth-pass <master> $VAR" on stdin cannot reach password-protected data pods');
  if (!isSentinel(c) && replicated && !has('masterauth')) out.push('a replicated Redis without "masterauth $VAR" on stdin: its replicas cannot authenticate to the primary');
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
    const cmd: string = (probe?.exec?.command ?? []).map(String).join(' ');
    if (!cmd.includes('redis-cli')) continue;
    if (/(^|\s)(-a|--pass|--askpass)(\s|$)/.test(cmd)) out.push('a probe passes the password to redis-cli as an argument; use REDISCLI_AUTH');
    else if (!fromSecret(c, 'REDISCLI_AUTH')) out.push('a probe runs redis-cli without REDISCLI_AUTH from a secretKeyRef');
  }
  return out;
}

const redis: Rule = {
  id: 'redis',
  description: 'Redis has a password from a Secret that never appears in process arguments (stdin config, REDISCLI_AUTH; masterauth for replicas, auth-pass for Sentinels), maxmemory below its limit, and eviction matching persistence (noeviction ⇒ AOF on; evicting cache ⇒ no persistence)',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of spec.containers ?? []) {
        const args: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
        if (!args.some((a) => a.includes('redis-server'))) continue;
        const where = `container "${c.name}"`;
        out.push(...redisPassword(c, args, (owner.spec?.replicas ?? 1) > 1).map((reason) => v('redis', owner, `${where}: ${reason}`)));
        if (isSentinel(c)) continue; // a Sentinel keeps no data: no memory or persistence flags
        const max = redisBytes(flag(args, '--maxmemory'));
        const limit = parseMemoryBytes(String(c.resources?.limits?.memory ?? ''));
        if (max === undefined || max === 0) out.push(v('redis', owner, `${where}: no --maxmemory`));
        else if (limit === undefined || max >= limit) out.push(v('redis', owner, `${where}: --maxmemory must be below the memory limit (${c.resources?.limits?.memory ?? 'none'})`));
        const policy = flag(args, '--maxmemory-policy');
        const aof = flag(args, '--appendonly');
        if (!policy) out.push(v('redis', owner, `${where}: no --maxmemory-policy`));
        else if (policy === 'noeviction' && aof !== 'yes') out.push(v('redis', owner, `${where}: noeviction (data that must not be lost) requires --appendonly yes`));
        else if (policy !== 'noeviction' && (aof === 'yes' || flag(args, '--save') !== '')) {
          out.push(v('redis', owner, `${where}: an evicting cache (${policy}) must not persist (--appendonly no, --save "")`));
        }
      }
    }
    return out;
  },
};

const plainEnvValue = (c: Json, name: string): string | undefined => (c.env ?? []).find((e: Json) => e.name === name && e.value !== undefined)?.value;

/**
 * The Sentinel shape: Sentinels in an odd number of at least 3 with a majority quorum (so a
 * failover is decided by a majority that survives losing one), each with a writable emptyDir
 * for the config file it rewrites; data pods with replicas know a replica from a primary in
 * their readiness probe (a rollout must wait for a replica to be in sync), and a Sentinel
 * group watches them (nothing else would promote a replica).
 */
const redisSentinel: Rule = {
  id: 'redis-sentinel',
  description: 'Sentinels: an odd number ≥ 3, quorum a majority, a writable emptyDir for their config; replicated Redis data pods: readiness tells a replica from a primary, and Sentinels watch them',
  check: (manifests) => {
    const out: Violation[] = [];
    const templates = podTemplates(manifests);
    const sentinelOwners = templates.filter((t) => (t.spec.containers ?? []).some(isSentinel));
    for (const { owner, spec } of sentinelOwners) {
      const n = owner.spec?.replicas ?? 1;
      if (n < 3 || n % 2 === 0) out.push(v('redis-sentinel', owner, `runs ${n} Sentinel(s); allowed: an odd number, at least 3 (a majority must survive losing one)`));
      for (const c of (spec.containers ?? []).filter(isSentinel)) {
        const quorum = Number(plainEnvValue(c, 'QUORUM'));
        if (!Number.isInteger(quorum) || quorum <= n / 2 || quorum > n) out.push(v('redis-sentinel', owner, `container "${c.name}": QUORUM ${plainEnvValue(c, 'QUORUM') ?? '(unset)'} is not a majority of ${n} Sentinels`));
        const dir = plainEnvValue(c, 'SENTINEL_DIR');
        const mount = (c.volumeMounts ?? []).find((m: Json) => m.mountPath === dir);
        const volume = (spec.volumes ?? []).find((vol: Json) => vol.name === mount?.name);
        if (!dir || !mount || !volume?.emptyDir || mount.readOnly) out.push(v('redis-sentinel', owner, `container "${c.name}": SENTINEL_DIR must be a writable emptyDir mount (Sentinel rewrites its config; the root filesystem is read-only)`));
      }
    }
    for (const { owner, spec } of templates) {
      if ((owner.spec?.replicas ?? 1) < 2) continue;
      for (const c of spec.containers ?? []) {
        const argv: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
        if (!argv.some((a) => a.includes('redis-server')) || isSentinel(c)) continue;
        const ready = (c.readinessProbe?.exec?.command ?? []).map(String).join(' ');
        if (!/master_link_status/.test(ready)) out.push(v('redis-sentinel', owner, `container "${c.name}": a replicated Redis's readiness probe must tell a replica from a primary (INFO replication: role, master_link_status)`));
        if (!sentinelOwners.some((t) => sameNamespace(t.owner, owner))) out.push(v('redis-sentinel', owner, 'a replicated Redis with no Sentinels in its namespace: nothing would promote a replica'));
      }
    }
    return out;
  },
};

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

export const RULES: readonly Rule[] = [
  pssRestricted, readOnlyRoot, resources, probes, pinnedImages, autoscalerReplicas, disruptionBudgets,
  networkCoverage, servicesSelectPods, statefulSetHeadless, redis, redisSentinel, noLiteralSecrets, serviceAccounts, metricsPrivate, monitoringObjects,
  routeBackendsRule, routeParents, policyTargets, edgeRateLimit, ...EGRESS_RULES, ...GPU_RULES,
];

/** Runs every rule; an empty list means the manifests are policy-clean. */
export function checkPolicy(manifests: readonly Json[]): Violation[] {
  return RULES.flatMap((r) => r.check(manifests));
}
