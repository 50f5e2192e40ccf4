import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ImageStoreError, IMMUTABLE, expiryOf, imageEtag } from '../../services/shared/src/s3-images';
import { freePort } from '../helpers/ports';
import { S3Server } from '../helpers/s3-server';

const png = (n: number) => Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from(`picture ${n} ${randomUUID()}`)]);

/** A pass-through HTTP proxy in front of the store that records what each request carried. */
async function recordingProxy(target: number): Promise<{ url: string; seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    const upstream = http.request({ host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('S3Images against an S3-compatible server (s3rver)', () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await S3Server.start(['levee-test']);
  });
  afterAll(async () => {
    await s3.stop();
  });

  it('uploads <prefix><id>.png as image/png, immutable, with the Content-MD5 the store verifies and the SHA-256 as metadata', async () => {
    const proxy = await recordingProxy(s3.port);
    const images = s3.images({ endpoint: proxy.url, prefix: 'previews/pr-7/images/' });
    try {
      const id = randomUUID();
      const bytes = png(1);
      await images.put(id, bytes);
      const put = proxy.seen.find((r) => r.method === 'PUT')!;
      expect(put.url.split('?')[0]).toBe(`/levee-test/previews/pr-7/images/${id}.png`);
      expect(put.headers['content-type']).toBe('image/png');
      expect(put.headers['cache-control']).toBe(IMMUTABLE);
      expect(put.headers['content-md5']).toBe(createHash('md5').update(bytes).digest('base64'));
      expect(put.headers['x-amz-meta-sha256']).toBe(createHash('sha256').update(bytes).digest('base64'));
      // No SDK default checksum (CRC32 / aws-chunked): not every S3-compatible store takes them.
      expect(Object.keys(put.headers).filter((h) => h.startsWith('x-amz-checksum') || h === 'x-amz-sdk-checksum-algorithm')).toEqual([]);
      expect(put.headers['content-length']).toBe(String(bytes.length));
    } finally {
      images.destroy();
      await proxy.close();
    }
  });

  it('reads back the same bytes, with the ETag the Redis store would give them (from the metadata, without reading the body)', async () => {
    const images = s3.images();
    try {
      const id = randomUUID();
      const bytes = png(2);
      await images.put(id, bytes);
      const etag = imageEtag(createHash('sha256').update(bytes).digest());
      expect(await images.head(id)).toEqual({ etag, bytes: bytes.length });
      const got = (await images.get(id))!;
      expect(got.etag).toBe(etag);
      expect(got.bytes).toBe(bytes.length);
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
      expect(await images.head(randomUUID())).toBeUndefined();
      expect(await images.get(randomUUID())).toBeUndefined();
    } finally {
      images.destroy();
    }
  });

  it('a retry overwrites the one object of its job: never a second', async () => {
    const images = s3.images({ prefix: `retry-${randomUUID()}/` });
    try {
      const id = randomUUID();
      await images.put(id, png(3));
      const last = png(4);
      await images.put(id, last);
      const listed = await images.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: images.location.prefix }));
      expect(listed.Contents?.map((o) => o.Key)).toEqual([images.key(id)]);
      expect((await images.head(id))!.bytes).toBe(last.length);
    } finally {
      images.destroy();
    }
  });

  it('presigns a GET URL that serves the PNG, with the headers set at upload, and makes no call to do it', async () => {
    const proxy = await recordingProxy(s3.port);
    const images = s3.images({ endpoint: proxy.url });
    try {
      const id = randomUUID();
      const bytes = png(5);
      await images.put(id, bytes);
      const before = proxy.seen.length;
      const url = new URL(await images.presign(id, 900));
      expect(proxy.seen.length).toBe(before);
      expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
      expect(url.pathname).toBe(`/levee-test/images/${id}.png`);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('cache-control')).toBe(IMMUTABLE);
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    } finally {
      images.destroy();
      await proxy.close();
    }
  });

  it('checkBucket passes for a bucket it may use, and otherwise says in one line which bucket and what to fix', async () => {
    const ok = s3.images();
    const missing = s3.images({ bucket: 'no-such-bucket' });
    const badKey = s3.images({}, { credentials: { accessKeyId: 'WRONG', secretAccessKey: 'x' } });
    const nobody = s3.images({ endpoint: `http://127.0.0.1:${await freePort()}`, timeoutMs: 2000 });
    try {
      await expect(ok.checkBucket()).resolves.toBeUndefined();
      const e1 = await missing.checkBucket().catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(ImageStoreError);
      expect((e1 as ImageStoreError).status).toBe(404);
      expect((e1 as Error).message).toMatch(/^image store s3:\/\/no-such-bucket\/images\/ at http:\/\/127\.0\.0\.1:\d+: reach the bucket: answered 404 NotFound \(no such bucket: create it, or fix IMAGE_S3_BUCKET\)$/);
      const e2 = (await badKey.checkBucket().catch((e: unknown) => e)) as ImageStoreError;
      expect(e2.status).toBe(403);
      expect(e2.message).toContain('s3://levee-test/images/');
      expect(e2.message).toContain('access denied: check the credentials');
      const e3 = (await nobody.checkBucket().catch((e: unknown) => e)) as ImageStoreError;
      expect(e3.status).toBeUndefined();
      expect(e3.message).toMatch(/ECONNREFUSED/);
      expect(e3.message).toContain('the store is unreachable: check IMAGE_S3_ENDPOINT');
      // An upload with a key the store does not know is refused the same way (the store names its error).
      const e4 = (await badKey.put(randomUUID(), png(6)).catch((e: unknown) => e)) as ImageStoreError;
      expect(e4.message).toMatch(/upload images\/[0-9a-f-]+\.png: answered 403 InvalidAccessKeyId/);
    } finally {
      for (const c of [ok, missing, badKey, nobody]) c.destroy();
    }
  });

  it('reports a lifecycle configuration it cannot read (s3rver implements none) rather than guessing', async () => {
    const images = s3.images();
    try {
      const report = await images.lifecycle();
      expect(report.kind).toBe('unreadable');
      expect(report.kind === 'unreadable' && report.reason).toMatch(/read the lifecycle configuration: answered 501 NotImplemented/);
    } finally {
      images.destroy();
    }
  });
});

