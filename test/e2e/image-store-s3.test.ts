/**
 * End to end with IMAGE_STORE=s3, through HTTP only: a gateway, a worker, a model and two
 * media backends (stream and redirect delivery) — real processes configured only by their
 * environment — against a Redis and an S3-compatible server (s3rver) this test owns on
 * loopback. A second gateway serves the status document with IMAGE_PUBLIC_BASE_URL.
 */
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { PNG } from 'pngjs';
import { RENDER_JOB, RENDER_JOB_OPTIONS } from '../../services/shared/src/job';
import { IMMUTABLE } from '../../services/shared/src/s3-images';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { S3Server } from '../helpers/s3-server';
import { until } from '../helpers/wait';

jest.setTimeout(90_000);

let redis: RedisServer;
let s3: S3Server;
const procs: ServiceProcess[] = [];
let gateway: number;
let publicGateway: number;
let media: number;
let redirectMedia: number;

async function startService(name: string, env: Record<string, string>, port: number, ready = '/readyz'): Promise<ServiceProcess> {
  const p = new ServiceProcess(name, env);
  procs.push(p);
  await p.waitHttp(port, ready);
  return p;
}

beforeAll(async () => {
  [redis, s3] = await Promise.all([RedisServer.start(), S3Server.start(['levee-e2e'])]);
  const modelPort = await freePort();
  await startService('model', { PORT: String(modelPort), HOST: '127.0.0.1' }, modelPort, '/healthz');
  const store = s3.env();
  const workerPort = await freePort();
  await startService('worker', { ...store, REDIS_URL: redis.url, MODEL_URL: `http://127.0.0.1:${modelPort}`, METRICS_PORT: String(workerPort), METRICS_HOST: '127.0.0.1' }, workerPort);
  // Both gateways share the per-IP limit through Redis, and this test polls as one client: no limit to meet here.
  const gatewayEnv = { ...store, REDIS_URL: redis.url, MODEL_URL: `http://127.0.0.1:${modelPort}`, SERVE_MEDIA: 'false', HOST: '127.0.0.1', SHUTDOWN_DELAY_SECONDS: '0', RATE_LIMIT_PER_SECOND: '10000' };
  [gateway, publicGateway, media, redirectMedia] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  await Promise.all([
    startService('gateway', { ...gatewayEnv, PORT: String(gateway) }, gateway),
    startService('gateway', { ...gatewayEnv, PORT: String(publicGateway), IMAGE_PUBLIC_BASE_URL: `${s3.endpoint}/levee-e2e/` }, publicGateway),
    // Media needs no Redis in s3 mode: its REDIS_URL points where nothing listens.
    startService('media', { ...store, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, PORT: String(media), HOST: '127.0.0.1', SHUTDOWN_DELAY_SECONDS: '0' }, media),
    startService('media', { ...store, IMAGE_DELIVERY: 'redirect', PORT: String(redirectMedia), HOST: '127.0.0.1', SHUTDOWN_DELAY_SECONDS: '0' }, redirectMedia),
  ]);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all([redis?.stop(), s3?.stop()]);
});

async function renderOne(body: Record<string, unknown>): Promise<{ id: string; accepted: Record<string, string>; status: Record<string, unknown> }> {
  const res = await request(gateway, '/api/images', { body });
  expect(res.status).toBe(202);
  const id = res.json.id as string;
  let status: Record<string, unknown> = {};
  await until(async () => {
    status = (await request(gateway, `/api/images/${id}`)).json;
    if (status.status === 'failed') throw new Error(`job failed: ${String(status.error)}`);
    return status.status === 'completed';
  }, 30_000, `job ${id} to complete`);
  return { id, accepted: res.json, status };
}

