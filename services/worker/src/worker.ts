import { Job, Queue, Worker } from 'bullmq';
import type Redis from 'ioredis';
import type { Registry } from 'prom-client';
import { IDEMPOTENCY_SECONDS, JobOutcome, RenderRequest } from '../../shared/src/job';
import type { Logger } from '../../shared/src/logger';
import { ModelClient } from '../../shared/src/model-client';
import { duplicateRedis } from '../../shared/src/redis';
import { ImageStore, RedisImageStore } from './image-store';
import { createWorkerMetrics } from './metrics';
import { RenderResult, createRenderProcessor } from './processor';
import { ProgressMonitor } from './progress';
import { registerQueueMetrics } from './queue-metrics';
import type { WorkerSettings } from './settings';

export type RenderWorkerSettings = Pick<
  WorkerSettings,
  | 'MODEL_URL'
  | 'QUEUE_NAME'
  | 'WORKER_CONCURRENCY'
  | 'MODEL_TIMEOUT_MS'
  | 'BREAKER_OPEN_SECONDS'
  | 'BREAKER_FAILURES'
  | 'IMAGE_TTL_SECONDS'
  | 'WORKER_LOCK_DURATION_MS'
  | 'WORKER_STALLED_INTERVAL_MS'
  | 'WORKER_MAX_STALLED_COUNT'
  | 'WORKER_STUCK_GRACE_MS'
> &
  Partial<Pick<WorkerSettings, 'QUEUE_MIN_REPLICAS_ACKED' | 'QUEUE_REPLICA_ACK_TIMEOUT_MS'>>;

export interface RenderWorkerOptions {
  readonly settings: RenderWorkerSettings;
  /** A 'worker'-role client (maxRetriesPerRequest: null); BullMQ duplicates it for blocking reads. */
  readonly connection: Redis;
  readonly registry: Registry;
  readonly logger: Logger;
}

export interface RenderWorker {
  readonly worker: Worker<RenderRequest, RenderResult>;
  readonly model: ModelClient;
  readonly progress: ProgressMonitor;
  /** True while the worker takes jobs and its Redis connection is up. */
  ready(): boolean;
  /** Jobs this worker is processing now. */
  activeJobs(): number;
  /** Takes no new jobs, waits for the active ones, then closes BullMQ's connections. */
  close(): Promise<void>;
}

/** Wires the pure processor to BullMQ, the model client and Redis. No listening, no signals. */
export function createRenderWorker(options: RenderWorkerOptions): RenderWorker {
  const { settings, connection, registry, logger } = options;
  const model = new ModelClient({
    baseUrl: settings.MODEL_URL,
    timeoutMs: settings.MODEL_TIMEOUT_MS,
    openSeconds: settings.BREAKER_OPEN_SECONDS,
    consecutiveFailures: settings.BREAKER_FAILURES,
    registry,
  });
  const progress = new ProgressMonitor(settings.MODEL_TIMEOUT_MS + settings.WORKER_STUCK_GRACE_MS);
  // Confirmed stores WAIT for replicas, and WAIT blocks its connection: with confirmation on,
  // the store gets a connection of its own so BullMQ's commands never queue behind a WAIT.
  const minReplicasAcked = settings.QUEUE_MIN_REPLICAS_ACKED ?? 0;
  const storeConnection = minReplicasAcked > 0 ? duplicateRedis(connection) : connection;
  const store = new RedisImageStore(storeConnection, { minReplicasAcked, replicaAckTimeoutMs: settings.QUEUE_REPLICA_ACK_TIMEOUT_MS });
  const processor = createRenderProcessor({
    render: (request) => model.render(request),
    store,
    retryAfterMs: (now) => model.breaker.retryAfterMs(now),
    imageTtlSeconds: settings.IMAGE_TTL_SECONDS,
    metrics: createWorkerMetrics(registry),
    progress,
    logger,
  });

  let active = 0;
  const worker = new Worker<RenderRequest, RenderResult>(
    settings.QUEUE_NAME,
    (job, token) => {
      active++;
      return processor(job, token).finally(() => active--);
    },
    {
      connection,
      concurrency: settings.WORKER_CONCURRENCY,
      // See README "Locks, stalled jobs and shutdown" for how these relate to each other.
      lockDuration: settings.WORKER_LOCK_DURATION_MS,
      stalledInterval: settings.WORKER_STALLED_INTERVAL_MS,
      maxStalledCount: settings.WORKER_MAX_STALLED_COUNT,
    },
  );
  // Without an 'error' listener an emitted error would crash the process; BullMQ keeps going.
  worker.on('error', (err) => logger.error({ err }, 'worker error'));
  // Outcomes a dead worker left unwritten: checked at start, and every few minutes for
  // workers that are not replaced (scaled down). The same Queue feeds the queue metrics.
  const queue = new Queue<RenderRequest, RenderResult>(settings.QUEUE_NAME, { connection });
  queue.on('error', () => undefined); // the worker's own connection errors are logged already
  const queueMetrics = registerQueueMetrics({ queue, redis: connection, registry });
  worker.on('stalled', (jobId) => {
    queueMetrics.recordStalled();
    logger.warn({ jobId }, 'stalled job recovered and requeued');
  });
  storeFailedOutcomes(worker, store, logger);
  const reconcile = () =>
    reconcileFailedOutcomes(queue, store)
      .then((restored) => restored > 0 && logger.warn({ restored }, 'stored the failed outcomes of jobs whose worker died before it could'))
      .catch((err: unknown) => logger.warn({ err }, 'could not check failed jobs for missing outcomes'));
  void reconcile();
  const reconciling = setInterval(reconcile, RECONCILE_INTERVAL_MS).unref();

  let closing = false;
  return {
    worker,
    model,
    progress,
    ready: () => !closing && worker.isRunning() && connection.status === 'ready',
    activeJobs: () => active,
    close: async () => {
      closing = true;
      clearInterval(reconciling);
      await worker.close();
      await queue.close();
      if (storeConnection !== connection) await storeConnection.quit().catch(() => storeConnection.disconnect());
    },
  };
}

