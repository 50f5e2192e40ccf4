import { createRedis } from '../../services/shared/src/redis';
import { RedisServer } from '../helpers/redis-server';
import type { Gateway } from '../../services/gateway/src/app';
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

describe('the client key: IPv6 clients by their prefix, IPv4-mapped addresses as IPv4', () => {
  let stack: Stack;
  let origin: FakeOrigin;
  /** As clients behind a trusted proxy (inject's peer is 127.0.0.1). */
  const from = (gateway: Gateway, address: string, url = '/api/styles') => inject(gateway, { url, headers: { 'x-forwarded-for': address } });

  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(1);
  });
  afterEach(() => stack.close());

  const gateways = async (env: Record<string, string> = {}, n = 1) => {
    const settings = testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '5', TRUST_PROXY: '127.0.0.1/32', ...env });
    const out: Gateway[] = [];
    for (let i = 0; i < n; i++) out.push(await stack.gateway(settings));
    await inject(out[0]!, '/readyz');
    return out;
  };

  it('twenty addresses of one /64, across two gateways, share one budget; another /64 keeps its own', async () => {
    const [a, b] = await gateways({}, 2);
    const rotating = await Promise.all(Array.from({ length: 20 }, (_, i) => from(i % 2 ? b! : a!, `2001:db8:1:2::${(i + 1).toString(16)}`)));
    expect(count(rotating, 200)).toBe(5);
    expect(count(rotating, 429)).toBe(15);
    // The same subscriber written another way (upper case, no compression) is the same client…
    expect((await from(a!, '2001:DB8:1:2:0:0:0:ff')).statusCode).toBe(429);
    // …and a neighbour one /64 over is not.
    expect((await from(b!, '2001:db8:1:3::1')).statusCode).toBe(200);
  });

  it('honours RATE_LIMIT_IPV6_PREFIX: with /56, 2001:db8:1:200::/56 is one client and 2001:db8:1:300:: another', async () => {
    const [g] = await gateways({ RATE_LIMIT_IPV6_PREFIX: '56' });
    const sameSlash56 = await Promise.all(['2001:db8:1:200::1', '2001:db8:1:2ff::1', '2001:db8:1:210::9', '2001:db8:1:2aa::1', '2001:db8:1:201::1', '2001:db8:1:2fe::2', '2001:db8:1:202::3'].map((ip) => from(g!, ip)));
    expect(count(sameSlash56, 200)).toBe(5);
    expect((await from(g!, '2001:db8:1:300::1')).statusCode).toBe(200);
  });

  it('counts ::ffff:198.51.100.7 and 198.51.100.7 as one client', async () => {
    const [g] = await gateways();
    const mixed = await Promise.all(Array.from({ length: 10 }, (_, i) => from(g!, i % 2 ? '::ffff:198.51.100.7' : '198.51.100.7')));
    expect(count(mixed, 200)).toBe(5);
    expect(count(mixed, 429)).toBe(5);
  });

  it('a malformed X-Forwarded-For from a trusted proxy counts as the proxy itself', async () => {
    const [g] = await gateways();
    const garbage = await Promise.all(Array.from({ length: 3 }, (_, i) => from(g!, i === 0 ? 'not-an-ip' : i === 1 ? '2001:db8::zz' : '999.1.1.1')));
    expect(count(garbage, 200)).toBe(3);
    // the proxy (127.0.0.1) has 2 of its 5 left: the malformed ones were charged to it
    const direct = await Promise.all(Array.from({ length: 3 }, () => inject(g!, '/api/styles')));
    expect(count(direct, 200)).toBe(2);
  });

  it('scopes Idempotency-Keys by the same client key: one job within a /64, another job from another /64', async () => {
    const [g] = await gateways({ RATE_LIMIT_PER_SECOND: '100' });
    const post = (ip: string) =>
      inject(g!, { method: 'POST', url: '/api/images', headers: { 'x-forwarded-for': ip, 'idempotency-key': 'same-key' }, payload: { prompt: 'a lighthouse', width: 64, height: 64 } });
    const first = await post('2001:db8:7:7::1');
    const sameSubscriber = await post('2001:db8:7:7::beef');
    const otherSubscriber = await post('2001:db8:7:8::1');
    expect([first.statusCode, sameSubscriber.statusCode, otherSubscriber.statusCode]).toEqual([202, 202, 202]);
    expect(sameSubscriber.json().id).toBe(first.json().id);
    expect(otherSubscriber.json().id).not.toBe(first.json().id);
  });

  it('keys the in-memory fallback and the block list the same way while Redis is down', async () => {
    const redis = await RedisServer.start();
    try {
      const settings = testSettings({ MODEL_URL: origin.url, REDIS_URL: redis.url, RATE_LIMIT_PER_SECOND: '5', TRUST_PROXY: '127.0.0.1/32' });
      const g = await stack.gateway(settings, { queueRedis: stack.redis(redis.url), cacheRedis: stack.redis(redis.url) });
      await from(g, '192.0.2.1'); // warm the catalog so it can be served without Redis
      await sleep(1000);
      await redis.kill();
      const rotating = await Promise.all(Array.from({ length: 12 }, (_, i) => from(g, `2001:db8:9:9::${i + 1}`)));
      expect(count(rotating, 200)).toBe(5);
      // blocked in memory now: a twentieth address of the /64 is refused at once
      expect((await from(g, '2001:db8:9:9::20')).statusCode).toBe(429);
      expect((await from(g, '::ffff:192.0.2.44')).statusCode).toBe(200);
    } finally {
      await stack.close();
      await redis.stop();
      stack = new Stack();
    }
  });
});
