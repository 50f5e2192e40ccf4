import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS, cacheRedisSecret } from '../names';
import { TMP_VOLUME, objectMeta, basePodSpec, selectorLabels, topologySpread } from './pod';
import { maxmemoryFlag, redisContainer } from './redis';

export interface CacheRedisProps {
  readonly config: LeveeConfig;
}

/**
 * The cache Redis: hot reads, negative cache, locks and rate-limit counters. Losing it is
 * harmless (the gateway falls back), so no persistence, and LRU eviction instead of errors.
 */
export class CacheRedis extends Construct {
  public readonly serviceAccount: k8s.KubeServiceAccount;
  public readonly service: k8s.KubeService;
  public readonly deployment: k8s.KubeDeployment;

  constructor(scope: Construct, id: string, props: CacheRedisProps) {
    super(scope, id);
    const { config } = props;
    if (config.cacheRedis.mode === 'external') throw new Error('CacheRedis: LEVEE_CACHE_REDIS is "external"; the chart runs no cache Redis then');
    const name = COMPONENTS.cacheRedis;
    const meta = () => objectMeta(config, name, 'cache-redis');

    this.serviceAccount = new k8s.KubeServiceAccount(this, 'service-account', { metadata: meta(), automountServiceAccountToken: false });

    this.service = new k8s.KubeService(this, 'service', {
      metadata: meta(),
      spec: {
        type: 'ClusterIP',
        selector: selectorLabels(name),
        ports: [{ name: 'redis', port: PORTS.redis, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' }],
      },
    });

    this.deployment = new k8s.KubeDeployment(this, 'deployment', {
      metadata: meta(),
      spec: {
        // A single instance, not autoscaled: the rate limiter needs one shared counter store.
        replicas: 1,
        selector: { matchLabels: selectorLabels(name) },
        revisionHistoryLimit: 5,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) } },
        template: {
          metadata: { labels: meta().labels },
          spec: {
            ...basePodSpec(name, 10),
            topologySpreadConstraints: topologySpread(name, true),
            containers: [
              redisContainer({
                config,
                secret: cacheRedisSecret(config),
                memory: config.cacheRedis.memory,
                flags: [
                  ...maxmemoryFlag(config.cacheRedis.maxmemoryMb),
                  '--maxmemory-policy', 'allkeys-lru',
                  '--appendonly', 'no',
                  '--save', '',
                ],
              }),
            ],
            volumes: [TMP_VOLUME],
          },
        },
      },
    });
  }
}
