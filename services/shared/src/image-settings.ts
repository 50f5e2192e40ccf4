import { z } from 'zod';
import { booleanSetting, intSetting } from './settings';

/**
 * Where rendered PNGs live, for the worker (writes), media and the gateway under SERVE_MEDIA
 * (read). `redis`: in the queue Redis next to the jobs (nothing more to run; `npm run dev`).
 * `s3`: any S3-compatible object storage through the AWS SDK (AWS S3, GCS's XML API,
 * Cloudflare R2, MinIO, Ceph RGW); credentials from the SDK's default chain only.
 */
export const IMAGE_STORES = ['redis', 's3'] as const;
export type ImageStoreKind = (typeof IMAGE_STORES)[number];

/** How `GET /images/{id}.png` hands out an image kept in `s3`: through media, or a 302 to a presigned URL. */
export const IMAGE_DELIVERIES = ['stream', 'redirect'] as const;

const httpUrl = (what: string) =>
  z.string().refine((v) => /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v) && !new URL(v).search && !new URL(v).hash, { error: `must be an http:// or https:// URL ${what}` });

/** Bucket names: S3's rules (3-63 characters), widened for GCS (dots, underscores, up to 222). */
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
/** Object key prefix: plain key characters, no leading "/", ending in "/" (a folder) or empty. */
const PREFIX = /^([A-Za-z0-9._-]+\/)*$/;

/** The image store's settings (worker, media, gateway). */
export const imageStoreSettings = {
  /** Where the rendered PNGs are: `redis` (the queue Redis) or `s3` (object storage: docs/image-store.md). */
  IMAGE_STORE: z.enum(IMAGE_STORES, { error: `must be one of ${IMAGE_STORES.join(', ')}` }).default('redis'),
  /** s3: the bucket (required with s3). */
  IMAGE_S3_BUCKET: z.string().regex(BUCKET, { error: 'must be a bucket name: 3-222 characters of a-z, 0-9, ".", "_" and "-", starting and ending with a letter or digit' }).optional(),
  /** s3: the objects are `<prefix><job id>.png`. */
  IMAGE_S3_PREFIX: z.string().max(512).regex(PREFIX, { error: 'must be empty or folders ending in "/" (e.g. images/ or previews/pr-1/images/): letters, digits, ".", "_" and "-"' }).default('images/'),
  /** s3: the store's endpoint; unset means AWS S3 (the region's endpoint). */
  IMAGE_S3_ENDPOINT: httpUrl('without a query or fragment (e.g. https://storage.googleapis.com)').optional(),
  /** s3: signing region; unset: AWS_REGION, else us-east-1. */
  IMAGE_S3_REGION: z.string().regex(/^[a-z0-9-]{1,64}$/, { error: 'must be a region name such as eu-west-1 or auto' }).optional(),
  /** The AWS SDK's region, used when `IMAGE_S3_REGION` is unset. */
  AWS_REGION: z.string().optional(),
  /** s3: `<endpoint>/<bucket>/<key>` instead of `<bucket>.<endpoint>/<key>` (MinIO, Ceph, emulators). */
  IMAGE_S3_FORCE_PATH_STYLE: booleanSetting(false),
  /** s3: longest one store call may take (a timeout is a failure of the store). */
  IMAGE_S3_TIMEOUT_MS: intSetting(100, 600_000, 15_000),
};

/** How images are delivered (media, gateway). */
export const imageDeliverySettings = {
  /** How `GET /images/{id}.png` answers: `stream` the bytes, or `redirect` (302) to a presigned URL of the object (s3). */
  IMAGE_DELIVERY: z.enum(IMAGE_DELIVERIES, { error: `must be one of ${IMAGE_DELIVERIES.join(', ')}` }).default('stream'),
  /** redirect: lifetime of a presigned URL. */
  IMAGE_URL_TTL_SECONDS: intSetting(60, 7 * 86_400, 900),
  /**
   * A CDN or public bucket in front of the store: the status document's `imageUrl` becomes
   * `<this>/<object key>` (s3; with the default prefix that is `<this>/images/<id>.png`) or
   * `<this>/images/<id>.png` (redis).
   */
  IMAGE_PUBLIC_BASE_URL: httpUrl('without a query or fragment (e.g. https://cdn.example.com)').optional(),
};

type StoreInput = z.infer<z.ZodObject<typeof imageStoreSettings>>;
type DeliveryInput = z.infer<z.ZodObject<typeof imageDeliverySettings>>;

/** Cross-setting rules, for a schema's superRefine: s3 needs a bucket; redirect needs s3. */
export function checkImageSettings(env: Partial<StoreInput & DeliveryInput>, ctx: z.RefinementCtx): void {
  if (env.IMAGE_STORE === 's3' && !env.IMAGE_S3_BUCKET) {
    ctx.addIssue({ code: 'custom', path: ['IMAGE_S3_BUCKET'], message: 'is required with IMAGE_STORE=s3 (the bucket the PNGs go to)' });
  }
  if (env.IMAGE_DELIVERY === 'redirect' && env.IMAGE_STORE !== 's3') {
    ctx.addIssue({ code: 'custom', path: ['IMAGE_DELIVERY'], message: `redirect needs IMAGE_STORE=s3 (a presigned URL of the object); got IMAGE_STORE=${env.IMAGE_STORE ?? 'redis'}` });
  }
}

/** The S3 side of the settings, resolved: what the SDK client and the object keys need. */
export interface S3Location {
  readonly bucket: string;
  readonly prefix: string;
  readonly endpoint?: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly timeoutMs: number;
}

export type ImageStoreTarget = { readonly kind: 'redis' } | ({ readonly kind: 's3' } & S3Location);

/** Resolves the store settings (after the schema checked them). */
export function imageStoreTarget(env: StoreInput): ImageStoreTarget {
  if (env.IMAGE_STORE === 'redis') return { kind: 'redis' };
  return {
    kind: 's3',
    bucket: env.IMAGE_S3_BUCKET!,
    prefix: env.IMAGE_S3_PREFIX,
    ...(env.IMAGE_S3_ENDPOINT ? { endpoint: env.IMAGE_S3_ENDPOINT } : {}),
    region: env.IMAGE_S3_REGION ?? (env.AWS_REGION || 'us-east-1'),
    forcePathStyle: env.IMAGE_S3_FORCE_PATH_STYLE,
    timeoutMs: env.IMAGE_S3_TIMEOUT_MS,
  };
}

/** The path of a job's image on Levee's own routes (media; the gateway in dev). */
export function imagePath(id: string): string {
  return `/images/${id}.png`;
}

/**
 * The `imageUrl` of a job: Levee's route (relative), or with IMAGE_PUBLIC_BASE_URL the
 * absolute URL on that base: the object key in s3 (a public bucket or a CDN in front of it;
 * with the default prefix `images/` it is the same path as Levee's route), the route's path in redis.
 */
export function imageUrlOf(target: ImageStoreTarget, publicBaseUrl: string | undefined, id: string): string {
  if (!publicBaseUrl) return imagePath(id);
  const base = publicBaseUrl.replace(/\/+$/, '');
  return target.kind === 's3' ? `${base}/${target.prefix}${id}.png` : `${base}${imagePath(id)}`;
}
