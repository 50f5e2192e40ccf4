import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { renderPng } from '../../services/model/src/renderer';
import { IDEMPOTENCY_SECONDS } from '../../services/shared/src/job';
import { imageKey, outcomeKey } from '../../services/shared/src/keys';
import { RedisImageStore } from '../../services/worker/src/image-store';
import { reconcileFailedOutcomes } from '../../services/worker/src/worker';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { FakeModel, SMALL, enqueue, metric, obliterateWithImages, startWorker, uniqueQueueName, until } from './support';

describe('render worker against real Redis', () => {
  let queueName: string;
  let queue: Queue;
  let redis: Redis;
  let model: FakeModel;
  let workers: ReturnType<typeof startWorker>[];

  beforeEach(async () => {
    queueName = uniqueQueueName();
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    queue = new Queue(queueName, { connection: redis });
    model = await FakeModel.start();
    workers = [];
  });

  afterEach(async () => {
    for (const w of workers) {
      await w.render.close();
      w.connection.disconnect();
    }
    await model.close();
    await obliterateWithImages(queue, redis);
    await queue.close();
    redis.disconnect();
  });

  const start = (settings: Parameters<typeof startWorker>[1] = {}) => {
    const w = startWorker(TEST_REDIS_URL, { QUEUE_NAME: queueName, MODEL_URL: model.url, ...settings });
    workers.push(w);
    return w;
  };

  it('takes a job from queued through active to completed, with the PNG stored before completion', async () => {
    const id = await enqueue(queue, SMALL);
    expect(await queue.getJobState(id)).toBe('waiting');

    model.mode = 'hold';
    const { render, registry } = start();
    await model.waitForRequests(1);
    expect(await queue.getJobState(id)).toBe('active');
    expect(await redis.exists(imageKey(id))).toBe(0);

    // the image is already there when BullMQ reports the job completed
    const existedAtCompletion = new Promise<number>((resolve) => render.worker.on('completed', () => void redis.exists(imageKey(id)).then(resolve)));
    model.release();
    expect(await existedAtCompletion).toBe(1);

    const job = (await queue.getJob(id))!;
    expect(await job.getState()).toBe('completed');
    expect(job.returnvalue).toEqual({ imageKey: imageKey(id), bytes: expect.any(Number), width: 64, height: 64 });
    expect(job.finishedOn).toBeGreaterThanOrEqual(job.timestamp);
    const stored = await redis.getBuffer(imageKey(id));
    expect(stored!.equals(renderPng(SMALL))).toBe(true);
    const ttl = await redis.ttl(imageKey(id));
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
    // the outcome record: what the status route answers once BullMQ has dropped the job
    const record = JSON.parse((await redis.get(outcomeKey(id)))!);
    expect(record).toEqual({ status: 'completed', createdAt: job.timestamp, finishedAt: expect.any(Number), attempts: job.attemptsMade });
    expect(record.finishedAt).toBeGreaterThanOrEqual(job.processedOn!);
    expect(record.finishedAt).toBeLessThanOrEqual(job.finishedOn!);
    expect(await redis.ttl(outcomeKey(id))).toBeGreaterThan(86_390); // the 24 h idempotency window, longer than the image's 600 s
    expect(await metric(registry, 'levee_jobs_total', { result: 'completed' })).toBe(1);
    expect(await metric(registry, 'levee_circuit_state', { target: 'model' })).toBe(0);
  });

  it('stores the failed outcome of a job BullMQ fails at the stalled-job limit (no processor involved)', async () => {
    const fast = { WORKER_LOCK_DURATION_MS: 1000, WORKER_STALLED_INTERVAL_MS: 300, WORKER_MAX_STALLED_COUNT: 0 };
    const id = await enqueue(queue, SMALL);
    model.mode = 'hold';
    // GIVEN a worker that takes the job and then vanishes without a word (its lock lapses)
    const gone = start(fast);
    await model.waitForRequests(1);
    await gone.render.worker.close(true);
    // WHEN another worker's stalled check finds it, with no stalls allowed
    start(fast);
    await until(async () => (await queue.getJobState(id)) === 'failed', 10_000, 'the stalled job to fail');
    // THEN the outcome is BullMQ's verdict
    await until(async () => (await redis.exists(outcomeKey(id))) === 1, 5_000, 'the failed outcome');
    const job = (await queue.getJob(id))!;
    expect(job.failedReason).toMatch(/stalled more than allowable limit/);
    expect(JSON.parse((await redis.get(outcomeKey(id)))!)).toEqual({ status: 'failed', createdAt: job.timestamp, finishedAt: job.finishedOn, attempts: job.attemptsMade, error: job.failedReason });
    model.release();
  });

  /** Fails the queue's `jobs` jobs for good with a bare BullMQ worker, which stores no outcome. */
  const failWithBareWorker = async (message: string, jobs: number) => {
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const bare = new Worker(queueName, async () => Promise.reject(new UnrecoverableError(message)), { connection });
    try {
      await until(async () => (await queue.getFailedCount()) === jobs, 10_000, `${jobs} failed job(s)`);
    } finally {
      await bare.close();
      connection.disconnect();
    }
  };

  it('stores the failed outcome a dead worker left unwritten: the next worker to start writes it from BullMQ\'s record', async () => {
    // GIVEN a job BullMQ failed for good with no outcome stored (a worker that died right after
    // BullMQ failed the job, played by a bare BullMQ worker that never writes one)
    const id = await enqueue(queue, SMALL);
    await failWithBareWorker('model exploded', 1);
    expect(await redis.exists(outcomeKey(id))).toBe(0);
    // WHEN a Levee worker starts THEN it stores the outcome BullMQ's record gives, for the rest of the 24 h
    start();
    await until(async () => (await redis.exists(outcomeKey(id))) === 1, 5_000, 'the restored outcome');
    const job = (await queue.getJob(id))!;
    expect(JSON.parse((await redis.get(outcomeKey(id)))!)).toEqual({ status: 'failed', createdAt: job.timestamp, finishedAt: job.finishedOn, attempts: 1, error: 'model exploded' });
    const ttl = await redis.ttl(outcomeKey(id));
    expect(ttl).toBeLessThanOrEqual(IDEMPOTENCY_SECONDS - Math.floor((Date.now() - job.finishedOn!) / 1000) + 1);
    expect(ttl).toBeGreaterThan(IDEMPOTENCY_SECONDS - 60);
  });

  it('leaves an outcome that exists alone, and restores none past the 24 h window', async () => {
    const ids = [await enqueue(queue, SMALL), await enqueue(queue, { ...SMALL, seed: 2 })];
    await failWithBareWorker('no', 2);
    const store = new RedisImageStore(redis);
    // one outcome is there already (its own worker wrote it): kept as it is
    await redis.set(outcomeKey(ids[0]), 'written by its worker', 'EX', 600);
    expect(await reconcileFailedOutcomes(queue, store)).toBe(1);
    expect(await redis.get(outcomeKey(ids[0]))).toBe('written by its worker');
    expect(JSON.parse((await redis.get(outcomeKey(ids[1])))!)).toMatchObject({ status: 'failed', error: 'no' });
    // a second pass has nothing left to do
    expect(await reconcileFailedOutcomes(queue, store)).toBe(0);
    // failed more than 24 h ago (seen from a clock a day ahead): no replay can reach it, nothing stored
    await redis.del(outcomeKey(ids[1]));
    expect(await reconcileFailedOutcomes(queue, store, 1000, Date.now() + IDEMPOTENCY_SECONDS * 1000)).toBe(0);
    expect(await redis.exists(outcomeKey(ids[1]))).toBe(0);
  });

  it('retries a failing model API with exponential backoff, then fails the job with the error recorded', async () => {
    model.mode = 'fail';
    const { registry } = start({ BREAKER_FAILURES: 100 });
    const id = await enqueue(queue, SMALL, { attempts: 3, backoff: { type: 'exponential', delay: 200 } });

    await until(async () => (await queue.getJobState(id)) === 'failed', 10_000, 'the job to fail');
    const job = (await queue.getJob(id))!;
    expect(job.attemptsMade).toBe(3);
    expect(job.failedReason).toMatch(/model API answered 500/);
    expect(model.requests).toHaveLength(3);
    const gaps = model.requests.slice(1).map((r, i) => r.at - model.requests[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(190); // 200 ms
    expect(gaps[1]).toBeGreaterThanOrEqual(390); // 400 ms: exponential
    expect(await redis.exists(imageKey(id))).toBe(0);
    // the outcome the gateway answers once BullMQ has dropped the failed job: what BullMQ says
    await until(async () => (await redis.exists(outcomeKey(id))) === 1, 5_000, 'the failed outcome');
    expect(JSON.parse((await redis.get(outcomeKey(id)))!)).toEqual({ status: 'failed', createdAt: job.timestamp, finishedAt: job.finishedOn, attempts: 3, error: job.failedReason });
    expect(await metric(registry, 'levee_jobs_total', { result: 'retried' })).toBe(2);
    expect(await metric(registry, 'levee_jobs_total', { result: 'failed' })).toBe(1);
  });

  it('postpones jobs while the breaker is open — none fails, no attempt is burnt — and completes them all once the model is back', async () => {
    model.mode = 'fail';
    const { registry, render } = start({ BREAKER_FAILURES: 2, BREAKER_OPEN_SECONDS: 1, WORKER_CONCURRENCY: 4 });
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => enqueue(queue, { ...SMALL, seed: i }, { attempts: 5, backoff: { type: 'exponential', delay: 100 } })));

    await until(async () => (await metric(registry, 'levee_jobs_total', { result: 'postponed' })) >= 8, 10_000, 'postponements');
    expect(render.model.breaker.state).not.toBe('closed');
    const delayed = await queue.getDelayedCount();
    expect(delayed).toBeGreaterThan(0);
    model.mode = 'ok';

    await until(async () => (await queue.getCompletedCount()) === 8, 15_000, 'all jobs to complete');
    expect(await queue.getFailedCount()).toBe(0);
    const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
    const failuresSeen = model.requests.length - 8; // every request beyond one per job was a failure
    const attemptsBurnt = jobs.reduce((sum, job) => sum + job!.attemptsMade - 1, 0);
    // only real calls that failed cost an attempt; postponements cost nothing
    expect(attemptsBurnt).toBe(failuresSeen);
    expect(await metric(registry, 'levee_jobs_total', { result: 'postponed' })).toBeGreaterThan(attemptsBurnt);
    for (const id of ids) expect(await redis.exists(imageKey(id))).toBe(1);
    expect(render.model.breaker.state).toBe('closed');
  });

  it('runs at most WORKER_CONCURRENCY jobs at once', async () => {
    model.mode = 'hold';
    start({ WORKER_CONCURRENCY: 3 });
    await Promise.all(Array.from({ length: 7 }, (_, i) => enqueue(queue, { ...SMALL, seed: i })));
    await model.waitForRequests(3);
    await new Promise((r) => setTimeout(r, 300));
    expect(model.inFlight).toBe(3);
    expect(await queue.getActiveCount()).toBe(3);
    model.release();
    await until(async () => (await queue.getCompletedCount()) === 7, 10_000, 'all jobs to complete');
    expect(model.maxInFlight).toBe(3);
  });

  it('fails a job at once when the model rejects it with a 4xx: retrying cannot help', async () => {
    model.mode = 'reject';
    const { render } = start();
    const id = await enqueue(queue, SMALL);
    await until(async () => (await queue.getJobState(id)) === 'failed', 5000, 'the job to fail');
    const job = (await queue.getJob(id))!;
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toBe('model refused the request (400): rejected');
    expect(model.requests).toHaveLength(1);
    expect(render.model.breaker.state).toBe('closed'); // a 4xx is not the model failing
  });

  it('fails a job with an invalid request at once, without calling the model', async () => {
    const { registry } = start();
    const id = await enqueue(queue, { ...SMALL, prompt: '' });
    await until(async () => (await queue.getJobState(id)) === 'failed', 5000, 'the job to fail');
    const job = (await queue.getJob(id))!;
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/invalid render request/);
    expect(model.requests).toHaveLength(0);
    expect(await metric(registry, 'levee_jobs_total', { result: 'failed' })).toBe(1);
  });
});
