/**
 * What a kubelet would run for a set of manifests, as Docker containers: pure, no Docker
 * calls, so every translation is unit-tested (test/rehearsal/plan.test.ts).
 *
 * A pod is a "pause" container that holds its network namespace, IP, hostname and the
 * network aliases of every Service that selects it (Kubernetes does the same with its
 * sandbox container); its init containers and containers join that namespace.
 */
import { randomBytes } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { parseCpuMillis, parseMemoryBytes } from '../../infra/config/quantity';
import { expand } from './expand';

// Manifests are plain JSON here: the rehearsal must run whatever the synthesis wrote.
type Json = any;

export interface Network {
  /** Docker network name. */
  readonly name: string;
  /** IPs handed to pods and helper containers, in order. */
  readonly ips: readonly string[];
}

export interface Probe {
  readonly kind: 'readiness' | 'liveness' | 'startup';
  readonly container: string;
  readonly action:
    | { readonly type: 'http'; readonly scheme: 'HTTP' | 'HTTPS'; readonly host: string; readonly port: number; readonly path: string; readonly headers: Readonly<Record<string, string>> }
    | { readonly type: 'tcp'; readonly host: string; readonly port: number }
    | { readonly type: 'exec'; readonly command: readonly string[] };
  readonly initialDelaySeconds: number;
  readonly periodSeconds: number;
  readonly timeoutSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

export interface ContainerPlan {
  /** Kubernetes container name. */
  readonly name: string;
  /** Docker container name. */
  readonly dockerName: string;
  readonly image: string;
  readonly init: boolean;
  /** `docker run` arguments after `run` (without `-d`), env passed with `-e NAME` only. */
  readonly args: readonly string[];
  /** Values of the `-e NAME` arguments, given to the docker CLI's own environment (never in argv). */
  readonly env: Readonly<Record<string, string>>;
  readonly probes: readonly Probe[];
  readonly uid?: number;
  readonly readOnlyRoot: boolean;
  readonly capDropAll: boolean;
  readonly ports: readonly { readonly name?: string; readonly port: number }[];
}

export interface VolumePlan {
  /** Docker volume name (PVCs). */
  readonly dockerName: string;
  /** fsGroup to hand the volume to, as the kubelet does. */
  readonly fsGroup?: number;
}

export interface FilePlan {
  /** Host directory to create and mount read-only. */
  readonly dir: string;
  readonly files: Readonly<Record<string, string>>;
  readonly mode: number;
}

export interface PodPlan {
  readonly name: string;
  /** e.g. Deployment/levee-gateway */
  readonly owner: string;
  /** The pod that must be ready before this one starts (a StatefulSet's previous ordinal, OrderedReady). */
  readonly after?: string;
  readonly ip: string;
  readonly hostname: string;
  readonly aliases: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly pause: { readonly dockerName: string; readonly args: readonly string[] };
  readonly initContainers: readonly ContainerPlan[];
  readonly containers: readonly ContainerPlan[];
  readonly volumes: readonly VolumePlan[];
  readonly files: readonly FilePlan[];
}

export interface ServiceForward {
  /** Docker container name of the forwarder. */
  readonly dockerName: string;
  readonly service: string;
  readonly type: string;
  readonly ip: string;
  readonly aliases: readonly string[];
  /** Service port → pod IP:targetPort. */
  readonly ports: readonly { readonly name?: string; readonly port: number; readonly targets: readonly { readonly ip: string; readonly port: number }[] }[];
  /** LoadBalancer Services are published on the host (their "external address"). */
  readonly publish: boolean;
}

export interface L7Route {
  readonly source: string;
  /** The path prefix, or the regular expression when `regex` is set. */
  readonly pathPrefix: string;
  /** A RegularExpression path match (RE2 in the cluster; the stand-in uses JavaScript's, the same for what the chart writes). */
  readonly regex?: boolean;
  readonly service: string;
  readonly port: number;
}

/**
 * The object store the manifests' apps use (IMAGE_STORE=s3): a stand-in S3 server (s3rver) in
 * a container of the rehearsal's network, under the host name the manifests name. The
 * rehearsal never lets an app reach a cloud endpoint: manifests that point elsewhere are refused.
 */
export interface ObjectStorePlan {
  readonly dockerName: string;
  readonly ip: string;
  /** The endpoint the manifests give (IMAGE_S3_ENDPOINT). */
  readonly endpoint: string;
  readonly port: number;
  /** Buckets to create at start (every IMAGE_S3_BUCKET of the manifests). */
  readonly buckets: readonly string[];
  /** Object key prefixes, by bucket (IMAGE_S3_PREFIX), to find the smoke test's image. */
  readonly prefixes: Readonly<Record<string, string>>;
}

/** The host name and port of the rehearsal's object store stand-in (see ObjectStorePlan). */
export const STAND_IN_S3 = { host: 'levee-rehearsal-s3', port: 4568 } as const;
/** The stand-in's only credentials (s3rver knows no others). */
export const STAND_IN_S3_KEYS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' } as const;
/** What `npm run rehearse` adds to the settings when the images go to object storage: the stand-in as the store. */
export const STAND_IN_S3_SETTINGS = {
  imageS3Endpoint: `http://${STAND_IN_S3.host}:${STAND_IN_S3.port}`,
  imageS3ForcePathStyle: 'true',
  imageS3CredentialsSecret: 'levee-rehearsal-s3-keys',
} as const;

/**
 * The webhook receiver stand-in: a container of the rehearsal's network that verifies each
 * delivery with `standardwebhooks` and the sender's key. The rehearsal's own synthesis lets
 * webhooks reach it (STAND_IN_WEBHOOK_SETTINGS: the rehearsal's address pool, plain http on
 * an allowed port), as a private deployment would allow its own receivers.
 */
export const STAND_IN_WEBHOOK = { host: 'levee-rehearsal-webhook', port: 8443 } as const;
/** Every rehearsal network is a /24 of 172.28.0.0/14 (run.ts createNetwork). */
export const REHEARSAL_ADDRESS_POOL = '172.28.0.0/14';
export const STAND_IN_WEBHOOK_SETTINGS = { webhookAllowedCidrs: REHEARSAL_ADDRESS_POOL, webhookAllowHttp: 'true' } as const;

export interface WebhookReceiverPlan {
  readonly dockerName: string;
  readonly ip: string;
  /** The webhookUrl jobs name. */
  readonly url: string;
  readonly port: number;
  /** The sender's signing key, as its Secret holds it. */
  readonly secret: string;
}

export interface RehearsalPlan {
  readonly namespace: string;
  /** Present when the manifests run a webhook sender that may reach the receiver stand-in. */
  readonly webhookReceiver?: WebhookReceiverPlan;
  /** Present when an app keeps its images in object storage. */
  readonly objectStore?: ObjectStorePlan;
  readonly pods: readonly PodPlan[];
  readonly forwards: readonly ServiceForward[];
  readonly l7: readonly L7Route[];
  /** IP left for the L7 stand-in. */
  readonly l7Ip: string;
  /** Generated values of the Secrets the manifests reference but do not contain. */
  readonly secrets: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** Things the rehearsal cannot do as a cluster would, said once each. */
  readonly notes: readonly string[];
  /** Label every Docker object of this run carries. */
  readonly label: string;
}

export class PlanError extends Error {
  override name = 'PlanError';
}

export interface PlanOptions {
  readonly runId: string;
  readonly network: Network;
  /** Host directory for configMap/secret volume files. */
  readonly filesDir: string;
  /** Password generator for referenced Secrets (tests pass a fixed one). */
  readonly password?: () => string;
  /**
   * Values of Secrets the manifests reference, as an operator would create them (`kubectl
   * create secret`); keys not given get a generated password. The object store stand-in's keys
   * go in the Secret the manifests name for them.
   */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet']);
export const REHEARSAL_LABEL = 'dev.levee.rehearsal';

const selects = (selector: Json, labels: Record<string, string>) =>
  selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/**
 * Every DNS form of a Service (or a StatefulSet pod under its governing Service). They are
 * all network aliases, so no search domains are set: with Kubernetes' `ndots:5` every
 * dotted name would first be tried with the search suffixes, which Docker's DNS forwards
 * upstream, and where the upstream is slow or unreachable a synchronous resolver (Redis
 * Sentinel's, with `resolve-hostnames`) blocks for seconds (seen: Sentinel in TILT mode).
 */
export function dnsNames(name: string, namespace: string): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
}

/** Docker names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
const dockerSafe = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '-');

function intOr(value: Json, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

function containerPorts(spec: Json): { name?: string; port: number }[] {
  return [...(spec.containers ?? [])].flatMap((c: Json) => (c.ports ?? []).map((p: Json) => ({ ...(p.name ? { name: p.name } : {}), port: p.containerPort })));
}

function resolvePort(port: Json, pod: Json, what: string): number {
  if (typeof port === 'number') return port;
  const found = containerPorts(pod).find((p) => p.name === port);
  if (!found) throw new PlanError(`${what}: no container port named "${port}"`);
  return found.port;
}

/** The env a kubelet would give a container, in order, `$(VAR)` expanded. */
function containerEnv(c: Json, ctx: { pod: PodContext; secrets: Map<string, Map<string, string>>; configMaps: Map<string, Record<string, string>>; password: () => string }): Map<string, string> {
  const env = new Map<string, string>();
  for (const from of c.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) for (const [k, val] of Object.entries(configMapData(ctx.configMaps, from.configMapRef.name, from.configMapRef.optional))) env.set(prefix + k, val);
    if (from.secretRef) throw new PlanError(`container ${c.name}: envFrom secretRef is not supported by the rehearsal`);
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env.set(e.name, expand(String(e.value), env));
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      if (!ctx.secrets.has(name)) ctx.secrets.set(name, new Map());
      const s = ctx.secrets.get(name)!;
      // A webhook signing key is a Standard Webhooks one (whsec_ + 32 random bytes), as the Pulumi program generates it.
      if (!s.has(key)) s.set(key, e.name === 'WEBHOOK_SECRET' ? `whsec_${randomBytes(32).toString('base64')}` : ctx.password());
      env.set(e.name, s.get(key)!);
    } else if (e.valueFrom?.configMapKeyRef) {
      const { name, key, optional } = e.valueFrom.configMapKeyRef;
      const data = configMapData(ctx.configMaps, name, optional);
      if (data[key] !== undefined) env.set(e.name, data[key]!);
      else if (!optional) throw new PlanError(`container ${c.name}: ConfigMap ${name} has no key ${key}`);
    } else if (e.valueFrom?.fieldRef) {
      env.set(e.name, fieldRef(e.valueFrom.fieldRef.fieldPath, ctx.pod));
    } else if (e.valueFrom?.resourceFieldRef) {
      env.set(e.name, resourceFieldRef(e.valueFrom.resourceFieldRef, c));
    } else {
      env.set(e.name, '');
    }
  }
  return env;
}

