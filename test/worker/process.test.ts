import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { imageKey } from '../../services/shared/src/keys';
import { metricValue, request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { FakeModel, SMALL, enqueue, metric, obliterateWithImages, startWorker, uniqueQueueName, until } from './support';

/**
 * The worker as a real process (`services/worker/src/server.ts`, configured by env only),
 * under the faults the contract names. Short locks keep recovery fast; the production
 * defaults and their reasoning are in services/worker/README.md.
 */
describe('worker process', () => {
  let queueName: string;
  let model: FakeModel;
  let procs: ServiceProcess[];
  let cleanup: (() => Promise<unknown>)[];

  beforeEach(async () => {
    queueName = uniqueQueueName();
    model = await FakeModel.start();
    procs = [];
    cleanup = [];
  });

  afterEach(async () => {
    for (const p of procs) await p.kill();
    for (const c of cleanup.reverse()) await c();
    await model.close();
  });

  async function spawnWorker(redisUrl: string, env: Record<string, string> = {}): Promise<{ proc: ServiceProcess; port: number }> {
    const port = await freePort();
    const proc = new ServiceProcess('worker', {
      QUEUE_REDIS_URL: redisUrl,
      MODEL_URL: model.url,
      QUEUE_NAME: queueName,
      METRICS_PORT: String(port),
      METRICS_HOST: '127.0.0.1',
      WORKER_CONCURRENCY: '2',
      MODEL_TIMEOUT_MS: '10000',
      WORKER_LOCK_DURATION_MS: '1000',
      WORKER_STALLED_INTERVAL_MS: '300',
      ...env,
    });
    procs.push(proc);
    await proc.waitHttp(port, '/readyz');
    return { proc, port };
  }

  function queueOn(redisUrl: string): { queue: Queue; redis: Redis } {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined);
    const queue = new Queue(queueName, { connection: redis });
    queue.on('error', () => undefined); // expected while a test has Redis down
    cleanup.push(async () => {
      await obliterateWithImages(queue, redis).catch(() => undefined);
      await queue.close();
      redis.disconnect();
    });
    return { queue, redis };
  }

  it('GIVEN a worker SIGKILLed mid-job THEN the job is recovered as stalled and completed by another worker', async () => {
    const { queue, redis } = queueOn(TEST_REDIS_URL);
    model.mode = 'hold';
    const { proc } = await spawnWorker(TEST_REDIS_URL);
    const id = await enqueue(queue, SMALL);
    await model.waitForRequests(1);
    expect(await queue.getJobState(id)).toBe('active');

    await proc.kill();
    model.release();
    const killedAt = Date.now();
    // the job is still "active" under the dead worker's lock until the lock expires
    expect(await queue.getJobState(id)).toBe('active');

    const other = startWorker(TEST_REDIS_URL, { QUEUE_NAME: queueName, MODEL_URL: model.url, WORKER_LOCK_DURATION_MS: 1000, WORKER_STALLED_INTERVAL_MS: 300 });
    cleanup.push(async () => {
      await other.render.close();
      other.connection.disconnect();
    });
    await until(async () => (await queue.getJobState(id)) === 'completed', 10_000, 'the recovered job to complete');
    // lock 1 s + at most two stalled checks of 0.3 s, plus start-up of the second worker
    expect(Date.now() - killedAt).toBeLessThan(5000);
    const job = (await queue.getJob(id))!;
    expect(job.stalledCounter).toBe(1);
    // the recovering worker counted it (what the stalled-jobs alert watches)
    expect(await metric(other.registry, 'levee_queue_stalled_jobs_total', {})).toBe(1);
    expect(job.attemptsMade).toBe(1); // a crash is not a failed attempt
    expect(await redis.exists(imageKey(id))).toBe(1);
    expect(model.requests).toHaveLength(2);
  });

  it('GIVEN active jobs WHEN the worker gets SIGTERM THEN it takes no new job, finishes the active ones, then exits 0', async () => {
    const { queue, redis } = queueOn(TEST_REDIS_URL);
    model.delayMs = 1500;
    const { proc, port } = await spawnWorker(TEST_REDIS_URL);
    const first = await Promise.all([enqueue(queue, { ...SMALL, seed: 1 }), enqueue(queue, { ...SMALL, seed: 2 })]);
    await model.waitForRequests(2);

    proc.signal('SIGTERM');
    await until(async () => (await request(port, '/readyz').catch(() => ({ status: 0 }))).status === 503, 2000, 'readiness to fail');
    const late = await enqueue(queue, { ...SMALL, seed: 3 });
    const exit = await proc.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    for (const id of first) {
      expect(await queue.getJobState(id)).toBe('completed');
      expect(await redis.exists(imageKey(id))).toBe(1);
    }
    expect(await queue.getJobState(late)).toBe('waiting');
    expect(model.requests).toHaveLength(2);
  });

  it('GIVEN the queue Redis is down and a job active WHEN the worker gets SIGTERM THEN it exits 1 at WORKER_SHUTDOWN_TIMEOUT_MS instead of hanging', async () => {
    const server = await RedisServer.start();
    cleanup.push(() => server.stop());
    const { queue } = queueOn(server.url);
    model.mode = 'hold';
    const { proc } = await spawnWorker(server.url, { WORKER_SHUTDOWN_TIMEOUT_MS: '1500', LOG_LEVEL: 'info' });
    await enqueue(queue, SMALL);
    await model.waitForRequests(1);

    await server.kill();
    const signalledAt = Date.now();
    proc.signal('SIGTERM');
    model.release(); // the render finishes, but its PNG cannot be stored: the job stays active
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([proc.exited, new Promise((r) => (timer = setTimeout(() => r('still running after 10 s'), 10_000)))]);
    clearTimeout(timer);
    const elapsed = Date.now() - signalledAt;

    expect(exit).toEqual({ code: 1, signal: null });
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    const log = proc.output.join('');
    expect(log).toContain('shutdown deadline passed');
    expect(log).toMatch(/"activeJobs":1/);
    await server.restart(); // for the cleanup (an empty Redis: nothing was persisted)
  });

  it('GIVEN Redis restarts under a running worker THEN it reconnects and keeps processing', async () => {
    const server = await RedisServer.start();
    cleanup.push(() => server.stop());
    const { queue, redis } = queueOn(server.url);
    const { proc, port } = await spawnWorker(server.url);

    const before = await enqueue(queue, SMALL);
    await until(async () => (await queue.getJobState(before)) === 'completed', 5000, 'the first job');

    await server.kill();
    await new Promise((r) => setTimeout(r, 1000));
    // liveness never depends on Redis; readiness reports the lost connection
    expect((await request(port, '/healthz')).status).toBe(200);
    expect((await request(port, '/readyz')).status).toBe(503);
    await server.restart(); // an empty Redis: nothing was persisted

    const after = await enqueue(queue, { ...SMALL, seed: 9 });
    await until(async () => (await queue.getJobState(after)) === 'completed', 20_000, 'a job after the restart');
    expect(await redis.exists(imageKey(after))).toBe(1);
    expect(proc.running).toBe(true);
    const metrics = (await request(port, '/metrics')).body.toString();
    expect(metricValue(metrics, 'levee_jobs_total', { result: 'completed' })).toBe(2);
  });

  it('serves /metrics with the job counters and the circuit state, and /healthz', async () => {
    const { queue } = queueOn(TEST_REDIS_URL);
    const { port } = await spawnWorker(TEST_REDIS_URL);
    const id = await enqueue(queue, SMALL);
    await until(async () => (await queue.getJobState(id)) === 'completed', 5000, 'the job');
    const metrics = (await request(port, '/metrics')).body.toString();
    expect(metricValue(metrics, 'levee_jobs_total', { result: 'completed' })).toBe(1);
    expect(metrics).toContain('levee_jobs_total{result="postponed"');
    expect(metrics).toContain('levee_job_duration_seconds_bucket');
    expect(metrics).toMatch(/levee_circuit_state\{target="model"[^}]*\} 0/);
    expect((await request(port, '/healthz')).json).toMatchObject({ status: 'ok' });
  });

  it('refuses to start with a bad setting, naming the variable', async () => {
    const proc = new ServiceProcess('worker', { WORKER_CONCURRENCY: 'lots', QUEUE_REDIS_URL: 'http://nope' });
    procs.push(proc);
    expect((await proc.exited).code).toBe(78);
    const out = proc.output.join('');
    expect(out).toContain('WORKER_CONCURRENCY="lots"');
    expect(out).toContain('QUEUE_REDIS_URL="http://nope": must be a redis:// or rediss:// URL');
  });
});
