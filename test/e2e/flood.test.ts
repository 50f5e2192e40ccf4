/**
 * End to end, through HTTP only: two gateways, one worker and one model — real processes
 * started as `npm run start:*` would — against a Redis this test owns. Each scenario is a
 * promise of ../../../shared/CONTRACT.md; they run in order on one stack.
 */
import http from 'node:http';
import { PNG } from 'pngjs';
import { freePort } from '../helpers/ports';
import { RedisServer } from '../helpers/redis-server';
import { HttpResponse, metricValue, request } from '../helpers/http';
import { ServiceProcess } from '../helpers/processes';
import { until } from '../helpers/wait';

jest.setTimeout(120_000);

// Long enough that the refreshed copy outlives the 10,000-request flood of scenario 3
// (a second load after a *second* expiry would be correct behaviour, not a breakdown).
const CACHE_TTL_SECONDS = 15;
/** The gateway jitters TTLs by ±10%; past this, every copy has expired. */
const EXPIRED_AFTER_MS = CACHE_TTL_SECONDS * 1000 * 1.15;
// Workers: short, so postponed jobs come back soon after the model does. Gateways: long
// enough that no half-open trial (which waits out the model timeout) can slip into the
// fast-fail measurement on a slow machine.
const WORKER_BREAKER_OPEN_SECONDS = 2;
const GATEWAY_BREAKER_OPEN_SECONDS = 60;
// The model's catalog takes long enough for the flood of scenario 3 to pile up behind one
// load; the gateways' timeout leaves it a wide margin, because a gateway busy with 5,000
// requests runs its timers late (a load timed out is retried: a second origin call, rightly).
const STYLES_DELAY_MS = 150;
const GATEWAY_MODEL_TIMEOUT_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Each scenario speaks as its own clients (the gateways trust 127.0.0.1 as a proxy). */
const asClient = (ip: string) => ({ 'x-forwarded-for': ip });

let redis: RedisServer;
let model: ServiceProcess;
let worker: ServiceProcess;
const gateways: ServiceProcess[] = [];
const gatewayPorts: number[] = [];
let modelPort: number;
let workerEnv: Record<string, string>;
let gatewayEnv: Record<string, string>;

let modelMetricsPort: number;
const gatewayMetricsPorts: number[] = [];

function startModel(): ServiceProcess {
  return new ServiceProcess('model', { PORT: String(modelPort), METRICS_PORT: String(modelMetricsPort), STYLES_DELAY_MS: String(STYLES_DELAY_MS) });
}

async function startWorker(): Promise<ServiceProcess> {
  const w = new ServiceProcess('worker', { ...workerEnv, METRICS_PORT: String(await freePort()) });
  await w.waitHttp(Number(w.env.METRICS_PORT), '/healthz');
  return w;
}

async function submit(port: number, ip: string, body: Record<string, unknown>): Promise<string> {
  const res = await request(port, '/api/images', { body, headers: asClient(ip) });
  expect(res.status).toBe(202);
  return res.json.id as string;
}

async function waitCompleted(ids: string[], timeoutMs: number, ip = '10.9.9.'): Promise<Record<string, HttpResponse>> {
  const deadline = Date.now() + timeoutMs;
  const done: Record<string, HttpResponse> = {};
  let i = 0;
  while (Object.keys(done).length < ids.length) {
    for (const id of ids.filter((x) => !done[x])) {
      // spread the polling over fake client IPs so it never trips the per-IP limit
      const res = await request(gatewayPorts[0], `/api/images/${id}`, { headers: asClient(`${ip}${i++ % 200}`) });
      expect(res.status).toBe(200);
      if (res.json.status === 'failed') throw new Error(`job ${id} failed after ${res.json.attempts} attempts: ${res.json.error}`);
      if (res.json.status === 'completed') done[id] = res;
    }
    if (Date.now() > deadline) throw new Error(`jobs not completed in ${timeoutMs} ms: ${ids.filter((x) => !done[x]).join(', ')}`);
    await sleep(200);
  }
  return done;
}

beforeAll(async () => {
  redis = await RedisServer.start();
  modelPort = await freePort();
  modelMetricsPort = await freePort();
  const queueName = `e2e-${process.pid}`;
  workerEnv = {
    QUEUE_REDIS_URL: redis.url,
    MODEL_URL: `http://127.0.0.1:${modelPort}`,
    QUEUE_NAME: queueName,
    WORKER_CONCURRENCY: '2',
    // A 1024² render (scenario 5) takes ~200 ms, twice that with both slots busy, and more on
    // a loaded machine: the margin keeps those renders from timing out and burning attempts.
    MODEL_TIMEOUT_MS: '3000',
    BREAKER_OPEN_SECONDS: String(WORKER_BREAKER_OPEN_SECONDS),
    WORKER_LOCK_DURATION_MS: '2000',
    WORKER_STALLED_INTERVAL_MS: '1000',
  };
  gatewayEnv = {
    REDIS_URL: redis.url,
    MODEL_URL: `http://127.0.0.1:${modelPort}`,
    QUEUE_NAME: queueName,
    TRUST_PROXY: '127.0.0.1/32',
    CACHE_TTL_SECONDS: String(CACHE_TTL_SECONDS),
    BREAKER_OPEN_SECONDS: String(GATEWAY_BREAKER_OPEN_SECONDS),
    MODEL_TIMEOUT_MS: String(GATEWAY_MODEL_TIMEOUT_MS),
    SHUTDOWN_DELAY_SECONDS: '1',
  };
  model = startModel();
  for (let i = 0; i < 2; i++) {
    gatewayPorts.push(await freePort());
    gatewayMetricsPorts.push(await freePort());
    gateways.push(new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(gatewayPorts[i]), METRICS_PORT: String(gatewayMetricsPorts[i]) }));
  }
  await model.waitHttp(modelPort, '/healthz');
  worker = await startWorker();
  await Promise.all(gateways.map((g, i) => g.waitHttp(gatewayPorts[i], '/readyz')));
});

