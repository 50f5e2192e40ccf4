/**
 * Stable names shared by the constructs, the services and the Pulumi program.
 * They never depend on configuration values, so snapshots and resource names stay put
 * (the Secrets a deployment reads are the one exception: their names are settings).
 */
import type { LeveeConfig } from './config/resolve';


/** Kubernetes names of the components (Deployments, StatefulSets and Services share them). */
export const COMPONENTS = {
  gateway: 'levee-gateway',
  media: 'levee-media',
  model: 'levee-model',
  worker: 'levee-worker',
  /** The webhook sender: the worker image, its own pods and egress. */
  webhooks: 'levee-webhooks',
  queueRedis: 'levee-queue-redis',
  /** The Sentinels of `LEVEE_QUEUE_REDIS=sentinel` (StatefulSet, and the ClusterIP Service the clients ask). */
  queueSentinel: 'levee-queue-sentinel',
  cacheRedis: 'levee-cache-redis',
} as const;

/** Headless Service governing the Sentinel StatefulSet (stable pod DNS names; the ClusterIP Service has the plain name). */
export const QUEUE_SENTINEL_HEADLESS = 'levee-queue-sentinel-headless';

/** The Sentinel master group of the queue Redis (the services' QUEUE_REDIS_SENTINEL_NAME default). */
export const QUEUE_SENTINEL_MASTER = 'levee-queue';

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
  webhooksMetrics: 9468,
  redis: 6379,
  sentinel: 26379,
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
  /**
   * A password for a Redis in the cluster: the Pulumi program generates it and creates the
   * Secret. False: it must exist already (a managed Redis's password, its CA certificate).
   */
  readonly generated: boolean;
  /** What a generated value looks like: a 32-character alphanumeric password, or a Standard Webhooks key (whsec_ + 32 random bytes in base64). @default password */
  readonly format?: 'password' | 'whsec';
}

/** Key of the signing key in `LEVEE_WEBHOOK_SECRET`. */
export const WEBHOOK_SECRET_KEY = 'secret';

/** The Secret holding the queue Redis password (`LEVEE_QUEUE_REDIS_PASSWORD_SECRET`). */
export function queueRedisSecret(config: LeveeConfig): SecretRef {
  const external = config.queueRedis.mode === 'external';
  return {
    name: config.queueRedis.passwordSecret,
    key: 'password',
    description: external ? 'password of the managed queue Redis' : 'password of the queue Redis (requirepass; Sentinel too)',
    generated: !external,
  };
}

/** The Secret holding the cache Redis password (`LEVEE_CACHE_REDIS_PASSWORD_SECRET`). */
export function cacheRedisSecret(config: LeveeConfig): SecretRef {
  const external = config.cacheRedis.mode === 'external';
  return { name: config.cacheRedis.passwordSecret, key: 'password', description: external ? 'password of the managed cache Redis' : 'password of the cache Redis (requirepass)', generated: !external };
}

/** Key of the CA certificate in `LEVEE_*_REDIS_CA_SECRET`. */
export const CA_SECRET_KEY = 'ca.crt';

/**
 * The Secrets the chart references but never creates (no password is ever in the YAML).
 * cdk8s users create them with `kubectl create secret`; the Pulumi program creates the
 * `generated` ones itself. One Secret may serve both Redis roles (same name and key): it is listed once.
 */
export function requiredSecrets(config: LeveeConfig): SecretRef[] {
  const refs: SecretRef[] = [queueRedisSecret(config), cacheRedisSecret(config)];
  for (const [role, ext] of [['queue', config.queueRedis.external], ['cache', config.cacheRedis.external]] as const) {
    if (ext?.caSecret) refs.push({ name: ext.caSecret, key: CA_SECRET_KEY, description: `CA certificate of the managed ${role} Redis`, generated: false });
  }
  // The key that signs webhooks: ours, so the Pulumi program generates it (whsec_ + 32 random bytes).
  refs.push({ name: config.webhooks.secret, key: WEBHOOK_SECRET_KEY, description: 'the whsec_… key that signs webhooks (receivers verify with it)', generated: true, format: 'whsec' });
  // The model API key, when one is set: the model's provider (or its operator) issues it.
  if (config.modelServer.apiKeySecret) refs.push({ name: config.modelServer.apiKeySecret, key: 'api-key', description: 'the model API key (a Bearer token)', generated: false });
  // The object store's access keys, when not a workload identity: the store issues them, not us.
  const store = config.imageStore;
  if (store.kind === 's3' && store.credentialsSecret) {
    refs.push(
      { name: store.credentialsSecret, key: 'AWS_ACCESS_KEY_ID', description: `access key id of the object store (bucket ${store.bucket})`, generated: false },
      { name: store.credentialsSecret, key: 'AWS_SECRET_ACCESS_KEY', description: `secret access key of the object store (bucket ${store.bucket})`, generated: false },
    );
  }
  return refs.filter((r, i) => refs.findIndex((o) => o.name === r.name && o.key === r.key) === i);
}

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
