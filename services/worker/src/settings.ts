import { z } from 'zod';
import { ImageStoreTarget, checkImageSettings, imageDeliverySettings, imageStoreSettings, imageStoreTarget } from '../../shared/src/image-settings';
import { DEFAULT_JOB_DEADLINE_SECONDS } from '../../shared/src/job';
import { modelApiSettings } from '../../shared/src/model-settings';
import { RedisTarget } from '../../shared/src/redis';
import { checkRedisConnections, minReplicasAcked, redisConnectionSettings, redisTarget } from '../../shared/src/redis-settings';
import { Env, httpUrlSetting, intSetting, optionalIntSetting, loadSettingsOrExit, logLevelSetting, parseSettings, queueNameSetting, redisUrlSetting } from '../../shared/src/settings';

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** IMAGE_STORE_CHECK_SECONDS' default: how often the worker checks the bucket while the store is not usable. */
export const DEFAULT_STORE_CHECK_SECONDS = 5;

/** The worker's environment; every variable is documented in docs/reference/settings.md, generated from this schema. */
export const workerEnvSchema = z.object({
  /** The default of QUEUE_REDIS_URL: the queue Redis (jobs, and the images with IMAGE_STORE=redis). */
  REDIS_URL: redisUrlSetting(DEFAULT_REDIS_URL),
  ...redisConnectionSettings('QUEUE'),
  /** Replicas that must confirm a job's stored image and outcome (Redis WAIT); unset: 1 with Sentinel, else 0. */
  QUEUE_MIN_REPLICAS_ACKED: optionalIntSetting(0, 16),
  /** Longest one WAIT blocks; an unconfirmed store is written and confirmed again a few times, then the job is postponed. */
  QUEUE_REPLICA_ACK_TIMEOUT_MS: intSetting(10, 60_000, 1000),
  /** The model API base URL. */
  MODEL_URL: httpUrlSetting('http://127.0.0.1:8081'),
  ...modelApiSettings,
  /** The BullMQ queue (default prefix bull); webhook deliveries go to <QUEUE_NAME>-webhooks. */
  QUEUE_NAME: queueNameSetting,
  /** Jobs processed at once per process. */
  WORKER_CONCURRENCY: intSetting(1, 256, 2),
  /** Timeout of one model call; a timeout counts as a breaker failure. */
  MODEL_TIMEOUT_MS: intSetting(100, 600_000, 30_000),
  /** How long after its creation a job may wait, its attempts untouched, for a model that is not ready (cold, loading, refusing us). */
  MODEL_WAIT_MAX_SECONDS: intSetting(0, 86_400, 900),
  /** How long the breaker around the model stays open before one trial call. */
  BREAKER_OPEN_SECONDS: intSetting(1, 3600, 60),
  /** Consecutive model failures that open the breaker. */
  BREAKER_FAILURES: intSetting(1, 1000, 5),
  /** A job that waited longer than this since its creation is not rendered: it fails `expired…` (its webhook says so). */
  JOB_DEADLINE_SECONDS: intSetting(1, 30 * 86_400, DEFAULT_JOB_DEADLINE_SECONDS),
  /** How long a PNG lives in Redis, and a completed job's outcome (at least 24 h); with s3 the bucket's lifecycle rule expires the objects. */
  IMAGE_TTL_SECONDS: intSetting(1, 30 * 86_400, 86_400),
  ...imageStoreSettings,
  /** The absolute base of the `imageUrl` a completed job's webhook carries (as the gateway writes it in the status document). */
  IMAGE_PUBLIC_BASE_URL: imageDeliverySettings.IMAGE_PUBLIC_BASE_URL,
  /** s3: how long the store's breaker stays open (jobs postponed) before a check of the bucket may close it. */
  IMAGE_STORE_BREAKER_OPEN_SECONDS: intSetting(1, 3600, 10),
  /** s3: how often the bucket is checked while the store is not usable (at start, and while its breaker is open). */
  IMAGE_STORE_CHECK_SECONDS: intSetting(1, 3600, DEFAULT_STORE_CHECK_SECONDS),
  /** The worker's one port: /metrics, /healthz (503 only when a model call is stuck), /readyz. */
  METRICS_PORT: intSetting(1, 65535, 9464),
  /** Listen address of that port. */
  METRICS_HOST: z.string().min(1).default('0.0.0.0'),
  /** BullMQ lockDuration: a job's lock lives this long unless renewed (services/worker/README.md, "Locks, stalled jobs and shutdown"). */
  WORKER_LOCK_DURATION_MS: intSetting(500, 600_000, 10_000),
  /** BullMQ stalledInterval: how often jobs whose lock expired are looked for and moved back to waiting. */
  WORKER_STALLED_INTERVAL_MS: intSetting(100, 600_000, 5_000),
  // At least 1: with 0, the first worker killed mid-job would fail its job for good.
  /** BullMQ maxStalledCount: stalls a job survives before it fails (at least 1: a killed worker never fails its job for good). */
  WORKER_MAX_STALLED_COUNT: intSetting(1, 100, 2),
  /** Liveness slack over MODEL_TIMEOUT_MS: a model call older than both is stuck, and /healthz answers 503. */
  WORKER_STUCK_GRACE_MS: intSetting(0, 600_000, 15_000),
  /** Longest a SIGTERM waits for the active jobs; unset: 2 × MODEL_TIMEOUT_MS + 10 s. */
  WORKER_SHUTDOWN_TIMEOUT_MS: optionalIntSetting(100, 3_600_000),
  /** pino level (fatal, error, warn, info, debug, trace, silent). */
  LOG_LEVEL: logLevelSetting,
})
  .superRefine(checkRedisConnections(['QUEUE']))
  .superRefine(checkImageSettings);

