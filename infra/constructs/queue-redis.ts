import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS, QUEUE_SENTINEL_MASTER, queueRedisSecret } from '../names';
import { queueRedisPodHost, sentinelClientAddress } from './endpoints';
import { TMP_VOLUME, objectMeta, plainEnv, basePodSpec, selectorLabels, spreadOverNodes, topologySpread } from './pod';
import { REPLICATED_REDIS_READY_SCRIPT, REPLICATED_REDIS_START_SCRIPT, maxmemoryFlag, redisContainer } from './redis';

export interface QueueRedisProps {
  readonly config: LeveeConfig;
}

/** Size of the data emptyDir when persistence is off (preview, dev). */
export const QUEUE_REDIS_EPHEMERAL_DATA = '1Gi';

/**
 * The queue Redis: BullMQ jobs and the rendered PNGs. Jobs must not be evicted, so
 * `noeviction` (writes fail loudly instead) and AOF persistence on a PVC.
 *
 * `statefulset`: one pod. `sentinel`: `LEVEE_QUEUE_REDIS_REPLICAS` pods, each with AOF and
 * noeviction, one primary and the rest its replicas, watched by the Sentinels
 * ({@link QueueSentinel}), which promote a replica when the primary is lost. Each pod asks the
 * Sentinels for the primary when it starts (REPLICATED_REDIS_START_SCRIPT). Pods are spread
 * over nodes (required) and zones (preferred), and a PodDisruptionBudget lets a drain take
 * one at a time.
 */
export class QueueRedis extends Construct {
  public readonly serviceAccount: k8s.KubeServiceAccount;
  public readonly service: k8s.KubeService;
  public readonly statefulSet: k8s.KubeStatefulSet;
  /** Only with sentinel, in production. */
  public readonly disruptionBudget?: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: QueueRedisProps) {
    super(scope, id);
    const { config } = props;
    const name = COMPONENTS.queueRedis;
    const q = config.queueRedis;
    if (q.mode === 'external') throw new Error(`QueueRedis: LEVEE_QUEUE_REDIS is "external"; the chart runs no queue Redis then`);
    const replicated = q.mode === 'sentinel';
    const meta = () => objectMeta(config, name, 'queue-redis');

    this.serviceAccount = new k8s.KubeServiceAccount(this, 'service-account', { metadata: meta(), automountServiceAccountToken: false });

    // Headless: the StatefulSet's governing Service; with one replica the name resolves to the
    // pod. With replicas it gives each pod a stable DNS name, published before the pod is
    // ready: a replica must resolve the primary (and Sentinels every pod) while still syncing.
    this.service = new k8s.KubeService(this, 'service', {
      metadata: meta(),
      spec: {
        clusterIp: 'None',
        ...(replicated ? { publishNotReadyAddresses: true } : {}),
        selector: selectorLabels(name),
        ports: [{ name: 'redis', port: PORTS.redis, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' }],
      },
    });

    const dataMount = { name: 'data', mountPath: '/data' };
    const flags = [
      ...maxmemoryFlag(q.maxmemoryMb),
      '--maxmemory-policy', 'noeviction',
      '--appendonly', 'yes',
      '--appendfsync', 'everysec',
      // The AOF is the durability; no RDB snapshots on top (each is one more fork,
      // whose copy-on-write pages count against the memory limit).
      '--save', '',
      // A replica that needs a full copy (after a failover, when it had more than the
      // promoted one) gets it at once, not after the default 5 s wait for other replicas:
      // until it is in sync, no write can be confirmed (QUEUE_MIN_REPLICAS_ACKED).
      ...(replicated ? ['--repl-diskless-sync-delay', '0'] : []),
    ];
    const container = redisContainer({
      config,
      secret: queueRedisSecret(config),
      memory: q.memory,
      dataMount,
      ...(q.persistence ? {} : { ephemeralLimit: '1280Mi' }),
      flags,
      ...(replicated
        ? {
            script: REPLICATED_REDIS_START_SCRIPT,
            env: [
              { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ...plainEnv({
                REDIS_PORT: PORTS.redis,
                // Kubernetes expands $(POD_NAME) from the variable above.
                ANNOUNCE_HOST: `$(POD_NAME).${name}.${config.namespace}.svc`,
                PRIMARY_HOST: queueRedisPodHost(config, 0),
                PRIMARY_PORT: PORTS.redis,
                SENTINELS: sentinelClientAddress(),
                MASTER_NAME: QUEUE_SENTINEL_MASTER,
              }),
            ],
            readinessProbe: { exec: { command: ['sh', '-c', REPLICATED_REDIS_READY_SCRIPT] }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
          }
        : {}),
    });

    this.statefulSet = new k8s.KubeStatefulSet(this, 'stateful-set', {
      metadata: meta(),
      spec: {
        serviceName: name,
        replicas: q.replicas,
        selector: { matchLabels: selectorLabels(name) },
        // Replicas start together (each finds the primary by itself); updates still roll one
        // pod at a time, each waiting for the last to be ready (in sync).
        podManagementPolicy: replicated ? 'Parallel' : 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate' },
        ...(q.persistence
          ? {
              persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
              volumeClaimTemplates: [
                {
                  metadata: { name: 'data', labels: meta().labels },
                  spec: {
                    accessModes: ['ReadWriteOnce'],
                    resources: { requests: { storage: k8s.Quantity.fromString(q.storageSize.text) } },
                    ...(q.storageClass !== undefined ? { storageClassName: q.storageClass } : {}),
                  },
                },
              ],
            }
          : {}),
        template: {
          metadata: { labels: meta().labels },
          spec: {
            // 30 s: let Redis flush the AOF on SIGTERM.
            ...basePodSpec(name, 30),
            topologySpreadConstraints: replicated ? spreadOverNodes(name) : topologySpread(name, false),
            containers: [container],
            volumes: [
              TMP_VOLUME,
              ...(q.persistence ? [] : [{ name: 'data', emptyDir: { sizeLimit: k8s.Quantity.fromString(QUEUE_REDIS_EPHEMERAL_DATA) } }]),
            ],
          },
        },
      },
    });

    if (replicated && config.podDisruptionBudgets) {
      this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
        metadata: meta(),
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: selectorLabels(name) } },
      });
    }
  }
}