afterAll(async () => {
  // A gateway that crashed (scenario 6 stops one on purpose, with exit code 0) says why here.
  for (const g of gateways) {
    const exit = g.running ? undefined : await g.exited;
    if (exit && exit.code !== 0) process.stderr.write(`gateway on :${g.env.PORT} exited ${JSON.stringify(exit)}:\n${g.output.join('').slice(-3000)}\n`);
  }
  await Promise.all([...gateways, worker, model].filter(Boolean).map((p) => p.stop(5000)));
  await redis?.stop();
});

test('0. metrics are served on METRICS_PORT only: GET /metrics on the public port is a 404 problem', async () => {
  const onPublic = await request(gatewayPorts[0], '/metrics', { headers: asClient('10.0.0.7') });
  expect(onPublic.status).toBe(404);
  expect(onPublic.headers['content-type']).toContain('application/problem+json');
  for (const [port, name] of [[gatewayMetricsPorts[0], 'levee_http_requests_total'], [modelMetricsPort, 'levee_model_requests_total']] as const) {
    const res = await request(port, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body.toString()).toContain(`# TYPE ${name} counter`);
  }
  expect((await request(modelPort, '/metrics')).status).toBe(404);
  expect((await request(gatewayMetricsPorts[0], '/api/styles')).status).toBe(404); // and the API is not on the metrics port
});

test('1. a submitted job is accepted at once, completes, and its PNG decodes at the requested size', async () => {
  const res = await request(gatewayPorts[0], '/api/images', { body: { prompt: 'a lighthouse in a storm', width: 128, height: 96 }, headers: asClient('10.1.0.1') });
  expect(res.status).toBe(202);
  expect(res.json).toMatchObject({ status: 'queued' });
  expect(res.headers.location).toBe(`/api/images/${res.json.id}`);
  const done = await waitCompleted([res.json.id], 30_000);
  const imageUrl = done[res.json.id].json.imageUrl as string;
  expect(imageUrl).toBe(`/images/${res.json.id}.png`);
  const png = await request(gatewayPorts[1], imageUrl);
  expect(png.status).toBe(200);
  expect(png.headers['content-type']).toBe('image/png');
  const decoded = PNG.sync.read(png.body);
  expect([decoded.width, decoded.height]).toEqual([128, 96]);
});

test('2. one client sending 30 requests in a second across both gateways gets exactly 10 through', async () => {
  const results = await Promise.all(
    Array.from({ length: 30 }, (_, i) => request(gatewayPorts[i % 2], '/api/styles', { headers: asClient('10.2.0.1') })),
  );
  const admitted = results.filter((r) => r.status !== 429);
  const limited = results.filter((r) => r.status === 429);
  expect(admitted).toHaveLength(10);
  expect(limited).toHaveLength(20);
  for (const r of limited) {
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(r.headers['content-type']).toContain('application/problem+json');
  }
});

async function modelStylesLoads(): Promise<number> {
  const res = await request(modelMetricsPort, '/metrics');
  return metricValue(res.body.toString(), 'levee_model_requests_total', { route: '/v1/styles' });
}

test('3. when the hot styles key expires under 10,000 concurrent requests, the model is asked exactly once', async () => {
  const warm = await request(gatewayPorts[0], '/api/styles', { headers: asClient('10.3.255.255') });
  expect(warm.status).toBe(200);
  await sleep(EXPIRED_AFTER_MS);
  const before = await modelStylesLoads();
  const started = Date.now();
  const agents = gatewayPorts.map(() => new http.Agent({ keepAlive: true, maxSockets: 200 }));
  const results = await Promise.all(
    Array.from({ length: 10_000 }, (_, i) =>
      request(gatewayPorts[i % 2], '/api/styles', { agent: agents[i % 2], headers: asClient(`10.3.${i >> 8}.${i & 255}`) }),
    ),
  );
  agents.forEach((a) => a.destroy());
  const statuses = new Map<number, number>();
  for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
  expect(Object.fromEntries(statuses)).toEqual({ 200: 10_000 });
  const loads = (await modelStylesLoads()) - before;
  if (loads !== 1) {
    // Say why: a flood outlasting the refreshed copy, or loads that failed (gateway warnings).
    const warnings = gateways.flatMap((g) => g.output.join('').split('\n').filter((l) => l.includes('origin load failed')));
    process.stderr.write(`scenario 3: ${loads} origin loads; the flood took ${Date.now() - started} ms (fresh copies live ≥ ${CACHE_TTL_SECONDS * 900} ms); gateway warnings:\n${warnings.join('\n')}\n`);
  }
  expect(loads).toBe(1);
});

