/**
 * Redis WAIT as Levee uses it, against a real primary and replica (private redis-servers).
 * A 202 rests on the replica having the job: GIVEN a replica that stops following, the
 * producer answers "unconfirmed" (→ 503) instead; without confirmation the same request is
 * accepted and then lost when that replica is promoted. The image store does the same for
 * the worker.
 */
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Producer, QueueUnavailableError } from '../../services/gateway/src/producer';
import { outcomeKey } from '../../services/shared/src/keys';
import { createRedis } from '../../services/shared/src/redis';
import { ReplicaAckError } from '../../services/shared/src/replication';
import { RedisImageStore } from '../../services/worker/src/image-store';
import { RedisServer } from '../helpers/redis-server';
import { until } from '../helpers/wait';

jest.setTimeout(30_000);

const REQUEST = { prompt: 'a replicated lighthouse', width: 64, height: 64 };
let primary: RedisServer;
let replica: RedisServer;
let replicaAdmin: Redis;
const closers: (() => Promise<unknown> | void)[] = [];

/** One command on the primary, on a connection of its own. */
async function onPrimary<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(primary.url, { maxRetriesPerRequest: 1 });
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function follow(): Promise<void> {
  await replicaAdmin.replicaof('127.0.0.1', primary.port);
  await until(async () => /master_link_status:up/.test(await replicaAdmin.info('replication')), 10_000, 'the replica to be in sync');
  // …and the primary streaming to it again (its first acknowledgement arrived): only then can it confirm.
  await until(async () => /slave0:.*state=online/.test(await onPrimary((r) => r.info('replication'))), 10_000, 'the primary to count the replica online');
  await onPrimary(async (r) => {
    const acked = Number(await r.wait(1, 5000));
    if (acked < 1) throw new Error('the replica acknowledges nothing');
  });
}

beforeAll(async () => {
  // A replica that comes back gets its full copy at once (the chart's data pods do the same).
  primary = await RedisServer.start(['--repl-diskless-sync-delay', '0']);
  replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(primary.port)]);
  replicaAdmin = new Redis(replica.url, { maxRetriesPerRequest: 1 });
  replicaAdmin.on('error', () => undefined);
  await follow();
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

afterAll(async () => {
  replicaAdmin.disconnect();
  await replica.stop();
  await primary.stop();
});

/** A producer on the primary; a short WAIT timeout where a refusal is expected, a long one where the machine may be busy. */
function producer(minReplicasAcked: number, replicaAckTimeoutMs = 300, queueName = `wait-${randomUUID().slice(0, 8)}`): { producer: Producer; queueName: string } {
  const redis = createRedis('request', { url: primary.url });
  const p = new Producer({ redis, queueName, maxWaiting: 1000, minReplicasAcked, replicaAckTimeoutMs, timeoutMs: replicaAckTimeoutMs + 2000 });
  closers.push(async () => {
    await p.close();
    redis.disconnect();
  });
  return { producer: p, queueName };
}

async function ready(p: Producer): Promise<void> {
  await until(async () => {
    try {
      await p.status(randomUUID());
      return true;
    } catch {
      return false;
    }
  }, 5000, 'the producer to be connected');
}

test('GIVEN a replica in sync WHEN a job is accepted THEN the replica has it at that moment', async () => {
  const { producer: p, queueName } = producer(1, 5000);
  await ready(p);
  const { id } = await p.submit(REQUEST, { clientIp: '10.0.0.1', key: 'k1' });
  // No waiting: WAIT returned only once the replica had acknowledged it.
  expect(await replicaAdmin.exists(`bull:${queueName}:${id}`)).toBe(1);
});

test('GIVEN a replica that stopped following WHEN a job is submitted THEN it is refused as unconfirmed, status reads still answer at once, and the same Idempotency-Key finds the job once the replica is back', async () => {
  const { producer: p, queueName } = producer(1);
  await ready(p);
  await replicaAdmin.replicaof('NO', 'ONE');
  try {
    const started = Date.now();
    const attempt = p.submit(REQUEST, { clientIp: '10.0.0.2', key: 'k2' });
    // While that WAIT blocks its own connection, reads on the other one are not held up.
    const readStarted = Date.now();
    expect(await p.status(randomUUID())).toBeUndefined();
    expect(Date.now() - readStarted).toBeLessThan(250);
    const err = await attempt.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(QueueUnavailableError);
    expect((err as QueueUnavailableError).unconfirmed).toBe(true);
    expect((err as QueueUnavailableError).cause).toBeInstanceOf(ReplicaAckError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(Date.now() - started).toBeLessThan(2000);
  } finally {
    await follow();
  }
  // The job did land on the primary: the retry (another gateway, say) finds it (same id), and now it is confirmed.
  const first = (await onPrimary((r) => r.get('levee:idem:10.0.0.2:k2')))?.split(' ')[0];
  const retry = producer(1, 5000, queueName).producer;
  await ready(retry);
  const { id, created } = await retry.submit(REQUEST, { clientIp: '10.0.0.2', key: 'k2' });
  expect([id, created]).toEqual([first, false]);
  expect(await replicaAdmin.exists(`bull:${queueName}:${id}`)).toBe(1);
});

test('GIVEN no confirmation (QUEUE_MIN_REPLICAS_ACKED=0) THEN the same situation accepts a job that the replica, once promoted, does not have: the loss WAIT prevents', async () => {
  const { producer: p, queueName } = producer(0);
  await ready(p);
  await replicaAdmin.replicaof('NO', 'ONE'); // the replica is cut off, then promoted
  try {
    const { id } = await p.submit(REQUEST, { clientIp: '10.0.0.3', key: 'k3' });
    expect(await onPrimary((r) => r.exists(`bull:${queueName}:${id}`))).toBe(1);
    expect(await replicaAdmin.exists(`bull:${queueName}:${id}`)).toBe(0);
  } finally {
    await follow();
  }
});

test('GIVEN a replica that stopped following THEN the worker\'s image store rejects with ReplicaAckError after its tries; in sync, an outcome it finds is confirmed again', async () => {
  const store = new RedisImageStore(createRedis('worker', { url: primary.url }), { minReplicasAcked: 1, replicaAckTimeoutMs: 100, ackAttempts: 3 });
  const redis = (store as unknown as { redis: Redis }).redis;
  closers.push(() => redis.disconnect());
  await until(() => redis.status === 'ready', 5000, 'the store connection');
  const id = randomUUID();
  const outcome = { status: 'completed' as const, createdAt: 1, finishedAt: 2, attempts: 1 };
  await replicaAdmin.replicaof('NO', 'ONE');
  try {
    const started = Date.now();
    await expect(store.put(id, Buffer.from('png'), 60, outcome)).rejects.toBeInstanceOf(ReplicaAckError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280); // 3 tries × 100 ms
    await expect(store.stored(id)).rejects.toBeInstanceOf(ReplicaAckError);
  } finally {
    await follow();
  }
  // Back in sync: what the master had is confirmed now, and the replica has it.
  const patient = new RedisImageStore(redis, { minReplicasAcked: 1, replicaAckTimeoutMs: 5000, ackAttempts: 3 });
  expect(await patient.stored(id)).toEqual({ bytes: 3 });
  expect(await replicaAdmin.exists(outcomeKey(id))).toBe(1);
  await redis.del(outcomeKey(id), `levee:image:${id}`);
});
