import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { RENDER_JOB, RENDER_JOB_OPTIONS } from '../../services/shared/src/job';
import { registerQueueMetrics } from '../../services/worker/src/queue-metrics';
import { metricValue } from '../helpers/http';
import { RedisServer } from '../helpers/redis-server';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { SMALL, uniqueQueueName } from './support';

describe('queue metrics of the worker (read from the queue Redis at scrape time)', () => {
  let redis: Redis;
  let queue: Queue;

  beforeEach(() => {
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    queue = new Queue(uniqueQueueName(), { connection: redis });
  });
  afterEach(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    redis.disconnect();
  });

  it('counts jobs per state and gives the age of the oldest waiting job, 0 when none waits', async () => {
    const registry = new Registry();
    const now = 1_800_000_000_000;
    registerQueueMetrics({ queue, redis, registry, now: () => now });
    expect(metricValue(await registry.metrics(), 'levee_queue_oldest_waiting_seconds')).toBe(0);

    // GIVEN three waiting jobs submitted 90 s, 30 s and 5 s ago, and one postponed (delayed)
    for (const ageSeconds of [90, 30, 5]) await queue.add(RENDER_JOB, SMALL, { ...RENDER_JOB_OPTIONS, timestamp: now - ageSeconds * 1000 });
    await queue.add(RENDER_JOB, SMALL, { ...RENDER_JOB_OPTIONS, delay: 60_000, timestamp: now - 600_000 });
    const text = await registry.metrics();
    // THEN the oldest *waiting* one counts (a postponed job is not waiting for a worker)
    expect(metricValue(text, 'levee_queue_oldest_waiting_seconds')).toBe(90);
    expect(metricValue(text, 'levee_queue_jobs', { state: 'waiting' })).toBe(3);
    expect(metricValue(text, 'levee_queue_jobs', { state: 'delayed' })).toBe(1);
    for (const state of ['active', 'failed', 'completed', 'prioritized']) expect(metricValue(text, 'levee_queue_jobs', { state })).toBe(0);
    expect(metricValue(text, 'levee_queue_stalled_jobs_total')).toBe(0);
  });

  it('reports the queue Redis used memory and maxmemory', async () => {
    const server = await RedisServer.start();
    const own = new Redis(server.url, { maxRetriesPerRequest: null });
    const q = new Queue(uniqueQueueName(), { connection: own });
    try {
      await own.config('SET', 'maxmemory', String(64 * 1024 * 1024));
      const registry = new Registry();
      registerQueueMetrics({ queue: q, redis: own, registry });
      const text = await registry.metrics();
      expect(metricValue(text, 'levee_queue_redis_memory_max_bytes')).toBe(64 * 1024 * 1024);
      const used = metricValue(text, 'levee_queue_redis_memory_used_bytes');
      expect(used).toBeGreaterThan(100_000);
      expect(used).toBeLessThan(64 * 1024 * 1024);
    } finally {
      await q.close();
      own.disconnect();
      await server.stop();
    }
  });

  it('keeps the last values, without failing or holding the scrape, while the queue Redis does not answer', async () => {
    const server = await RedisServer.start();
    const own = new Redis(server.url, { maxRetriesPerRequest: null });
    own.on('error', () => undefined);
    const q = new Queue(uniqueQueueName(), { connection: own });
    q.on('error', () => undefined);
    try {
      await q.add(RENDER_JOB, SMALL, RENDER_JOB_OPTIONS);
      const registry = new Registry();
      registerQueueMetrics({ queue: q, redis: own, registry, timeoutMs: 300 });
      expect(metricValue(await registry.metrics(), 'levee_queue_jobs', { state: 'waiting' })).toBe(1);
      server.pause();
      const started = Date.now();
      const text = await registry.metrics();
      expect(Date.now() - started).toBeLessThan(2000);
      expect(metricValue(text, 'levee_queue_jobs', { state: 'waiting' })).toBe(1);
    } finally {
      server.resume();
      await q.close().catch(() => undefined);
      own.disconnect();
      await server.stop();
    }
  });
});
