import http from 'node:http';
import { until } from '../helpers/wait';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { FloodCache, NOT_FOUND } from '../../services/gateway/src/cache';
import { createRedis } from '../../services/shared/src/redis';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { FakeOrigin, inject, InjectResponse, metricValue, portOf, sleep, Stack, testSettings, waitReady, scrape } from './helpers';

/** n concurrent GET /api/styles spread over the gateways, over keep-alive HTTP. */
async function flood(ports: number[], n: number) {
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: 128 }));
  try {
    return await Promise.all(Array.from({ length: n }, (_, i) => request(ports[i % ports.length], '/api/styles', { agent: agents[i % ports.length] })));
  } finally {
    agents.forEach((a) => a.destroy());
  }
}

function tally(results: { status: number; headers: http.IncomingHttpHeaders }[]) {
  const statuses: Record<string, number> = {};
  const cacheStatus: Record<string, number> = {};
  for (const r of results) {
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const cs = String(r.headers['cache-status']);
    cacheStatus[cs] = (cacheStatus[cs] ?? 0) + 1;
  }
  return { statuses, cacheStatus };
}

describe('GET /api/styles under a flood (cache breakdown, stale, negative caching)', () => {
  let stack: Stack;
  let origin: FakeOrigin;

  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(200);
  });
  afterEach(() => stack.close());

  const replicas = async (env: Record<string, string> = {}) => {
    const settings = testSettings({ MODEL_URL: origin.url, RATE_LIMIT_PER_SECOND: '10000000', ...env });
    return [await stack.gateway(settings), await stack.gateway(settings)];
  };

  it('loads an absent key from the origin exactly once for 10,000 concurrent requests across two replicas', async () => {
    const gws = await replicas();
    const results = await flood(gws.map(portOf), 10_000);
    const { statuses, cacheStatus } = tally(results);
    expect(statuses).toEqual({ 200: 10_000 });
    expect(origin.calls).toBe(1);
    expect(new Set(results.map((r) => r.body.toString())).size).toBe(1);
    expect(cacheStatus['levee; fwd=miss']).toBeGreaterThanOrEqual(2); // the loader and its waiters
    // exactly one replica counted an origin load
    const loads = await Promise.all(gws.map(async (g) => metricValue(await scrape(g), 'levee_cache_origin_loads_total', { cache: 'styles' }) ?? 0));
    expect(loads.sort()).toEqual([0, 1]);
  });

  it('refreshes an expired key exactly once for 10,000 concurrent requests, serving the stale copy meanwhile', async () => {
    const gws = await replicas();
    expect((await inject(gws[0], '/api/styles')).json().version).toBe(1);
    origin.version = 2;
    // expire it now (the flood outlasts any short TTL, which would rightly cause a second refresh)
    const key = `${stack.prefix}:cache:v:styles`;
    const admin = gws[0].levee.cacheRedis;
    const entry = JSON.parse((await admin.get(key))!);
    await admin.set(key, JSON.stringify({ ...entry, freshUntil: Date.now() - 1 }), 'PX', 60_000);
    gws.forEach((g) => g.levee.cache.clearLocal());
    const results = await flood(gws.map(portOf), 10_000);
    const { statuses, cacheStatus } = tally(results);
    expect(statuses).toEqual({ 200: 10_000 });
    // The refresh may still be running in the background (nobody waits on it past the stale
    // wait): it happens once, and no second one follows.
    await until(() => origin.calls >= 2, 5000, 'the refresh');
    await sleep(300);
    expect(origin.calls).toBe(2);
    expect(cacheStatus['levee; fwd=stale']).toBeGreaterThan(0);
    const after = await inject(gws[1], '/api/styles');
    expect(after.json().version).toBe(2);
  });

  it('serves the stale copy while the origin is down, and 503 + Retry-After when there is none', async () => {
    const gws = await replicas({ CACHE_TTL_SECONDS: '1' });
    const fresh = await inject(gws[0], '/api/styles');
    origin.mode = 'fail';
    await sleep(1200);
    for (const g of gws) {
      const res = await inject(g, '/api/styles');
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-status']).toBe('levee; fwd=stale');
      expect(res.body).toBe(fresh.body);
    }

    const cold = await stack.gateway(testSettings({ MODEL_URL: origin.url }), { keyPrefix: `${stack.prefix}:cold` });
    const res = await inject(cold, '/api/styles');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'The style catalog is temporarily unavailable.' });
  });

  it('caches "not found" from the origin negatively', async () => {
    const gws = await replicas();
    origin.mode = 'notfound';
    const answers: InjectResponse[] = await Promise.all([inject(gws[0], '/api/styles'), inject(gws[1], '/api/styles')]);
    answers.push(await inject(gws[1], '/api/styles'), await inject(gws[0], '/api/styles'));
    expect(answers.map((a) => a.statusCode)).toEqual([404, 404, 404, 404]);
    expect(answers[3].headers['cache-status']).toBe('levee; hit');
    expect(origin.calls).toBe(1);
  });
});

