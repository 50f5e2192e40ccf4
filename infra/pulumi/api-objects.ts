/**
 * One synthesized Kubernetes object → one typed Pulumi resource.
 *
 * The chart is the only description of the topology; this file only maps each object's
 * `apiVersion`/`kind` to the @pulumi/kubernetes class that owns it, so `pulumi preview`
 * diffs per object and mock tests see every object (a `yaml/v2` ConfigGroup would hide
 * its children). A kind that is not in the table fails loudly instead of being skipped.
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';

/** A synthesized object as cdk8s writes it (`ApiObject.toJson()`). */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [field: string]: unknown;
  };
  readonly [field: string]: unknown;
}

type ResourceClass = new (name: string, args: never, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;

/** Built-in kinds, each with its typed class. */
const TYPED: Readonly<Record<string, ResourceClass>> = {
  'v1/Namespace': k8s.core.v1.Namespace,
  'v1/ConfigMap': k8s.core.v1.ConfigMap,
  'v1/Secret': k8s.core.v1.Secret,
  'v1/Service': k8s.core.v1.Service,
  'v1/ServiceAccount': k8s.core.v1.ServiceAccount,
  'v1/PersistentVolumeClaim': k8s.core.v1.PersistentVolumeClaim,
  'v1/ResourceQuota': k8s.core.v1.ResourceQuota,
  'v1/LimitRange': k8s.core.v1.LimitRange,
  'apps/v1/Deployment': k8s.apps.v1.Deployment,
  'apps/v1/StatefulSet': k8s.apps.v1.StatefulSet,
  'apps/v1/DaemonSet': k8s.apps.v1.DaemonSet,
  'batch/v1/Job': k8s.batch.v1.Job,
  'batch/v1/CronJob': k8s.batch.v1.CronJob,
  'autoscaling/v2/HorizontalPodAutoscaler': k8s.autoscaling.v2.HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': k8s.policy.v1.PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': k8s.networking.v1.NetworkPolicy,
  'networking.k8s.io/v1/Ingress': k8s.networking.v1.Ingress,
  'networking.k8s.io/v1/IngressClass': k8s.networking.v1.IngressClass,
  'rbac.authorization.k8s.io/v1/Role': k8s.rbac.v1.Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': k8s.rbac.v1.RoleBinding,
  'rbac.authorization.k8s.io/v1/ClusterRole': k8s.rbac.v1.ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': k8s.rbac.v1.ClusterRoleBinding,
};

/**
 * CRD-backed kinds we know of. They become `apiextensions.CustomResource`s; their CRDs
 * (KEDA, Gateway API, Envoy Gateway, Prometheus operator, Karpenter) must already be installed in the cluster.
 */
const CUSTOM: ReadonlySet<string> = new Set([
  'keda.sh/v1alpha1/ScaledObject',
  'keda.sh/v1alpha1/ScaledJob',
  'keda.sh/v1alpha1/TriggerAuthentication',
  'gateway.networking.k8s.io/v1/Gateway',
  'gateway.networking.k8s.io/v1/HTTPRoute',
  'gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy',
  'gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy',
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
  'karpenter.sh/v1/NodePool',
]);

/** Kinds that live outside any namespace. */
const CLUSTER_SCOPED: ReadonlySet<string> = new Set(['Namespace', 'IngressClass', 'ClusterRole', 'ClusterRoleBinding', 'NodePool']);

/** `apps/v1/Deployment` — the key of the tables above. */
export function typeKey(m: Pick<Manifest, 'apiVersion' | 'kind'>): string {
  return `${m.apiVersion}/${m.kind}`;
}

/** `Deployment levee/levee-gateway` — how errors and tests name an object. */
export function describeManifest(m: Manifest): string {
  return `${m.kind} ${m.metadata.namespace ? `${m.metadata.namespace}/` : ''}${m.metadata.name}`;
}

/** Every `apiVersion/kind` this module can register. */
export const SUPPORTED_KINDS: readonly string[] = [...Object.keys(TYPED), ...CUSTOM].sort();

export function isCustomKind(m: Pick<Manifest, 'apiVersion' | 'kind'>): boolean {
  return CUSTOM.has(typeKey(m));
}

export function isClusterScoped(m: Pick<Manifest, 'kind'>): boolean {
  return CLUSTER_SCOPED.has(m.kind);
}

/**
 * The Pulumi logical name: `<namespace>/<name>`, or `<name>` for cluster-scoped kinds.
 * The type is part of the URN, so a Service and a Deployment may share a name.
 */
export function logicalName(m: Manifest): string {
  return m.metadata.namespace ? `${m.metadata.namespace}/${m.metadata.name}` : m.metadata.name;
}

export class UnknownKindError extends Error {
  constructor(m: Manifest) {
    super(
      `No Pulumi resource type for ${typeKey(m)} (${describeManifest(m)}); ` +
        `add it to the table in infra/pulumi/api-objects.ts. Supported: ${SUPPORTED_KINDS.join(', ')}`,
    );
    this.name = 'UnknownKindError';
  }
}

/** Throws {@link UnknownKindError} for a kind that {@link registerApiObject} cannot register. */
export function assertSupported(m: Manifest): void {
  if (!TYPED[typeKey(m)] && !CUSTOM.has(typeKey(m))) throw new UnknownKindError(m);
  if (!m.metadata?.name) throw new Error(`${typeKey(m)} has no metadata.name; every synthesized object must be named`);
}

/**
 * Registers one object with its typed class, its inputs being the object itself
 * (metadata.name is set, so Pulumi does not auto-name it).
 */
export function registerApiObject(m: Manifest, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
  assertSupported(m);
  const name = logicalName(m);
  const ctor = TYPED[typeKey(m)];
  if (ctor) return new ctor(name, m as never, opts);
  return new k8s.apiextensions.CustomResource(name, m as unknown as k8s.apiextensions.CustomResourceArgs, opts);
}
