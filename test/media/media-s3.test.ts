import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { buildMedia, MediaApp } from '../../services/media/src/app';
import { S3ImageSource } from '../../services/media/src/image-source';
import { parseMediaSettings } from '../../services/media/src/settings';
import { IMMUTABLE, S3Images, imageEtag } from '../../services/shared/src/s3-images';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { S3Server } from '../helpers/s3-server';
import { until } from '../helpers/wait';

const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(300_000, 7), Buffer.from(randomUUID())]);

describe('media backend with IMAGE_STORE=s3', () => {
  let s3: S3Server;
  let images: S3Images;
  const apps: MediaApp[] = [];

  beforeAll(async () => {
    s3 = await S3Server.start(['levee-media']);
    images = s3.images();
  });
  afterAll(async () => {
    images.destroy();
    await s3.stop();
  });
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  /** A media app on the store; its queue Redis points at a port nobody listens on: s3 mode must not need it. */
  async function start(env: Record<string, string> = {}, client = images): Promise<{ app: MediaApp; port: number }> {
    const settings = parseMediaSettings({ ...s3.env(), REDIS_URL: `redis://127.0.0.1:${await freePort()}`, ...env });
    const app = buildMedia(settings, { images: client });
    apps.push(app);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { app, port: (app.server.address() as AddressInfo).port };
  }
  const put = async () => {
    const id = randomUUID();
    await images.put(id, PNG);
    return id;
  };
  const etag = imageEtag(createHash('sha256').update(PNG).digest());

  it('streams the PNG from the bucket: image/png, immutable, its length, and the same ETag as from Redis; ready without any Redis', async () => {
    const { port, app } = await start();
    await until(() => app.imageStore.source.ready(), 5000, 'the bucket check');
    expect((await request(port, '/readyz')).status).toBe(200);
    expect(app.imageStore.redis).toBeUndefined();
    const id = await put();
    const res = await request(port, `/images/${id}.png`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['cache-control']).toBe(IMMUTABLE);
    expect(res.headers['content-length']).toBe(String(PNG.length));
    expect(res.headers.etag).toBe(etag);
    expect(res.body.equals(PNG)).toBe(true);
  });

  it('answers HEAD with the GET\'s headers from a HEAD of the object (no bytes read from the store)', async () => {
    const { port, app } = await start();
    await until(() => app.imageStore.source.ready(), 5000, 'the bucket check');
    const id = await put();
    const get = jest.spyOn(images, 'get');
    try {
      const res = await request(port, `/images/${id}.png`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.headers['content-length']).toBe(String(PNG.length));
      expect(res.headers.etag).toBe(etag);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.body.length).toBe(0);
      expect(get).not.toHaveBeenCalled();
    } finally {
      get.mockRestore();
    }
  });

  it('answers If-None-Match with 304 and no body, 404 (no-store) before the image exists', async () => {
    const { port } = await start();
    const id = await put();
    const res = await request(port, `/images/${id}.png`, { headers: { 'if-none-match': `W/${etag}` } });
    expect(res.status).toBe(304);
    expect(res.body.length).toBe(0);
    expect(res.headers.etag).toBe(etag);
    expect(res.headers['cache-control']).toBe(IMMUTABLE);
    expect((await request(port, `/images/${id}.png`, { headers: { 'if-none-match': '"other"' } })).body.equals(PNG)).toBe(true);
    const missing = await request(port, `/images/${randomUUID()}.png`);
    expect(missing.status).toBe(404);
    expect(missing.headers['cache-control']).toBe('no-store');
    expect(missing.headers['content-type']).toContain('application/problem+json');
  });

  it('IMAGE_DELIVERY=redirect: a 302 to a presigned URL (IMAGE_URL_TTL_SECONDS) that serves the PNG; 404 and 304 as in stream', async () => {
    const { port } = await start({ IMAGE_DELIVERY: 'redirect', IMAGE_URL_TTL_SECONDS: '600' });
    const id = await put();
    const res = await request(port, `/images/${id}.png`);
    expect(res.status).toBe(302);
    expect(res.body.length).toBe(0);
    expect(res.headers['cache-control']).toBe('no-store');
    const location = new URL(res.headers.location as string);
    expect(location.origin).toBe(s3.endpoint);
    expect(location.pathname).toBe(`/levee-media/images/${id}.png`);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('600');
    const followed = await fetch(location);
    expect(followed.status).toBe(200);
    expect(followed.headers.get('content-type')).toBe('image/png');
    expect(followed.headers.get('cache-control')).toBe(IMMUTABLE);
    expect(Buffer.from(await followed.arrayBuffer()).equals(PNG)).toBe(true);
    expect((await request(port, `/images/${randomUUID()}.png`)).status).toBe(404);
    expect((await request(port, `/images/${id}.png`, { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('is not ready, saying which bucket and why, while the bucket is missing; answers 503 + Retry-After while the store is down', async () => {
    const missing = s3.images({ bucket: 'no-such-bucket' });
    const { port, app } = await start({ IMAGE_S3_BUCKET: 'no-such-bucket' }, missing);
    try {
      const source = app.imageStore.source as S3ImageSource;
      expect(await source.check()).toBe(false);
      const ready = await request(port, '/readyz');
      expect(ready.status).toBe(503);
      expect(ready.json.detail).toMatch(/^The image store is not usable: image store s3:\/\/no-such-bucket\/images\/ .*answered 404 .*no such bucket/);
      expect((await request(port, '/healthz')).status).toBe(200);
    } finally {
      await app.close();
      missing.destroy();
    }

    const { port: p2, app: up } = await start();
    const id = await put();
    await s3.kill();
    try {
      const res = await request(p2, `/images/${id}.png`);
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      expect(await (up.imageStore.source as S3ImageSource).check()).toBe(false);
      expect((await request(p2, '/readyz')).status).toBe(503);
    } finally {
      await s3.restart();
    }
    expect(await (up.imageStore.source as S3ImageSource).check()).toBe(true);
    expect((await request(p2, '/readyz')).status).toBe(200);
    expect((await request(p2, `/images/${id}.png`)).body.equals(PNG)).toBe(true);
  });

  it('refuses redirect delivery without object storage, naming both settings', () => {
    expect(() => parseMediaSettings({ IMAGE_DELIVERY: 'redirect' })).toThrow(/IMAGE_DELIVERY="redirect": redirect needs IMAGE_STORE=s3/);
    expect(() => parseMediaSettings({ IMAGE_STORE: 's3' })).toThrow(/IMAGE_S3_BUCKET="": is required with IMAGE_STORE=s3/);
  });
});
