import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { imageKey, outcomeKey } from '../../services/shared/src/keys';
import { RedisImageStore } from '../../services/worker/src/image-store';
import { RedisServer } from '../helpers/redis-server';

/** The worker's image store against a private redis-server (the OOM case sets maxmemory on it). */
describe('RedisImageStore', () => {
  let server: RedisServer;
  let redis: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    redis.disconnect();
    await server.stop();
  });

  it('stores the PNG with its TTL and the outcome record with the same TTL, or 24 h if that is longer', async () => {
    const id = randomUUID();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    await new RedisImageStore(redis).put(id, png, 600, { status: 'completed', createdAt: 1000, finishedAt: 2000, attempts: 2 });
    expect(await redis.getBuffer(imageKey(id))).toEqual(png);
    expect(JSON.parse((await redis.get(outcomeKey(id)))!)).toEqual({ status: 'completed', createdAt: 1000, finishedAt: 2000, attempts: 2 });
    const ttl = async (key: string) => redis.ttl(key);
    expect(await ttl(imageKey(id))).toBeGreaterThan(590);
    expect(await ttl(imageKey(id))).toBeLessThanOrEqual(600);
    // a 10-minute image: the record still covers the 24 h idempotency window
    expect(await ttl(outcomeKey(id))).toBeGreaterThan(86_390);
    expect(await ttl(outcomeKey(id))).toBeLessThanOrEqual(86_400);

    const longer = randomUUID();
    await new RedisImageStore(redis).put(longer, png, 3 * 86_400, { status: 'completed', createdAt: 1, finishedAt: 2, attempts: 1 });
    expect(await ttl(outcomeKey(longer))).toBeGreaterThan(3 * 86_400 - 10);
    expect(await ttl(imageKey(longer))).toBeGreaterThan(3 * 86_400 - 10);
  });

  it('stores the outcome of a job that failed for good for the 24 h idempotency window', async () => {
    const id = randomUUID();
    const outcome = { status: 'failed' as const, createdAt: 1, finishedAt: 2, attempts: 5, error: 'model API answered 503' };
    await new RedisImageStore(redis).putFailure(id, outcome);
    expect(JSON.parse((await redis.get(outcomeKey(id)))!)).toEqual(outcome);
    expect(await redis.ttl(outcomeKey(id))).toBeGreaterThan(86_390);
    expect(await redis.exists(imageKey(id))).toBe(0);
  });

  it('GIVEN Redis at maxmemory (noeviction) THEN put rejects with the OOM error and stores neither key', async () => {
    const id = randomUUID();
    await redis.config('SET', 'maxmemory-policy', 'noeviction');
    await redis.config('SET', 'maxmemory', '1');
    try {
      const put = new RedisImageStore(redis).put(id, Buffer.alloc(1024), 600, { status: 'completed', createdAt: 1, finishedAt: 2, attempts: 1 });
      // the processor postpones on /^OOM/, so the store must not hide it behind EXECABORT
      await expect(put).rejects.toThrow(/^OOM /);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    expect(await redis.exists(imageKey(id), outcomeKey(id))).toBe(0);
  });
});
