import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { completedKey, imageKey } from '../../services/shared/src/keys';
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

  it('stores the PNG and the completion record together, both with the TTL', async () => {
    const id = randomUUID();
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    await new RedisImageStore(redis).put(id, png, 600, { createdAt: 1000, finishedAt: 2000, attempts: 2 });
    expect(await redis.getBuffer(imageKey(id))).toEqual(png);
    expect(JSON.parse((await redis.get(completedKey(id)))!)).toEqual({ createdAt: 1000, finishedAt: 2000, attempts: 2 });
    for (const key of [imageKey(id), completedKey(id)]) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(590);
      expect(ttl).toBeLessThanOrEqual(600);
    }
  });

  it('GIVEN Redis at maxmemory (noeviction) THEN put rejects with the OOM error and stores neither key', async () => {
    const id = randomUUID();
    await redis.config('SET', 'maxmemory-policy', 'noeviction');
    await redis.config('SET', 'maxmemory', '1');
    try {
      const put = new RedisImageStore(redis).put(id, Buffer.alloc(1024), 600, { createdAt: 1, finishedAt: 2, attempts: 1 });
      // the processor postpones on /^OOM/, so the store must not hide it behind EXECABORT
      await expect(put).rejects.toThrow(/^OOM /);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    expect(await redis.exists(imageKey(id), completedKey(id))).toBe(0);
  });
});
