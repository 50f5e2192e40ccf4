import { DelayedError, UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { isBreakerOpen } from '../../shared/src/breaker';
import { CANCELLED, DEFAULT_JOB_DEADLINE_SECONDS, EXPIRED, JobOutcome, RENDER_LIMITS, RenderRequest } from '../../shared/src/job';
import { imagePath } from '../../shared/src/image-settings';
import { imageKey } from '../../shared/src/keys';
import type { Logger } from '../../shared/src/logger';
import { isModelMisconfigured, isModelNotReady, isRequestRefused, JobCancelledError, ModelHttpError } from '../../shared/src/model-client';
import { ReplicaAckError } from '../../shared/src/replication';
import { ImageStoreError } from '../../shared/src/s3-images';
import { deliveryOf, WebhookDelivery } from '../../shared/src/webhooks';
import type { ImageStore } from './image-store';
import type { JobResult, WorkerMetrics } from './metrics';
import type { ProgressMonitor } from './progress';

/**
 * The render processor: a pure module. Everything it touches is injected (the model call,
 * the image store, the breaker's retry hint, the clock), so it is tested without Redis;
 * `worker.ts` hands it BullMQ jobs.
 *
 * Per job: drop it if it is past its deadline or cancelled → validate → render through the
 * breaker (a cancel aborts the model call) → store the PNG with the job's outcome
 * (before BullMQ marks the job completed, so a "completed" status always has an image) →
 * return a small summary. (The outcome of a job that fails for good is stored by `worker.ts`
 * once BullMQ has moved it to failed.)
 * - breaker open: the job is moved to delayed until a trial call can be made and
 *   `DelayedError` tells BullMQ not to count it as an attempt (moveToDelayed skips the
 *   attempt counter), so an outage never burns a job's retries;
 * - the model not ready (a cold or loading model: connection refused, 503; or 429), or refusing
 *   us (401, 403, 404, …: a configuration problem): postponed by its Retry-After (else
 *   MODEL_NOT_READY_POSTPONE_MS), the attempt not burned, for at most MODEL_WAIT_MAX_SECONDS
 *   after the job was created (then its attempts count again); it counts for the breaker,
 *   which opens on a model that stays away;
 * - model 400, 413 or 422 (the request refused), or invalid job data: UnrecoverableError →
 *   failed at once with the server's message, since a retry cannot succeed;
 * - anything else (5xx but 503, timeout, 408, a non-PNG answer): thrown, BullMQ retries with the job's
 *   exponential backoff until its attempts are used up;
 * - the image store full (Redis OOM), or its writes not confirmed by the replicas in time
 *   (QUEUE_MIN_REPLICAS_ACKED): postponed like an open breaker, the attempt not burned;
 * - the object store failing (an upload or a read refused, timed out or unanswered) or
 *   unavailable (its breaker open): postponed, the attempt not burned — a store outage is not
 *   the job's fault; each failure counts for the store's breaker, which then stops the work;
 * - past JOB_DEADLINE_SECONDS since its creation (it waited too long: nobody waits for it any
 *   more): UnrecoverableError `expired…`, never rendered; a date comparison, no Redis call;
 * - cancelled (DELETE /api/images/{id}): a job taken after the cancel is dropped (one GET of
 *   its cancel key), one taken before has its model call aborted (the signal BullMQ hands the
 *   processor, aborted by `Worker.cancelJob`): UnrecoverableError `cancelled`, no retry;
 * - a job with a webhook: its `image.completed` delivery is enqueued once the image is stored
 *   (before the job completes, so a crash in between enqueues it again: same id, no duplicate);
 * - already rendered and stored by an earlier attempt whose completion BullMQ lost (a worker
 *   killed between the store and the completion, a failover that lost the completion): not
 *   rendered again, completed from what is stored.
 */

/** The subset of a BullMQ Job the processor uses (a real Job satisfies it). */
export interface RenderJobLike {
  readonly id?: string;
  readonly data: unknown;
  readonly attemptsMade: number;
  /** Creation time, ms since the epoch. */
  readonly timestamp: number;
  readonly opts: { readonly attempts?: number };
  moveToDelayed(timestamp: number, token?: string): Promise<void>;
  /** Reports the job's progress (0-100) to BullMQ (the status document and the event stream show it). */
  updateProgress?(progress: number): Promise<void>;
}

export interface ProcessorDeps {
  /** Calls the model API through the circuit breaker (ModelClient.render). */
  readonly render: (request: RenderRequest, signal?: AbortSignal) => Promise<Buffer>;
  readonly store: ImageStore;
  /** When the breaker will allow a trial call, in ms from now (Breaker.retryAfterMs). */
  readonly retryAfterMs: (now: number) => number;
  readonly imageTtlSeconds: number;
  /** How long after its creation a job may be postponed for a model that is not ready. @default MODEL_WAIT_MAX_MS */
  readonly modelWaitMaxMs?: number;
  readonly clock?: () => number;
  /** Returns [0, 1): spreads postponed jobs so they do not all return at one instant. */
  readonly random?: () => number;
  readonly metrics?: WorkerMetrics;
  readonly progress?: ProgressMonitor;
  readonly logger?: Logger;
  /** A job older than this (since its creation) is not rendered: it fails `expired`. @default JOB_DEADLINE_SECONDS' default, 1 h */
  readonly deadlineMs?: number;
  /** Whether the job was cancelled before this worker took it (its cancel key). @default never */
  readonly isCancelled?: (id: string) => Promise<boolean>;
  /** Enqueues a webhook delivery (WebhookNotifier.notify). Required for jobs that carry a webhookUrl. */
  readonly notify?: (id: string, delivery: WebhookDelivery) => Promise<void>;
  /** The `imageUrl` of a completed job in its webhook, as the gateway writes it (IMAGE_PUBLIC_BASE_URL). @default /images/{id}.png */
  readonly imageUrl?: (id: string) => string;
}

/** What BullMQ stores as the job's return value. */
export interface RenderResult {
  /** Where the PNG is: its Redis key, or its object key in the bucket. */
  imageKey: string;
  bytes: number;
  width: number;
  height: number;
}

/** Shortest postponement: a half-open breaker reports ~1 s; never spin faster than this. */
export const MIN_POSTPONE_MS = 250;
/** Jitter added to a postponement: up to 10% of it, at most this. */
export const MAX_POSTPONE_JITTER_MS = 2000;
/** Wait when the image store is full (queue Redis at maxmemory, noeviction): images expire and free room. */
export const STORE_FULL_POSTPONE_MS = 30_000;
/** Wait after a failed call to the object store while its breaker is still closed. */
export const STORE_FAILED_POSTPONE_MS = 2_000;
/** How long after its creation a job may wait for a model that is not ready (MODEL_WAIT_MAX_SECONDS' default). */
export const MODEL_WAIT_MAX_MS = 900_000;
/** Wait when the model is not ready and says nothing of when it will be (no Retry-After). */
export const MODEL_NOT_READY_POSTPONE_MS = 5_000;
/** Wait when the replicas did not confirm a store: a failover or a replica catching up takes seconds. */
export const UNCONFIRMED_POSTPONE_MS = 5_000;

/** Redis refused a write because it is at maxmemory under noeviction. */
function isOutOfMemory(err: unknown): boolean {
  return err instanceof Error && /^OOM\b/.test(err.message);
}

const jobDataSchema = z.strictObject({
  prompt: z.string().min(1).max(RENDER_LIMITS.promptMaxLength),
  width: z.number().int().min(RENDER_LIMITS.minSize).max(RENDER_LIMITS.maxSize).default(RENDER_LIMITS.defaultSize),
  height: z.number().int().min(RENDER_LIMITS.minSize).max(RENDER_LIMITS.maxSize).default(RENDER_LIMITS.defaultSize),
  style: z.string().regex(new RegExp(RENDER_LIMITS.stylePattern)).optional(),
  seed: z.number().int().min(0).max(RENDER_LIMITS.maxSeed).optional(),
  webhookUrl: z.string().min(1).max(2048).optional(),
});

export type RenderProcessor = (job: RenderJobLike, token?: string, signal?: AbortSignal) => Promise<RenderResult>;

/** The progress reported once the model has answered and the image is being stored. */
export const RENDERED_PROGRESS = 80;

export function createRenderProcessor(deps: ProcessorDeps): RenderProcessor {
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;

  const deadlineMs = deps.deadlineMs ?? DEFAULT_JOB_DEADLINE_SECONDS * 1000;

  return async function processRender(job, token, signal) {
    const started = clock();
    const count = (result: JobResult) => {
      deps.metrics?.jobs.inc({ result });
      deps.metrics?.duration.observe({ result }, (clock() - started) / 1000);
    };
    const log = deps.logger?.child({ jobId: job.id, attempt: job.attemptsMade + 1 });

    if (!job.id) {
      count('failed');
      throw new UnrecoverableError('job has no id');
    }
    const jobId = job.id;
    const parsed = jobDataSchema.safeParse(job.data);
    if (!parsed.success) {
      count('failed');
      throw new UnrecoverableError(`invalid render request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'data'}: ${i.message}`).join('; ')}`);
    }
    const { webhookUrl, ...request }: RenderRequest = parsed.data;
    const cancelled = (): never => {
      count('cancelled');
      log?.info('job cancelled: not rendered further');
      throw new UnrecoverableError(CANCELLED);
    };
    /** The webhook of a completed job, enqueued before BullMQ completes the job. */
    const notifyCompleted = async (outcome: JobOutcome): Promise<void> => {
      if (!webhookUrl) return;
      if (!deps.notify) throw new Error('the job has a webhookUrl but this worker has no webhook queue');
      const delivery = deliveryOf(jobId, outcome, webhookUrl);
      await deps.notify(jobId, { ...delivery, data: { ...delivery.data, imageUrl: (deps.imageUrl ?? imagePath)(jobId) } });
    };
    const key = deps.store.location?.(jobId) ?? imageKey(jobId);

    const failedAttempt = (err: unknown): unknown => {
      const willRetry = job.attemptsMade + 1 < (job.opts.attempts ?? 1);
      count(willRetry ? 'retried' : 'failed');
      log?.warn({ err, willRetry }, 'render attempt failed');
      return err;
    };

    const postponeUnconfirmed = async (err: ReplicaAckError): Promise<never> => {
      // Stored on the master, not confirmed by its replicas: the job must not complete yet. It
      // comes back later and, finding its image, completes without rendering again.
      const until = clock() + UNCONFIRMED_POSTPONE_MS + Math.floor(random() * MAX_POSTPONE_JITTER_MS);
      await job.moveToDelayed(until, token);
      count('postponed');
      log?.warn({ until: new Date(until).toISOString(), err: err.message }, 'image store not confirmed by the replicas: job postponed');
      throw new DelayedError();
    };

    const postponeStoreUnavailable = async (err?: unknown): Promise<never> => {
      // Object storage is down or failing: rendering now would be thrown away.
      const wait = Math.max(err ? STORE_FAILED_POSTPONE_MS : MIN_POSTPONE_MS, deps.store.unavailableForMs?.(clock()) ?? 0);
      const until = clock() + wait + Math.floor(random() * Math.min(MAX_POSTPONE_JITTER_MS, wait * 0.1));
      await job.moveToDelayed(until, token);
      count('postponed');
      log?.info({ until: new Date(until).toISOString(), ...(err ? { err: (err as Error).message } : {}) }, 'image store unavailable: job postponed');
      throw new DelayedError();
    };
    if ((deps.store.unavailableForMs?.(clock()) ?? 0) > 0) return postponeStoreUnavailable();

    let done: { bytes: number } | undefined;
    try {
      done = await deps.store.stored?.(jobId);
    } catch (err) {
      if (err instanceof ReplicaAckError) return postponeUnconfirmed(err);
      if (isBreakerOpen(err)) return postponeStoreUnavailable();
      if (err instanceof ImageStoreError) return postponeStoreUnavailable(err);
      throw failedAttempt(err);
    }
    if (done) {
      await notifyCompleted({ status: 'completed', createdAt: job.timestamp, finishedAt: clock(), attempts: job.attemptsMade + 1 }).catch((err: unknown) => {
        throw failedAttempt(err);
      });
      count('completed');
      log?.info({ bytes: done.bytes }, 'already rendered and stored by an earlier attempt: completed without rendering again');
      return { imageKey: key, bytes: done.bytes, width: request.width, height: request.height };
    }

    // Past its deadline, or cancelled: not rendered (after the check above, so a job whose image
    // an earlier attempt stored, and whose image.completed went out, completes as it should).
    // Nobody waits for a job this old any more: no GPU time for it (a comparison, no I/O).
    const waited = clock() - job.timestamp;
    if (waited > deadlineMs) {
      count('expired');
      log?.info({ waitedSeconds: Math.round(waited / 1000) }, 'job past its deadline: not rendered');
      throw new UnrecoverableError(`${EXPIRED}: waited ${Math.round(waited / 1000)} s, past JOB_DEADLINE_SECONDS (${Math.round(deadlineMs / 1000)} s); not rendered`);
    }
    if (signal?.aborted || (await deps.isCancelled?.(jobId))) return cancelled();

    let png: Buffer;
    try {
      png = deps.progress ? await deps.progress.track(() => deps.render(request, signal)) : await deps.render(request, signal);
    } catch (err) {
      if (err instanceof JobCancelledError) return cancelled();
      if (isBreakerOpen(err)) {
        const wait = Math.max(MIN_POSTPONE_MS, deps.retryAfterMs(clock()));
        const until = clock() + wait + Math.floor(random() * Math.min(MAX_POSTPONE_JITTER_MS, wait * 0.1));
        await job.moveToDelayed(until, token);
        count('postponed');
        log?.info({ until: new Date(until).toISOString() }, 'model circuit open: job postponed');
        throw new DelayedError();
      }
      const misconfigured = isModelMisconfigured(err);
      // A model answering 401 may quote the key: its answer goes to the log, never into the job.
      const reason = misconfigured ? new Error(`model API answered ${(err as ModelHttpError).status} (its answer is in the worker's log)`) : err;
      if (isModelNotReady(err) || misconfigured) {
        // Waiting is bounded: a model that never comes (a wrong port, a quota used up, a key
        // never fixed) makes the job's attempts count again after MODEL_WAIT_MAX_SECONDS.
        if (clock() - job.timestamp <= (deps.modelWaitMaxMs ?? MODEL_WAIT_MAX_MS)) {
          const hint = err instanceof ModelHttpError ? err.retryAfterMs : undefined;
          const wait = Math.max(MIN_POSTPONE_MS, hint ?? MODEL_NOT_READY_POSTPONE_MS);
          const until = clock() + wait + Math.floor(random() * Math.min(MAX_POSTPONE_JITTER_MS, wait * 0.1));
          await job.moveToDelayed(until, token);
          count('postponed');
          const why = err instanceof ModelHttpError ? err.status : 'connection refused';
          if (misconfigured) log?.error({ until: new Date(until).toISOString(), status: why, answer: (err as ModelHttpError).body.slice(0, 500) }, 'model API refuses us (check MODEL_URL, MODEL_API, MODEL_NAME, MODEL_API_KEY): job postponed');
          else log?.info({ until: new Date(until).toISOString(), why }, 'model not ready: job postponed');
          throw new DelayedError();
        }
        throw failedAttempt(reason);
      }
      if (isRequestRefused(err)) {
        const e = err as ModelHttpError;
        count('failed');
        log?.warn({ status: e.status }, 'model API rejected the request: job failed');
        throw new UnrecoverableError(`model refused the request (${e.status}): ${e.serverMessage.slice(0, 500)}`);
      }
      throw failedAttempt(err);
    }

    // Cancelled while the model rendered: not stored, no image.completed. The key too, not only
    // the signal: the cancel's message may not have reached this worker (its subscriber reconnecting).
    if (signal?.aborted || (await deps.isCancelled?.(jobId))) return cancelled();
    // Best effort: a progress report never fails the job.
    await job.updateProgress?.(RENDERED_PROGRESS).catch(() => undefined);
    // Stored before we return: BullMQ marks the job completed only after this resolves.
    const outcome: JobOutcome = { status: 'completed', createdAt: job.timestamp, finishedAt: clock(), attempts: job.attemptsMade + 1 };
    try {
      await deps.store.put(jobId, png, deps.imageTtlSeconds, webhookUrl ? { ...outcome, webhook: true } : outcome);
      await notifyCompleted(outcome);
    } catch (err) {
      if (isOutOfMemory(err)) {
        // A full store is a capacity problem, not a bad job: wait, without burning an attempt.
        const until = clock() + STORE_FULL_POSTPONE_MS + Math.floor(random() * MAX_POSTPONE_JITTER_MS);
        await job.moveToDelayed(until, token);
        count('postponed');
        log?.warn({ until: new Date(until).toISOString() }, 'image store full (Redis OOM): job postponed');
        throw new DelayedError();
      }
      if (err instanceof ReplicaAckError) return postponeUnconfirmed(err);
      if (isBreakerOpen(err)) return postponeStoreUnavailable();
      if (err instanceof ImageStoreError) return postponeStoreUnavailable(err);
      throw failedAttempt(err);
    }
    count('completed');
    log?.debug({ bytes: png.length }, 'rendered');
    return { imageKey: key, bytes: png.length, width: request.width, height: request.height };
  };
}
