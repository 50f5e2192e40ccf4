import type Redis from 'ioredis';
import { IDEMPOTENCY_SECONDS, JobOutcome } from '../../shared/src/job';
import { imageKey, outcomeKey } from '../../shared/src/keys';

/** Where rendered PNGs, and the outcomes of finished jobs, go: media and the gateway read them back by job id. */
export interface ImageStore {
  /** Stores the PNG for `ttlSeconds` and the job's outcome (completed) for at least the idempotency window. */
  put(jobId: string, png: Buffer, ttlSeconds: number, outcome: JobOutcome): Promise<void>;
  /** Stores the outcome of a job that BullMQ has failed for good, for the idempotency window. */
  putFailure(jobId: string, outcome: JobOutcome): Promise<void>;
}

/**
 * PNG bytes under `imageKey(id)` and the job's outcome under `outcomeKey(id)` in the queue
 * Redis (the key layout lives in shared/keys). A completed job's PNG and outcome go in one
 * MULTI (both or neither). The outcome (a few dozen bytes) lives as long as the image, and at
 * least 24 h: an idempotent replay within the window must find it even when IMAGE_TTL_SECONDS
 * is shorter, or it would add (and render) the job again.
 */
export class RedisImageStore implements ImageStore {
  constructor(private readonly redis: Redis) {}

  async put(jobId: string, png: Buffer, ttlSeconds: number, outcome: JobOutcome): Promise<void> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await this.redis
        .multi()
        .set(imageKey(jobId), png, 'EX', ttlSeconds)
        .set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', Math.max(ttlSeconds, IDEMPOTENCY_SECONDS))
        .exec();
    } catch (err) {
      // A command refused while queued (OOM at maxmemory) aborts the transaction: surface that
      // error, not the EXECABORT, so the caller can tell a full store from a failing one.
      const previous = (err as { previousErrors?: unknown[] }).previousErrors?.[0];
      throw previous ?? err;
    }
    const failed = results?.find(([err]) => err)?.[0];
    if (failed) throw failed;
  }

  async putFailure(jobId: string, outcome: JobOutcome): Promise<void> {
    await this.redis.set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', IDEMPOTENCY_SECONDS);
  }

  /**
   * Stores a failed outcome that nobody stored when the job failed, unless one exists now
   * (SET NX), for what is left of its window. True when it wrote one.
   */
  async restoreFailure(jobId: string, outcome: JobOutcome, ttlSeconds: number): Promise<boolean> {
    return (await this.redis.set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', ttlSeconds, 'NX')) === 'OK';
  }
}
