/**
 * The one place where pod-level defaults live: labels, the Pod Security Standards
 * "restricted" security contexts, resources, spreading and the writable /tmp.
 * Every workload construct builds its pod template from these helpers, so no
 * cdk8s-plus defaults (1 CPU resources, required anti-affinity) can leak in.
 */
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig, Resources } from '../config/resolve';
import { LABELS, RUN_AS_ID } from '../names';

/** Ephemeral storage for every container: /tmp is bounded below the limit. */
export const EPHEMERAL = { request: '64Mi', limit: '256Mi', tmpSizeLimit: '128Mi' } as const;

export function selectorLabels(name: string): Record<string, string> {
  return { [LABELS.name]: name };
}

export function componentLabels(config: LeveeConfig, name: string, component: string): Record<string, string> {
  return {
    ...selectorLabels(name),
    [LABELS.component]: component,
    [LABELS.partOf]: 'levee',
    [LABELS.managedBy]: 'levee-infra',
    ...config.labels,
  };
}

export function objectMeta(config: LeveeConfig, name: string, component: string, extra: Partial<k8s.ObjectMeta> = {}): k8s.ObjectMeta {
  return { name, namespace: config.namespace, labels: componentLabels(config, name, component), ...extra };
}

export function podSecurityContext(): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_ID,
    runAsGroup: RUN_AS_ID,
    fsGroup: RUN_AS_ID,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * What every pod of the chart shares: its own ServiceAccount with no API token mounted, no
 * Service environment variables, the restricted pod security context, and its grace period.
 */
export function basePodSpec(serviceAccountName: string, terminationGracePeriodSeconds: number) {
  return {
    serviceAccountName,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: podSecurityContext(),
    terminationGracePeriodSeconds,
  } satisfies Partial<k8s.PodSpec>;
}

export function containerSecurityContext(): k8s.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_ID,
    runAsGroup: RUN_AS_ID,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

export function resources(r: Resources, ephemeralLimit: string = EPHEMERAL.limit): k8s.ResourceRequirements {
  return {
    requests: {
      cpu: k8s.Quantity.fromString(r.cpuRequest.text),
      memory: k8s.Quantity.fromString(r.memoryRequest.text),
      'ephemeral-storage': k8s.Quantity.fromString(EPHEMERAL.request),
    },
    limits: {
      cpu: k8s.Quantity.fromString(r.cpuLimit.text),
      memory: k8s.Quantity.fromString(r.memoryLimit.text),
      'ephemeral-storage': k8s.Quantity.fromString(ephemeralLimit),
    },
  };
}

/**
 * Spread over zones and nodes as a preference (ScheduleAnyway): a scale-out never waits
 * for a new node or zone, unlike the required anti-affinity of cdk8s-plus `spread: true`.
 * `pod-template-hash` keeps a rollout's new ReplicaSet from being skewed by the old one.
 */
export function topologySpread(name: string, isDeployment: boolean): k8s.TopologySpreadConstraint[] {
  return ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
    topologyKey,
    maxSkew: 1,
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: selectorLabels(name) },
    ...(isDeployment ? { matchLabelKeys: ['pod-template-hash'] } : {}),
  }));
}

/**
 * For the pods of a replicated group (data pods, Sentinels): never two on one node while
 * another node has fewer (losing a node must not take two of them), zones as a preference.
 * With fewer nodes than pods they still schedule (the skew is counted over the nodes there
 * are), so a small cluster is not blocked; nodes whose taints the pods do not tolerate are not counted.
 */
export function spreadOverNodes(name: string): k8s.TopologySpreadConstraint[] {
  return [
    { topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selectorLabels(name) } },
    { topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule', nodeTaintsPolicy: 'Honor', labelSelector: { matchLabels: selectorLabels(name) } },
  ];
}

export const TMP_VOLUME: k8s.Volume = { name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString(EPHEMERAL.tmpSizeLimit) } };
export const TMP_MOUNT: k8s.VolumeMount = { name: 'tmp', mountPath: '/tmp' };

export function secretEnv(name: string, secret: { name: string; key: string }): k8s.EnvVar {
  return { name, valueFrom: { secretKeyRef: { name: secret.name, key: secret.key } } };
}

export function plainEnv(values: Record<string, string | number>): k8s.EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value: String(value) }));
}

export function httpProbe(path: string, port: number, o: { period: number; failures: number; initialDelay?: number; timeout?: number }): k8s.Probe {
  return {
    httpGet: { path, port: k8s.IntOrString.fromNumber(port) },
    periodSeconds: o.period,
    timeoutSeconds: o.timeout ?? 2,
    failureThreshold: o.failures,
    ...(o.initialDelay !== undefined ? { initialDelaySeconds: o.initialDelay } : {}),
  };
}

/** `<registry>/<name>:<tag>`: what `npm run images` tags and a registry serves. */
export function appImageTag(config: LeveeConfig, name: string): string {
  return `${config.images.registry}/${name}:${config.images.tag}`;
}

/** The reference a pod pulls: the tag, plus the digest when `imageDigests` pins one. */
export function appImage(config: LeveeConfig, name: string): string {
  const digest = config.images.digests[name];
  return digest === undefined ? appImageTag(config, name) : `${appImageTag(config, name)}@${digest}`;
}
