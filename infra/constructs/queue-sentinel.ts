import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig, Resources } from '../config/resolve';
import { COMPONENTS, PORTS, QUEUE_SENTINEL_HEADLESS, QUEUE_SENTINEL_MASTER, queueRedisSecret } from '../names';
import { queueRedisPodHost, sentinelClientAddress } from './endpoints';
import { TMP_MOUNT, TMP_VOLUME, containerSecurityContext, objectMeta, plainEnv, basePodSpec, resources, secretEnv, selectorLabels, spreadOverNodes } from './pod';
import { REDIS_PASSWORD_ENV, SENTINEL_READY_SCRIPT, SENTINEL_START_SCRIPT } from './redis';

export interface QueueSentinelProps {
  readonly config: LeveeConfig;
}

/** A Sentinel holds a few KB of state: small and fixed, like the data pods' CPU. */
export const SENTINEL_RESOURCES: Resources = {
  cpuRequest: { text: '50m', millis: 50 },
  cpuLimit: { text: '250m', millis: 250 },
  memoryRequest: { text: '64Mi', bytes: 64 * 1024 ** 2 },
  memoryLimit: { text: '64Mi', bytes: 64 * 1024 ** 2 },
};

/** Where a Sentinel keeps the config file it rewrites (an emptyDir). */
export const SENTINEL_DIR = '/sentinel';

/**
 * Redis Sentinel for the queue Redis (`LEVEE_QUEUE_REDIS=sentinel`): three Sentinels, quorum
 * two, that agree when the primary is down and promote a replica. A StatefulSet for stable
 * names and ids (SENTINEL_START_SCRIPT), spread over nodes so one node takes at most one
 * Sentinel, and a PodDisruptionBudget (production) that lets a drain take one at a time: two
 * Sentinels, a quorum, always remain.
 */
export class QueueSentinel extends Construct {
  public readonly serviceAccount: k8s.KubeServiceAccount;
  /** ClusterIP Service: what clients ask. */
  public readonly service: k8s.KubeService;
  /** Headless Service governing the StatefulSet: a stable DNS name per Sentinel. */
  public readonly headlessService: k8s.KubeService;
  public readonly statefulSet: k8s.KubeStatefulSet;
  public readonly disruptionBudget?: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: QueueSentinelProps) {
    super(scope, id);
    const { config } = props;
    const sentinel = config.queueRedis.sentinel;
    if (!sentinel) throw new Error('QueueSentinel: LEVEE_QUEUE_REDIS is not "sentinel"');
    const name = COMPONENTS.queueSentinel;
    const meta = (n: string = name) => objectMeta(config, n, 'queue-sentinel');
    const port = [{ name: 'sentinel', port: PORTS.sentinel, targetPort: k8s.IntOrString.fromString('sentinel'), protocol: 'TCP' }];

    this.serviceAccount = new k8s.KubeServiceAccount(this, 'service-account', { metadata: meta(), automountServiceAccountToken: false });
    this.service = new k8s.KubeService(this, 'service', { metadata: meta(), spec: { type: 'ClusterIP', selector: selectorLabels(name), ports: port } });
    this.headlessService = new k8s.KubeService(this, 'headless-service', {
      metadata: meta(QUEUE_SENTINEL_HEADLESS),
      spec: { clusterIp: 'None', publishNotReadyAddresses: true, selector: selectorLabels(name), ports: port },
    });

    const secret = queueRedisSecret(config);
    const container: k8s.Container = {
      name: 'sentinel',
      image: config.images.redis,
      imagePullPolicy: 'IfNotPresent',
      // redis-server <config> --sentinel: the Redis image's own server in Sentinel mode, run
      // as 10001 through /bin/sh only to write its config and hand it the password on stdin.
      command: ['sh', '-c', SENTINEL_START_SCRIPT, 'redis-server'],
      args: ['--sentinel'],
      ports: [{ name: 'sentinel', containerPort: PORTS.sentinel, protocol: 'TCP' }],
      env: [
        secretEnv(REDIS_PASSWORD_ENV, secret),
        secretEnv('REDISCLI_AUTH', secret),
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ...plainEnv({
          SENTINEL_PORT: PORTS.sentinel,
          SENTINEL_DIR,
          ANNOUNCE_HOST: `$(POD_NAME).${QUEUE_SENTINEL_HEADLESS}.${config.namespace}.svc`,
          SENTINELS: sentinelClientAddress(),
          MASTER_NAME: QUEUE_SENTINEL_MASTER,
          PRIMARY_HOST: queueRedisPodHost(config, 0),
          PRIMARY_PORT: PORTS.redis,
          QUORUM: sentinel.quorum,
          DOWN_AFTER_MS: sentinel.downAfterMs,
          FAILOVER_TIMEOUT_MS: sentinel.failoverTimeoutMs,
        }),
      ],
      resources: resources(SENTINEL_RESOURCES),
      securityContext: containerSecurityContext(),
      livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(PORTS.sentinel) }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3, initialDelaySeconds: 5 },
      readinessProbe: { exec: { command: ['sh', '-c', SENTINEL_READY_SCRIPT] }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
      volumeMounts: [TMP_MOUNT, { name: 'sentinel', mountPath: SENTINEL_DIR }],
    };

    this.statefulSet = new k8s.KubeStatefulSet(this, 'stateful-set', {
      metadata: meta(),
      spec: {
        serviceName: QUEUE_SENTINEL_HEADLESS,
        replicas: sentinel.sentinels,
        selector: { matchLabels: selectorLabels(name) },
        podManagementPolicy: 'Parallel',
        updateStrategy: { type: 'RollingUpdate' },
        template: {
          metadata: { labels: meta().labels },
          spec: {
            ...basePodSpec(name, 10),
            topologySpreadConstraints: spreadOverNodes(name),
            containers: [container],
            // Sentinel rewrites its config file: a writable emptyDir (the root filesystem is read-only).
            volumes: [TMP_VOLUME, { name: 'sentinel', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } }],
          },
        },
      },
    });

    if (config.podDisruptionBudgets) {
      this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
        metadata: meta(),
        spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: selectorLabels(name) } },
      });
    }
  }
}