function configMapData(configMaps: Map<string, Record<string, string>>, name: string, optional?: boolean): Record<string, string> {
  const data = configMaps.get(name);
  if (!data && !optional) throw new PlanError(`ConfigMap ${name} is referenced but not in the manifests`);
  return data ?? {};
}

interface PodContext {
  readonly name: string;
  readonly namespace: string;
  readonly ip: string;
  readonly uid: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly serviceAccount: string;
}

function fieldRef(path: string, pod: PodContext): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return (m[1] === 'labels' ? pod.labels : pod.annotations)[m[2]!] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.name;
    case 'metadata.namespace':
      return pod.namespace;
    case 'metadata.uid':
      return pod.uid;
    case 'status.podIP':
    case 'status.podIPs':
      return pod.ip;
    case 'status.hostIP':
    case 'status.hostIPs':
      return pod.ip.replace(/\.\d+$/, '.1');
    case 'spec.nodeName':
      return 'rehearsal';
    case 'spec.serviceAccountName':
      return pod.serviceAccount;
    default:
      throw new PlanError(`fieldRef ${path} is not supported by the rehearsal`);
  }
}

function resourceFieldRef(ref: Json, c: Json): string {
  const [kind, resource] = String(ref.resource).split('.');
  const value = c.resources?.[kind === 'limits' ? 'limits' : 'requests']?.[resource!];
  if (value === undefined) throw new PlanError(`container ${c.name}: resourceFieldRef ${ref.resource} has no value to read`);
  if (resource === 'cpu') return String(Math.ceil(parseCpuMillis(String(value))! / (parseCpuMillis(String(ref.divisor ?? '1')) ?? 1000)));
  return String(Math.ceil(parseMemoryBytes(String(value))! / (parseMemoryBytes(String(ref.divisor ?? '1')) ?? 1)));
}

