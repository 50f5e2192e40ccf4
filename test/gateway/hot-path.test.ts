import { randomUUID } from 'node:crypto';
import { Job } from 'bullmq';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { registerHttpMetrics } from '../../services/shared/src/http-metrics';
import { rawHttp, statusesOf } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { Producer, QueueUnavailableError } from '../../services/gateway/src/producer';
import { FakeOrigin, inject, metricValue, portOf, Stack, testSettings, waitReady, scrape } from './helpers';

describe('gateway hot-path mechanisms', () => {
  let stack: Stack;
  let origin: FakeOrigin;
  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(5);
  });
  afterEach(() => stack.close());

  const gateway = () => stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '1000' }));

  it('limits every /api route by pattern (an encoded path too) and unmatched /api paths, and nothing else', async () => {
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '2' }));
    const encoded = await inject(app, { url: '/%61pi/styles' });
    expect(encoded.statusCode).toBe(200);
    expect(encoded.headers['ratelimit-policy']).toBe('"default";q=2;w=1');
    const unknown = await inject(app, { url: '/api/nope' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['ratelimit-policy']).toBe('"default";q=2;w=1');
    expect((await inject(app, { url: '/api/styles' })).statusCode).toBe(429);
    expect((await inject(app, { url: '/healthz' })).statusCode).toBe(200);
    expect((await inject(app, { url: '/nope' })).headers['ratelimit-policy']).toBeUndefined();
  });

  it('limits a URL the router rejects under /api too: it counts, carries the headers, and gets its 429', async () => {
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '2' }));
    const first = await inject(app, { url: '/api/images/%zz' });
    expect(first.statusCode).toBe(400);
    expect(first.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(first.headers['ratelimit-policy']).toBe('"default";q=2;w=1');
    expect(first.headers.ratelimit).toBe('"default";r=1;t=1');
    expect((await inject(app, { url: '/api/%zz' })).statusCode).toBe(400);
    const third = await inject(app, { url: '/api/images/%zz' });
    expect(third.statusCode).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    // outside /api a malformed URL is a plain 400, never limited
    const outside = await inject(app, { url: '/images/%zz.png' });
    expect(outside.statusCode).toBe(400);
    expect(outside.headers['ratelimit-policy']).toBeUndefined();
    expect((await inject(app, { url: `/images/${'x'.repeat(3000)}.png` })).statusCode).toBe(414);
    // Fastify runs no route hooks for these: they are still counted, as route "unmatched"
    const metrics = await scrape(app);
    const unmatched = (status: string) => metricValue(metrics, 'levee_http_requests_total', { route: 'unmatched', method: 'GET', status });
    expect(unmatched('400')).toBe(3);
    expect(unmatched('429')).toBe(1);
    expect(unmatched('414')).toBe(1);
  });

  it('sends the limiter commands of one event-loop turn (one per client) in one socket write', async () => {
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '1000', TRUST_PROXY: '127.0.0.1/32' }));
    await inject(app, '/api/styles'); // the catalog is loaded and cached in process
    const stream = app.levee.cacheRedis.stream as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const writes: number[] = []; // chunks per write to the cache Redis socket
    const [write, writev] = [stream._write, stream._writev];
    stream._write = function (...a) {
      writes.push(1);
      return write.apply(this, a);
    };
    stream._writev = function (...a) {
      writes.push((a[0] as unknown[]).length);
      return writev.apply(this, a);
    };
    try {
      // 120 requests from 40 clients, pipelined on 4 connections: Node hands the gateway one
      // request per connection per turn, so each turn has ~4 clients, i.e. ~4 commands.
      const answers = await Promise.all(
        Array.from({ length: 4 }, async (_, c) => {
          const requests = Array.from({ length: 30 }, (_, j) => `GET /api/styles HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.77.0.${(c * 30 + j) % 40}\r\n\r\n`);
          return statusesOf(await rawHttp(portOf(app), requests.join(''), { answers: 30 }));
        }),
      );
      const statuses = answers.flat();
      expect(statuses).toHaveLength(120);
      expect(statuses.every((st) => st === 200)).toBe(true);
    } finally {
      stream._write = write;
      stream._writev = writev;
    }
    // Each turn's commands left together: far fewer writes than commands (uncorked: one each).
    const chunks = writes.reduce((a, b) => a + b, 0);
    expect(chunks).toBeGreaterThanOrEqual(40); // at least one command per client
    expect(chunks).toBeLessThanOrEqual(120);
    expect(writes.length).toBeLessThanOrEqual(chunks / 4);
  });

  it('enqueues each submission on its own, on a connection of its own without auto-pipelining, each job with its own id, data and options', async () => {
    const app = await gateway();
    const { producer } = app.levee;
    // Not through the auto-pipelined request client, nor one addBulk per turn: there every
    // job of a turn waited for the whole batch, and the gateway idled on those waits.
    expect(producer.writerRedis).not.toBe(app.levee.queueRedis);
    expect(producer.writerRedis.options.enableAutoPipelining).toBe(false);
    const adds = jest.spyOn(producer.addQueue, 'add');
    const bulk = jest.spyOn(producer.addQueue, 'addBulk');
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => producer.submit({ prompt: `p${i}`, width: 64 + i, height: 64 })));
    expect(adds).toHaveBeenCalledTimes(25);
    expect(bulk).not.toHaveBeenCalled();
    expect(new Set(results.map((r) => r.id)).size).toBe(25);
    for (const [i, { id }] of results.entries()) {
      const job = await Job.fromId(producer.queue, id);
      expect(job?.data).toEqual({ prompt: `p${i}`, width: 64 + i, height: 64 });
      expect(job?.opts.attempts).toBe(5);
    }
    expect(await producer.queue.getWaitingCount()).toBe(25);
  });

  it('never answers a repeated Idempotency-Key with a job that is not in Redis, even when the first add fails', async () => {
    const app = await gateway();
    const { producer } = app.levee;
    const request = { prompt: 'same', width: 64, height: 64 };
    const idem = { clientIp: '10.1.2.3', key: `k-${randomUUID()}` };
    // GIVEN the first request has claimed the key and its enqueue is slow, then fails
    let addStarted!: () => void;
    const adding = new Promise<void>((r) => (addStarted = r));
    jest.spyOn(producer.addQueue, 'add').mockImplementationOnce(async () => {
      addStarted();
      await new Promise((r) => setTimeout(r, 150));
      throw new Error('ECONNRESET');
    });
    const first = producer.submit(request, idem);
    await Promise.race([adding, first]);
    // WHEN a retry with the same key arrives meanwhile
    const follower = await producer.submit(request, idem);
    await expect(first).rejects.toBeInstanceOf(QueueUnavailableError);
    // THEN the job it was told about exists, once
    expect(follower.created).toBe(false);
    expect(await Job.fromId(producer.queue, follower.id)).toBeDefined();
    expect((await producer.submit(request, idem)).id).toBe(follower.id);
    expect(await producer.queue.getWaitingCount()).toBe(1);
    await app.levee.queueRedis.del(`levee:idem:${idem.clientIp}:${idem.key}`);
  });

  it('settles each add on its own: an add that fails fails only its own request (503), the others are accepted once each', async () => {
    const app = await gateway();
    const { producer } = app.levee;
    const queue = producer.addQueue;
    const realAdd = queue.add.bind(queue);
    jest.spyOn(queue, 'add').mockImplementation(async (name, data, opts) => {
      if ((data as { prompt: string }).prompt === 'q2') throw new Error('ERR the add script failed');
      return realAdd(name, data, opts);
    });
    const results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => producer.submit({ prompt: `q${i}`, width: 64, height: 64 })));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(QueueUnavailableError);
    const ids = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.id] : []));
    expect(new Set(ids).size).toBe(4);
    expect(await producer.queue.getWaitingCount()).toBe(4);
  });

  it('rejects the adds that Redis does not answer in time with a 503 error (no retry that would hang)', async () => {
    const redis = stack.redis();
    await waitReady(redis);
    const producer = new Producer({ redis, queueName: `t-${randomUUID().slice(0, 8)}`, maxWaiting: 100, timeoutMs: 100 });
    try {
      await producer.submit({ prompt: 'warm', width: 64, height: 64 }); // both connections up
      const add = jest.spyOn(producer.addQueue, 'add').mockImplementation(() => new Promise(() => undefined));
      const started = Date.now();
      const results = await Promise.allSettled(Array.from({ length: 3 }, (_, i) => producer.submit({ prompt: `t${i}`, width: 64, height: 64 })));
      expect(Date.now() - started).toBeLessThan(1000);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QueueUnavailableError);
        expect(String((r as PromiseRejectedResult).reason.message)).toContain('no answer within 100 ms');
      }
      expect(add).toHaveBeenCalledTimes(3);
      expect(add.mock.calls.map((c) => c[1])).toEqual([0, 1, 2].map((i) => ({ prompt: `t${i}`, width: 64, height: 64 })));
    } finally {
      await producer.queue.obliterate({ force: true }).catch(() => undefined);
      await producer.close();
    }
  });

  it("waits for its connections' first connect (a gateway that has just started takes its first POST), but not for a Redis that refuses it", async () => {
    // GIVEN a client still connecting, and the writer connection the producer opens itself
    const redis = stack.redis();
    expect(redis.status).not.toBe('ready');
    const producer = new Producer({ redis, queueName: `t-${randomUUID().slice(0, 8)}`, maxWaiting: 100, timeoutMs: 2000 });
    try {
      expect(producer.writerRedis.status).not.toBe('ready');
      // WHEN a submission arrives at once THEN it is accepted, not refused as "Redis connection is connecting"
      const first = await producer.submit({ prompt: 'first', width: 64, height: 64 });
      expect(first.created).toBe(true);
      expect(await producer.queue.getWaitingCount()).toBe(1);
    } finally {
      await producer.queue.obliterate({ force: true }).catch(() => undefined);
      await producer.close();
    }
    // GIVEN a Redis that refuses the first connect THEN the submission fails at once with a 503 error
    const port = await freePort();
    const dead = stack.redis(`redis://127.0.0.1:${port}`);
    const orphan = new Producer({ redis: dead, queueName: `t-${randomUUID().slice(0, 8)}`, maxWaiting: 100, timeoutMs: 2000 });
    try {
      const started = Date.now();
      await expect(orphan.submit({ prompt: 'nobody', width: 64, height: 64 })).rejects.toBeInstanceOf(QueueUnavailableError);
      expect(Date.now() - started).toBeLessThan(1000);
      // and a later one too, without waiting for the reconnects
      await expect(orphan.submit({ prompt: 'nobody', width: 64, height: 64 })).rejects.toThrow(/Redis connection is/);
    } finally {
      await orphan.close().catch(() => undefined);
    }
  });
});

