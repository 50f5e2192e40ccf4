/**
 * Registers a synthesized chart, object by object, with the ordering and ownership rules
 * that YAML cannot express: namespaced objects wait for their namespace, objects that
 * reference a Secret wait for it, autoscalers wait for their target, routes and policies wait
 * for the Gateway API objects they attach to, and a workload owned
 * by an autoscaler leaves `spec.replicas` to it.
 */
import * as pulumi from '@pulumi/pulumi';
import { Manifest, assertSupported, isClusterScoped, registerApiObject } from './api-objects';

/** Workload kinds whose `spec.replicas` an autoscaler may own. */
const SCALABLE_KINDS: ReadonlySet<string> = new Set(['Deployment', 'StatefulSet']);

export interface RegisterOptions {
  /** Explicit Kubernetes provider; never the ambient default one. */
  readonly provider: pulumi.ProviderResource;
  /** Component that parents every object. */
  readonly parent: pulumi.Resource;
  /** Namespace resources by name; a namespaced object depends on its own. */
  readonly namespaces: ReadonlyMap<string, pulumi.Resource>;
  /** Secret resources by `<namespace>/<name>`; an object that references one depends on it. */
  readonly secrets: ReadonlyMap<string, pulumi.Resource>;
  /** Objects whose deletion loses data: Pulumi `protect` (it refuses to delete them until unprotected). */
  readonly protect?: (m: Manifest) => boolean;
}

export interface RegisteredObject {
  readonly manifest: Manifest;
  readonly resource: pulumi.CustomResource;
  /** What the resource was told to wait for (namespace, Secrets, scale target). */
  readonly dependsOn: readonly pulumi.Resource[];
  readonly ignoreChanges: readonly string[];
  readonly protect: boolean;
}

/** `<namespace>/<name>` */
const key = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

/** Names of the Secrets an object reads: env, envFrom, volumes, projected volumes, KEDA TriggerAuthentication. */
export function referencedSecrets(value: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) referencedSecrets(v, found);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const ref = v as Record<string, unknown> | undefined;
      if ((k === 'secretKeyRef' || k === 'secretRef') && typeof ref?.name === 'string') found.add(ref.name);
      if (k === 'secret' && typeof ref?.secretName === 'string') found.add(ref.secretName);
      if (k === 'secret' && typeof ref?.name === 'string') found.add(ref.name);
      if (k === 'secretTargetRef' && Array.isArray(v)) {
        for (const t of v as { name?: unknown }[]) if (typeof t?.name === 'string') found.add(t.name);
      }
      referencedSecrets(v, found);
    }
  }
  return found;
}

/** `<namespace>/<kind>/<name>` of each object that an autoscaler (HPA or KEDA ScaledObject) targets. */
export function autoscalerTargets(manifests: readonly Manifest[]): Map<Manifest, string> {
  const targets = new Map<Manifest, string>();
  for (const m of manifests) {
    const isHpa = m.kind === 'HorizontalPodAutoscaler';
    const isKeda = m.kind === 'ScaledObject' && m.apiVersion.startsWith('keda.sh/');
    if (!isHpa && !isKeda) continue;
    const ref = (m.spec as { scaleTargetRef?: { kind?: string; name?: string } } | undefined)?.scaleTargetRef;
    if (!ref?.name) throw new Error(`${m.kind} ${m.metadata.name} has no spec.scaleTargetRef.name`);
    // KEDA defaults the target kind to Deployment.
    targets.set(m, `${m.metadata.namespace ?? ''}/${ref.kind ?? 'Deployment'}/${ref.name}`);
  }
  return targets;
}

/**
 * `<namespace>/<kind>/<name>` of the Gateway API objects a manifest attaches to: a route's
 * parent Gateways in its own namespace, a policy's `targetRefs`. A shared Gateway in another
 * namespace is not part of the stack and so is not a dependency.
 */
export function gatewayApiReferences(m: Manifest): string[] {
  const spec = (m.spec ?? {}) as { parentRefs?: { kind?: string; name?: string; namespace?: string }[]; targetRefs?: { kind?: string; name?: string }[] };
  const ns = m.metadata.namespace ?? '';
  const out: string[] = [];
  if (m.apiVersion.startsWith('gateway.networking.k8s.io/')) {
    for (const p of spec.parentRefs ?? []) if ((p.namespace ?? ns) === ns && p.name) out.push(`${ns}/${p.kind ?? 'Gateway'}/${p.name}`);
  }
  if (m.apiVersion.startsWith('gateway.envoyproxy.io/')) {
    for (const t of spec.targetRefs ?? []) if (t.kind && t.name) out.push(`${ns}/${t.kind}/${t.name}`);
  }
  return [...new Set(out)];
}

/**
 * Registers every manifest as its own typed resource, in the given order.
 * Throws before registering anything when a kind is unknown or two objects collide.
 */
export function registerManifests(manifests: readonly Manifest[], opts: RegisterOptions): RegisteredObject[] {
  const seen = new Set<string>();
  for (const m of manifests) {
    assertSupported(m);
    const id = `${m.apiVersion}/${m.kind}/${key(m.metadata.namespace, m.metadata.name)}`;
    if (seen.has(id)) throw new Error(`the chart synthesizes ${id} twice`);
    seen.add(id);
    if (!isClusterScoped(m) && !m.metadata.namespace) {
      throw new Error(`${m.kind} ${m.metadata.name} has no metadata.namespace; the chart must place every namespaced object explicitly`);
    }
  }

  const targets = autoscalerTargets(manifests);
  const scaled = new Set(targets.values());
  const byTarget = new Map<string, pulumi.CustomResource>();
  const byReference = new Map<string, pulumi.CustomResource>();
  const out: RegisteredObject[] = [];

  // Workloads first so that autoscalers can wait for their targets.
  const ordered = [...manifests.filter((m) => !targets.has(m)), ...manifests.filter((m) => targets.has(m))];
  for (const m of ordered) {
    const dependsOn: pulumi.Resource[] = [];
    const ns = m.metadata.namespace;
    const namespace = ns !== undefined ? opts.namespaces.get(ns) : undefined;
    if (namespace) dependsOn.push(namespace);
    for (const secretName of referencedSecrets(m)) {
      const secret = opts.secrets.get(key(ns, secretName));
      if (secret) dependsOn.push(secret);
    }
    const target = targets.get(m);
    const targetResource = target !== undefined ? byTarget.get(target) : undefined;
    if (targetResource) dependsOn.push(targetResource);
    // Routes after their Gateway, policies after what they attach to (the chart lists them in that order).
    for (const ref of gatewayApiReferences(m)) {
      const attached = byReference.get(ref);
      if (attached) dependsOn.push(attached);
    }

    const selfKey = `${ns ?? ''}/${m.kind}/${m.metadata.name}`;
    const ignoreChanges = SCALABLE_KINDS.has(m.kind) && scaled.has(selfKey) ? ['spec.replicas'] : [];
    const protect = opts.protect?.(m) ?? false;
    const resource = registerApiObject(m, {
      provider: opts.provider,
      parent: opts.parent,
      dependsOn,
      ...(ignoreChanges.length > 0 ? { ignoreChanges } : {}),
      ...(protect ? { protect } : {}),
    });
    if (SCALABLE_KINDS.has(m.kind)) byTarget.set(selfKey, resource);
    byReference.set(selfKey, resource);
    out.push({ manifest: m, resource, dependsOn, ignoreChanges, protect });
  }
  // Report in the chart's order.
  return manifests.map((m) => out.find((o) => o.manifest === m)!);
}
