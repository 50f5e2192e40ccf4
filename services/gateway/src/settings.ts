import net from 'node:net';
import { z } from 'zod';
import { checkImageSettings, imageDeliverySettings, imageStoreSettings } from '../../shared/src/image-settings';
import { modelApiSettings, modelStylesSetting } from '../../shared/src/model-settings';
import { webhookUrlSettings } from '../../shared/src/webhook-url';
import { checkRedisConnections, minReplicasAcked, redisConnectionSettings, redisTarget } from '../../shared/src/redis-settings';
import { booleanSetting, Env, httpUrlSetting, drainTimeoutSetting, intSetting, logLevelSetting, optionalIntSetting, parseSettings, queueNameSetting, redisUrlSetting, requestTimeoutSetting, metricsHostSetting, metricsPortSetting } from '../../shared/src/settings';

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** A comma-separated list of IPs or CIDRs (IPv4 or IPv6); empty means "trust no proxy". */
export const trustProxySetting = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const list = (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (const entry of list) {
      if (!isIpOrCidr(entry)) {
        ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of IPs or CIDRs (e.g. 10.0.0.0/8,fd00::/8); "${entry}" is neither` });
        return z.NEVER;
      }
    }
    return list;
  });

function isIpOrCidr(entry: string): boolean {
  const [ip, bits, ...rest] = entry.split('/');
  const family = net.isIP(ip);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * The gateway's environment: the interface fixed with the infra manifests (see
 * docs/reference/settings.md, generated from this schema). Queue and cache Redis default to REDIS_URL; each has the
 * `<ROLE>_REDIS_*` connection settings (shared/redis-settings.ts): the *_PASSWORD variables
 * override the URL's password (Kubernetes injects them from Secrets).
 */
export const gatewaySettingsSchema = z.object({
  /** The public port: /api (and /images under SERVE_MEDIA), /healthz, /readyz. */
  PORT: intSetting(1, 65535, 8080),
  /** Listen address of the public port. */
  HOST: z.string().min(1).default('0.0.0.0'),
  /** The metrics listener (`GET /metrics`); never the public PORT. */
  METRICS_PORT: metricsPortSetting(9465),
  /** Listen address of the metrics listener. */
  METRICS_HOST: metricsHostSetting,
  /** The default of both Redis roles (QUEUE_REDIS_URL: jobs, idempotency keys, images in redis; CACHE_REDIS_URL: the cache, its locks, rate-limit counters). */
  REDIS_URL: redisUrlSetting(DEFAULT_REDIS_URL),
  ...redisConnectionSettings('QUEUE'),
  ...redisConnectionSettings('CACHE'),
  /** Replicas that must confirm each accepted job (Redis WAIT) before the 202; unset: 1 with Sentinel, else 0. */
  QUEUE_MIN_REPLICAS_ACKED: optionalIntSetting(0, 16),
  /** Longest the POST waits for those confirmations before it answers 503. */
  QUEUE_REPLICA_ACK_TIMEOUT_MS: intSetting(10, 10_000, 500),
  /** The model API (the style catalog, behind the breaker). */
  MODEL_URL: httpUrlSetting('http://127.0.0.1:8081'),
  ...modelApiSettings,
  /** The style catalog `/api/styles` serves when the model API has none (openai-images); unset there: 404. */
  MODEL_STYLES: modelStylesSetting,
  /** Per call to the model API (the style catalog, a read that takes ~200 ms): a timeout is a breaker failure. */
  MODEL_TIMEOUT_MS: intSetting(10, 600_000, 1000),
  /** Consecutive failures or timeouts that open the breaker. */
  BREAKER_FAILURES: intSetting(1, 100, 3),
  /** Longest a request waits on an origin load while a stale copy exists, before it gets that copy. */
  CACHE_STALE_WAIT_MS: intSetting(0, 60_000, 250),
  /** Requests per second per client (its IP, or its IPv6 prefix), all replicas together (Redis). */
  RATE_LIMIT_PER_SECOND: intSetting(1, 10_000_000, 10),
  /** Comma-separated IPs/CIDRs of the proxies whose X-Forwarded-For is believed; unset: the socket peer is the client. */
  TRUST_PROXY: trustProxySetting,
  /** IPv6 clients share a budget per this prefix of their address (one subscriber's /64). */
  RATE_LIMIT_IPV6_PREFIX: intSetting(32, 128, 64),
  /** The BullMQ queue (its webhook deliveries: <QUEUE_NAME>-webhooks). */
  QUEUE_NAME: queueNameSetting,
  /** Bound of waiting jobs: beyond it POST answers 503 + Retry-After. */
  QUEUE_MAX_WAITING: intSetting(1, 100_000_000, 10_000),
  /** Refuse new jobs (503) once the queue Redis uses this share of its maxmemory (it never evicts). */
  QUEUE_MAX_MEMORY_PERCENT: intSetting(1, 100, 80),
  /** Fresh lifetime of the style catalog in the cache (±10% jitter). */
  CACHE_TTL_SECONDS: intSetting(1, 86_400, 30),
  /** How long the breaker around the model fails fast before one trial call. */
  BREAKER_OPEN_SECONDS: intSetting(1, 3600, 60),
  /** After SIGTERM: readiness fails at once, serving goes on this long (endpoints and proxies forget the pod), then the server closes. */
  SHUTDOWN_DELAY_SECONDS: intSetting(0, 300, 5),
  /** Slow clients: the headers must arrive within 10 s (or this, if less) and the whole request within this, else a 408 problem and the socket is closed. */
  REQUEST_TIMEOUT_MS: requestTimeoutSetting,
  /** After close, in-flight requests get this long; connections still open then are cut (the chart sets it from LEVEE_DRAIN_SECONDS). */
  DRAIN_TIMEOUT_SECONDS: drainTimeoutSetting,
  /** Mount the media routes (`/images/{id}.png`) here too: for local use; the chart sets false. */
  SERVE_MEDIA: booleanSetting(true),
  /** Where the images are (the status document's `imageUrl`, and the media routes under SERVE_MEDIA). */
  ...imageStoreSettings,
  ...imageDeliverySettings,
  /** Which webhook URLs POST /api/images accepts (the sender applies the same policy). */
  ...webhookUrlSettings,
  /** Open event streams (GET /api/images/{id}/events) per client (its rate-limit key) in one process; beyond: 429. */
  EVENTS_MAX_PER_CLIENT: intSetting(1, 10_000, 4),
  /** Open event streams per process; beyond: 503. */
  EVENTS_MAX: intSetting(1, 1_000_000, 10_000),
  /** pino level (fatal, error, warn, info, debug, trace, silent). */
  LOG_LEVEL: logLevelSetting,
})
  .superRefine(checkRedisConnections(['QUEUE', 'CACHE']))
  .superRefine(checkImageSettings);

export type GatewaySettings = z.infer<typeof gatewaySettingsSchema>;

export function parseGatewaySettings(env: Env = process.env): GatewaySettings {
  return parseSettings(gatewaySettingsSchema, env);
}

/** Where the queue and the cache live, after the defaults and overrides. */
export function redisTargets(settings: GatewaySettings) {
  return { queue: redisTarget(settings, 'QUEUE'), cache: redisTarget(settings, 'CACHE') };
}

/** QUEUE_MIN_REPLICAS_ACKED after its default (1 with Sentinel, else 0). */
export function queueMinReplicasAcked(settings: GatewaySettings): number {
  return minReplicasAcked(settings);
}