function probeOf(kind: Probe['kind'], container: string, p: Json, pod: Json, podIp: string): Probe | undefined {
  if (!p) return undefined;
  const common = {
    kind,
    container,
    initialDelaySeconds: intOr(p.initialDelaySeconds, 0),
    periodSeconds: intOr(p.periodSeconds, 10),
    timeoutSeconds: intOr(p.timeoutSeconds, 1),
    successThreshold: intOr(p.successThreshold, 1),
    failureThreshold: intOr(p.failureThreshold, 3),
  };
  const where = `${kind} probe of container ${container}`;
  if (p.httpGet) {
    const headers = Object.fromEntries((p.httpGet.httpHeaders ?? []).map((h: Json) => [h.name, h.value]));
    return { ...common, action: { type: 'http', scheme: p.httpGet.scheme ?? 'HTTP', host: p.httpGet.host ?? podIp, port: resolvePort(p.httpGet.port, pod, where), path: p.httpGet.path ?? '/', headers } };
  }
  if (p.tcpSocket) return { ...common, action: { type: 'tcp', host: p.tcpSocket.host ?? podIp, port: resolvePort(p.tcpSocket.port, pod, where) } };
  if (p.exec) return { ...common, action: { type: 'exec', command: p.exec.command } };
  throw new PlanError(`${where}: only httpGet, tcpSocket and exec probes are supported by the rehearsal`);
}