export type WorkerSettings = Omit<z.infer<typeof workerEnvSchema>, 'QUEUE_REDIS_URL' | 'WORKER_SHUTDOWN_TIMEOUT_MS' | 'QUEUE_MIN_REPLICAS_ACKED'> & {
  QUEUE_REDIS_URL: string;
  WORKER_SHUTDOWN_TIMEOUT_MS: number;
  QUEUE_MIN_REPLICAS_ACKED: number;
  /** Where the queue lives, after the defaults (URL, credentials, CA, Sentinels). */
  queueRedis: RedisTarget;
  /** Where the PNGs go. */
  imageStore: ImageStoreTarget;
};

/**
 * The SIGTERM deadline when none is set: a job is bounded by one model call plus its store,
 * so twice the model timeout plus 10 s. The pod's grace period (infra/constructs/termination.ts,
 * 2 × timeout + 15 s) leaves 5 s over it for the exit itself.
 */
export function defaultShutdownTimeoutMs(modelTimeoutMs: number): number {
  return 2 * modelTimeoutMs + 10_000;
}

/**
 * QUEUE_REDIS_URL defaults to REDIS_URL; WORKER_SHUTDOWN_TIMEOUT_MS to defaultShutdownTimeoutMs;
 * QUEUE_MIN_REPLICAS_ACKED to 1 with Sentinel, else 0.
 */
function derive(env: z.infer<typeof workerEnvSchema>): WorkerSettings {
  return {
    ...env,
    QUEUE_REDIS_URL: env.QUEUE_REDIS_URL ?? env.REDIS_URL,
    WORKER_SHUTDOWN_TIMEOUT_MS: env.WORKER_SHUTDOWN_TIMEOUT_MS ?? defaultShutdownTimeoutMs(env.MODEL_TIMEOUT_MS),
    QUEUE_MIN_REPLICAS_ACKED: minReplicasAcked(env),
    queueRedis: redisTarget(env, 'QUEUE'),
    imageStore: imageStoreTarget(env),
  };
}

export function parseWorkerSettings(env: Env = process.env): WorkerSettings {
  return derive(parseSettings(workerEnvSchema, env));
}

/** For the process entry only: prints what is wrong and exits 78. */
export function loadWorkerSettingsOrExit(env: Env = process.env): WorkerSettings {
  return derive(loadSettingsOrExit(workerEnvSchema, 'worker', env));
}
