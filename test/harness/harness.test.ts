import Redis from 'ioredis';
import { RedisServer } from '../helpers/redis-server';
import { TEST_REDIS_URL } from '../helpers/redis-url';

describe('test harness', () => {
  it('reaches the shared test Redis', async () => {
    const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
  });

  it('starts, kills and restarts a private redis-server on a free port', async () => {
    const server = await RedisServer.start();
    const redis = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    redis.on('error', () => undefined);
    try {
      await redis.set('k', 'v');
      expect(await redis.get('k')).toBe('v');
      await server.kill();
      await expect(redis.get('k')).rejects.toThrow();
      await server.restart();
      await new Promise((r) => setTimeout(r, 200));
      // nothing is kept on disk: the restarted server is empty
      expect(await redis.get('k')).toBeNull();
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});
