/**
 * Stable names shared by the constructs, the services and the Pulumi program.
 * They never depend on configuration values, so snapshots and resource names stay put.
 */

/** Kubernetes names of the components (Deployments, StatefulSets and Services share them). */
export const COMPONENTS = {
  gateway: 'levee-gateway',
  media: 'levee-media',
  model: 'levee-model',
  worker: 'levee-worker',
  queueRedis: 'levee-queue-redis',
  cacheRedis: 'levee-cache-redis',
} as const;

export type ComponentKey = keyof typeof COMPONENTS;

/** Name of the L4 `LoadBalancer` Service in front of the gateway. */
export const EDGE_SERVICE_NAME = 'levee-edge';
/** Name of the L7 route object (Ingress, or HTTPRoute for a Gateway API provider). */
export const L7_ROUTE_NAME = 'levee';

export const PORTS = {
  gateway: 8080,
  model: 8081,
  media: 8082,
  /** Metrics listeners (METRICS_PORT): reachable only from the monitoring namespace, never routed by the edge. */
  gatewayMetrics: 9465,
  mediaMetrics: 9466,
  modelMetrics: 9467,
  workerMetrics: 9464,
  redis: 6379,
} as const;

/** Name of every metrics port (container and Service), which ServiceMonitors and PodMonitors scrape. */
export const METRICS_PORT_NAME = 'metrics';

/** The uid/gid every container runs as (the Dockerfiles use `USER 10001:10001`). */
export const RUN_AS_ID = 10001;

export interface SecretRef {
  /** Secret name in the chart's namespace. */
  readonly name: string;
  /** Key inside the Secret. */
  readonly key: string;
  /** What the value is for. */
  readonly description: string;
}

/**
 * The Secrets the chart references but never creates (no password is ever in the YAML).
 * cdk8s users create them with `kubectl create secret`; the Pulumi program creates them itself.
 */
export const REQUIRED_SECRETS: readonly SecretRef[] = [
  { name: 'levee-queue-redis', key: 'password', description: 'password of the queue Redis (requirepass)' },
  { name: 'levee-cache-redis', key: 'password', description: 'password of the cache Redis (requirepass)' },
];

export const QUEUE_REDIS_SECRET = REQUIRED_SECRETS[0]!;
export const CACHE_REDIS_SECRET = REQUIRED_SECRETS[1]!;

/** Label keys. Selectors use only `app.kubernetes.io/name`, which never changes. */
export const LABELS = {
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  version: 'app.kubernetes.io/version',
  environment: 'levee.dev/environment',
  previewId: 'levee.dev/preview-id',
} as const;
