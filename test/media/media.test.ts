import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { buildMedia, MediaApp } from '../../services/media/src/app';
import { parseMediaSettings } from '../../services/media/src/settings';
import { imageKey } from '../../services/shared/src/keys';
import { createRedis } from '../../services/shared/src/redis';
import { rawHttp, request, statusesOf } from '../helpers/http';
import { RedisServer } from '../helpers/redis-server';
import { TEST_REDIS_URL } from '../helpers/redis-url';

const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(randomUUID())]);

async function waitReady(client: Redis): Promise<void> {
  const deadline = Date.now() + 5000;
  while (client.status !== 'ready') {
    if (Date.now() > deadline) throw new Error('redis not ready');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('media backend: GET /images/{id}.png', () => {
  let app: MediaApp;
  let redis: Redis;
  let port: number;
  const ids: string[] = [];

  beforeEach(async () => {
    redis = createRedis('request', { url: TEST_REDIS_URL });
    await waitReady(redis);
    app = buildMedia(parseMediaSettings({ REDIS_URL: TEST_REDIS_URL }), { redis });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    await app.close();
    if (ids.length) await redis.del(...ids.splice(0).map(imageKey));
    redis.disconnect();
  });

  async function stored(): Promise<string> {
    const id = randomUUID();
    ids.push(id);
    await redis.set(imageKey(id), PNG, 'EX', 60);
    return id;
  }

  it('serves the PNG the worker stored, immutable and with an ETag', async () => {
    const id = await stored();
    const res = await request(port, `/images/${id}.png`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['content-length']).toBe(String(PNG.length));
    expect(res.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(res.body.equals(PNG)).toBe(true);
  });

  it('answers 304 to If-None-Match with the same ETag (also in a list, also weak), 200 otherwise', async () => {
    const id = await stored();
    const { etag } = (await request(port, `/images/${id}.png`)).headers as { etag: string };
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await request(port, `/images/${id}.png`, { headers: { 'if-none-match': inm } });
      expect(res.status).toBe(304);
      expect(res.body.length).toBe(0);
      expect(res.headers.etag).toBe(etag);
    }
    expect((await request(port, `/images/${id}.png`, { headers: { 'if-none-match': '"stale"' } })).status).toBe(200);
  });

  it('answers HEAD like GET without a body', async () => {
    const id = await stored();
    const res = await request(port, `/images/${id}.png`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe(String(PNG.length));
    expect(res.body.length).toBe(0);
  });

  it.each([
    ['an image that does not exist yet', () => `/images/${randomUUID()}.png`],
    ['an id that is not a UUID', () => '/images/not-a-job.png'],
    ['another extension', () => `/images/${randomUUID()}.jpg`],
    ['no extension', () => `/images/${randomUUID()}`],
    ['path traversal', () => '/images/..%2F..%2Fetc%2Fpasswd.png'],
  ])('is a 404 problem for %s', async (_name, url) => {
    const res = await request(port, url());
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(res.json).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404 });
  });

  it('serves /healthz and /readyz (503 while draining); its metrics (not on this port: a 404) count every answer', async () => {
    expect((await request(port, '/healthz')).json).toEqual({ status: 'ok' });
    expect((await request(port, '/readyz')).status).toBe(200);
    await request(port, `/images/${randomUUID()}.png`);
    expect((await request(port, '/images/%zz.png')).status).toBe(400); // a router error: no route hooks run
    expect(statusesOf(await rawHttp(port, 'HELLO\r\n\r\n'))).toEqual([400]); // not HTTP: never a request
    const onPublicPort = await request(port, '/metrics');
    expect(onPublicPort.status).toBe(404);
    expect(onPublicPort.headers['content-type']).toContain('application/problem+json');
    const metrics = await app.metricsRegistry.metrics();
    expect(metrics).toContain('levee_http_requests_total{route="/images/:file",method="GET",status="404",service="media"} 1');
    expect(metrics).toContain('levee_http_requests_total{route="unmatched",method="GET",status="400",service="media"} 1');
    expect(metrics).toContain('levee_http_malformed_requests_total{status="400",service="media"} 1');
    app.lifecycle.draining = true;
    expect((await request(port, '/readyz')).status).toBe(503);
  });
});

describe('media backend without its Redis', () => {
  it('is alive but not ready, and answers 503 + Retry-After for images, then recovers', async () => {
    const server = await RedisServer.start();
    const redis = createRedis('request', { url: server.url });
    const app = buildMedia(parseMediaSettings({ REDIS_URL: server.url }), { redis });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const port = (app.server.address() as AddressInfo).port;
      await waitReady(redis);
      await server.kill();
      await new Promise((r) => setTimeout(r, 100));
      expect((await request(port, '/healthz')).status).toBe(200);
      const ready = await request(port, '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json.detail).toBe('The image store (Redis) is unreachable.');
      const img = await request(port, `/images/${randomUUID()}.png`);
      expect(img.status).toBe(503);
      expect(img.headers['retry-after']).toBe('1');
      await server.restart();
      await waitReady(redis);
      expect((await request(port, '/readyz')).status).toBe(200);
    } finally {
      await app.close();
      redis.disconnect();
      await server.stop();
    }
  });
});