describe('HTTP metrics', () => {
  it('counts responses per route pattern, method and status, unmatched paths as "unmatched", with a duration histogram', async () => {
    const registry = new Registry();
    const app = Fastify({ logger: false });
    registerHttpMetrics(app, registry);
    app.get('/things/:id', async (request, reply) => (request.params as { id: string }).id === 'x' ? reply.code(404).send({}) : { ok: true });
    await app.listen({ port: 0, host: '127.0.0.1' });
    for (const url of ['/things/1', '/things/2', '/things/x', '/nowhere']) await inject(app, { url });
    await inject(app, { method: 'HEAD', url: '/things/1' });
    const text = await registry.metrics();
    const count = (labels: Record<string, string>) => metricValue(text, 'levee_http_requests_total', labels);
    expect(count({ route: '/things/:id', method: 'GET', status: '200' })).toBe(2);
    expect(count({ route: '/things/:id', method: 'GET', status: '404' })).toBe(1);
    expect(count({ route: '/things/:id', method: 'HEAD', status: '200' })).toBe(1);
    expect(count({ route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    const h = (suffix: string, labels: Record<string, string>) => metricValue(text, `levee_http_request_duration_seconds${suffix}`, labels);
    expect(text).toContain('# TYPE levee_http_request_duration_seconds histogram');
    expect(h('_count', { route: '/things/:id', method: 'GET' })).toBe(3);
    expect(h('_bucket', { route: '/things/:id', method: 'GET', le: '+Inf' })).toBe(3);
    expect(h('_bucket', { route: '/things/:id', method: 'GET', le: '5' })).toBe(3);
    expect(h('_sum', { route: '/things/:id', method: 'GET' })).toBeGreaterThan(0);
    // a second scrape does not count the same responses again
    const again = await registry.metrics();
    expect(metricValue(again, 'levee_http_requests_total', { route: '/things/:id', method: 'GET', status: '200' })).toBe(2);
    await app.close();
  });
});
