import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS, QUEUE_REDIS_SECRET } from '../names';
import { TMP_VOLUME, objectMeta, podSecurityContext, selectorLabels, topologySpread } from './pod';
import { maxmemoryFlag, redisContainer } from './redis';

export interface QueueRedisProps {
  readonly config: LeveeConfig;
}

/** Size of the data emptyDir when persistence is off (preview, dev). */
export const QUEUE_REDIS_EPHEMERAL_DATA = '1Gi';

/**
 * The queue Redis: BullMQ jobs and the rendered PNGs. Jobs must not be evicted, so
 * `noeviction` (writes fail loudly instead) and AOF persistence on a PVC.
 */
export class QueueRedis extends Construct {
  public readonly serviceAccount: k8s.KubeServiceAccount;
  public readonly service: k8s.KubeService;
  public readonly statefulSet: k8s.KubeStatefulSet;

  constructor(scope: Construct, id: string, props: QueueRedisProps) {
    super(scope, id);
    const { config } = props;
    const name = COMPONENTS.queueRedis;
    const q = config.queueRedis;
    const meta = () => objectMeta(config, name, 'queue-redis');

    this.serviceAccount = new k8s.KubeServiceAccount(this, 'service-account', { metadata: meta(), automountServiceAccountToken: false });

    // Headless: the StatefulSet's governing Service; with one replica the name resolves to the pod.
    this.service = new k8s.KubeService(this, 'service', {
      metadata: meta(),
      spec: {
        clusterIp: 'None',
        selector: selectorLabels(name),
        ports: [{ name: 'redis', port: PORTS.redis, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' }],
      },
    });

    const dataMount = { name: 'data', mountPath: '/data' };
    this.statefulSet = new k8s.KubeStatefulSet(this, 'stateful-set', {
      metadata: meta(),
      spec: {
        serviceName: name,
        replicas: 1,
        selector: { matchLabels: selectorLabels(name) },
        podManagementPolicy: 'OrderedReady',
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
            serviceAccountName: name,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: podSecurityContext(),
            // Let Redis flush the AOF on SIGTERM.
            terminationGracePeriodSeconds: 30,
            topologySpreadConstraints: topologySpread(name, false),
            containers: [
              redisContainer({
                config,
                secret: QUEUE_REDIS_SECRET,
                memory: q.memory,
                dataMount,
                ...(q.persistence ? {} : { ephemeralLimit: '1280Mi' }),
                flags: [
                  ...maxmemoryFlag(q.maxmemoryMb),
                  '--maxmemory-policy', 'noeviction',
                  '--appendonly', 'yes',
                  '--appendfsync', 'everysec',
                  // The AOF is the durability; no RDB snapshots on top (each is one more fork,
                  // whose copy-on-write pages count against the memory limit).
                  '--save', '',
                ],
              }),
            ],
            volumes: [
              TMP_VOLUME,
              ...(q.persistence ? [] : [{ name: 'data', emptyDir: { sizeLimit: k8s.Quantity.fromString(QUEUE_REDIS_EPHEMERAL_DATA) } }]),
            ],
          },
        },
      },
    });
  }
}
