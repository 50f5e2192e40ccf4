/**
 * What a finished job costs the queue Redis, in each image store: the `used_memory` delta of a
 * private redis-server over N finished 512×512 jobs, divided by N. Everything as deployed: jobs
 * enqueued by the gateway's Producer (each with an Idempotency-Key, so its 24 h record counts
 * too), rendered by the real model API process, stored by the production worker wiring
 * (createRenderWorker) in Redis or in object storage (s3rver on loopback), BullMQ's default
 * history bound (removeOnComplete 24 h / 10,000) and the default IMAGE_TTL_SECONDS (24 h).
 * A warm-up batch first creates the queue's own structures, so the delta is the jobs'.
 *
 *   npm run bench:memory                  (both stores; ~1 minute)
 *   BENCH_MEMORY_JOBS=600 npm run bench:memory
 *
 * Also prints what one finished job leaves behind, key by key (MEMORY USAGE), so the figure
 * can be read: the BullMQ job hash, its entry in the completed set, its share of the events
 * stream, the outcome record and the idempotency record.
 */
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { Producer } from '../services/gateway/src/producer';
import { RenderRequest } from '../services/shared/src/job';
import { idempotencyKey, outcomeKey } from '../services/shared/src/keys';
import { createRenderWorker } from '../services/worker/src/worker';
import { RedisServer } from '../test/helpers/redis-server';
import { S3Server } from '../test/helpers/s3-server';
import { onBenchNode } from './runtime';
import { startModel } from './worker';

const JOBS = Number(process.env.BENCH_MEMORY_JOBS ?? 300);
const WARM_UP = 20;
const SIZE = 512;
/** The goal of issue 24 for s3: at most this many bytes of queue Redis per finished 512² job. */
export const S3_GOAL_BYTES = 8 * 1024;

export interface QueueMemoryRow {
  store: 'redis' | 's3';
  jobs: number;
  bytesPerJob: number;
  /** Finished jobs per GiB of queue Redis at that rate. */
  jobsPerGiB: number;
  /** MEMORY USAGE of one finished job's keys, and its share of the events stream. */
  perKey: { jobHash: number; completedEntry: number; eventsShare: number; outcome: number; idempotency: number };
  pngBytes: number;
}

const request = (i: number): RenderRequest => ({ prompt: `queue memory picture ${i}`, width: SIZE, height: SIZE, style: 'ocean', seed: i });

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
}

async function measure(store: 'redis' | 's3', modelUrl: string): Promise<QueueMemoryRow> {
  const server = await RedisServer.start();
  const s3 = store === 's3' ? await S3Server.start(['levee-bench']) : undefined;
  const images = s3?.images();
  const admin = new Redis(server.url);
  const queueName = `bench-memory-${store}`;
  const producerRedis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  const producer = new Producer({ redis: producerRedis, queueName, maxWaiting: 1_000_000, maxMemoryPercent: 100, registry: new Registry() });
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  const render = createRenderWorker({
    settings: {
      MODEL_URL: modelUrl,
      QUEUE_NAME: queueName,
      WORKER_CONCURRENCY: 4,
      MODEL_TIMEOUT_MS: 30_000,
      BREAKER_OPEN_SECONDS: 60,
      BREAKER_FAILURES: 5,
      IMAGE_TTL_SECONDS: 86_400,
      WORKER_LOCK_DURATION_MS: 10_000,
      WORKER_STALLED_INTERVAL_MS: 5_000,
      WORKER_MAX_STALLED_COUNT: 2,
      WORKER_STUCK_GRACE_MS: 15_000,
      ...(s3 ? { imageStore: { kind: 's3' as const, ...s3.location() } } : {}),
    },
    connection,
    registry: new Registry(),
    logger: pino({ level: 'warn' }),
    ...(images ? { images } : {}),
  });
  let done = 0;
  let failure: Error | undefined;
  render.worker.on('completed', () => void done++);
  render.worker.on('failed', (job, err) => void (failure ??= new Error(`job ${job?.id} failed: ${err.message}`)));
  const run = async (from: number, n: number): Promise<string[]> => {
    const target = done + n;
    const ids = await Promise.all(Array.from({ length: n }, (_, i) => producer.submit(request(from + i), { clientIp: '203.0.113.7', key: `bench-${from + i}` }).then((r) => r.id)));
    while (done < target) {
      if (failure) throw failure;
      await new Promise((r) => setTimeout(r, 50));
    }
    return ids;
  };
  try {
    await run(JOBS, WARM_UP);
    const before = await usedMemory(admin);
    const ids = await run(0, JOBS);
    const after = await usedMemory(admin);
    const bytesPerJob = (after - before) / JOBS;
    const usage = async (key: string) => Number((await admin.memory('USAGE', key, 'SAMPLES', '0')) ?? 0);
    const id = ids[0]!;
    const completed = await usage(`bull:${queueName}:completed`);
    const events = await usage(`bull:${queueName}:events`);
    const finished = WARM_UP + JOBS;
    const result = (await new Queue(queueName, { connection: admin }).getJob(id))!.returnvalue as { bytes: number };
    return {
      store,
      jobs: JOBS,
      bytesPerJob,
      jobsPerGiB: 2 ** 30 / bytesPerJob,
      perKey: {
        jobHash: await usage(`bull:${queueName}:${id}`),
        completedEntry: completed / finished,
        eventsShare: events / finished,
        outcome: await usage(outcomeKey(id)),
        idempotency: await usage(idempotencyKey('203.0.113.7', 'bench-0')),
      },
      pngBytes: result.bytes,
    };
  } finally {
    await render.close();
    await producer.close();
    connection.disconnect();
    producerRedis.disconnect();
    admin.disconnect();
    images?.destroy();
    await server.stop();
    await s3?.stop();
  }
}

export async function runQueueMemoryBench(): Promise<QueueMemoryRow[]> {
  const model = await startModel();
  try {
    const rows: QueueMemoryRow[] = [];
    for (const store of ['redis', 's3'] as const) rows.push(await measure(store, model.url));
    return rows;
  } finally {
    await model.proc.stop();
  }
}

export function formatQueueMemory(rows: readonly QueueMemoryRow[]): string {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = [
    `queue Redis per finished ${SIZE}x${SIZE} job (used_memory delta over ${rows[0]?.jobs ?? JOBS} jobs, each with an Idempotency-Key; BullMQ history bound and IMAGE_TTL_SECONDS at their defaults)`,
    '| image store | per finished job | finished jobs per GiB | PNG | job hash | completed-set entry | events-stream share | outcome | idempotency record |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.store} | ${kib(r.bytesPerJob)}${r.store === 's3' ? ` (goal ≤ ${kib(S3_GOAL_BYTES)}: ${r.bytesPerJob <= S3_GOAL_BYTES ? 'met' : 'NOT met'})` : ''} | ${Math.round(r.jobsPerGiB).toLocaleString('en')} | ${kib(r.pngBytes)} | ${r.perKey.jobHash} B | ${r.perKey.completedEntry.toFixed(0)} B | ${r.perKey.eventsShare.toFixed(0)} B | ${r.perKey.outcome} B | ${r.perKey.idempotency} B |`,
    ),
  ];
  return lines.join('\n');
}

if (require.main === module) {
  onBenchNode()
    .then(runQueueMemoryBench)
    .then(
      (rows) => {
        console.log(`\n${formatQueueMemory(rows)}\n`);
        console.log(JSON.stringify({ bench: 'queue-memory', rows }));
        process.exit(0);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
}