/** Docker's memory and CPU flags from the container's limits (no swap, as on a kubelet). */
function resourceArgs(c: Json): string[] {
  const args: string[] = [];
  const memory = c.resources?.limits?.memory;
  if (memory !== undefined) {
    const bytes = parseMemoryBytes(String(memory));
    if (bytes === undefined) throw new PlanError(`container ${c.name}: memory limit ${memory} is not a quantity`);
    args.push('--memory', String(bytes), '--memory-swap', String(bytes));
  }
  const cpu = c.resources?.limits?.cpu;
  if (cpu !== undefined) {
    const millis = parseCpuMillis(String(cpu));
    if (millis === undefined) throw new PlanError(`container ${c.name}: CPU limit ${cpu} is not a quantity`);
    args.push('--cpus', (millis / 1000).toFixed(3));
  }
  return args;
}

/** The effective security context: the container's fields over the pod's. */
function securityArgs(c: Json, podSc: Json): { args: string[]; uid?: number; readOnlyRoot: boolean; capDropAll: boolean } {
  const sc = c.securityContext ?? {};
  const uid = sc.runAsUser ?? podSc.runAsUser;
  const gid = sc.runAsGroup ?? podSc.runAsGroup;
  const args: string[] = [];
  if (uid !== undefined) args.push('--user', gid !== undefined ? `${uid}:${gid}` : String(uid));
  for (const g of [podSc.fsGroup, ...(podSc.supplementalGroups ?? [])].filter((g) => g !== undefined)) args.push('--group-add', String(g));
  const readOnlyRoot = sc.readOnlyRootFilesystem === true;
  if (readOnlyRoot) args.push('--read-only');
  const drop: string[] = sc.capabilities?.drop ?? [];
  for (const cap of drop) args.push('--cap-drop', cap);
  for (const cap of sc.capabilities?.add ?? []) args.push('--cap-add', cap);
  if (sc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  if (sc.privileged === true) args.push('--privileged');
  const seccomp = sc.seccompProfile?.type ?? podSc.seccompProfile?.type;
  if (seccomp === 'Unconfined') args.push('--security-opt', 'seccomp=unconfined');
  // RuntimeDefault is Docker's default profile.
  return { args, ...(uid !== undefined ? { uid } : {}), readOnlyRoot, capDropAll: drop.includes('ALL') };
}

/** Names the docker CLI needs for itself: such env vars are passed inline, not by name. */
const CLI_ENV = /^(PATH|HOME|DOCKER_.*|TMPDIR|USER|SHELL)$/;

export function planRehearsal(manifests: readonly Json[], options: PlanOptions): RehearsalPlan {
  const label = `${REHEARSAL_LABEL}=${options.runId}`;
  const password = options.password ?? (() => randomBytes(24).toString('hex'));
  const namespaces = new Set(manifests.map((m) => m.metadata?.namespace).filter((n) => n !== undefined));
  if (namespaces.size !== 1) throw new PlanError(`the manifests must use one namespace; found ${[...namespaces].join(', ') || 'none'}`);
  const namespace = [...namespaces][0] as string;
  const prefix = `lrh-${options.runId}`;
  const ips = [...options.network.ips];
  const nextIp = (what: string) => {
    const ip = ips.shift();
    if (!ip) throw new PlanError(`the rehearsal network has no address left for ${what}`);
    return ip;
  };

  const notes = new Set<string>();
  const secrets = new Map<string, Map<string, string>>(Object.entries(options.secrets ?? {}).map(([name, values]) => [name, new Map(Object.entries(values))]));
  for (const m of manifests.filter((o) => o.kind === 'Secret')) {
    const values = new Map<string, string>();
    for (const [k, val] of Object.entries(m.data ?? {})) values.set(k, Buffer.from(String(val), 'base64').toString('utf8'));
    for (const [k, val] of Object.entries(m.stringData ?? {})) values.set(k, String(val));
    secrets.set(m.metadata.name, values);
  }
  const configMaps = new Map<string, Record<string, string>>(manifests.filter((o) => o.kind === 'ConfigMap').map((m) => [m.metadata.name, m.data ?? {}]));

  // Pods: one per Deployment (its autoscaler's minimum is a cluster's business), StatefulSets as written.
  interface RawPod { name: string; owner: Json; template: Json; hostname: string; subdomain?: string; after?: string }
  const rawPods: RawPod[] = [];
  for (const w of manifests.filter((m) => WORKLOADS.has(m.kind))) {
    if (w.kind === 'Deployment') {
      if (w.spec.replicas === undefined || w.spec.replicas > 1) notes.add('one pod per Deployment (a cluster runs as many as the autoscaler\'s minimum)');
      rawPods.push({ name: `${w.metadata.name}-r0`, owner: w, template: w.spec.template, hostname: `${w.metadata.name}-r0` });
    } else {
      const n = w.spec.replicas ?? 1;
      const ordered = (w.spec.podManagementPolicy ?? 'OrderedReady') === 'OrderedReady';
      for (let i = 0; i < n; i++) {
        rawPods.push({ name: `${w.metadata.name}-${i}`, owner: w, template: w.spec.template, hostname: `${w.metadata.name}-${i}`, subdomain: w.spec.serviceName, ...(ordered && i > 0 ? { after: `${w.metadata.name}-${i - 1}` } : {}) });
      }
    }
  }

  const services = manifests.filter((m) => m.kind === 'Service' && m.spec?.selector);
  const podIps = new Map<string, string>(rawPods.map((p) => [p.name, nextIp(`pod ${p.name}`)]));

  // Which Services alias straight onto their pods, and which need a forwarder (port ≠ targetPort, or a LoadBalancer).
  const podAliases = new Map<string, string[]>(rawPods.map((p) => [p.name, []]));
  const forwards: ServiceForward[] = [];
  for (const svc of services) {
    const selected = rawPods.filter((p) => selects(svc.spec.selector, p.template.metadata?.labels ?? {}));
    const name = svc.metadata.name;
    if (selected.length === 0) throw new PlanError(`Service ${name} selects no pod of the manifests`);
    const headless = svc.spec.clusterIP === 'None' || svc.spec.clusterIp === 'None';
    const type = svc.spec.type ?? 'ClusterIP';
    const ports = (svc.spec.ports ?? []).map((p: Json) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.port as number,
      targets: selected.map((pod) => ({ ip: podIps.get(pod.name)!, port: resolvePort(p.targetPort ?? p.port, pod.template.spec, `Service ${name} port ${p.port}`) })),
    }));
    const direct = headless || (type === 'ClusterIP' && ports.every((p: { port: number; targets: { port: number }[] }) => p.targets.every((t) => t.port === p.port)));
    if (direct) {
      for (const pod of selected) podAliases.get(pod.name)!.push(...dnsNames(name, namespace));
    } else {
      if (type === 'LoadBalancer') notes.add('a LoadBalancer Service is published on 127.0.0.1 (its external address) by a TCP forwarder; externalTrafficPolicy and sessionAffinity are not emulated');
      forwards.push({ dockerName: `${prefix}-svc-${dockerSafe(name)}`, service: name, type, ip: nextIp(`Service ${name}`), aliases: dnsNames(name, namespace), ports, publish: type === 'LoadBalancer' });
    }
  }
  // StatefulSet pods also answer as <pod>.<governing service>.
  for (const p of rawPods) if (p.subdomain) podAliases.get(p.name)!.push(...dnsNames(`${p.name}.${p.subdomain}`, namespace));

  // The object store's keys, where an app reads them from a Secret: the stand-in's (an operator
  // would have created that Secret with the store's keys), unless given.
  for (const raw of rawPods) {
    for (const c of raw.template.spec?.containers ?? []) {
      if (!(c.env ?? []).some((e: Json) => e.name === 'IMAGE_STORE' && e.value === 's3')) continue;
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref || !(ref.key in STAND_IN_S3_KEYS)) continue;
        if (!secrets.has(ref.name)) secrets.set(ref.name, new Map());
        const values = secrets.get(ref.name)!;
        if (!values.has(ref.key)) values.set(ref.key, STAND_IN_S3_KEYS[ref.key as keyof typeof STAND_IN_S3_KEYS]);
      }
    }
  }

  const pods: PodPlan[] = rawPods.map((raw) => {
    const spec = raw.template.spec ?? {};
    const podSc = spec.securityContext ?? {};
    const labels = raw.template.metadata?.labels ?? {};
    const annotations = raw.template.metadata?.annotations ?? {};
    const ip = podIps.get(raw.name)!;
    const podName = dockerSafe(raw.name);
    const ctx = { pod: { name: raw.name, namespace, ip, uid: randomBytes(8).toString('hex'), labels, annotations, serviceAccount: spec.serviceAccountName ?? 'default' }, secrets, configMaps, password };

    // Volumes: emptyDir → tmpfs, PVC (volumeClaimTemplates) → a Docker volume, configMap/secret → files.
    const volumes: VolumePlan[] = [];
    const files: FilePlan[] = [];
    const volumeArgs = new Map<string, (mount: Json) => string[]>();
    for (const v of spec.volumes ?? []) {
      if (v.emptyDir) {
        const size = v.emptyDir.sizeLimit !== undefined ? parseMemoryBytes(String(v.emptyDir.sizeLimit)) : undefined;
        volumeArgs.set(v.name, (mount) => ['--tmpfs', `${mount.mountPath}:rw,exec,nosuid,nodev,mode=1777${size !== undefined ? `,size=${size}` : ''}`]);
      } else if (v.configMap || v.secret) {
        const source = v.configMap ? configMapData(configMaps, v.configMap.name, v.configMap.optional) : Object.fromEntries(secretValues(secrets, v.secret.secretName, password, v.secret.items));
        const items: Json[] | undefined = (v.configMap ?? v.secret).items;
        const data = items ? Object.fromEntries(items.map((i: Json) => [i.path, source[i.key] ?? ''])) : source;
        const dir = `${options.filesDir}/${podName}/${v.name}`;
        files.push({ dir, files: data, mode: (v.configMap ?? v.secret).defaultMode ?? 0o644 });
        volumeArgs.set(v.name, (mount) => ['-v', `${dir}:${mount.mountPath}:ro`]);
      } else if (v.persistentVolumeClaim) {
        throw new PlanError(`pod ${raw.name}: a standalone PersistentVolumeClaim volume (${v.name}) is not supported by the rehearsal`);
      } else {
        throw new PlanError(`pod ${raw.name}: volume ${v.name} has a type the rehearsal does not support`);
      }
    }
    for (const claim of raw.owner.spec?.volumeClaimTemplates ?? []) {
      const dockerName = `${prefix}-${dockerSafe(claim.metadata.name)}-${podName}`;
      volumes.push({ dockerName, ...(podSc.fsGroup !== undefined ? { fsGroup: podSc.fsGroup } : {}) });
      volumeArgs.set(claim.metadata.name, (mount) => ['-v', `${dockerName}:${mount.mountPath}`]);
    }

    const pauseName = `${prefix}-${podName}`;
    // What only a cluster can do: GPUs, and where the scheduler puts the pod.
    const scheduling = ['tolerations', 'nodeSelector', 'runtimeClassName', 'affinity'].filter((f) => spec[f] !== undefined && !(Array.isArray(spec[f]) && spec[f].length === 0));
    if (scheduling.length > 0) notes.add(`scheduling fields of pod ${raw.name} (${scheduling.join(', ')}) are the scheduler's and the node's: not emulated`);
    const build = (c: Json, init: boolean): ContainerPlan => {
      for (const [resource, n] of Object.entries(c.resources?.limits ?? {}).filter(([r]) => !/^(cpu|memory|ephemeral-storage|hugepages-.+)$/.test(r))) {
        notes.add(`${resource}: ${String(n)} of container ${c.name} (${raw.name}) is left out: no GPU runs on Docker here (a cluster schedules the pod on a node that has one)`);
      }
      const env = containerEnv(c, ctx);
      const sec = securityArgs(c, podSc);
      if ((c.securityContext?.runAsNonRoot ?? podSc.runAsNonRoot) === true && sec.uid === 0) throw new PlanError(`container ${c.name} of ${raw.name}: runAsNonRoot with runAsUser 0`);
      const mounts = (c.volumeMounts ?? []).flatMap((m: Json) => {
        const args = volumeArgs.get(m.name);
        if (!args) throw new PlanError(`container ${c.name} of ${raw.name}: volume ${m.name} is mounted but not defined`);
        if (m.subPath) throw new PlanError(`container ${c.name} of ${raw.name}: subPath mounts are not supported by the rehearsal`);
        const a = args(m);
        return m.readOnly && a[0] === '-v' && !a[1]!.endsWith(':ro') ? [a[0], `${a[1]}:ro`] : a;
      });
      const envArgs: string[] = [];
      const envByName: Record<string, string> = {};
      for (const [k, val] of env) {
        if (CLI_ENV.test(k)) envArgs.push('-e', `${k}=${val}`);
        else {
          envArgs.push('-e', k);
          envByName[k] = val;
        }
      }
      const command: string[] = (c.command ?? []).map((s: string) => expand(s, env));
      const cargs: string[] = (c.args ?? []).map((s: string) => expand(s, env));
      const dockerName = `${pauseName}-${dockerSafe(c.name)}`;
      const args = [
        '--name', dockerName,
        '--label', label, '--label', `dev.levee.pod=${raw.name}`, '--label', `dev.levee.container=${c.name}`,
        '--network', `container:${pauseName}`,
        ...(init ? [] : ['--restart', 'always']),
        ...sec.args,
        ...resourceArgs(c),
        ...mounts,
        ...envArgs,
        ...(c.workingDir ? ['--workdir', c.workingDir] : []),
        ...(spec.terminationGracePeriodSeconds !== undefined ? ['--stop-timeout', String(spec.terminationGracePeriodSeconds)] : []),
        ...(command.length > 0 ? ['--entrypoint', command[0]!] : []),
        c.image,
        ...command.slice(1),
        ...cargs,
      ];
      const probes = init
        ? []
        : ([['readiness', c.readinessProbe], ['liveness', c.livenessProbe], ['startup', c.startupProbe]] as const)
            .map(([kind, p]) => probeOf(kind, c.name, p, spec, ip))
            .filter((p): p is Probe => p !== undefined);
      return {
        name: c.name, dockerName, image: c.image, init, args, env: envByName, probes,
        ...(sec.uid !== undefined ? { uid: sec.uid } : {}),
        readOnlyRoot: sec.readOnlyRoot, capDropAll: sec.capDropAll,
        ports: (c.ports ?? []).map((p: Json) => ({ ...(p.name ? { name: p.name } : {}), port: p.containerPort })),
      };
    };

    const containers = (spec.containers ?? []).map((c: Json) => build(c, false));
    const firstImage = spec.containers?.[0]?.image;
    const aliases = [...new Set(podAliases.get(raw.name)!)];
    return {
      name: raw.name,
      owner: `${raw.owner.kind}/${raw.owner.metadata.name}`,
      ...(raw.after !== undefined ? { after: raw.after } : {}),
      ip,
      hostname: raw.hostname,
      aliases,
      labels,
      annotations,
      pause: {
        dockerName: pauseName,
        args: [
          '--name', pauseName,
          '--label', label, '--label', `dev.levee.pod=${raw.name}`, '--label', 'dev.levee.container=(pause)',
          '--network', options.network.name, '--ip', ip, '--hostname', raw.hostname,
          ...aliases.flatMap((a) => ['--network-alias', a]),
          '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--user', '65535:65535', '--memory', String(32 * 1024 ** 2),
          '--entrypoint', 'sleep', firstImage, 'infinity',
        ],
      },
      initContainers: (spec.initContainers ?? []).map((c: Json) => build(c, true)),
      containers,
      volumes,
      files,
    };
  });

  // The L7 routes, as written for ingress-nginx (Ingress) or Gateway API (HTTPRoute).
  const l7: L7Route[] = [];
  for (const m of manifests) {
    if (m.kind === 'Ingress') {
      for (const rule of m.spec?.rules ?? []) {
        for (const p of rule.http?.paths ?? []) {
          const svc = services.find((s) => s.metadata.name === p.backend?.service?.name);
          const port = p.backend?.service?.port?.number ?? svc?.spec.ports.find((sp: Json) => sp.name === p.backend?.service?.port?.name)?.port;
          l7.push({ source: `Ingress ${m.metadata.name}`, pathPrefix: p.path ?? '/', service: p.backend?.service?.name, port });
        }
      }
    } else if (m.kind === 'HTTPRoute') {
      for (const rule of m.spec?.rules ?? []) {
        const backend = (rule.backendRefs ?? [])[0];
        if (!backend) continue;
        // Method and header matches narrow a prefix to the same backend here (e.g. the GET-only
        // rule that carries retries): the stand-in routes by prefix, once per prefix.
        for (const match of rule.matches ?? [{ path: { type: 'PathPrefix', value: '/' } }]) {
          const route = { source: `HTTPRoute ${m.metadata.name}`, pathPrefix: match.path?.value ?? '/', ...(match.path?.type === 'RegularExpression' ? { regex: true } : {}), service: backend.name, port: backend.port };
          if (!l7.some((r) => r.pathPrefix === route.pathPrefix && r.service === route.service && r.port === route.port)) l7.push(route);
        }
      }
    }
  }
  for (const r of l7) {
    const svc = services.find((s) => s.metadata.name === r.service);
    if (!svc) throw new PlanError(`${r.source}: ${r.pathPrefix} routes to Service ${r.service}, which is not in the manifests`);
    if (!(svc.spec.ports ?? []).some((p: Json) => p.port === r.port)) throw new PlanError(`${r.source}: ${r.pathPrefix} routes to port ${r.port} of Service ${r.service}, which has no such port`);
  }

  const l7Ip = nextIp('the L7 stand-in');
  const objectStore = objectStoreOf(rawPods.map((p) => p.template), () => nextIp('the object store stand-in'), `${prefix}-s3`);
  if (objectStore) notes.add(`the object store is a stand-in: s3rver (an S3 REST emulator) in a container at ${objectStore.endpoint}, with the bucket${objectStore.buckets.length > 1 ? 's' : ''} ${objectStore.buckets.join(', ')} and the keys of its Secret`);
  const webhookReceiver = webhookReceiverOf(pods, () => nextIp('the webhook receiver stand-in'), `${prefix}-webhook`, notes);
  return { namespace, pods, forwards, l7, l7Ip, ...(objectStore ? { objectStore } : {}), ...(webhookReceiver ? { webhookReceiver } : {}), secrets, notes: [...notes], label };
}

