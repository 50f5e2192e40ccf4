import { randomUUID } from 'node:crypto';
import { Job, Worker } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { buildGateway, Gateway } from '../../services/gateway/src/app';
import { imageKey, outcomeKey } from '../../services/shared/src/keys';
import { ModelHttpError } from '../../services/shared/src/model-client';
import { RedisImageStore } from '../../services/worker/src/image-store';
import { createRenderProcessor } from '../../services/worker/src/processor';
import { storeFailedOutcomes } from '../../services/worker/src/worker';
import { metricValue, rawHttp } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { RedisServer } from '../helpers/redis-server';
import { until } from '../helpers/wait';
import { FakeOrigin, inject, InjectResponse, pollFor, portOf, Stack, testSettings, waitReady, scrape } from './helpers';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const json = { 'content-type': 'application/json' };

describe('gateway HTTP API', () => {
  let stack: Stack;
  let origin: FakeOrigin;
  let worker: Worker | undefined;
  let workerConnection: Redis | undefined;
  let cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(5);
  });
  afterEach(async () => {
    if (worker) {
      await worker.close();
      workerConnection?.disconnect();
      worker = undefined;
    }
    // after the worker: nothing writes the keys again once they are deleted
    for (const cleanup of cleanups) await cleanup();
    cleanups = [];
    await stack.close();
  });

  const gateway = (env: Record<string, string> = {}) =>
    stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '1000', ...env }));

  it('POST /api/images enqueues the job and answers 202 with Location, never waiting for a render', async () => {
    const app = await gateway();
    const res = await inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'a red fox', width: 256, style: 'sunset', seed: 7 } });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toEqual({ id: expect.stringMatching(UUID), status: 'queued', statusUrl: `/api/images/${body.id}`, imageUrl: `/images/${body.id}.png` });
    expect(res.headers.location).toBe(`/api/images/${body.id}`);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.headers['ratelimit-policy']).toBe('"default";q=1000;w=1');
    expect(res.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/);

    const job = await Job.fromId(app.levee.producer.queue, body.id);
    expect(job?.name).toBe('render');
    // defaults are filled in; the job carries the retry policy
    expect(job?.data).toEqual({ prompt: 'a red fox', width: 256, height: 512, style: 'sunset', seed: 7 });
    expect(job?.opts.attempts).toBe(5);
    expect(job?.opts.backoff).toEqual({ type: 'exponential', delay: 1000 });
    // and BullMQ's bounded history: the last 10,000 completed (24 h) and failed (7 days)
    expect(job?.opts.removeOnComplete).toEqual({ age: 24 * 3600, count: 10_000 });
    expect(job?.opts.removeOnFail).toEqual({ age: 7 * 24 * 3600, count: 10_000 });
  });

  it('a queued job\'s status carries its position in the queue, estimated from the waiting list\'s ends (O(1)), 1 = next', async () => {
    const app = await gateway();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: `in line ${i}` } })).json().id);
      await new Promise((r) => setTimeout(r, 20)); // steady arrivals: the estimate is exact
    }
    const positions = await Promise.all(ids.map(async (id) => (await inject(app, { url: `/api/images/${id}` })).json().position));
    expect(positions).toEqual([1, 2, 3, 4, 5]);
    // The first is taken: everyone moves up.
    const taken = await app.levee.producer.queue.getJob(ids[0]!);
    await taken!.remove();
    expect((await inject(app, { url: `/api/images/${ids[4]}` })).json().position).toBe(4);
    // A job back from delayed (postponed) rejoins the newest end with its older creation time:
    // out of order, so no estimate rather than a wrong one.
    const back = await app.levee.producer.queue.add('render', { prompt: 'postponed', width: 64, height: 64 }, { jobId: randomUUID(), delay: 60_000, timestamp: Date.now() - 10_000 });
    await back.promote();
    const doc = (await inject(app, { url: `/api/images/${ids[2]}` })).json();
    expect(doc.status).toBe('queued');
    expect(doc.position).toBeUndefined();
  });

  it('GET /api/images/{id} reports queued, active, completed (with imageUrl) and failed jobs from BullMQ', async () => {
    const app = await gateway();
    const queue = app.levee.producer.queue;
    const { id } = (await inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'slow' } })).json();
    const queued = await inject(app, { url: `/api/images/${id}` });
    expect(queued.statusCode).toBe(200);
    expect(queued.headers['cache-control']).toBe('no-store');
    expect(queued.json()).toEqual({ id, status: 'queued', attempts: 0, createdAt: expect.any(String), position: 1 });
    expect(Math.abs(new Date(queued.json().createdAt).getTime() - Date.now())).toBeLessThan(60_000);
    const failing = await queue.add('render', { prompt: 'fail', width: 64, height: 64 }, { jobId: randomUUID(), attempts: 1 });

    let finish!: () => void;
    const started = new Promise<void>((resolve) => {
      worker = new Worker(
        queue.name,
        async (job) => {
          if (job.data.prompt === 'fail') throw new Error('model exploded');
          resolve();
          await new Promise<void>((r) => (finish = r));
        },
        { connection: (workerConnection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null })), concurrency: 2 },
      );
    });
    await started;
    expect((await inject(app, { url: `/api/images/${id}` })).json()).toMatchObject({ id, status: 'active' });
    finish();
    await until(async () => (await inject(app, { url: `/api/images/${id}` })).json().status === 'completed');
    expect((await inject(app, { url: `/api/images/${id}` })).json()).toEqual({
      id,
      status: 'completed',
      attempts: 1,
      createdAt: expect.any(String),
      finishedAt: expect.any(String),
      imageUrl: `/images/${id}.png`,
    });
    await until(async () => (await inject(app, { url: `/api/images/${failing.id}` })).json().status === 'failed');
    expect((await inject(app, { url: `/api/images/${failing.id}` })).json()).toEqual({
      id: failing.id,
      status: 'failed',
      attempts: 1,
      createdAt: expect.any(String),
      finishedAt: expect.any(String),
      error: 'model exploded',
    });
  });

  it('GET /api/images/{id} is 404 for an unknown or malformed id', async () => {
    const app = await gateway();
    for (const url of [`/api/images/${randomUUID()}`, '/api/images/not-a-uuid', '/api/images/..%2F..%2Fetc']) {
      const res = await inject(app, { url });
      expect(res.statusCode).toBe(404);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.json()).toEqual({ type: 'about:blank', title: 'Not Found', status: 404, detail: expect.any(String) });
    }
  });

  it('GET /api/styles loads the catalog once, then answers from the cache with Cache-Status', async () => {
    const app = await gateway();
    const first = await inject(app, { url: '/api/styles' });
    expect(first.statusCode).toBe(200);
    expect(first.headers['cache-status']).toBe('levee; fwd=miss');
    expect(first.json()).toEqual({ styles: [{ id: 'sunset', name: 'Sunset' }], version: 1 });
    const second = await inject(app, { url: '/api/styles' });
    expect(second.headers['cache-status']).toBe('levee; hit');
    expect(second.body).toBe(first.body);
    expect(origin.calls).toBe(1);
  });

  it('GET /images/{id}.png is served on the gateway port too (npm run dev)', async () => {
    const app = await gateway();
    const id = randomUUID();
    const png = Buffer.from('89504e470d0a1a0a0000', 'hex');
    await app.levee.queueRedis.set(imageKey(id), png);
    try {
      const res = await inject(app, { url: `/images/${id}.png` });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.rawPayload.equals(png)).toBe(true);
      // SERVE_MEDIA=false (as the chart sets it: /images is the media Deployment's): not here
      const without = await gateway({ SERVE_MEDIA: 'false' });
      const missing = await inject(without, { url: `/images/${id}.png` });
      expect(missing.statusCode).toBe(404);
      expect(missing.headers['content-type']).toMatch(/^application\/problem\+json/);
    } finally {
      await app.levee.queueRedis.del(imageKey(id));
    }
  });

  it('serves /healthz and /readyz; /metrics is not on the public port (a 404 problem) but in the registry of the metrics listener', async () => {
    const app = await gateway();
    await inject(app, { url: '/api/styles' });
    expect((await inject(app, { url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await inject(app, { url: '/readyz' })).json()).toEqual({ status: 'ready' });
    const onPublicPort = await inject(app, { url: '/metrics' });
    expect(onPublicPort.statusCode).toBe(404);
    expect(onPublicPort.headers['content-type']).toContain('application/problem+json');
    expect(onPublicPort.json()).toMatchObject({ status: 404, title: 'Not Found' });
    const metrics = await scrape(app);
    for (const name of [
      'levee_http_requests_total{',
      'levee_http_request_duration_seconds_bucket{',
      'levee_rate_limited_total',
      'levee_cache_requests_total{',
      'levee_cache_origin_loads_total{',
      'levee_circuit_state{',
      'levee_queue_jobs{',
      'levee_queue_rejected_total{',
    ]) {
      expect(metrics).toContain(name);
    }
    expect(metrics).toMatch(/levee_http_requests_total\{route="\/api\/styles",method="GET",status="200",service="gateway"\} 1/);
    // the 404 on the public port is counted like any unknown path
    expect(metrics).toMatch(/levee_http_requests_total\{route="unmatched",method="GET",status="404",service="gateway"\} 1/);
    // health routes are not rate limited and carry no RateLimit headers
    expect((await inject(app, { url: '/healthz' })).headers['ratelimit-policy']).toBeUndefined();
  });

  it('answers 503 + Retry-After when the queue is at QUEUE_MAX_WAITING, instead of growing it', async () => {
    const app = await gateway({ QUEUE_MAX_WAITING: '3' });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: `p${i}` } })).statusCode);
    expect(statuses).toEqual([202, 202, 202, 503, 503]);
    const res = await inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'more' } });
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toMatchObject({ status: 503, title: 'Service Unavailable' });
    expect(await app.levee.producer.queue.getWaitingCount()).toBe(3);
    // every refusal by the bound is counted, by reason (what the queue-full alert watches)
    const metrics = await scrape(app);
    expect(metricValue(metrics, 'levee_queue_rejected_total', { reason: 'depth' })).toBe(3);
    expect(metricValue(metrics, 'levee_queue_rejected_total', { reason: 'memory' })).toBe(0);
  });

  it('answers 503 + Retry-After when the queue Redis is near its maxmemory, leaving room for accepted jobs\' images', async () => {
    const server = await RedisServer.start();
    try {
      const admin = stack.redis(server.url);
      await waitReady(admin);
      const used = Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))![1]);
      // GIVEN a noeviction queue Redis already above 80% of its maxmemory
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', String(Math.round(used / 0.9)));
      const gw = buildGateway(testSettings({ MODEL_URL: origin.url }), { keyPrefix: stack.prefix, queueRedis: stack.redis(server.url), cacheRedis: stack.redis() });
      stack.gateways.push(gw);
      await gw.listen({ port: 0, host: '127.0.0.1' });
      await waitReady(gw.levee.queueRedis);
      const post = () => inject(gw, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'x' } });
      // The first check reads INFO memory in the background: poll until it has (≤ 3 s, at a
      // pace under the 10/s rate limit). Meanwhile a POST may be a 202, or a 503 from Redis
      // itself refusing the write (OOM, Retry-After 1), not the refusal under test.
      const refusedForMemory = (res: InjectResponse) => res.statusCode === 503 && res.headers['retry-after'] === '5';
      const refused = await pollFor(post, refusedForMemory, 20, 150);
      expect(refused.statusCode).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(metricValue(await scrape(gw), 'levee_queue_rejected_total', { reason: 'memory' })).toBeGreaterThanOrEqual(1);
      // WHEN memory is available again THEN jobs are accepted (after the next read, ≤ 1 s)
      await admin.config('SET', 'maxmemory', '0');
      const accepted = await pollFor(post, (res) => res.statusCode === 202, 20, 150);
      expect(accepted.statusCode).toBe(202);
    } finally {
      await server.stop();
    }
  }, 15_000);

  it('answers 503 at once, never hanging, when the queue Redis is unreachable', async () => {
    const deadUrl = `redis://127.0.0.1:${await freePort()}`;
    const gw = buildGateway(testSettings({ MODEL_URL: origin.url }), { keyPrefix: stack.prefix, queueRedis: stack.redis(deadUrl), cacheRedis: stack.redis() });
    stack.gateways.push(gw);
    await gw.listen({ port: 0, host: '127.0.0.1' });
    const started = Date.now();
    const post = await inject(gw, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'x' } });
    const get = await inject(gw, { url: `/api/images/${randomUUID()}` });
    expect(Date.now() - started).toBeLessThan(500);
    for (const res of [post, get]) {
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    }
    // liveness and readiness do not depend on Redis
    expect((await inject(gw, { url: '/healthz' })).statusCode).toBe(200);
    expect((await inject(gw, { url: '/readyz' })).statusCode).toBe(200);
  }, 15_000);

  it('returns one job for 20 parallel requests with the same Idempotency-Key', async () => {
    const app = await gateway({ TRUST_PROXY: '127.0.0.1/32' });
    const key = `order-${randomUUID()}`;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key }, payload: { prompt: 'same' } }),
      ),
    );
    expect(results.map((r) => r.statusCode)).toEqual(Array(20).fill(202));
    const ids = new Set(results.map((r) => r.json().id));
    expect(ids.size).toBe(1);
    expect(await app.levee.producer.queue.getJobCountByTypes('waiting', 'prioritized', 'delayed')).toBe(1);
    // the same key with another body is a conflict, not a second job
    const conflict = await inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key }, payload: { prompt: 'different' } });
    expect(conflict.statusCode).toBe(422);
    expect(conflict.json()).toMatchObject({ status: 422, jobId: [...ids][0] });
    // another client's same key is another job
    const other = await inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key, 'x-forwarded-for': '10.9.8.7' }, payload: { prompt: 'same' } });
    expect(other.statusCode).toBe(202);
    expect(ids.has(other.json().id)).toBe(false);
    await app.levee.queueRedis.del(`levee:idem:127.0.0.1:${key}`, `levee:idem:10.9.8.7:${key}`);
  });

  it('treats the same body with its fields in another order as the same request', async () => {
    const app = await gateway();
    const key = `order-${randomUUID()}`;
    const post = (payload: string) => inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key }, payload });
    const first = await post('{"prompt":"a","width":256,"style":"sunset"}');
    const again = await post('{"style":"sunset","width":256,"prompt":"a"}');
    // defaults count as sent: omitting height is the same as sending its default
    const withDefault = await post('{"height":512,"style":"sunset","width":256,"prompt":"a"}');
    expect([first.statusCode, again.statusCode, withDefault.statusCode]).toEqual([202, 202, 202]);
    expect(again.json().id).toBe(first.json().id);
    expect(withDefault.json().id).toBe(first.json().id);
    expect((await post('{"prompt":"a","width":257,"style":"sunset"}')).statusCode).toBe(422);
    await app.levee.queueRedis.del(`levee:idem:127.0.0.1:${key}`);
  });

  it('answers a replay with its job even when the queue is full, and does not claim a key it refused', async () => {
    const app = await gateway({ QUEUE_MAX_WAITING: '1' });
    const post = (key: string, prompt: string) =>
      inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key }, payload: { prompt } });
    const [accepted, refusedKey] = [`acc-${randomUUID()}`, `ref-${randomUUID()}`];
    const first = await post(accepted, 'one');
    expect(first.statusCode).toBe(202);
    // the queue is now at its bound: a new request is refused...
    const refused = await post(refusedKey, 'two');
    expect(refused.statusCode).toBe(503);
    expect(await app.levee.queueRedis.exists(`levee:idem:127.0.0.1:${refusedKey}`)).toBe(0);
    // ...but the replay of the accepted one still names its job
    const replay = await post(accepted, 'one');
    expect(replay.statusCode).toBe(202);
    expect(replay.json().id).toBe(first.json().id);
    expect(await app.levee.producer.queue.getWaitingCount()).toBe(1);
    // once there is room, the refused key is a new request, not a replay of nothing
    await app.levee.producer.queue.drain();
    // (the producer re-reads the depth in the background, at most every 100 ms)
    const retried = await pollFor(() => post(refusedKey, 'two'), (res) => res.statusCode !== 503, 40, 50);
    expect(retried.statusCode).toBe(202);
    expect(retried.json().id).not.toBe(first.json().id);
    await app.levee.queueRedis.del(`levee:idem:127.0.0.1:${accepted}`, `levee:idem:127.0.0.1:${refusedKey}`);
  });

  it('a full queue refuses every request racing with one new key: no claim left, no job behind the bound, no second job later', async () => {
    const app = await gateway({ QUEUE_MAX_WAITING: '1' });
    expect((await inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'fills the queue' } })).statusCode).toBe(202);
    const key = `race-${randomUUID()}`;
    const post = () => inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key }, payload: { prompt: 'racing' } });
    const answers = await Promise.all(Array.from({ length: 20 }, post));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(503));
    expect(await app.levee.queueRedis.exists(`levee:idem:127.0.0.1:${key}`)).toBe(0);
    expect(await app.levee.producer.queue.getWaitingCount()).toBe(1);
    // with room again, the key makes exactly one job however many retries race
    await app.levee.producer.queue.drain();
    const retried = await pollFor(() => post(), (res) => res.statusCode !== 503, 40, 50);
    expect(retried.statusCode).toBe(202);
    const again = await Promise.all(Array.from({ length: 10 }, post));
    expect(new Set(again.map((a) => a.json().id))).toEqual(new Set([retried.json().id]));
    expect(await app.levee.producer.queue.getWaitingCount()).toBe(1);
    await app.levee.queueRedis.del(`levee:idem:127.0.0.1:${key}`);
  });

  /**
   * POSTs with a new Idempotency-Key and lets the worker's own processor and image store
   * finish the job, rendering with `render`; the job's `levee:` keys are removed after the test.
   */
  const finishWithWorker = async (app: Gateway, render: () => Promise<Buffer>, finished: 'completed' | 'failed') => {
    const key = `finished-${randomUUID()}`;
    const post = () => inject(app, { method: 'POST', url: '/api/images', headers: { ...json, 'idempotency-key': key }, payload: { prompt: 'kept' } });
    const { id } = (await post()).json();
    // fixed `levee:` keys, outside the stack's prefix
    cleanups.push(() => app.levee.queueRedis.del(`levee:idem:127.0.0.1:${key}`, imageKey(id), outcomeKey(id)));
    workerConnection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const store = new RedisImageStore(workerConnection);
    const processor = createRenderProcessor({ render, store, retryAfterMs: () => 0, imageTtlSeconds: 60 });
    worker = new Worker(app.levee.producer.queue.name, (job) => processor(job), { connection: workerConnection });
    storeFailedOutcomes(worker, store, pino({ level: 'silent' }));
    const status = () => inject(app, { url: `/api/images/${id}` });
    await until(async () => (await status()).json().status === finished);
    // a failed job's outcome is stored on BullMQ's 'failed' event, just after the move
    await until(async () => (await app.levee.queueRedis.exists(outcomeKey(id))) === 1);
    return { id, post, status, fromBullmq: (await status()).json() };
  };

  it.each([
    ['completed', async () => Buffer.from('png')],
    ['failed', () => Promise.reject(new ModelHttpError(422, '{"detail":"no"}'))],
  ] as const)("keeps a %s job's status, and its replay, after BullMQ has dropped the job from its bounded history", async (finished, render) => {
    const app = await gateway();
    const queue = app.levee.producer.queue;
    const { id, post, status, fromBullmq } = await finishWithWorker(app, render, finished);
    if (finished === 'failed') expect(fromBullmq).toMatchObject({ attempts: 1, error: expect.stringContaining('422') });

    // WHEN removeOnComplete / removeOnFail drops it (here: removed at once)
    await (await Job.fromId(queue, id))!.remove();
    expect(await Job.fromId(queue, id)).toBeUndefined();
    // THEN its status is unchanged, from the outcome the worker stored
    const fromRecord = await status();
    expect(fromRecord.statusCode).toBe(200);
    expect(fromRecord.json()).toEqual({ ...fromBullmq, finishedAt: expect.any(String) });
    expect(Math.abs(Date.parse(fromRecord.json().finishedAt) - Date.parse(fromBullmq.finishedAt))).toBeLessThan(1000);
    // AND a replay names it without adding it again (which would run it again)
    const replay = await post();
    expect(replay.statusCode).toBe(202);
    expect(replay.json().id).toBe(id);
    expect(await Job.fromId(queue, id)).toBeUndefined();
    expect(await queue.getJobCountByTypes('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed')).toBe(0);
  });

  it('answers 404 for a dropped job whose stored outcome is unreadable or gone, and a replay then adds the job again', async () => {
    const app = await gateway();
    const queue = app.levee.producer.queue;
    const { id, post, status } = await finishWithWorker(app, async () => Buffer.from('png'), 'completed');
    await worker!.close();
    await (await Job.fromId(queue, id))!.remove();
    // An unreadable outcome is none (a 404, not a 500)
    const ttl = await app.levee.queueRedis.ttl(outcomeKey(id));
    for (const bad of ['{"status":"completed","createdAt":1,"finishedAt":2', '{"status":"completed","createdAt":"yesterday","finishedAt":2,"attempts":1}', '{"status":"lost","createdAt":1,"finishedAt":2,"attempts":1}']) {
      await app.levee.queueRedis.set(outcomeKey(id), bad, 'EX', ttl);
      expect((await status()).statusCode).toBe(404);
    }
    // Without it (expired): unknown, and a replay adds the job again
    await app.levee.queueRedis.del(outcomeKey(id));
    expect((await status()).statusCode).toBe(404);
    expect((await post()).json().id).toBe(id);
    expect(await Job.fromId(queue, id)).toBeDefined();
  });
});

