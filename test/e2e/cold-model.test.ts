/**
 * A cold model burns no attempts. Real processes: a gateway and a worker speaking the OpenAI
 * images API (MODEL_API=openai-images), and a model that is not there yet when the job
 * arrives (as when KEDA scales it up from zero), then loads for 3 s (MODEL_LOAD_SECONDS) before
 * it takes work. The job is accepted at once and completes after one attempt.
 */
import { PNG } from 'pngjs';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { until } from '../helpers/wait';

jest.setTimeout(60_000);

let redis: RedisServer;
const procs: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await redis?.stop();
});

test('a job posted before the model exists, completed after its 3 s load with attempts: 1; the styles come from MODEL_STYLES', async () => {
  redis = await RedisServer.start();
  const [modelPort, gatewayPort, workerPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const modelUrl = `http://127.0.0.1:${modelPort}`;
  const openai = { MODEL_API: 'openai-images', MODEL_NAME: 'levee-stand-in', MODEL_API_KEY: 'sk-e2e' };
  const gateway = new ServiceProcess('gateway', { ...openai, PORT: String(gatewayPort), HOST: '127.0.0.1', REDIS_URL: redis.url, MODEL_URL: modelUrl, MODEL_STYLES: 'sunset,ocean', SHUTDOWN_DELAY_SECONDS: '0', RATE_LIMIT_PER_SECOND: '10000' });
  // Postponements are short here, so the job comes back soon after the model does.
  const worker = new ServiceProcess('worker', { ...openai, REDIS_URL: redis.url, MODEL_URL: modelUrl, METRICS_PORT: String(workerPort), BREAKER_OPEN_SECONDS: '1' });
  procs.push(gateway, worker);
  await Promise.all([gateway.waitHttp(gatewayPort, '/readyz'), worker.waitHttp(workerPort, '/readyz')]);

  const styles = await request(gatewayPort, '/api/styles');
  expect(styles.status).toBe(200);
  expect(styles.json).toEqual({ styles: [{ id: 'sunset', name: 'sunset' }, { id: 'ocean', name: 'ocean' }] });

  const accepted = await request(gatewayPort, '/api/images', { body: { prompt: 'a cold start', width: 64, height: 80 } });
  expect(accepted.status).toBe(202);
  const id = accepted.json.id as string;
  await new Promise((r) => setTimeout(r, 1500)); // the worker finds no model (connection refused) and postpones
  expect((await request(gatewayPort, `/api/images/${id}`)).json.status).toBe('queued');

  const model = new ServiceProcess('model', { PORT: String(modelPort), HOST: '127.0.0.1', MODEL_LOAD_SECONDS: '3', MODEL_API_KEY: 'sk-e2e' });
  procs.push(model);
  await model.waitHttp(modelPort, '/healthz');
  expect((await request(modelPort, '/readyz')).status).toBe(503); // alive, loading

  let status: Record<string, unknown> = {};
  await until(async () => {
    status = (await request(gatewayPort, `/api/images/${id}`)).json;
    if (status.status === 'failed') throw new Error(`job failed: ${String(status.error)}`);
    return status.status === 'completed';
  }, 40_000, 'the job to complete once the model is warm');
  expect(status.attempts).toBe(1);
  const png = await request(gatewayPort, status.imageUrl as string);
  expect(png.status).toBe(200);
  const decoded = PNG.sync.read(png.body);
  expect([decoded.width, decoded.height]).toEqual([64, 80]);
});