/** The receiver stand-in, when a webhook sender runs and its policy lets it reach the rehearsal's network over http. */
function webhookReceiverOf(pods: readonly PodPlan[], ip: () => string, dockerName: string, notes: Set<string>): WebhookReceiverPlan | undefined {
  const sender = pods.flatMap((p) => p.containers).find((c) => c.env.WEBHOOK_SECRET !== undefined);
  if (!sender) return undefined;
  const address = ip();
  const cidrs = (sender.env.WEBHOOK_ALLOWED_CIDRS ?? '').split(',').filter(Boolean);
  const inside = cidrs.some((c) => {
    try {
      return ipaddr.parse(address).match(ipaddr.parseCIDR(c.includes('/') ? c : `${c}/32`));
    } catch {
      return false;
    }
  });
  if (!inside || sender.env.WEBHOOK_ALLOW_HTTP !== 'true') {
    notes.add(`no webhook check: the sender may not reach the receiver stand-in (synthesize with LEVEE_WEBHOOK_ALLOWED_CIDRS=${REHEARSAL_ADDRESS_POOL} LEVEE_WEBHOOK_ALLOW_HTTP=true, as npm run rehearse does)`);
    return undefined;
  }
  notes.add(`webhooks go to a stand-in receiver at http://${STAND_IN_WEBHOOK.host}:${STAND_IN_WEBHOOK.port}, which verifies their signatures`);
  return { dockerName, ip: address, url: `http://${STAND_IN_WEBHOOK.host}:${STAND_IN_WEBHOOK.port}/hook`, port: STAND_IN_WEBHOOK.port, secret: sender.env.WEBHOOK_SECRET! };
}

