/** How the apps reach each other and their Redis (Service names are stable). */
import type { k8s } from 'cdk8s-plus-28';
import type { ExternalRedis, LeveeConfig } from '../config/resolve';
import { CA_SECRET_KEY, COMPONENTS, PORTS, QUEUE_SENTINEL_MASTER, SecretRef, cacheRedisSecret, queueRedisSecret } from '../names';
import { plainEnv, secretEnv } from './pod';

/** The in-cluster model's Service. */
export const MODEL_URL = `http://${COMPONENTS.model}:${PORTS.model}`;

/** Where the workers and the gateway find the model: the in-cluster Service, or LEVEE_MODEL_URL. */
export function modelUrl(config: LeveeConfig): string {
  return config.modelServer.external?.url ?? MODEL_URL;
}

/** Key of the model API key in LEVEE_MODEL_API_KEY_SECRET. */
export const MODEL_API_KEY_SECRET_KEY = 'api-key';

/**
 * The model API settings of an app: the worker speaks it (MODEL_API, MODEL_NAME), the gateway
 * reads the catalog (MODEL_API; MODEL_STYLES with openai-images), and the key, when set, goes
 * to both and to the in-cluster stand-in (which then requires it).
 */
export function modelApiEnv(config: LeveeConfig, app: 'worker' | 'gateway' | 'model'): k8s.EnvVar[] {
  const m = config.modelServer;
  const plain: Record<string, string> =
    app === 'worker' ? { MODEL_API: m.api, ...(m.api === 'openai-images' ? { MODEL_NAME: m.name } : {}) } : app === 'gateway' ? { MODEL_API: m.api, ...(m.styles ? { MODEL_STYLES: m.styles } : {}) } : {};
  // The gateway calls the model only for the catalog, which openai-images has not: no key then.
  const needsKey = !(app === 'gateway' && m.api === 'openai-images');
  const key = m.apiKeySecret && needsKey ? [secretEnv('MODEL_API_KEY', { name: m.apiKeySecret, key: MODEL_API_KEY_SECRET_KEY })] : [];
  return [...plainEnv(plain), ...key];
}

/** The stable DNS name of queue Redis data pod `i`: `<pod>.<headless Service>.<namespace>.svc` (resolv.conf's search list completes it in any cluster domain). */
export function queueRedisPodHost(config: LeveeConfig, i: number): string {
  return `${COMPONENTS.queueRedis}-${i}.${COMPONENTS.queueRedis}.${config.namespace}.svc`;
}

/**
 * The Sentinel address the apps, KEDA and the start scripts ask: the ClusterIP Service in
 * front of the ready Sentinels (a connection never waits on a lost node; with none ready it
 * is refused at once). ioredis then learns every Sentinel's own address from the answers.
 */
export function sentinelClientAddress(): string {
  return `${COMPONENTS.queueSentinel}:${PORTS.sentinel}`;
}

/** What an app container needs to reach one Redis role: environment, and the CA certificate's volume. */
export interface RedisClientSpec {
  readonly env: k8s.EnvVar[];
  readonly volumes: k8s.Volume[];
  readonly mounts: k8s.VolumeMount[];
}

/** Where an app finds a role's CA certificate (`<ROLE>_REDIS_CA_FILE`). */
export function caMountPath(role: 'QUEUE' | 'CACHE'): string {
  return `/etc/levee/${role.toLowerCase()}-redis-ca`;
}

function external(role: 'QUEUE' | 'CACHE', ext: ExternalRedis, secret: SecretRef): RedisClientSpec {
  const volume = `${role.toLowerCase()}-redis-ca`;
  return {
    env: [
      ...plainEnv({
        [`${role}_REDIS_URL`]: ext.url,
        ...(ext.username ? { [`${role}_REDIS_USERNAME`]: ext.username } : {}),
        ...(ext.caSecret ? { [`${role}_REDIS_CA_FILE`]: `${caMountPath(role)}/${CA_SECRET_KEY}` } : {}),
      }),
      secretEnv(`${role}_REDIS_PASSWORD`, secret),
    ],
    volumes: ext.caSecret ? [{ name: volume, secret: { secretName: ext.caSecret, items: [{ key: CA_SECRET_KEY, path: CA_SECRET_KEY }] } }] : [],
    mounts: ext.caSecret ? [{ name: volume, mountPath: caMountPath(role), readOnly: true }] : [],
  };
}

