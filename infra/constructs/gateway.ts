import { Construct } from 'constructs';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS } from '../names';
import { AppWorkload } from './app-workload';
import { cacheRedisClient, imageStoreEnv, modelApiEnv, modelUrl, queueRedisClient, webhookPolicyEnv } from './endpoints';
import { appImage, httpProbe, plainEnv } from './pod';
import { httpGracePeriodSeconds } from './termination';

export interface GatewayProps {
  readonly config: LeveeConfig;
}

/** The public API: enqueues render jobs, serves the cached hot reads, rate-limits per client IP. */
export class Gateway extends AppWorkload {
  constructor(scope: Construct, id: string, props: GatewayProps) {
    const { config } = props;
    const queue = queueRedisClient(config);
    const cache = cacheRedisClient(config);
    super(scope, id, {
      config,
      name: COMPONENTS.gateway,
      component: 'gateway',
      sizing: config.gateway,
      image: appImage(config, COMPONENTS.gateway),
      ports: [{ name: 'http', port: PORTS.gateway }],
      metricsPort: PORTS.gatewayMetrics,
      env: [
        ...plainEnv({
          PORT: PORTS.gateway,
          METRICS_PORT: PORTS.gatewayMetrics,
          MODEL_URL: modelUrl(config),
          RATE_LIMIT_PER_SECOND: config.app.rateLimitPerSecond,
          RATE_LIMIT_IPV6_PREFIX: config.app.rateLimitIpv6Prefix,
          ...(config.app.trustProxy !== '' ? { TRUST_PROXY: config.app.trustProxy } : {}),
          QUEUE_NAME: config.app.queueName,
          QUEUE_MAX_WAITING: config.app.queueMaxWaiting,
          CACHE_TTL_SECONDS: config.app.cacheTtlSeconds,
          BREAKER_OPEN_SECONDS: config.app.breakerOpenSeconds,
          SHUTDOWN_DELAY_SECONDS: config.shutdown.shutdownDelaySeconds,
          // In-flight requests get the drain time the pod's grace period allows for.
          DRAIN_TIMEOUT_SECONDS: config.shutdown.drainSeconds,
          // /images is the media Deployment's: the gateway's copy of those routes is for local
          // use, and over the L4 LoadBalancer it would bypass the media tier and its scaling.
          SERVE_MEDIA: 'false',
          LOG_LEVEL: config.app.logLevel,
          // Replicas that confirm each job (Redis WAIT) before the 202.
          QUEUE_MIN_REPLICAS_ACKED: config.queueRedis.minReplicasAcked,
          // Which webhook URLs POST accepts (the sender checks them again at delivery).
          ...webhookPolicyEnv(config),
          EVENTS_MAX_PER_CLIENT: config.webhooks.eventsMaxPerClient,
          EVENTS_MAX: config.webhooks.eventsMax,
          // Webhook hosts are resolved with dns.lookup, on libuv's thread pool (4 threads by default).
          UV_THREADPOOL_SIZE: 32,
        }),
        ...modelApiEnv(config, 'gateway'),
        ...queue.env,
        ...cache.env,
        // Names the images in the status document; the gateway never calls the store (SERVE_MEDIA=false).
        ...imageStoreEnv(config, 'gateway'),
      ],
      volumes: [...queue.volumes, ...cache.volumes],
      volumeMounts: [...queue.mounts, ...cache.mounts],
      // Liveness never touches Redis; readiness fails while draining or when Redis is down.
      livenessProbe: httpProbe('/healthz', PORTS.gateway, { period: 10, failures: 3, initialDelay: 5 }),
      readinessProbe: httpProbe('/readyz', PORTS.gateway, { period: 5, failures: 2 }),
      preStopSeconds: config.shutdown.preStopSeconds,
      terminationGracePeriodSeconds: httpGracePeriodSeconds(config, true),
    });
  }
}
