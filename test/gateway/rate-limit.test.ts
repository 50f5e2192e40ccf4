import { createRedis } from '../../services/shared/src/redis';
import { RedisServer } from '../helpers/redis-server';
import { FakeOrigin, inject, InjectResponse, Stack, sleep, testSettings, waitReady, scrape } from './helpers';

const count = (results: InjectResponse[], status: number) => results.filter((r) => r.statusCode === status).length;

describe('per-IP rate limiting shared through Redis', () => {
  let stack: Stack;
  let origin: FakeOrigin;

  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(1);
  });
  afterEach(() => stack.close());

  it('admits exactly 10 of 50 parallel requests from one IP across two gateway replicas', async () => {
    const settings = testSettings({ MODEL_URL: origin.url });
    const replicas = [await stack.gateway(settings), await stack.gateway(settings)];
    await inject(replicas[0], '/readyz');
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => inject(replicas[i % 2], '/api/styles')));
    expect(count(results, 200)).toBe(10);
    expect(count(results, 429)).toBe(40);
    for (const r of results) {
      expect(r.headers['ratelimit-policy']).toBe('"default";q=10;w=1');
      expect(r.headers.ratelimit).toMatch(/^"default";r=\d+;t=[01]$/);
    }
    const limited = results.find((r) => r.statusCode === 429)!;
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(limited.json()).toEqual({
      type: 'about:blank',
      title: 'Too Many Requests',
      status: 429,
      detail: 'More than 10 requests per second from this client; retry after the time in Retry-After.',
    });
    // the budget comes back in the next window
    await sleep(1100);
    expect((await inject(replicas[1], '/api/styles')).statusCode).toBe(200);
    const metrics = await scrape(replicas[0]);
    expect(metrics).toMatch(/levee_rate_limited_total\{service="gateway"\} [1-9]\d*/);
    // the 429s, written straight to the socket, still reach the HTTP metrics
    expect(metrics).toMatch(/levee_http_requests_total\{route="\/api\/styles",method="GET",status="429"[^}]*\} [1-9]\d*/);
  });

  it('ignores a forged X-Forwarded-For from an untrusted peer and honours it from a trusted proxy', async () => {
    // GIVEN a gateway that trusts no proxy
    const untrusting = await stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '3' }));
    const forged = await Promise.all(
      Array.from({ length: 6 }, (_, i) => inject(untrusting, { url: '/api/styles', headers: { 'x-forwarded-for': `203.0.113.${i}` } })),
    );
    // THEN every request counts against the socket peer, whatever the header says
    expect(count(forged, 200)).toBe(3);
    expect(count(forged, 429)).toBe(3);

    // GIVEN a gateway behind a trusted proxy (127.0.0.1/32)
    const behindProxy = await stack.gateway(testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '3', TRUST_PROXY: '127.0.0.1/32' }), {
      keyPrefix: `${stack.prefix}:proxied`,
    });
    const viaProxy = await Promise.all(
      Array.from({ length: 6 }, (_, i) => inject(behindProxy, { url: '/api/styles', headers: { 'x-forwarded-for': `198.51.100.${i}` } })),
    );
    // THEN each forwarded client has its own budget
    expect(count(viaProxy, 200)).toBe(6);
    const sameClient = await Promise.all(
      Array.from({ length: 5 }, () => inject(behindProxy, { url: '/api/styles', headers: { 'x-forwarded-for': '198.51.100.77, 10.0.0.1' } })),
    );
    // the rightmost untrusted hop is the client: "198.51.100.77, 10.0.0.1" from 127.0.0.1 → 10.0.0.1
    expect(count(sameClient, 200)).toBe(3);
  });

  it('keeps limiting in memory and serving while Redis is down, and shares the limit again once it is back', async () => {
    const redis = await RedisServer.start();
    try {
      const settings = testSettings({ MODEL_URL: origin.url, REDIS_URL: redis.url });
      const deps = () => ({ queueRedis: stack.redis(redis.url), cacheRedis: stack.redis(redis.url) });
      const replicas = [await stack.gateway(settings, deps()), await stack.gateway(settings, deps())];
      // warm the in-process copy of the catalog so /api/styles can be served without Redis
      await inject(replicas[0], '/api/styles');
      await inject(replicas[1], '/api/styles');
      await sleep(1000);

      await redis.kill();
        const degraded = await Promise.all(Array.from({ length: 15 }, () => inject(replicas[0], '/api/styles')));
      // still limiting (per process now) and still serving: no 5xx
      expect(count(degraded, 200)).toBe(10);
      expect(count(degraded, 429)).toBe(5);
      expect((await inject(replicas[0], '/healthz')).statusCode).toBe(200);
      expect((await inject(replicas[0], '/readyz')).statusCode).toBe(200);

      await redis.restart();
      await Promise.all(replicas.flatMap((r) => [waitReady(r.levee.cacheRedis), waitReady(r.levee.queueRedis)]));
      await sleep(1000); // let the in-memory windows of the outage end
        const shared = await Promise.all(Array.from({ length: 50 }, (_, i) => inject(replicas[i % 2], '/api/styles')));
      expect(count(shared, 200)).toBe(10);
      expect(count(shared, 429)).toBe(40);
      // and the counters are in Redis again
      const admin = createRedis('request', { url: redis.url });
      await waitReady(admin);
      expect(await admin.keys(`${stack.prefix}:rl:*`)).toEqual([`${stack.prefix}:rl:127.0.0.1`]);
      admin.disconnect();
    } finally {
      await stack.close();
      await redis.stop();
      stack = new Stack(); // afterEach closes an empty stack
    }
  });
});