describe('IMAGE_STORE=s3, end to end', () => {
  it('stream: the status document leads to the PNG that media streams from the bucket, immutable, with an ETag and 304', async () => {
    const { id, accepted, status } = await renderOne({ prompt: 'a lighthouse at dusk', width: 96, height: 64 });
    expect(accepted.imageUrl).toBe(`/images/${id}.png`);
    expect(status.imageUrl).toBe(`/images/${id}.png`);
    const res = await request(media, status.imageUrl as string);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['cache-control']).toBe(IMMUTABLE);
    const png = PNG.sync.read(res.body);
    expect([png.width, png.height]).toEqual([96, 64]);
    const again = await request(media, status.imageUrl as string, { headers: { 'if-none-match': res.headers.etag as string } });
    expect(again.status).toBe(304);
    // The queue Redis holds no PNG: jobs and their small records only.
    const admin = new Redis(redis.url);
    try {
      expect(await admin.keys('levee:image:*')).toEqual([]);
      expect(await admin.exists(`levee:done:${id}`)).toBe(1);
    } finally {
      admin.disconnect();
    }
  });

  it('redirect: media answers 302 to a presigned URL; the store serves the same PNG there', async () => {
    const { status } = await renderOne({ prompt: 'a lighthouse at dawn', width: 64, height: 64, seed: 3 });
    const streamed = await request(media, status.imageUrl as string);
    const res = await request(redirectMedia, status.imageUrl as string);
    expect(res.status).toBe(302);
    const location = new URL(res.headers.location as string);
    expect(location.origin).toBe(s3.endpoint);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('900');
    const followed = await fetch(location);
    expect(followed.status).toBe(200);
    expect(Buffer.from(await followed.arrayBuffer()).equals(streamed.body)).toBe(true);
  });

  it('public base: with IMAGE_PUBLIC_BASE_URL the imageUrl is absolute on that base (here the bucket itself) and leads to the PNG', async () => {
    const { id } = await renderOne({ prompt: 'a lighthouse in fog', width: 64, height: 80 });
    const doc = (await request(publicGateway, `/api/images/${id}`)).json;
    expect(doc.imageUrl).toBe(`${s3.endpoint}/levee-e2e/images/${id}.png`);
    const accepted = await request(publicGateway, '/api/images', { body: { prompt: 'another' } });
    expect(accepted.json.imageUrl).toBe(`${s3.endpoint}/levee-e2e/images/${accepted.json.id}.png`);
    const res = await fetch(doc.imageUrl as string);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = PNG.sync.read(Buffer.from(await res.arrayBuffer()));
    expect([png.width, png.height]).toEqual([64, 80]);
  });

  it('bad credentials: the worker is not ready, says why in one line naming the bucket, and takes no job', async () => {
    const queueName = 'bad-credentials';
    const port = await freePort();
    const worker = await startService(
      'worker',
      { ...s3.env({ AWS_ACCESS_KEY_ID: 'NOT-A-KEY' }), QUEUE_NAME: queueName, REDIS_URL: redis.url, MODEL_URL: 'http://127.0.0.1:1', METRICS_PORT: String(port), IMAGE_STORE_CHECK_SECONDS: '1' },
      port,
      '/healthz',
    );
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(queueName, { connection });
    try {
      await queue.add(RENDER_JOB, { prompt: 'never rendered', width: 64, height: 64 }, { ...RENDER_JOB_OPTIONS, jobId: 'b0000000-0000-4000-8000-000000000001' });
      await until(() => worker.output.join('').includes('levee-e2e'), 10_000, 'the log line');
      await new Promise((r) => setTimeout(r, 2500));
      const ready = await request(port, '/readyz');
      expect(ready.status).toBe(503);
      const lines = worker.output.join('').split('\n').filter((l) => l.includes('s3://levee-e2e/'));
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!).msg).toMatch(/^image store s3:\/\/levee-e2e\/images\/ at http:\/\/127\.0\.0\.1:\d+: reach the bucket: answered 403 .*access denied: check the credentials/);
      const job = (await queue.getJob('b0000000-0000-4000-8000-000000000001'))!;
      expect(await job.getState()).toBe('waiting');
      expect(job.attemptsMade).toBe(0);
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    }
  });
});
