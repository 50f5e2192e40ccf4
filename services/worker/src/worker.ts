import { Job, Queue, Worker } from 'bullmq';
import { annotate, queueTelemetry } from '../../shared/src/tracing';
import type Redis from 'ioredis';
import type { Registry } from 'prom-client';
import { Breaker } from '../../shared/src/breaker';
import { ImageStoreTarget, imageUrlOf } from '../../shared/src/image-settings';
import { CANCELLED, IDEMPOTENCY_SECONDS, JobOutcome, RenderRequest } from '../../shared/src/job';
import { CANCEL_CHANNEL, cancelKey } from '../../shared/src/keys';
import type { Logger } from '../../shared/src/logger';
import { ModelClient } from '../../shared/src/model-client';
import { duplicateRedis } from '../../shared/src/redis';
import { S3Images } from '../../shared/src/s3-images';
import { deliveryOf, WebhookNotifier } from '../../shared/src/webhooks';
import { ImageStore, RedisImageStore, S3ImageStore } from './image-store';

import { createWorkerMetrics } from './metrics';
import { RenderResult, createRenderProcessor } from './processor';
import { ProgressMonitor } from './progress';
import { registerQueueMetrics } from './queue-metrics';
import { DEFAULT_STORE_CHECK_SECONDS, WorkerSettings } from './settings';

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
  Partial<Pick<WorkerSettings, 'QUEUE_MIN_REPLICAS_ACKED' | 'QUEUE_REPLICA_ACK_TIMEOUT_MS' | 'IMAGE_STORE_BREAKER_OPEN_SECONDS' | 'IMAGE_STORE_CHECK_SECONDS' | 'MODEL_API' | 'MODEL_NAME' | 'MODEL_API_KEY' | 'MODEL_WAIT_MAX_SECONDS' | 'JOB_DEADLINE_SECONDS' | 'IMAGE_PUBLIC_BASE_URL'>> & {
    /** Where the PNGs go. @default redis (the queue Redis) */
    readonly imageStore?: ImageStoreTarget;
  };

export interface RenderWorkerOptions {
  readonly settings: RenderWorkerSettings;
  /** A 'worker'-role client (maxRetriesPerRequest: null); BullMQ duplicates it for blocking reads. */
  readonly connection: Redis;
  readonly registry: Registry;
  readonly logger: Logger;
  /** The object store client (s3); tests pass one with explicit credentials. @default one made from settings.imageStore */
  readonly images?: S3Images;
}

/** Consecutive failed store calls that open the image store's breaker (s3). */
export const STORE_FAILURES_TO_OPEN = 3;


export interface RenderWorker {
  readonly worker: Worker<RenderRequest, RenderResult>;
  readonly model: ModelClient;
  readonly progress: ProgressMonitor;
  /** True while the worker takes jobs, its Redis connection is up and its image store usable. */
  ready(): boolean;
  /** The image store (its breaker and bucket, with s3). */
  readonly store: ImageStore;
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
    ...(settings.MODEL_API ? { api: settings.MODEL_API } : {}),
    ...(settings.MODEL_NAME ? { modelName: settings.MODEL_NAME } : {}),
    ...(settings.MODEL_API_KEY ? { apiKey: settings.MODEL_API_KEY } : {}),
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
  const outcomes = new RedisImageStore(storeConnection, { minReplicasAcked, replicaAckTimeoutMs: settings.QUEUE_REPLICA_ACK_TIMEOUT_MS });
  const target = settings.imageStore ?? { kind: 'redis' };
  const s3 =
    target.kind === 's3'
      ? new S3ImageStore(
          options.images ?? new S3Images(target),
          outcomes,
          // The calls bound themselves at timeoutMs (a clear error); the breaker's own timeout is a backstop.
          new Breaker({ target: 'image-store', openSeconds: settings.IMAGE_STORE_BREAKER_OPEN_SECONDS ?? 10, timeoutMs: 2 * target.timeoutMs + 1000, consecutiveFailures: STORE_FAILURES_TO_OPEN, registry }),
        )
      : undefined;
  const store: ImageStore = s3 ?? outcomes;
  // Deliveries of the jobs' webhooks (the sender posts them).
  const notifier = new WebhookNotifier(connection, settings.QUEUE_NAME);
  const processor = createRenderProcessor({
    render: (request, signal) => model.render(request, signal),
    store,
    retryAfterMs: (now) => model.breaker.retryAfterMs(now),
    imageTtlSeconds: settings.IMAGE_TTL_SECONDS,
    ...(settings.MODEL_WAIT_MAX_SECONDS !== undefined ? { modelWaitMaxMs: settings.MODEL_WAIT_MAX_SECONDS * 1000 } : {}),
    ...(settings.JOB_DEADLINE_SECONDS !== undefined ? { deadlineMs: settings.JOB_DEADLINE_SECONDS * 1000 } : {}),
    isCancelled: async (id) => (await connection.exists(cancelKey(id))) === 1,
    notify: (id, delivery) => notifier.notify(id, delivery),
    imageUrl: (id) => imageUrlOf(target, settings.IMAGE_PUBLIC_BASE_URL, id),
    metrics: createWorkerMetrics(registry),
    progress,
    logger,
  });