describe('FloodCache', () => {
  let redis: Redis;
  let prefix: string;
  beforeEach(async () => {
    redis = createRedis('request', { url: TEST_REDIS_URL });
    await waitReady(redis);
    prefix = `test:${randomUUID().slice(0, 8)}`;
  });
  afterEach(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  const cache = (extra: Partial<ConstructorParameters<typeof FloodCache>[0]> = {}) =>
    new FloodCache({ name: 't', redis, keyPrefix: prefix, ttlMs: 10_000, lockMs: 2000, ...extra });

  it('caches unknown keys negatively: a flood of lookups for keys the origin lacks reaches it once per key', async () => {
    const c = cache();
    const loads: string[] = [];
    const loader = (key: string) => async () => {
      loads.push(key);
      return NOT_FOUND;
    };
    for (let round = 0; round < 3; round++) {
      c.clearLocal(); // also from Redis, not only from the in-process copy
      const results = await Promise.all(['nope-1', 'nope-2', 'nope-1', 'nope-3'].map((k) => c.get(k, loader(k))));
      expect(results.every((r) => r.entry.body === null)).toBe(true);
    }
    expect(loads.sort()).toEqual(['nope-1', 'nope-2', 'nope-3']);
  });

  it('jitters TTLs so keys loaded together do not expire together', async () => {
    const c = cache({ jitter: 0.1 });
    const started = Date.now();
    const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => Promise.resolve(c.get(`k${i}`, async () => ({ i })))));
    const finished = Date.now();
    const ttls = fresh.map((r) => r.entry.freshUntil - started);
    expect(new Set(ttls.map((t) => Math.round(t / 10))).size).toBeGreaterThan(5);
    // ttlMs 10 s ± 10%, counted from a moment between `started` and `finished`
    for (const t of ttls) expect(t).toBeGreaterThanOrEqual(9_000), expect(t).toBeLessThanOrEqual(11_000 + (finished - started));
  });

  it('reports each failed origin load it attempted (the gateway logs them), not the ones the breaker refused', async () => {
    const reported: [string, string][] = [];
    const refused = new Error('circuit open');
    const c = cache({ ttlMs: 50, notAttempted: (err) => err === refused, onLoadError: (err, key) => reported.push([key, (err as Error).message]) });
    await c.get('k', async () => ({ v: 1 }));
    await sleep(80);
    c.clearLocal();
    const timedOut = await c.get('k', async () => Promise.reject(new Error('timed out')));
    expect(timedOut).toMatchObject({ source: 'stale', entry: { body: '{"v":1}' } });
    c.clearLocal();
    expect(await c.get('k', async () => Promise.reject(refused))).toMatchObject({ source: 'stale' });
    expect(reported).toEqual([['k', 'timed out']]);
  });

  it('after a failed refresh, serves the stale copy from memory for the local window before trying the origin again', async () => {
    const c = cache({ ttlMs: 50, localMs: 400 });
    await c.get('k', async () => ({ v: 1 }));
    await sleep(80); // no longer fresh
    let attempts = 0;
    const failing = async () => {
      attempts++;
      throw new Error('origin down');
    };
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await c.get('k', failing));
    expect(results.map((r) => r.source)).toEqual(Array(20).fill('stale'));
    expect(results.every((r) => r.entry.body === '{"v":1}')).toBe(true);
    expect(attempts).toBe(1); // one flight, not one per request
    await sleep(450); // the local window ended: the next request tries the origin again
    let refreshes = 0;
    const back = async () => {
      refreshes++;
      return { v: 2 };
    };
    expect(await c.get('k', back)).toMatchObject({ source: 'miss', entry: { body: '{"v":2}' } });
    expect([attempts, refreshes]).toEqual([1, 1]);
  });

  it('with a stale copy, waits on a slow origin no longer than staleWaitMs, then serves the copy while the load finishes in the background', async () => {
    const c = cache({ ttlMs: 300, localMs: 2000, staleWaitMs: 100 });
    await c.get('k', async () => ({ v: 1 }));
    await sleep(350); // no longer fresh
    let release!: () => void;
    const slow = () => new Promise<{ v: number }>((resolve) => (release = () => resolve({ v: 2 })));
    const t0 = Date.now();
    const first = await c.get('k', slow);
    const waited = Date.now() - t0;
    expect(first).toMatchObject({ source: 'stale', entry: { body: '{"v":1}' } });
    expect(waited).toBeGreaterThanOrEqual(90);
    expect(waited).toBeLessThan(1000); // not the origin's time: it has not answered at all yet
    // meanwhile everyone gets the copy from memory, and no second load starts
    let second = 0;
    expect(await c.get('k', async () => (second++, { v: 3 }))).toMatchObject({ source: 'stale' });
    expect(second).toBe(0);
    // the origin answers: the load stores its value, which replaces the stale copy
    release();
    await sleep(20);
    expect(await c.get('k', async () => ({ v: 4 }))).toMatchObject({ source: 'hit', entry: { body: '{"v":2}' } });
  });

  it('without a stale copy, waits for the origin as long as it takes (there is nothing else to serve)', async () => {
    const c = cache({ staleWaitMs: 50 });
    const t0 = Date.now();
    const r = await c.get('cold', () => sleep(300).then(() => ({ v: 1 })));
    expect(r).toMatchObject({ source: 'miss', entry: { body: '{"v":1}' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('does not load again when another replica refreshed the key between our read and our lock', async () => {
    // GIVEN a stale entry in Redis, read by replica B just before replica A refreshes it
    const writer = cache();
    await Promise.resolve(writer.get('k', async () => ({ v: 1 })));
    const valueKey = `${prefix}:v:k`;
    const entry = JSON.parse((await redis.get(valueKey))!);
    const staleRaw = JSON.stringify({ ...entry, freshUntil: Date.now() - 1 });
    await redis.set(valueKey, staleRaw, 'PX', 60_000);
    let loads = 0;
    const loader = async () => ({ v: ++loads + 1 });
    const replicaA = cache();
    await Promise.resolve(replicaA.get('k', loader)); // A refreshes, stores v2 and releases its lock
    expect(loads).toBe(1);
    // B's first GET answers with what it read before A's write (the race, made deterministic)
    let first = true;
    const lateReader = new Proxy(redis, {
      get(target, prop, receiver) {
        if (prop === 'get') {
          return (key: string) => {
            if (first && key === valueKey) {
              first = false;
              return Promise.resolve(staleRaw);
            }
            return target.get(key);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const replicaB = new FloodCache({ name: 't', redis: lateReader, keyPrefix: prefix, ttlMs: 10_000, lockMs: 2000 });
    // WHEN B takes the (now free) lock THEN it finds A's fresh value instead of loading again
    const result = await Promise.resolve(replicaB.get('k', loader));
    expect(loads).toBe(1);
    expect(JSON.parse(result.entry.body!)).toEqual({ v: 2 });
    expect(await redis.get(`${prefix}:lock:k`)).toBeNull();
  });

  it('never releases a lock that another holder has taken since (token-checked release)', async () => {
    const c = cache({ lockMs: 100 });
    let finish!: (v: unknown) => void;
    const slow = c.get('k', () => new Promise((r) => (finish = r)));
    for (let i = 0; !finish && i < 400; i++) await sleep(5); // loading, holding the lock…
    expect(finish).toBeDefined();
    await sleep(150); // …until our lock expired…
    await redis.set(`${prefix}:lock:k`, 'someone-else', 'PX', 5000); // …and another replica took it
    finish({ ok: true });
    await slow;
    expect(await redis.get(`${prefix}:lock:k`)).toBe('someone-else');
  });

  it('degrades to one load per process when Redis is unreachable', async () => {
    const dead = createRedis('request', { url: `redis://127.0.0.1:${await freePort()}` });
    try {
      const registry = new Registry();
      const c = new FloodCache({ name: 't', redis: dead, keyPrefix: prefix, ttlMs: 10_000, lockMs: 2000, localMs: 50, registry });
      let loads = 0;
      const loader = async () => {
        loads++;
        await sleep(50);
        return { ok: true };
      };
      const results = await Promise.all(Array.from({ length: 100 }, () => Promise.resolve(c.get('k', loader))));
      expect(loads).toBe(1);
      expect(results.every((r) => r.entry.body === '{"ok":true}')).toBe(true);
      const metric = await registry.getSingleMetricAsString('levee_cache_requests_total');
      expect(metric).toContain('levee_cache_requests_total{cache="t",result="miss"} 1');
      expect(metric).toContain('levee_cache_requests_total{cache="t",result="coalesced"} 99');
      // past the short in-process window, still fresh: served from this replica's copy, no reload
      await sleep(80);
      await Promise.resolve(c.get('k', loader));
      expect(loads).toBe(1);
    } finally {
      dead.disconnect();
    }
  });
});