/** The object store the app containers name, when any keeps its images there; refuses any endpoint but the stand-in's. */
function objectStoreOf(templates: readonly Json[], ip: () => string, dockerName: string): ObjectStorePlan | undefined {
  const buckets = new Map<string, string>();
  let endpoint: string | undefined;
  for (const t of templates) {
    for (const c of t.spec?.containers ?? []) {
      const env = new Map<string, string>((c.env ?? []).filter((e: Json) => e.value !== undefined).map((e: Json) => [e.name, String(e.value)]));
      // The gateway (SERVE_MEDIA=false) names the objects but never calls the store.
      if (env.get('IMAGE_STORE') !== 's3' || env.get('SERVE_MEDIA') === 'false') continue;
      const where = env.get('IMAGE_S3_ENDPOINT');
      const host = where && URL.canParse(where) ? new URL(where).hostname : undefined;
      if (host !== STAND_IN_S3.host) {
        throw new PlanError(
          `container ${c.name} keeps its images at ${where ?? 'AWS S3 (no IMAGE_S3_ENDPOINT)'}; a rehearsal never reaches a cloud endpoint: synthesize with LEVEE_IMAGE_S3_ENDPOINT=${STAND_IN_S3_SETTINGS.imageS3Endpoint} LEVEE_IMAGE_S3_FORCE_PATH_STYLE=true LEVEE_IMAGE_S3_CREDENTIALS_SECRET=${STAND_IN_S3_SETTINGS.imageS3CredentialsSecret} (npm run rehearse does, when it synthesizes), or LEVEE_IMAGE_STORE=redis`,
        );
      }
      endpoint = where;
      const bucket = env.get('IMAGE_S3_BUCKET');
      if (bucket) buckets.set(bucket, env.get('IMAGE_S3_PREFIX') ?? 'images/');
    }
  }
  if (!endpoint) return undefined;
  const url = new URL(endpoint);
  return { dockerName, ip: ip(), endpoint, port: url.port ? Number(url.port) : 80, buckets: [...buckets.keys()], prefixes: Object.fromEntries(buckets) };
}

function secretValues(secrets: Map<string, Map<string, string>>, name: string, password: () => string, items?: Json[]): [string, string][] {
  if (!secrets.has(name)) secrets.set(name, new Map());
  const s = secrets.get(name)!;
  for (const i of items ?? []) if (!s.has(i.key)) s.set(i.key, password());
  return [...s.entries()];
}