  let active = 0;
  const worker = new Worker<RenderRequest, RenderResult>(
    settings.QUEUE_NAME,
    // Three parameters: BullMQ then hands each job an AbortSignal, which cancelJob aborts.
    (job, token, signal) => {
      active++;
      // On the job's span (a child of the request that made it, when tracing is on).
      annotate(() => ({
        'levee.job.id': job.id ?? '',
        'levee.job.attempt': job.attemptsMade + 1,
        'levee.queue.wait_ms': (job.processedOn ?? Date.now()) - job.timestamp,
        'levee.render.width': job.data.width,
        'levee.render.height': job.data.height,
        'levee.breaker.state': model.breaker.state,
      }));
      return processor(job, token, signal).finally(() => active--);
    },
    {
      connection,
      // Started below: at once with Redis as the store; with s3 once the bucket has answered.
      autorun: false,
      concurrency: settings.WORKER_CONCURRENCY,
      // See README "Locks, stalled jobs and shutdown" for how these relate to each other.
      lockDuration: settings.WORKER_LOCK_DURATION_MS,
      stalledInterval: settings.WORKER_STALLED_INTERVAL_MS,
      maxStalledCount: settings.WORKER_MAX_STALLED_COUNT,
      ...queueTelemetry(),
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
  // A job cancelled while active: the worker holding it aborts it (the others have nothing to do).
  // Opened once the queue connection is ready, so that a refused password is reported once,
  // by the start-up guard, and not also by this second connection.
  let cancels: ReturnType<typeof duplicateRedis> | undefined;
  const listenForCancels = () => {
    if (cancels) return;
    cancels = duplicateRedis(connection);
    cancels.on('error', () => undefined); // reconnects and resubscribes by itself
    cancels.on('message', (_channel: string, id: string) => {
      if (worker.cancelJob(id, CANCELLED)) logger.info({ jobId: id }, 'job cancelled while active: aborting its model call');
    });
    void cancels.subscribe(CANCEL_CHANNEL).catch((err: unknown) => logger.warn({ err }, 'could not subscribe to job cancels; cancelled jobs are still dropped when taken'));
  };
  if (connection.status === 'ready') listenForCancels();
  else connection.once('ready', listenForCancels);
  storeFailedOutcomes(worker, outcomes, logger, notifier);
  const reconcile = () =>
    reconcileFailedOutcomes(queue, outcomes, RECONCILE_NEWEST_FAILED, Date.now(), notifier)
      .then((restored) => restored > 0 && logger.warn({ restored }, 'stored the failed outcomes of jobs whose worker died before it could'))
      .catch((err: unknown) => logger.warn({ err }, 'could not check failed jobs for missing outcomes'));
  void reconcile();
  const reconciling = setInterval(reconcile, RECONCILE_INTERVAL_MS).unref();

  let closing = false;
  let started = false;
  const run = () => {
    if (closing || started) return;
    started = true;
    void worker.run().catch((err: unknown) => logger.error({ err }, 'worker stopped taking jobs'));
    // The store failed between its check and now: start paused (its probe resumes the worker).
    if (s3 && s3.breaker.state !== 'closed') void worker.pause(true);
  };
  let probing: NodeJS.Timeout | undefined;
  const stopChecking = new AbortController();
  if (!s3) run();
  else {
    const checkMs = (settings.IMAGE_STORE_CHECK_SECONDS ?? DEFAULT_STORE_CHECK_SECONDS) * 1000;
    // While the store's breaker is open, this worker takes no new job (the jobs wait, rather
    // than cycle between waiting and delayed); the probe's passing trial resumes it.
    // (A paused worker with no active job leaves its main loop: resume() starts it again.)
    s3.breaker.onStateChange((state) => {
      if (closing || !started) return;
      if (state === 'open') void worker.pause(true);
      else if (state === 'closed' && worker.isPaused()) void worker.resume();
    });
    void untilStoreUsable(s3, checkMs, logger, stopChecking.signal).then((usable) => {
      if (!usable || closing) return;
      run();
      void logLifecycle(s3, settings.IMAGE_TTL_SECONDS, logger).catch(() => undefined);
      probing = setInterval(() => void probeStore(s3, logger), checkMs).unref();
    });
  }

  return {
    worker,
    model,
    progress,
    store,
    ready: () => !closing && started && !worker.isPaused() && connection.status === 'ready' && (!s3 || s3.breaker.state === 'closed'),
    activeJobs: () => active,
    close: async () => {
      closing = true;
      stopChecking.abort();
      clearInterval(reconciling);
      clearInterval(probing);
      await worker.close();
      await queue.close();
      await notifier.close();
      connection.off('ready', listenForCancels);
      cancels?.disconnect();
      if (storeConnection !== connection) await storeConnection.quit().catch(() => storeConnection.disconnect());
      if (s3 && !options.images) s3.images.destroy();
    },
  };
}

/**
 * Checks the bucket every `checkMs` until it answers (true), or `stopped()` (false). Until then
 * the worker takes no job, so a wrong bucket or bad credentials burn no job's attempts; readiness
 * fails, and each distinct problem is logged once, in one line that names the bucket.
 */
async function untilStoreUsable(store: S3ImageStore, checkMs: number, logger: Logger, stop: AbortSignal): Promise<boolean> {
  let last: string | undefined;
  while (!stop.aborted) {
    try {
      await store.check(stop);
      if (stop.aborted) return false;
      logger.info({ store: store.images.describe() }, 'image store reachable: taking jobs');
      return true;
    } catch (err) {
      if (stop.aborted) return false;
      const problem = (err as Error).message;
      if (problem !== last) logger.error(`${problem}; taking no jobs until it answers`);
      last = problem;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, checkMs);
      timer.unref();
      stop.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }
  return false;
}

const lastProbeProblem = new WeakMap<S3ImageStore, string>();

/** While the store's breaker is open: the trial, a check of the bucket (never a job's upload). Logs the outcome once per change. */
async function probeStore(store: S3ImageStore, logger: Logger): Promise<void> {
  if (store.breaker.state === 'closed') return;
  try {
    if (await store.probe()) {
      logger.info({ store: store.images.describe() }, 'image store back: jobs resume');
      lastProbeProblem.delete(store);
    } else if (!lastProbeProblem.has(store)) {
      logger.error({ store: store.images.describe() }, 'image store failing: its breaker is open, jobs are postponed until a check of the bucket passes');
      lastProbeProblem.set(store, '');
    }
  } catch (err) {
    const problem = (err as Error).message;
    if (lastProbeProblem.get(store) !== problem) logger.error(`${problem}; jobs are postponed until it answers`);
    lastProbeProblem.set(store, problem);
  }
}

/**
 * Says, once at start, whether the bucket's lifecycle rule expires the images: objects live
 * IMAGE_TTL_SECONDS only through that rule (docs/image-store.md gives it for each store).
 */
async function logLifecycle(store: S3ImageStore, ttlSeconds: number, logger: Logger): Promise<void> {
  const where = store.images.describe();
  const report = await store.images.lifecycle();
  if (report.kind === 'expires') {
    const days = report.days;
    if (days * 86_400 < ttlSeconds) logger.warn({ store: where, rule: report.rule, days, ttlSeconds }, 'the lifecycle rule deletes images before IMAGE_TTL_SECONDS: completed jobs will point at deleted images');
    else logger.info({ store: where, rule: report.rule, days }, 'images expire through the bucket lifecycle rule');
  } else if (report.kind === 'none') {
    logger.warn({ store: where, ttlSeconds }, 'no lifecycle rule of the bucket expires the images: they are never deleted (add one: docs/image-store.md)');
  } else {
    logger.warn({ store: where, reason: report.reason }, 'could not read the bucket lifecycle configuration: cannot tell whether images expire (docs/image-store.md)');
  }
}

/** How often a worker looks for failed jobs without an outcome (besides at start). */
export const RECONCILE_INTERVAL_MS = 5 * 60_000;
/** How many of the newest failed jobs it looks at: a worker dies with at most a few unwritten. */
export const RECONCILE_NEWEST_FAILED = 1000;

/** A failed (or cancelled) job's outcome, from BullMQ's own record of it. */
function failedOutcome(job: Job, fallbackError?: string): JobOutcome {
  const error = job.failedReason || fallbackError;
  const webhook = typeof (job.data as Partial<RenderRequest>)?.webhookUrl === 'string' ? ({ webhook: true } as const) : {};
  if (error === CANCELLED) return { status: 'cancelled', createdAt: job.timestamp, finishedAt: job.finishedOn!, attempts: job.attemptsMade, ...webhook };
  return { status: 'failed', createdAt: job.timestamp, finishedAt: job.finishedOn!, attempts: job.attemptsMade, error, ...webhook };
}

/** Enqueues the `image.failed` delivery of a job that failed for good, if it has a webhook. */
function notifyFailed(notifier: Pick<WebhookNotifier, 'notify'> | undefined, job: Job, outcome: JobOutcome): Promise<void> {
  const url = (job.data as Partial<RenderRequest>)?.webhookUrl;
  if (!notifier || typeof url !== 'string' || !job.id) return Promise.resolve();
  return notifier.notify(job.id, deliveryOf(job.id, outcome, url));
}

/**
 * Stores the failed outcomes that `storeFailedOutcomes` never wrote because its process died
 * between BullMQ failing the job and the write: for the newest `newest` failed jobs in BullMQ
 * that have none, from BullMQ's record, for what is left of their 24 h. An outcome that
 * exists is kept (SET NX). Returns how many it wrote.
 */
export async function reconcileFailedOutcomes(
  queue: Queue,
  store: Pick<RedisImageStore, 'restoreFailure' | 'hasOutcome'>,
  newest = RECONCILE_NEWEST_FAILED,
  now = Date.now(),
  notifier?: Pick<WebhookNotifier, 'notify'>,
): Promise<number> {
  const jobs = await queue.getFailed(0, newest - 1);
  const written = await Promise.all(
    jobs.map(async (job) => {
      if (!job?.id || !job.finishedOn) return false;
      const ttlSeconds = IDEMPOTENCY_SECONDS - Math.floor((now - job.finishedOn) / 1000);
      if (ttlSeconds <= 0) return false;
      // An outcome means the webhook was enqueued already (storeFailedOutcomes enqueues first):
      // only a job whose worker died in between gets both, the webhook first.
      if (await store.hasOutcome(job.id)) return false;
      const outcome = failedOutcome(job);
      await notifyFailed(notifier, job, outcome);
      return store.restoreFailure(job.id, outcome, ttlSeconds);
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
export function storeFailedOutcomes(worker: Worker, store: Pick<ImageStore, 'putFailure'>, logger: Logger, notifier?: Pick<WebhookNotifier, 'notify'>): void {
  worker.on('failed', (job, err) => {
    if (!job?.id || !job.finishedOn) return; // undefined job, or an attempt BullMQ retries
    const outcome = failedOutcome(job, err.message);
    if (outcome.status === 'cancelled') logger.info({ jobId: job.id }, 'job cancelled');
    else logger.warn({ jobId: job.id, attemptsMade: job.attemptsMade, err: err.message }, 'job failed for good');
    // The webhook is enqueued before the outcome is stored: if this process dies in between,
    // reconcileFailedOutcomes finds no outcome and enqueues it again (the same id: no duplicate).
    // If the enqueue fails, the outcome is left unwritten for the reconcile to do both.
    notifyFailed(notifier, job, outcome).then(
      () => store.putFailure(job.id!, outcome).catch((storeErr: unknown) => logger.warn({ err: storeErr, jobId: job.id }, 'could not store the failed outcome')),
      (notifyErr: unknown) => logger.warn({ err: notifyErr, jobId: job.id }, 'could not enqueue the webhook of a failed job; the next reconcile will'),
    );
  });
}
