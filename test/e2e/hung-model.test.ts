/**
 * A model API that hangs (SIGSTOP: connections accepted, nothing answered), under steady
 * traffic to GET /api/styles with a stale copy in the cache: no client waits on the origin
 * past the stale wait (none as long as the model timeout), and the breaker opens within
 * seconds. Real processes: a model, a gateway (its defaults for the breaker, the model
 * timeout and the stale wait), a private redis-server.
 */
import { freePort } from '../helpers/ports';
import { metricValue, request } from '../helpers/http';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';

jest.setTimeout(60_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The gateway's default MODEL_TIMEOUT_MS: what a request would wait if it waited on the hung origin. */
const MODEL_TIMEOUT_MS = 1000;

let redis: RedisServer;
let model: ServiceProcess;
let gateway: ServiceProcess;
let port: number;
let metricsPort: number;

beforeAll(async () => {
  redis = await RedisServer.start();
  const modelPort = await freePort();
  port = await freePort();
  metricsPort = await freePort();
  model = new ServiceProcess('model', { PORT: String(modelPort), METRICS_PORT: '0', STYLES_DELAY_MS: '20' });
  await model.waitHttp(modelPort, '/healthz');
  gateway = new ServiceProcess('gateway', {
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    REDIS_URL: redis.url,
    MODEL_URL: `http://127.0.0.1:${modelPort}`,
    QUEUE_NAME: `hung-${process.pid}`,
    CACHE_TTL_SECONDS: '1',
    RATE_LIMIT_PER_SECOND: '100000',
    SHUTDOWN_DELAY_SECONDS: '0',
  });
  await gateway.waitHttp(port, '/readyz');
});

afterAll(async () => {
  model?.signal('SIGCONT');
  await Promise.all([gateway?.stop(5000), model?.stop(5000)]);
  await redis?.stop();
});

test('with the model hung and a stale copy cached, no request waits on it and the breaker opens within seconds', async () => {
  const first = await request(port, '/api/styles');
  expect(first.status).toBe(200);
  model.signal('SIGSTOP');
  const hungAt = Date.now();
  // Steady traffic: a request every 25 ms (and never more than 8 at once) for 8 s.
  const latencies: number[] = [];
  const statuses = new Map<string, number>();
  let openedAfterMs: number | undefined;
  const inFlight = new Set<Promise<void>>();
  while (Date.now() - hungAt < 8000) {
    if (inFlight.size < 8) {
      const t0 = Date.now();
      const p: Promise<void> = request(port, '/api/styles', { timeoutMs: 10_000 }).then((res) => {
        latencies.push(Date.now() - t0);
        const key = `${res.status} ${res.headers['cache-status'] ?? ''}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    if (openedAfterMs === undefined) {
      const metrics = (await request(metricsPort, '/metrics')).body.toString();
      if (metricValue(metrics, 'levee_circuit_state', { target: 'model' }) === 1) openedAfterMs = Date.now() - hungAt;
    }
    await sleep(25);
  }
  await Promise.all(inFlight);
  const slowest = Math.max(...latencies);
  // Every answer is the stale (or, right at the start, the still fresh) copy: 200, never a 503.
  expect([...statuses.keys()].every((k) => k.startsWith('200 '))).toBe(true);
  expect(statuses.get('200 levee; fwd=stale')).toBeGreaterThan(50);
  // Nobody waited for the origin's timeout (before: the refreshing request waited all of it).
  expect(slowest).toBeLessThan(MODEL_TIMEOUT_MS);
  // The breaker opened within seconds of the hang (before: ~30 s).
  expect(openedAfterMs).toBeDefined();
  expect(openedAfterMs!).toBeLessThan(8000);
  process.stdout.write(`hung model: ${latencies.length} requests, slowest ${slowest} ms, breaker open after ${openedAfterMs} ms; ${JSON.stringify(Object.fromEntries(statuses))}\n`);
});