test('4. with the model down the breaker opens, styles come from stale within milliseconds, and jobs complete once it is back', async () => {
  await request(gatewayPorts[0], '/api/styles', { headers: asClient('10.4.0.1') }); // a copy to go stale
  model.signal('SIGSTOP'); // hangs: every call times out
  await sleep(EXPIRED_AFTER_MS);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) ids.push(await submit(gatewayPorts[i % 2], `10.4.1.${i}`, { prompt: `storm ${i}`, width: 64, height: 64 }));

  // Drive both gateways' breakers open (5 timeouts in a row each): every answer meanwhile is
  // the stale copy, since a failed refresh never fails the request. The replicas share the
  // load lock, so only one of them tries the model at a time: ~10 × the timeout in all.
  const circuitOpen = async (g: number) =>
    metricValue((await request(gatewayMetricsPorts[g], '/metrics')).body.toString(), 'levee_circuit_state', { target: 'model' }) === 1;
  const deadline = Date.now() + 20 * GATEWAY_MODEL_TIMEOUT_MS;
  for (let round = 0; ; round++) {
    // only the gateways still closed: an open one would take the lock from the other for nothing
    const open = await Promise.all(gatewayPorts.map((_, g) => circuitOpen(g)));
    const closed = gatewayPorts.filter((_, g) => !open[g]);
    if (closed.length === 0) break;
    if (Date.now() > deadline) throw new Error(`the breakers of the gateways on ${closed.join(', ')} did not open`);
    const answers = await Promise.all(closed.map((port, g) => request(port, '/api/styles', { headers: asClient(`10.4.2${g}.${round % 250}`) })));
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(res.headers['cache-status']).toBe('levee; fwd=stale');
    }
    await sleep(50);
  }
  const started = process.hrtime.bigint();
  const fast = await request(gatewayPorts[1], '/api/styles', { headers: asClient('10.4.3.1') });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  expect(fast.status).toBe(200);
  expect(fast.headers['cache-status']).toMatch(/fwd=stale|hit/);
  // Typically ~1 ms; the bound is generous for a loaded 2-core CI machine and still far below
  // the model timeout that any wait on the model would take.
  expect(ms).toBeLessThan(GATEWAY_MODEL_TIMEOUT_MS / 5);

  await model.kill();
  model = startModel();
  await model.waitHttp(modelPort, '/healthz');
  await waitCompleted(ids, 45_000);
});

test('5. a worker SIGKILLed with jobs in flight loses none of them: a new worker completes every one', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await submit(gatewayPorts[i % 2], `10.5.0.${i}`, { prompt: `slow ${i}`, width: 1024, height: 1024 }));
  // wait until the worker has jobs in flight
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(ids.map((id, i) => request(gatewayPorts[0], `/api/images/${id}`, { headers: asClient(`10.5.1.${i}`) })));
    if (states.some((s) => s.json.status === 'active')) break;
    if (Date.now() > deadline) throw new Error('no job became active');
    await sleep(50);
  }
  await worker.kill();
  worker = await startWorker();
  await waitCompleted(ids, 60_000, '10.5.2.');
});

test('6. a gateway sent SIGTERM while requests are in flight fails none of them', async () => {
  const target = gateways[1];
  const port = gatewayPorts[1];
  const inFlight = Array.from({ length: 60 }, (_, i) =>
    i % 3 === 0
      ? request(port, '/api/images', { body: { prompt: `drain ${i}`, width: 64, height: 64 }, headers: asClient(`10.6.0.${i}`) })
      : request(port, '/api/styles', { headers: asClient(`10.6.1.${i}`) }),
  );
  await sleep(20);
  target.signal('SIGTERM');
  // Out of rotation at once, still answering: /readyz turns 503 as soon as the process has
  // handled the signal (on a loaded machine that can take longer than a fixed 50 ms, behind
  // the requests already queued), and every answer until then is a 200, never an error.
  const seen: number[] = [];
  await until(async () => seen[seen.push((await request(port, '/readyz')).status) - 1] === 503, 2000, '/readyz to answer 503 after SIGTERM');
  expect(seen.filter((s) => s !== 200 && s !== 503)).toEqual([]);
  const results = await Promise.all(inFlight);
  expect(results.map((r) => r.status).filter((s) => s !== 200 && s !== 202)).toEqual([]);
  const exit = await target.exited;
  expect(exit.code).toBe(0);
  // the other gateway is still serving
  expect((await request(gatewayPorts[0], '/readyz')).status).toBe(200);
});