/**
 * The `QUEUE_REDIS_*` settings of an app for the configured mode: the StatefulSet's Service;
 * the Sentinels and the master group (no URL: with Sentinels only its scheme would count);
 * or the managed Redis's URL, ACL user and CA file. The password always comes from the Secret.
 */
export function queueRedisClient(config: LeveeConfig): RedisClientSpec {
  const secret = queueRedisSecret(config);
  const q = config.queueRedis;
  if (q.external) return external('QUEUE', q.external, secret);
  const env =
    q.mode === 'sentinel'
      ? plainEnv({ QUEUE_REDIS_SENTINELS: sentinelClientAddress(), QUEUE_REDIS_SENTINEL_NAME: QUEUE_SENTINEL_MASTER })
      : plainEnv({ QUEUE_REDIS_URL: `redis://${COMPONENTS.queueRedis}:${PORTS.redis}` });
  return { env: [...env, secretEnv('QUEUE_REDIS_PASSWORD', secret)], volumes: [], mounts: [] };
}

/** The `CACHE_REDIS_*` settings of the gateway (the cache Deployment's Service, or the managed Redis). */
export function cacheRedisClient(config: LeveeConfig): RedisClientSpec {
  const secret = cacheRedisSecret(config);
  if (config.cacheRedis.external) return external('CACHE', config.cacheRedis.external, secret);
  return { env: [...plainEnv({ CACHE_REDIS_URL: `redis://${COMPONENTS.cacheRedis}:${PORTS.redis}` }), secretEnv('CACHE_REDIS_PASSWORD', secret)], volumes: [], mounts: [] };
}

/** Keys of the LEVEE_IMAGE_S3_CREDENTIALS_SECRET Secret: the AWS SDK reads them from the environment. */
export const S3_KEY_ENV = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

/**
 * The image store's settings of an app (IMAGE_STORE, IMAGE_S3_*): the worker writes, media
 * reads (both with the access keys from the Secret, when one is set), the gateway only names
 * the objects (the status document's imageUrl) and never calls the store (SERVE_MEDIA is false).
 */
export function imageStoreEnv(config: LeveeConfig, app: 'worker' | 'media' | 'gateway'): k8s.EnvVar[] {
  const store = config.imageStore;
  const delivery = config.imageDelivery;
  const deliveryEnv: Record<string, string | number> = app === 'media' ? { IMAGE_DELIVERY: delivery.mode, ...(delivery.mode === 'redirect' ? { IMAGE_URL_TTL_SECONDS: delivery.urlTtlSeconds } : {}) } : {};
  // The gateway and the worker write imageUrl (the status document; a completed job's webhook).
  const publicBase: Record<string, string> = (app === 'gateway' || app === 'worker') && delivery.publicBaseUrl ? { IMAGE_PUBLIC_BASE_URL: delivery.publicBaseUrl } : {};
  if (store.kind === 'redis') return plainEnv({ IMAGE_STORE: 'redis', ...deliveryEnv, ...publicBase });
  const env = plainEnv({
    IMAGE_STORE: 's3',
    IMAGE_S3_BUCKET: store.bucket,
    IMAGE_S3_PREFIX: store.prefix,
    ...(store.endpoint ? { IMAGE_S3_ENDPOINT: store.endpoint } : {}),
    ...(store.region ? { IMAGE_S3_REGION: store.region } : {}),
    ...(store.forcePathStyle ? { IMAGE_S3_FORCE_PATH_STYLE: 'true' } : {}),
    ...deliveryEnv,
    ...publicBase,
  });
  const keys = app !== 'gateway' && store.credentialsSecret ? S3_KEY_ENV.map((key) => secretEnv(key, { name: store.credentialsSecret!, key })) : [];
  return [...env, ...keys];
}

/**
 * Which webhook URLs are allowed (WEBHOOK_*), the same for the gateway (at submit) and the
 * sender (at delivery). Only what differs from the services' defaults is written.
 */
export function webhookPolicyEnv(config: LeveeConfig): Record<string, string> {
  const w = config.webhooks;
  return {
    ...(w.allowedCidrs !== '' ? { WEBHOOK_ALLOWED_CIDRS: w.allowedCidrs } : {}),
    ...(w.allowHttp ? { WEBHOOK_ALLOW_HTTP: 'true' } : {}),
    ...(w.allowedPorts.join(',') !== '443,8443' ? { WEBHOOK_ALLOWED_PORTS: w.allowedPorts.join(',') } : {}),
  };
}
