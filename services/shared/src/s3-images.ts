import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  GetBucketLifecycleConfigurationCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, LifecycleRule, PutObjectCommand, S3Client, S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { S3Location } from './image-settings';

/** Sockets to the store per process (streams to slow readers included). */
const MAX_SOCKETS = 256;

/** A job's image never changes once stored: caches may keep it for a year. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The `ETag` of a PNG: the first 27 characters (162 bits) of its SHA-256 in base64url, the same in every store. */
export function imageEtag(sha256: Buffer): string {
  return `"${sha256.toString('base64url').slice(0, 27)}"`;
}

/** What is known of a stored image without reading it. */
export interface StoredImage {
  readonly etag: string;
  readonly bytes: number;
}

/** Why a call to the object store failed, in one line that names the bucket and what to check. */
export class ImageStoreError extends Error {
  constructor(
    message: string,
    /** The store's HTTP status, when it answered. */
    readonly status?: number,
    /** The store's error code (NoSuchBucket, AccessDenied, …), or the network error's (ECONNREFUSED, …). */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImageStoreError';
  }
}

/** What the bucket's lifecycle configuration says of the images' prefix. */
export type LifecycleReport =
  | { readonly kind: 'expires'; readonly days: number; readonly rule: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'unreadable'; readonly reason: string };

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const HINTS: Record<number, string> = {
  301: 'the bucket is in another region: set IMAGE_S3_REGION',
  400: 'the request was refused: check IMAGE_S3_REGION and IMAGE_S3_ENDPOINT',
  403: 'access denied: check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the workload identity) and the bucket policy',
  404: 'no such bucket: create it, or fix IMAGE_S3_BUCKET',
};

/**
 * PNGs in S3-compatible object storage, through the AWS SDK v3 only (AWS S3, GCS's XML API,
 * Cloudflare R2, MinIO, Ceph RGW). Objects are `<prefix><job id>.png`: a retry overwrites the
 * one object of its job. Credentials come from the SDK's default chain (environment keys, web
 * identity for IRSA, Pod Identity, …), never from Levee's settings.
 *
 * Uploads carry `Content-MD5`, which every one of those stores verifies (a body that arrives
 * damaged is refused, not stored), and the SHA-256 as metadata, from which `GET /images` makes
 * the same ETag as in the Redis store without reading the object. The SDK's newer default
 * checksums (CRC32, aws-chunked) are off: not every S3-compatible store accepts them.
 */
export class S3Images {
  readonly client: S3Client;

  constructor(
    readonly location: S3Location,
    /** Extra client configuration (tests: explicit credentials). Never set by the services. */
    config: Partial<S3ClientConfig> = {},
  ) {
    this.client = new S3Client({
      region: location.region,
      ...(location.endpoint ? { endpoint: location.endpoint } : {}),
      forcePathStyle: location.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK retries throttling, 5xx and connection errors itself (up to 2 retries), with
      // backoff; every call is bounded as a whole by `timeoutMs` (see send).
      maxAttempts: 3,
      requestHandler: {
        connectionTimeout: Math.min(3000, location.timeoutMs),
        // A body that stalls (a store that stops sending, a client that stops reading) frees its socket.
        socketTimeout: location.timeoutMs,
        // Streamed images hold a socket while a client reads; the SDK's default of 50 is low for that.
        httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
        httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      },
      ...config,
    });
  }

  /** Where a job's PNG is: `<prefix><id>.png`. */
  key(id: string): string {
    return `${this.location.prefix}${id}.png`;
  }

  /** `s3://bucket/prefix`, for log lines. */
  describe(): string {
    return `s3://${this.location.bucket}/${this.location.prefix}${this.location.endpoint ? ` at ${this.location.endpoint}` : ''}`;
  }

