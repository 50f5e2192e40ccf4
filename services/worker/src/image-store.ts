import type Redis from 'ioredis';
import { imageKey } from '../../shared/src/keys';

/** Where rendered PNGs go: the media backend reads them back by job id. */
export interface ImageStore {
  put(jobId: string, png: Buffer, ttlSeconds: number): Promise<void>;
}

/** PNG bytes under `imageKey(id)` in the queue Redis, with a TTL (the key layout lives in shared/keys). */
export class RedisImageStore implements ImageStore {
  constructor(private readonly redis: Redis) {}

  async put(jobId: string, png: Buffer, ttlSeconds: number): Promise<void> {
    await this.redis.set(imageKey(jobId), png, 'EX', ttlSeconds);
  }
}
