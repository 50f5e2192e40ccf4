import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import { LABELS } from '../names';
import { EPHEMERAL } from './pod';
import { QUEUE_REDIS_EPHEMERAL_DATA } from './queue-redis';
import { SENTINEL_RESOURCES } from './queue-sentinel';
import { redisCpu } from './redis';
import { parseMemoryBytes } from '../config/quantity';

export interface NamespaceProps {
  readonly config: LeveeConfig;
}

/**
 * The namespace, labelled so the API server enforces Pod Security "restricted" too; for
 * preview and dev also a ResourceQuota (sized from the chart itself, so it never blocks
 * the chart's own maximum scale plus a rollout surge) and a LimitRange for anything else.
 */
export class LeveeNamespace extends Construct {
  public readonly namespace: k8s.KubeNamespace;
  public readonly quota?: k8s.KubeResourceQuota;
  public readonly limitRange?: k8s.KubeLimitRange;

  constructor(scope: Construct, id: string, props: NamespaceProps) {
    super(scope, id);
    const { config } = props;
    const labels = { [LABELS.partOf]: 'levee', [LABELS.managedBy]: 'levee-infra', ...config.labels };
    this.namespace = new k8s.KubeNamespace(this, 'namespace', {
      metadata: {
        name: config.namespace,
        labels: {
          ...labels,
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
        },
      },
    });
    if (!config.namespaceGuards) return;

    const q = namespaceQuota(config);
    this.quota = new k8s.KubeResourceQuota(this, 'quota', {
      metadata: { name: 'levee-quota', namespace: config.namespace, labels },
      spec: {
        hard: {
          'requests.cpu': k8s.Quantity.fromString(`${q.cpuMillis}m`),
          'limits.cpu': k8s.Quantity.fromString(`${q.cpuMillis}m`),
          'requests.memory': k8s.Quantity.fromString(`${q.memoryMi}Mi`),
          'limits.memory': k8s.Quantity.fromString(`${q.memoryMi}Mi`),
          'limits.ephemeral-storage': k8s.Quantity.fromString(`${q.ephemeralMi}Mi`),
          pods: k8s.Quantity.fromNumber(q.pods),
          'services.loadbalancers': k8s.Quantity.fromNumber(config.edge.l4 ? 1 : 0),
          'services.nodeports': k8s.Quantity.fromNumber(config.edge.l4 ? 1 : 0),
          persistentvolumeclaims: k8s.Quantity.fromNumber(config.queueRedis.persistence ? config.queueRedis.replicas : 0),
        },
      },
    });
    this.limitRange = new k8s.KubeLimitRange(this, 'limit-range', {
      metadata: { name: 'levee-limits', namespace: config.namespace, labels },
      spec: {
        limits: [
          {
            type: 'Container',
            default: { cpu: k8s.Quantity.fromString('250m'), memory: k8s.Quantity.fromString('256Mi'), 'ephemeral-storage': k8s.Quantity.fromString(EPHEMERAL.limit) },
            defaultRequest: { cpu: k8s.Quantity.fromString('50m'), memory: k8s.Quantity.fromString('64Mi'), 'ephemeral-storage': k8s.Quantity.fromString(EPHEMERAL.request) },
          },
        ],
      },
    });
  }
}

/** Limits summed over every pod the chart can run at once: max replicas plus a 25% surge. */
export function namespaceQuota(config: LeveeConfig): { cpuMillis: number; memoryMi: number; ephemeralMi: number; pods: number } {
  const mi = (bytes: number) => Math.ceil(bytes / 1024 ** 2);
  const ephemeralLimitMi = mi(parseMemoryBytes(EPHEMERAL.limit)!);
  let cpuMillis = 0;
  let memoryMi = 0;
  let ephemeralMi = 0;
  let pods = 0;
  for (const app of [config.gateway, config.media, config.model, config.worker, config.webhooks]) {
    const n = app.maxReplicas + Math.ceil(app.maxReplicas * 0.25);
    pods += n;
    cpuMillis += n * app.resources.cpuLimit.millis;
    memoryMi += n * mi(app.resources.memoryLimit.bytes);
    ephemeralMi += n * ephemeralLimitMi;
  }
  const redisCpuLimit = redisCpu(config).limitMillis;
  // Queue Redis: its data pods (none when external); cache Redis: one pod plus one surge pod.
  const queuePods = config.queueRedis.replicas;
  const cachePods = config.cacheRedis.mode === 'deployment' ? 2 : 0;
  pods += queuePods + cachePods;
  cpuMillis += (queuePods + cachePods) * redisCpuLimit;
  memoryMi += queuePods * mi(config.queueRedis.memory.bytes) + cachePods * mi(config.cacheRedis.memory.bytes);
  ephemeralMi += (queuePods + cachePods) * ephemeralLimitMi + (config.queueRedis.persistence ? 0 : queuePods * mi(parseMemoryBytes(QUEUE_REDIS_EPHEMERAL_DATA)!));
  const sentinel = config.queueRedis.sentinel;
  if (sentinel) {
    pods += sentinel.sentinels;
    cpuMillis += sentinel.sentinels * SENTINEL_RESOURCES.cpuLimit.millis;
    memoryMi += sentinel.sentinels * mi(SENTINEL_RESOURCES.memoryLimit.bytes);
    ephemeralMi += sentinel.sentinels * ephemeralLimitMi;
  }
  return { cpuMillis, memoryMi, ephemeralMi, pods };
}
