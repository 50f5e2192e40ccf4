import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { Counter, Gauge, Registry } from 'prom-client';

/** Job states counted in `levee_queue_jobs{state}` (the gateway exports the same series). */
export const QUEUE_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'] as const;

export interface QueueMetricsOptions {
  readonly queue: Queue;
  /** The queue Redis (INFO memory). */
  readonly redis: Redis;
  readonly registry: Registry;
  /** Longest a scrape waits for Redis; past it the last values are served. @default 1000 */
  readonly timeoutMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface QueueMetrics {
  /** Counts one stalled job this worker found and moved back to waiting. */
  recordStalled(): void;
}

interface Snapshot {
  counts: Record<string, number>;
  oldestCreatedAt?: number;
  usedBytes: number;
  maxBytes: number;
}

/**
 * The queue as alerts and dashboards need it, read from the queue Redis at scrape time (one
 * read shared by the gauges of one scrape, bounded by `timeoutMs`; if Redis does not answer,
 * the last values stay): jobs per state, the age of the oldest waiting job, the queue
 * Redis's used and max memory, and the stalled jobs this worker recovered.
 */
export function registerQueueMetrics(options: QueueMetricsOptions): QueueMetrics {
  const { queue, redis, registry } = options;
  const timeoutMs = options.timeoutMs ?? 1000;
  const now = options.now ?? Date.now;
  let pending: Promise<Snapshot | undefined> | undefined;

  const read = async (): Promise<Snapshot> => {
    const [counts, oldest, info] = await Promise.all([
      queue.getJobCounts(...QUEUE_STATES),
      // The oldest job still waiting (BullMQ pushes new jobs at the head of the wait list).
      queue.getJobs(['waiting'], 0, 0, true),
      redis.info('memory'),
    ]);
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    return { counts, oldestCreatedAt: oldest[0]?.timestamp, usedBytes: field('used_memory'), maxBytes: field('maxmemory') };
  };
  /** One Redis read per scrape, whichever gauge asks first. */
  const snapshot = (): Promise<Snapshot | undefined> => {
    pending ??= Promise.race([read(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), timeoutMs).unref())])
      .catch(() => undefined) // Redis unreachable: keep the last values rather than fail the scrape
      .finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };

  new Gauge({
    name: 'levee_queue_jobs',
    help: 'Jobs in the render queue by state (read from the queue Redis at scrape time).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const s = await snapshot();
      if (s) for (const state of QUEUE_STATES) this.set({ state }, s.counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'levee_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting for a worker, since it was submitted (0 when none waits).',
    registers: [registry],
    async collect() {
      const s = await snapshot();
      if (s) this.set(s.oldestCreatedAt === undefined ? 0 : Math.max(0, (now() - s.oldestCreatedAt) / 1000));
    },
  });
  new Gauge({
    name: 'levee_queue_redis_memory_used_bytes',
    help: 'Memory the queue Redis uses (INFO memory used_memory).',
    registers: [registry],
    async collect() {
      const s = await snapshot();
      if (s) this.set(s.usedBytes);
    },
  });
  new Gauge({
    name: 'levee_queue_redis_memory_max_bytes',
    help: 'maxmemory of the queue Redis (0: no limit); it is noeviction, so writes fail beyond it.',
    registers: [registry],
    async collect() {
      const s = await snapshot();
      if (s) this.set(s.maxBytes);
    },
  });
  const stalled = new Counter({
    name: 'levee_queue_stalled_jobs_total',
    help: 'Stalled jobs (their worker died or lost its lock) that this worker found and moved back to waiting.',
    registers: [registry],
  });
  stalled.inc(0);
  return { recordStalled: () => stalled.inc() };
}
