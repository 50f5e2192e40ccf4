import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { imageKey } from '../../shared/src/keys';
import { ImageStoreError, S3Images, StoredImage, imageEtag } from '../../shared/src/s3-images';

/** Where `GET /images/{id}.png` reads a job's PNG from: the queue Redis, or object storage. */
export interface ImageSource {
  readonly kind: 'redis' | 's3';
  /** ETag and size without the bytes where the store can (S3 HEAD); undefined: no such image (yet). */
  head(id: string): Promise<StoredImage | undefined>;
  /** The image: whole (Redis) or as a stream (S3, never buffered); undefined: no such image (yet). */
  get(id: string): Promise<(StoredImage & { body: Buffer | Readable }) | undefined>;
  /** A presigned URL of the object (s3 only: IMAGE_DELIVERY=redirect). */
  presign?(id: string, ttlSeconds: number): Promise<string>;
  /** Readiness: the store answered its last check. */
  ready(): boolean;
  /** What readiness says while not ready. */
  readonly notReadyDetail: string;
  close(): void;
}

/** PNGs in the queue Redis (`imageKey(id)`); the ETag is computed from the bytes, which Redis hands over anyway. */
export class RedisImageSource implements ImageSource {
  readonly kind = 'redis';
  readonly notReadyDetail = 'The image store (Redis) is unreachable.';
  constructor(private readonly redis: Redis) {}

  async get(id: string): Promise<(StoredImage & { body: Buffer }) | undefined> {
    const png = await this.redis.getBuffer(imageKey(id));
    if (!png) return undefined;
    return { etag: imageEtag(createHash('sha256').update(png).digest()), bytes: png.length, body: png };
  }

  head(id: string): Promise<StoredImage | undefined> {
    return this.get(id);
  }

  ready(): boolean {
    return this.redis.status === 'ready';
  }

  close(): void {}
}

/** How often media checks that the bucket answers (readiness). */
export const S3_CHECK_INTERVAL_MS = 10_000;

/**
 * PNGs in object storage (`S3Images`): HEAD for conditional requests and redirects, GET as a
 * stream otherwise. Readiness is the bucket's last check (HeadBucket every
 * S3_CHECK_INTERVAL_MS; the first at start): with wrong credentials or a missing bucket the pod
 * stays out of rotation and says why in one log line, repeated only when the reason changes.
 */
export class S3ImageSource implements ImageSource {
  readonly kind = 's3';
  private ok = false;
  private lastProblem?: string;
  private readonly timer: NodeJS.Timeout;

  private readonly logger?: Logger;
  private readonly ownsClient: boolean;

  constructor(
    private readonly images: S3Images,
    options: { logger?: Logger; checkEveryMs?: number; /** close() destroys the client too. @default true */ ownsClient?: boolean } = {},
  ) {
    this.logger = options.logger;
    this.ownsClient = options.ownsClient ?? true;
    void this.check();
    this.timer = setInterval(() => void this.check(), options.checkEveryMs ?? S3_CHECK_INTERVAL_MS).unref();
  }

  get notReadyDetail(): string {
    return `The image store is not usable: ${this.lastProblem ?? 'not checked yet'}`;
  }

  /** One HeadBucket; updates readiness and logs a change. */
  async check(): Promise<boolean> {
    try {
      await this.images.checkBucket(AbortSignal.timeout(this.images.location.timeoutMs));
      if (!this.ok) this.logger?.info({ store: this.images.describe() }, 'image store reachable: ready');
      this.ok = true;
      this.lastProblem = undefined;
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== this.lastProblem) this.logger?.error(problem);
      this.ok = false;
      this.lastProblem = problem;
    }
    return this.ok;
  }

  /** While the last bucket check failed, a HEAD's 404 could be the bucket's: say unavailable instead. */
  head(id: string): Promise<StoredImage | undefined> {
    return this.ok ? this.images.head(id) : Promise.reject(new ImageStoreError(this.notReadyDetail));
  }

  get(id: string): Promise<(StoredImage & { body: Readable }) | undefined> {
    return this.ok ? this.images.get(id) : Promise.reject(new ImageStoreError(this.notReadyDetail));
  }

  presign(id: string, ttlSeconds: number): Promise<string> {
    return this.images.presign(id, ttlSeconds);
  }

  ready(): boolean {
    return this.ok;
  }

  close(): void {
    clearInterval(this.timer);
    if (this.ownsClient) this.images.destroy();
  }
}
