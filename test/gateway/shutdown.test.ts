import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { drainAndClose } from '../../services/shared/src/http-lifecycle';
import { request, statusesOf } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { inject, portOf, sleep, Stack, testSettings } from './helpers';

describe('graceful shutdown', () => {
  let stack: Stack;
  beforeEach(() => {
    stack = new Stack();
  });
  afterEach(() => stack.close());

  it('fails readiness at once, keeps serving during the delay, then lets in-flight requests finish with 200', async () => {
    // The origin outlasts the delay, so the requests are still in flight when close() starts;
    // the delay is long enough for the two checks below even on a loaded CI machine.
    const origin = await stack.origin(1200);
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, MODEL_TIMEOUT_MS: '5000', RATE_LIMIT_PER_SECOND: '1000' }));
    const port = portOf(app);
    // in flight: a cold cache, so each waits ~1.2 s on the origin
    const inFlight = Array.from({ length: 10 }, () => request(port, '/api/styles'));
    await sleep(50);
    const closed = drainAndClose(app, app.lifecycle, 600);
    const ready = await inject(app, '/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 503, detail: 'Shutting down: draining in-flight requests.' });
    // still serving while the load balancer takes the pod out of rotation
    expect((await inject(app, '/healthz')).statusCode).toBe(200);
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    await closed;
    await expect(request(port, '/healthz', { timeoutMs: 500 })).rejects.toThrow();
  });

  it('serves a request that arrives on a busy keep-alive connection after close() began, with Connection: close', async () => {
    const origin = await stack.origin(1200);
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, MODEL_TIMEOUT_MS: '5000', RATE_LIMIT_PER_SECOND: '1000' }));
    const socket = net.connect(portOf(app), '127.0.0.1');
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET /api/styles HTTP/1.1\r\nHost: t\r\n\r\n'); // in flight for ~1.2 s (cold cache)
    await sleep(50);
    const closed = drainAndClose(app, app.lifecycle, 100);
    await sleep(300); // past the delay: close() has begun, the first request is still in flight
    socket.write('GET /api/styles HTTP/1.1\r\nHost: t\r\n\r\n');
    await closed;
    await ended;
    const statuses = statusesOf(received);
    expect(statuses).toEqual([200, 200]); // not Fastify's JSON 503
    const second = received.slice(received.lastIndexOf('HTTP/1.1 '));
    expect(second.toLowerCase()).toContain('connection: close');
    expect(second).toContain('"styles"');
  });

  it('as a process: metrics only on METRICS_PORT (through the drain); SIGTERM → /readyz 503 at once, in-flight requests complete, exit code 0', async () => {
    const origin = await stack.origin(500);
    const port = await freePort();
    const metricsPort = await freePort();
    // A private Redis: a real process uses the default key prefix, which must not leak into
    // the shared Redis that `npm run dev` may be using.
    const redis = await RedisServer.start();
    const gw = new ServiceProcess('gateway', {
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      REDIS_URL: redis.url,
      MODEL_URL: origin.url,
      QUEUE_NAME: `t-shutdown-${process.pid}`,
      SHUTDOWN_DELAY_SECONDS: '1',
      RATE_LIMIT_PER_SECOND: '1000',
    });
    try {
      await gw.waitHttp(port, '/readyz');
      await gw.waitHttp(metricsPort, '/metrics');
      const onPublic = await request(port, '/metrics');
      expect(onPublic.status).toBe(404);
      expect(onPublic.json).toMatchObject({ status: 404, title: 'Not Found' });
      const inFlight = Array.from({ length: 5 }, () => request(port, '/api/styles'));
      await sleep(100);
      gw.signal('SIGTERM');
      await sleep(100);
      expect((await request(port, '/readyz')).status).toBe(503);
      // Prometheus still sees the draining pod
      const draining = await request(metricsPort, '/metrics');
      expect(draining.status).toBe(200);
      expect(draining.body.toString()).toContain('levee_http_requests_total{route="unmatched",method="GET",status="404"');
      expect((await Promise.all(inFlight)).map((r) => r.status)).toEqual(Array(5).fill(200));
      expect(await gw.exited).toEqual({ code: 0, signal: null });
    } finally {
      gw.signal('SIGKILL');
      await redis.stop();
    }
  }, 30_000);

  it('as a process: METRICS_PORT equal to PORT stops it with a message (metrics never on the public port)', () => {
    const root = path.resolve(__dirname, '../..');
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'services/gateway/src/server.ts')], {
      cwd: root,
      env: { ...process.env, PORT: '18080', METRICS_PORT: '18080' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(res.status).toBe(78);
    expect(res.stderr).toContain('METRICS_PORT="18080": must differ from PORT (18080)');
  }, 30_000);

  it('as a process: a bad setting stops it with a message naming the variable', () => {
    const root = path.resolve(__dirname, '../..');
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'services/gateway/src/server.ts')], {
      cwd: root,
      env: { ...process.env, RATE_LIMIT_PER_SECOND: 'lots', TRUST_PROXY: '10.0.0.0/99' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(res.status).toBe(78);
    expect(res.stderr).toContain('RATE_LIMIT_PER_SECOND="lots": must be an integer from 1 to 10000000');
    expect(res.stderr).toContain('TRUST_PROXY="10.0.0.0/99"');
  }, 30_000);
});
