import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { buildGateway, CACHE_REDIS_OPTIONS, Gateway } from '../../services/gateway/src/app';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { FakeOrigin, inject, InjectResponse, metricValue, Stack, testSettings, waitReady } from './helpers';

/**
 * The rate limiter's guard: a client blocked in this process is answered before Fastify sees
 * the request. Each gateway here counts the requests that reached Fastify, so the tests can
 * tell which 429s the guard wrote and check they are the same 429s the Fastify hook writes.
 */
describe('rate limiter guard (429s answered before Fastify)', () => {
  let stack: Stack;
  let origin: FakeOrigin;
  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(1);
  });
  afterEach(() => stack.close());

  /** A listening gateway (like Stack.gateway) that counts the requests Fastify handled. */
  async function countingGateway(env: Record<string, string>): Promise<{ app: Gateway; reachedFastify: () => number }> {
    const app = buildGateway(testSettings({ MODEL_URL: origin.url, ...env }), {
      keyPrefix: `${stack.prefix}:${randomUUID().slice(0, 8)}`,
      queueRedis: stack.redis(),
      cacheRedis: stack.redis(TEST_REDIS_URL, CACHE_REDIS_OPTIONS),
    });
    let n = 0;
    app.addHook('onRequest', (_request, _reply, done) => {
      n++;
      done();
    });
    stack.gateways.push(app);
    await app.listen({ port: 0, host: '127.0.0.1' });
    await Promise.all([waitReady(app.levee.queueRedis), waitReady(app.levee.cacheRedis)]);
    return { app, reachedFastify: () => n };
  }

  const sequential = async (app: Gateway, n: number, opts: { url?: string; headers?: Record<string, string> } = {}) => {
    const out: InjectResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await inject(app, { url: opts.url ?? '/api/styles', headers: opts.headers }));
    return out;
  };
  const withoutDate = (r: InjectResponse) => {
    const { date, ...headers } = r.headers;
    expect(date).toBeDefined();
    return { status: r.statusCode, headers, body: r.body };
  };

  it('answers a blocked client without Fastify: the same 429 bytes, counted in the same metrics', async () => {
    const { app, reachedFastify } = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    const results = await sequential(app, 12);
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, ...Array(10).fill(429)]);
    // Only the requests up to the one that used up the budget reached Fastify.
    expect(reachedFastify()).toBeLessThanOrEqual(3);
    // Every 429 is the same answer, whichever path wrote it (the 3rd may be the hook's).
    const first = withoutDate(results[2]);
    expect(first.headers).toMatchObject({
      'ratelimit-policy': '"default";q=2;w=1',
      ratelimit: '"default";r=0;t=1',
      'retry-after': '1',
      'content-type': 'application/problem+json; charset=utf-8',
    });
    expect(JSON.parse(first.body)).toMatchObject({ status: 429, title: 'Too Many Requests' });
    for (const r of results.slice(3)) expect(withoutDate(r)).toEqual(first);

    // Other /api routes: by route pattern, with a query string, and unmatched paths.
    const id = randomUUID();
    for (const url of [`/api/images/${id}`, '/api/styles?page=2', '/api/nope']) expect((await inject(app, url)).statusCode).toBe(429);
    expect((await inject(app, { method: 'HEAD', url: '/api/styles' })).statusCode).toBe(429);
    expect((await inject(app, { method: 'POST', url: '/api/images', headers: { 'content-type': 'application/json' }, payload: { prompt: 'x', width: 64, height: 64 } })).statusCode).toBe(429);
    expect(reachedFastify()).toBeLessThanOrEqual(3);
    // Outside /api nothing is limited.
    expect((await inject(app, '/healthz')).statusCode).toBe(200);

    const metrics = (await inject(app, '/metrics')).body;
    const requests = (labels: Record<string, string>) => metricValue(metrics, 'levee_http_requests_total', labels);
    expect(requests({ route: '/api/styles', method: 'GET', status: '429' })).toBe(11);
    expect(requests({ route: '/api/images/:id', method: 'GET', status: '429' })).toBe(1);
    expect(requests({ route: '/api/images', method: 'POST', status: '429' })).toBe(1);
    expect(requests({ route: 'unmatched', method: 'GET', status: '429' })).toBe(1);
    expect(requests({ route: '/api/styles', method: 'HEAD', status: '429' })).toBe(1);
    expect(metricValue(metrics, 'levee_rate_limited_total')).toBe(15);
    expect(metricValue(metrics, 'levee_http_request_duration_seconds_count', { route: '/api/styles', method: 'GET' })).toBe(13);
  });

  it('sends each 429 as one piece (head and body together), not a head and a body', async () => {
    const { app } = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    await sequential(app, 3); // the client is blocked now
    type Chunk = { chunk: { length: number } };
    const pieces: number[] = []; // non-empty chunks handed to the socket per write
    app.server.on('connection', (socket: { _write: (c: Chunk['chunk'], ...a: unknown[]) => void; _writev: (c: Chunk[], ...a: unknown[]) => void }) => {
      const [write, writev] = [socket._write, socket._writev];
      socket._write = function (chunk, ...a) {
        pieces.push(chunk.length > 0 ? 1 : 0);
        return write.call(this, chunk, ...a);
      };
      socket._writev = function (chunks, ...a) {
        pieces.push(chunks.filter((c) => c.chunk.length > 0).length);
        return writev.call(this, chunks, ...a);
      };
    });
    const statuses = await Promise.all(Array.from({ length: 5 }, () => inject(app, '/api/styles').then((r) => r.statusCode)));
    expect(statuses).toEqual([429, 429, 429, 429, 429]);
    // One piece per answer on each new connection (a keep-alive one may be reused unwatched).
    // A Buffer body would go as a head string plus the body: two pieces each.
    expect(pieces.length).toBeGreaterThanOrEqual(3);
    expect(pieces.every((n) => n === 1)).toBe(true);
  });

  it('finds the client IP as Fastify does: X-Forwarded-For only from a trusted proxy', async () => {
    const proxied = await countingGateway({ RATE_LIMIT_PER_SECOND: '2', TRUST_PROXY: '127.0.0.1/32' });
    const a = { 'x-forwarded-for': '198.51.100.1' };
    expect((await sequential(proxied.app, 6, { headers: a })).map((r) => r.statusCode)).toEqual([200, 200, 429, 429, 429, 429]);
    const before = proxied.reachedFastify();
    // another client behind the same proxy is not blocked
    expect((await inject(proxied.app, { url: '/api/styles', headers: { 'x-forwarded-for': '198.51.100.2' } })).statusCode).toBe(200);
    expect(proxied.reachedFastify()).toBe(before + 1);
    // the rightmost untrusted hop is the client
    expect((await inject(proxied.app, { url: '/api/styles', headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' } })).statusCode).toBe(429);
    expect(proxied.reachedFastify()).toBe(before + 1);

    // No trusted proxy: a forged header does not get a blocked peer out of its block.
    const direct = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    await sequential(direct.app, 3);
    const n = direct.reachedFastify();
    const forged = await sequential(direct.app, 3, { headers: { 'x-forwarded-for': '203.0.113.50' } });
    expect(forged.map((r) => r.statusCode)).toEqual([429, 429, 429]);
    expect(direct.reachedFastify()).toBe(n);
  });

  it('leaves encoded URLs and the drain to Fastify, which still answers 429', async () => {
    const { app, reachedFastify } = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    await sequential(app, 3);
    const n = reachedFastify();
    // /%61pi/styles is /api/styles once decoded: the router's business, not the guard's
    const encoded = await inject(app, '/%61pi/styles');
    expect(encoded.statusCode).toBe(429);
    expect(reachedFastify()).toBe(n + 1);
    // while draining, answers go through Fastify (which adds Connection: close once closing)
    app.lifecycle.draining = true;
    const draining = await inject(app, '/api/styles');
    expect(draining.statusCode).toBe(429);
    expect(draining.headers['retry-after']).toBe('1');
    expect(reachedFastify()).toBe(n + 2);
  });

  it('runs on a server with the timeouts Fastify would give its own', async () => {
    const { app } = await countingGateway({});
    const plain = Fastify({ logger: false });
    for (const field of ['keepAliveTimeout', 'requestTimeout', 'timeout', 'maxRequestsPerSocket', 'headersTimeout'] as const) {
      expect([field, app.server[field]]).toEqual([field, plain.server[field]]);
    }
    await plain.close();
  });
});
