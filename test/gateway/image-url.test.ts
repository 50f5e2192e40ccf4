import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { imageUrlOf } from '../../services/shared/src/image-settings';
import { inject, Stack, testSettings } from './helpers';

const ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

/** An "object store" that only counts what reaches it (and answers 503 to everything). */
async function countingStore(): Promise<{ url: string; calls: string[]; close(): Promise<void> }> {
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    calls.push(`${req.method} ${req.url}`);
    res.writeHead(503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('imageUrl: where the status document sends clients for the PNG', () => {
  const s3 = { kind: 's3' as const, bucket: 'b', prefix: 'previews/pr-1/images/', region: 'us-east-1', forcePathStyle: false, timeoutMs: 1000 };
  test.each([
    ['Levee\'s route, relative, without a public base (either store)', { kind: 'redis' as const }, undefined, `/images/${ID}.png`],
    ['the same with s3', s3, undefined, `/images/${ID}.png`],
    ['a public bucket or CDN: the object key on its base (s3)', s3, 'https://cdn.example.com/', `https://cdn.example.com/previews/pr-1/images/${ID}.png`],
    ['a CDN in front of Levee: the route on its base (redis)', { kind: 'redis' as const }, 'https://cdn.example.com', `https://cdn.example.com/images/${ID}.png`],
  ])('%s', (_name, target, base, expected) => {
    expect(imageUrlOf(target, base, ID)).toBe(expected);
  });
});

describe('the gateway with IMAGE_STORE=s3', () => {
  const stack = new Stack();
  afterAll(() => stack.close());

  test('POST /api/images makes no call to the object store, and its imageUrl is on IMAGE_PUBLIC_BASE_URL', async () => {
    const store = await countingStore();
    // Were a call made, these credentials would let it reach the store (and the spy see it).
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
    const send = jest.spyOn(S3Client.prototype, 'send');
    try {
      const app = await stack.gateway(
        testSettings({ IMAGE_STORE: 's3', IMAGE_S3_BUCKET: 'levee-images', IMAGE_S3_ENDPOINT: store.url, IMAGE_S3_FORCE_PATH_STYLE: 'true', IMAGE_PUBLIC_BASE_URL: 'https://cdn.example.com', SERVE_MEDIA: 'false' }),
      );
      const accepted = await inject(app, { method: 'POST', url: '/api/images', payload: { prompt: 'a quiet harbour' } });
      expect(accepted.statusCode).toBe(202);
      const { id, imageUrl } = accepted.json();
      expect(imageUrl).toBe(`https://cdn.example.com/images/${id}.png`);
      expect((await inject(app, `/api/images/${id}`)).statusCode).toBe(200);
      expect((await inject(app, `/images/${id}.png`)).statusCode).toBe(404); // no media routes on this gateway
      await new Promise((r) => setTimeout(r, 100));
      expect(store.calls).toEqual([]);
      expect(send).not.toHaveBeenCalled();
    } finally {
      send.mockRestore();
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED']) delete process.env[k];
      await store.close();
    }
  });

  test('with SERVE_MEDIA (npm run dev) it reads the PNG from the store, and says 503 + Retry-After when the store fails', async () => {
    const store = await countingStore();
    // Credentials from the SDK's default chain: here the environment (never the metadata address).
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' });
    try {
      const app = await stack.gateway(testSettings({ IMAGE_STORE: 's3', IMAGE_S3_BUCKET: 'levee-images', IMAGE_S3_ENDPOINT: store.url, IMAGE_S3_FORCE_PATH_STYLE: 'true', IMAGE_S3_TIMEOUT_MS: '2000', SERVE_MEDIA: 'true' }));
      const res = await inject(app, `/images/${ID}.png`);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
      // It checked the bucket (the store answered 503), and answers unavailable rather than 404.
      expect(store.calls.some((c) => c.startsWith('HEAD /levee-images'))).toBe(true);
      expect(res.json().detail).toBe('The image store is temporarily unreachable.');
    } finally {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED']) delete process.env[k];
      await store.close();
    }
  });
});