  /** Stores (or overwrites) the PNG of job `id`. */
  async put(id: string, png: Buffer, signal?: AbortSignal): Promise<void> {
    const sha256 = createHash('sha256').update(png).digest('base64');
    await this.call(`upload ${this.key(id)}`, (abortSignal) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.key(id),
          Body: png,
          ContentType: 'image/png',
          ContentLength: png.length,
          CacheControl: IMMUTABLE,
          ContentMD5: createHash('md5').update(png).digest('base64'),
          Metadata: { sha256 },
        }),
        { abortSignal },
      ),
      signal,
    );
  }

  /**
   * Resolves when these credentials may write under the prefix: a few bytes to
   * `<prefix>.levee-write-check` (the worker's check; the lifecycle rule expires it with the images).
   */
  async checkWrite(signal?: AbortSignal): Promise<void> {
    const key = `${this.location.prefix}.levee-write-check`;
    const body = Buffer.from('levee\n');
    await this.call(`write ${key}`, (abortSignal) =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.location.bucket, Key: key, Body: body, ContentType: 'text/plain', CacheControl: 'no-store', ContentMD5: createHash('md5').update(body).digest('base64') }),
        { abortSignal },
      ),
      signal,
    );
  }

  /** The image's ETag and size, or undefined when there is no such object. */
  async head(id: string, signal?: AbortSignal): Promise<StoredImage | undefined> {
    try {
      const head = await this.call(`read ${this.key(id)}`, (abortSignal) => this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.key(id) }), { abortSignal }), signal);
      return { etag: this.etagOf(head.Metadata, head.ETag), bytes: head.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * The image as a stream (never buffered whole), or undefined when there is no such object.
   * `timeoutMs` bounds the wait for the answer; the body then flows as fast as its reader takes
   * it, and a body that stalls for `timeoutMs` is cut (socketTimeout).
   */
  async get(id: string): Promise<(StoredImage & { body: Readable }) | undefined> {
    try {
      const res = await this.call(`read ${this.key(id)}`, (abortSignal) => this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(id) }), { abortSignal }));
      return { etag: this.etagOf(res.Metadata, res.ETag), bytes: res.ContentLength ?? 0, body: res.Body as Readable };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A presigned GET URL of the image, valid `ttlSeconds` (signed locally: no call to the store). */
  presign(id: string, ttlSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(id) }), { expiresIn: ttlSeconds });
  }

  /** Resolves when the bucket exists and these credentials may use it; else an ImageStoreError saying what to fix. */
  async checkBucket(signal?: AbortSignal): Promise<void> {
    await this.call('reach the bucket', (abortSignal) => this.client.send(new HeadBucketCommand({ Bucket: this.location.bucket }), { abortSignal }), signal);
  }

  /**
   * Whether the bucket's lifecycle configuration expires the images' prefix. Reading it needs
   * `s3:GetLifecycleConfiguration` only; Levee never writes it.
   */
  async lifecycle(): Promise<LifecycleReport> {
    let rules: LifecycleRule[];
    try {
      rules = (await this.call('read the lifecycle configuration', (abortSignal) => this.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: this.location.bucket }), { abortSignal }))).Rules ?? [];
    } catch (err) {
      if ((err as ImageStoreError).code === 'NoSuchLifecycleConfiguration') return { kind: 'none' };
      return { kind: 'unreadable', reason: (err as Error).message };
    }
    return expiryOf(rules, this.location.prefix);
  }

  destroy(): void {
    this.client.destroy();
  }

  private etagOf(metadata: Record<string, string> | undefined, storeEtag: string | undefined): string {
    const sha256 = metadata?.sha256;
    if (sha256 && /^[A-Za-z0-9+/]{43}=$/.test(sha256)) return imageEtag(Buffer.from(sha256, 'base64'));
    // Put there by something else: the store's own tag.
    return storeEtag ?? '"unknown"';
  }

  /**
   * One call to the store, bounded as a whole (the SDK's retries included) by `timeoutMs`, and
   * by `signal` when given; the bound ends when the answer arrives (a streamed body is not cut
   * by it). Failures become one ImageStoreError line.
   */
  private async call<T>(what: string, fn: (abortSignal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.location.timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await fn(controller.signal);
    } catch (err) {
      if (controller.signal.aborted && !signal?.aborted) {
        throw new ImageStoreError(`image store ${this.describe()}: ${what}: no answer within ${this.location.timeoutMs} ms (the store is unreachable or overloaded: check IMAGE_S3_ENDPOINT and the egress NetworkPolicy)`, undefined, 'Timeout', { cause: err });
      }
      throw this.explain(what, err);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** One line: what failed, on which bucket, the store's answer and what to check. */
  explain(what: string, err: unknown): ImageStoreError {
    if (err instanceof ImageStoreError) return err;
    const e = (err ?? {}) as SdkError;
    // No credentials at all: the SDK's default chain found none (it never reached the store).
    if (e.name === 'CredentialsProviderError' || e.name === 'TokenProviderError') {
      return new ImageStoreError(
        `image store ${this.describe()}: ${what}: no credentials: ${e.message ?? e.name} (give the pods a workload identity, e.g. LEVEE_IMAGE_S3_ROLE_ARN, or keys: LEVEE_IMAGE_S3_CREDENTIALS_SECRET)`,
        undefined,
        e.name,
        { cause: err },
      );
    }
    const status = e.$metadata?.httpStatusCode;
    // HEAD answers carry no body, so the SDK only knows the status ("NotFound", "Unknown").
    const code = e.name && !['Unknown', 'UnknownError', 'Error'].includes(e.name) ? e.name : e.code;
    const answer = status !== undefined ? `answered ${status}${code ? ` ${code}` : ''}` : `${code ?? 'failed'}: ${e.message ?? String(err)}`;
    const hint = status !== undefined ? HINTS[status] : 'the store is unreachable: check IMAGE_S3_ENDPOINT and the egress NetworkPolicy';
    return new ImageStoreError(`image store ${this.describe()}: ${what}: ${answer}${hint ? ` (${hint})` : ''}`, status, code, { cause: err });
  }
}

/** No such object (a missing bucket is not this: GET says NoSuchBucket; a HEAD cannot tell, see S3ImageSource). */
function isNotFound(err: unknown): boolean {
  return err instanceof ImageStoreError && err.status === 404 && (err.code === 'NotFound' || err.code === 'NoSuchKey');
}

/** The first enabled, untagged rule whose prefix covers `prefix` and that expires objects after some days. */
export function expiryOf(rules: readonly LifecycleRule[], prefix: string): LifecycleReport {
  // A store that answers in a shape of its own (GCS's XML API: Action/Condition) says nothing we can read.
  if (rules.some((r) => r.Status === undefined)) return { kind: 'unreadable', reason: 'the lifecycle rules are not in the S3 shape (no Status): check them with the store\'s own tools' };
  for (const rule of rules) {
    if (rule.Status !== 'Enabled' || !rule.Expiration?.Days) continue;
    const filter = rule.Filter;
    // A rule that only applies to tagged objects never applies to Levee's (untagged) ones.
    if (filter?.Tag || (filter?.And?.Tags?.length ?? 0) > 0) continue;
    const rulePrefix = filter?.Prefix ?? filter?.And?.Prefix ?? rule.Prefix ?? '';
    if (prefix.startsWith(rulePrefix)) return { kind: 'expires', days: rule.Expiration.Days, rule: rule.ID ?? '(unnamed)' };
  }
  return { kind: 'none' };
}