describe('expiryOf: does a lifecycle rule expire the images?', () => {
  const rule = (o: object) => ({ Status: 'Enabled', Expiration: { Days: 1 }, ID: 'levee', ...o }) as never;
  it('finds an enabled rule whose prefix covers the images (filter, And, legacy, or none)', () => {
    expect(expiryOf([rule({ Filter: { Prefix: 'images/' } })], 'images/')).toEqual({ kind: 'expires', days: 1, rule: 'levee' });
    expect(expiryOf([rule({ Filter: { Prefix: 'previews/' } })], 'previews/pr-1/images/')).toEqual({ kind: 'expires', days: 1, rule: 'levee' });
    expect(expiryOf([rule({ Filter: { And: { Prefix: 'images/', ObjectSizeGreaterThan: 0 } } })], 'images/').kind).toBe('expires');
    expect(expiryOf([rule({ Prefix: 'images/' })], 'images/').kind).toBe('expires');
    expect(expiryOf([rule({ Filter: {} })], 'images/').kind).toBe('expires');
  });
  it('ignores disabled rules, rules without an expiration, other prefixes and tag-only rules', () => {
    expect(expiryOf([rule({ Status: 'Disabled', Filter: { Prefix: '' } })], 'images/')).toEqual({ kind: 'none' });
    expect(expiryOf([rule({ Expiration: undefined, Filter: { Prefix: '' } })], 'images/')).toEqual({ kind: 'none' });
    expect(expiryOf([rule({ Filter: { Prefix: 'other/' } })], 'images/')).toEqual({ kind: 'none' });
    expect(expiryOf([rule({ Filter: { Prefix: 'images/pr-1/' } })], 'images/')).toEqual({ kind: 'none' });
    expect(expiryOf([rule({ Filter: { Tag: { Key: 'k', Value: 'v' } } })], 'images/')).toEqual({ kind: 'none' });
    expect(expiryOf([], 'images/')).toEqual({ kind: 'none' });
  });
});
