/**
 * A Redis that stops answering without closing its connections (its node lost, no FIN or
 * RST; here: SIGSTOP). TCP alone would keep such a connection "up" for ~15 minutes.
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { Producer } from '../../services/gateway/src/producer';
import { createRedis, REQUEST_SOCKET_TIMEOUT_MS } from '../../services/shared/src/redis';
import { RedisServer } from '../helpers/redis-server';
import { until } from '../helpers/wait';

jest.setTimeout(30_000);

describe('a Redis that hangs with its connections open', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  const client = () => {
    const c = createRedis('request', { url: server.url });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    server = await RedisServer.start();
  });
  afterEach(async () => {
    server.resume();
    for (const c of clients.splice(0)) c.disconnect();
    await server.stop();
  });

  it('a request-role client drops the dead connection, fails fast while Redis hangs, and is back when it answers', async () => {
    const redis = client();
    await until(() => redis.status === 'ready', 5000, 'ready');
    server.pause();
    const sent = Date.now();
    await expect(redis.get('k')).rejects.toThrow(/timed out/i); // commandTimeout: the caller is not held
    // No byte back for REQUEST_SOCKET_TIMEOUT_MS: the socket is destroyed and the client is
    // no longer `ready` (the request paths then answer at once), instead of staying `ready`.
    await until(() => redis.status !== 'ready', REQUEST_SOCKET_TIMEOUT_MS + 3000, 'off ready');
    expect(Date.now() - sent).toBeGreaterThanOrEqual(REQUEST_SOCKET_TIMEOUT_MS - 100);
    await expect(redis.get('k')).rejects.toThrow(); // no offline queue: refused at once
    server.resume();
    await until(() => redis.status === 'ready', 5000, 'ready again');
    expect(await redis.ping()).toBe('PONG');
  });

  it("the producer's queue works after a hang at its creation: a Queue whose start-up INFO failed is replaced", async () => {
    const redis = client();
    await until(() => redis.status === 'ready', 5000, 'ready');
    server.pause();
    const producer = new Producer({ redis, queueName: `t-hang-${randomUUID().slice(0, 8)}`, maxWaiting: 100, timeoutMs: 1000 });
    try {
      // Longer than commandTimeout (2 s), shorter than the socket timeout: a start-up INFO sent
      // now would time out, and BullMQ would keep that failure.
      await new Promise((r) => setTimeout(r, 2500));
      server.resume();
      await until(() => redis.status === 'ready' && producer.writerRedis.status === 'ready', 5000, 'ready');
      const { id, created } = await producer.submit({ prompt: 'after the hang', width: 64, height: 64 });
      expect(created).toBe(true);
      expect((await producer.status(id))?.status).toBe('queued');
      // BullMQ knows the real server version (not the Redis 5 it assumes when the check is
      // skipped, which would make every status read use its list-scanning script)
      const backend = producer.queue.getBackend() as unknown as { redisVersion: string };
      expect(backend.redisVersion).toBe(String(await redis.info('server')).match(/redis_version:(\S+)/)?.[1]);
    } finally {
      await producer.queue.obliterate({ force: true }).catch(() => undefined);
      await producer.close();
    }
  });
});
