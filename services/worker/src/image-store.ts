import type Redis from 'ioredis';
import { CompletedRecord, IDEMPOTENCY_SECONDS } from '../../shared/src/job';
import { completedKey, imageKey } from '../../shared/src/keys';

/** Where rendered PNGs go: the media backend reads them back by job id. */
export interface ImageStore {
  /** Stores the PNG for `ttlSeconds` and the job's completion record for at least the idempotency window. */
  put(jobId: string, png: Buffer, ttlSeconds: number, record: CompletedRecord): Promise<void>;
}

/**
 * PNG bytes under `imageKey(id)` and the completion record under `completedKey(id)` in the
 * queue Redis, in one MULTI (both or neither; the key layout lives in shared/keys). The record
 * (a few dozen bytes) lives as long as the image, and at least 24 h: an idempotent replay
 * within the window must find it even when IMAGE_TTL_SECONDS is shorter, or it would add (and
 * render) the job again.
 */
export class RedisImageStore implements ImageStore {
  constructor(private readonly redis: Redis) {}

  async put(jobId: string, png: Buffer, ttlSeconds: number, record: CompletedRecord): Promise<void> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await this.redis
        .multi()
        .set(imageKey(jobId), png, 'EX', ttlSeconds)
        .set(completedKey(jobId), JSON.stringify(record), 'EX', Math.max(ttlSeconds, IDEMPOTENCY_SECONDS))
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
}