describe('gateway bad input: each is a 4xx problem detail, never a 5xx, and the process stays up', () => {
let stack: Stack;
let app: Gateway;
beforeAll(async () => {
  stack = new Stack();
  const origin = await stack.origin(5);
  app = await stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '100000' }));
});
afterAll(() => stack.close());

  const big = 'x'.repeat(17 * 1024);
  const cases: [string, { method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'; url?: string; headers?: Record<string, string>; payload?: string }, number][] = [
    ['unknown field', { payload: '{"prompt":"a","admin":true}' }, 400],
    ['missing prompt', { payload: '{"width":512}' }, 400],
    ['empty prompt', { payload: '{"prompt":""}' }, 400],
    ['prompt too long', { payload: JSON.stringify({ prompt: 'p'.repeat(1001) }) }, 400],
    ['prompt not a string', { payload: '{"prompt":42}' }, 400],
    ['width as a string', { payload: '{"prompt":"a","width":"512"}' }, 400],
    ['width too small', { payload: '{"prompt":"a","width":63}' }, 400],
    ['height too large', { payload: '{"prompt":"a","height":2049}' }, 400],
    ['width not an integer', { payload: '{"prompt":"a","width":100.5}' }, 400],
    ['bad style', { payload: '{"prompt":"a","style":"Sun Set!"}' }, 400],
    ['negative seed', { payload: '{"prompt":"a","seed":-1}' }, 400],
    ['seed too large', { payload: '{"prompt":"a","seed":2147483648}' }, 400],
    ['body is an array', { payload: '[{"prompt":"a"}]' }, 400],
    ['body is null', { payload: 'null' }, 400],
    ['body is a string', { payload: '"prompt"' }, 400],
    ['malformed JSON', { payload: '{"prompt":' }, 400],
    ['prototype poisoning', { payload: '{"prompt":"a","__proto__":{"x":1}}' }, 400],
    ['empty body', { payload: '' }, 400],
    ['body over 16 KiB', { payload: JSON.stringify({ prompt: big }) }, 413],
    ['text/plain body', { headers: { 'content-type': 'text/plain' }, payload: '{"prompt":"a"}' }, 415],
    ['form body', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'prompt=a' }, 415],
    ['empty Idempotency-Key', { headers: { ...json, 'idempotency-key': '' }, payload: '{"prompt":"a"}' }, 400],
    ['Idempotency-Key too long', { headers: { ...json, 'idempotency-key': 'k'.repeat(129) }, payload: '{"prompt":"a"}' }, 400],
    ['non-ASCII Idempotency-Key', { headers: { ...json, 'idempotency-key': 'kl\u00e9' }, payload: '{"prompt":"a"}' }, 400],
    ['PUT /api/images', { method: 'PUT', payload: '{"prompt":"a"}' }, 404],
    ['DELETE /api/images/{id}', { method: 'DELETE', url: `/api/images/${randomUUID()}`, headers: {} }, 404],
    ['malformed percent-encoding', { method: 'GET', url: '/api/images/%zz', headers: {} }, 400],
    ['POST /api/styles', { url: '/api/styles', payload: '{}' }, 404],
    ['long id', { method: 'GET', url: `/api/images/${'a'.repeat(500)}`, headers: {} }, 404],
    ['path segment over 2048 characters', { method: 'GET', url: `/api/images/${'a'.repeat(2100)}`, headers: {} }, 414],
    ['unknown route', { method: 'GET', url: '/api/../../etc/passwd' }, 404],
    ['bad image name', { method: 'GET', url: '/images/../../etc/passwd.png' }, 404],
    ['image id not a uuid', { method: 'GET', url: '/images/abc.png' }, 404],
  ];

  it.each(cases)('%s', async (_name, req, status) => {
    const res = await inject(app, {
      method: req.method ?? 'POST',
      url: req.url ?? '/api/images',
      headers: req.headers ?? json,
      ...(req.payload !== undefined ? { payload: req.payload } : {}),
    });
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json()).toEqual({ type: 'about:blank', title: expect.any(String), status, detail: expect.any(String) });
    expect(res.body).not.toMatch(/at .*\.(ts|js):\d+/); // no stack traces over the wire
    expect((await inject(app, { url: '/healthz' })).statusCode).toBe(200);
    expect(await app.levee.producer.queue.getJobCountByTypes('waiting')).toBe(0);
  });

  // What Node rejects before Fastify sees a request: answered on the raw socket, then closed.
  it.each([
    ['a malformed header line', 'GET /api/styles HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n', 400],
    ['headers over the size limit', `GET /api/styles HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431],
    ['a request line that is not HTTP', 'HELLO\r\n\r\n', 400],
  ])('%s: a problem detail, and the process stays up', async (_name, raw, status) => {
    const port = portOf(app.server.listening ? app : await listen(app));
    const malformed = async () => metricValue(await scrape(app), 'levee_http_malformed_requests_total', { status: String(status) });
    const before = await malformed();
    const answer = await rawHttp(port, raw);
    const [head, body] = answer.split('\r\n\r\n');
    expect(head.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(head.toLowerCase()).toContain('content-type: application/problem+json; charset=utf-8');
    expect(JSON.parse(body)).toEqual({ type: 'about:blank', title: expect.any(String), status, detail: expect.any(String) });
    expect((await inject(app, { url: '/healthz' })).statusCode).toBe(200);
    // never a request, so no route label: counted by the status it got
    expect((await malformed()) - before).toBe(1);
  });
});

async function listen(app: Gateway): Promise<Gateway> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}