/** How often a worker looks for failed jobs without an outcome (besides at start). */
export const RECONCILE_INTERVAL_MS = 5 * 60_000;
/** How many of the newest failed jobs it looks at: a worker dies with at most a few unwritten. */
export const RECONCILE_NEWEST_FAILED = 1000;

/** A failed job's outcome, from BullMQ's own record of it. */
function failedOutcome(job: Job, fallbackError?: string): JobOutcome {
  return { status: 'failed', createdAt: job.timestamp, finishedAt: job.finishedOn!, attempts: job.attemptsMade, error: job.failedReason || fallbackError };
}

/**
 * Stores the failed outcomes that `storeFailedOutcomes` never wrote because its process died
 * between BullMQ failing the job and the write: for the newest `newest` failed jobs in BullMQ
 * that have none, from BullMQ's record, for what is left of their 24 h. An outcome that
 * exists is kept (SET NX). Returns how many it wrote.
 */
export async function reconcileFailedOutcomes(
  queue: Queue,
  store: Pick<RedisImageStore, 'restoreFailure'>,
  newest = RECONCILE_NEWEST_FAILED,
  now = Date.now(),
): Promise<number> {
  const jobs = await queue.getFailed(0, newest - 1);
  const written = await Promise.all(
    jobs.map((job) => {
      if (!job?.id || !job.finishedOn) return false;
      const ttlSeconds = IDEMPOTENCY_SECONDS - Math.floor((now - job.finishedOn) / 1000);
      return ttlSeconds > 0 && store.restoreFailure(job.id, failedOutcome(job), ttlSeconds);
    }),
  );
  return written.filter(Boolean).length;
}

/**
 * Stores the outcome of every job BullMQ fails for good (its last attempt, an
 * UnrecoverableError, or the stalled-job limit), so the gateway can still answer its status
 * once BullMQ's bounded history (removeOnFail) has dropped it. On BullMQ's `failed` event with
 * `finishedOn` set, the job has already moved to failed: its `failedReason`, `attemptsMade` and
 * `finishedOn` are final. If this process dies first, `reconcileFailedOutcomes` in the next
 * worker to start (or in a running one, within RECONCILE_INTERVAL_MS) writes it.
 */
export function storeFailedOutcomes(worker: Worker, store: Pick<ImageStore, 'putFailure'>, logger: Logger): void {
  worker.on('failed', (job, err) => {
    if (!job?.id || !job.finishedOn) return; // undefined job, or an attempt BullMQ retries
    logger.warn({ jobId: job.id, attemptsMade: job.attemptsMade, err: err.message }, 'job failed for good');
    store.putFailure(job.id, failedOutcome(job, err.message)).catch((storeErr: unknown) => logger.warn({ err: storeErr, jobId: job.id }, 'could not store the failed outcome'));
  });
}
