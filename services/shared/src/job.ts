/** What the gateway enqueues and the worker renders: the body of POST /api/images. */
export interface RenderRequest {
  prompt: string;
  width: number;
  height: number;
  style?: string;
  seed?: number;
  /** Where the signed `image.completed` / `image.failed` goes (see webhooks.ts); never sent to the model. */
  webhookUrl?: string;
}

/** The BullMQ job name used for renders. */
export const RENDER_JOB = 'render';

/** Default job options: retries with exponential backoff, bounded history in Redis. */
export const RENDER_JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential' as const, delay: 1000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
};

/** How long an Idempotency-Key maps to its job (CONTRACT section 3: 24 h). */
export const IDEMPOTENCY_SECONDS = 24 * 3600;

/**
 * What the worker keeps of a finished job (under `outcomeKey(id)`): a completed job's next to
 * its image, for as long as the image or the idempotency window lasts, whichever is longer; a
 * job that failed for good, for the idempotency window. BullMQ keeps only the last 10,000
 * completed and 10,000 failed jobs (`removeOnComplete`/`removeOnFail`), fewer than a flood
 * finishes in a day: the status route and idempotent replays fall back to this record.
 */
export interface JobOutcome {
  /** How the job finished (`cancelled`: DELETE /api/images/{id}). */
  status: 'completed' | 'failed' | 'cancelled';
  /** When the job was created (BullMQ `timestamp`), ms since the epoch. */
  createdAt: number;
  /** When it finished: the image stored, or the last attempt failed (just before BullMQ moved the job), ms since the epoch. */
  finishedAt: number;
  /** Attempts made, the last one included (BullMQ `attemptsMade` once the job is finished). */
  attempts: number;
  /** Why it failed (BullMQ `failedReason`); failed jobs only. */
  error?: string;
  /** The job has a webhook: its delivery state is under `webhookStateKey(id)`. */
  webhook?: true;
}

/** The `failedReason` (and `error`) of a job cancelled while active, and of the webhook of any cancelled job. */
export const CANCELLED = 'cancelled';

/** How the `error` of a job past JOB_DEADLINE_SECONDS begins. */
export const EXPIRED = 'expired';

/** JOB_DEADLINE_SECONDS' default: a job that waited longer is not rendered. */
export const DEFAULT_JOB_DEADLINE_SECONDS = 3600;

/** The limits of a render request, shared by the gateway's and the model's validation. */
export const RENDER_LIMITS = {
  promptMaxLength: 1000,
  minSize: 64,
  maxSize: 2048,
  defaultSize: 512,
  stylePattern: '^[a-z0-9-]{1,64}$',
  maxSeed: 2147483647,
} as const;

/**
 * How Fastify's Ajv must check request bodies (Fastify's `ajv.customOptions`): reject, never
 * repair. Unknown fields are a 400 (Fastify's default strips them), and "512" is not an integer.
 */
export const AJV_OPTIONS = { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } as const;

/** JSON schema of a render request body (Fastify/Ajv with AJV_OPTIONS): unknown fields are rejected. */
export const renderRequestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['prompt'],
  properties: {
    prompt: { type: 'string', minLength: 1, maxLength: RENDER_LIMITS.promptMaxLength },
    width: { type: 'integer', minimum: RENDER_LIMITS.minSize, maximum: RENDER_LIMITS.maxSize, default: RENDER_LIMITS.defaultSize },
    height: { type: 'integer', minimum: RENDER_LIMITS.minSize, maximum: RENDER_LIMITS.maxSize, default: RENDER_LIMITS.defaultSize },
    style: { type: 'string', pattern: RENDER_LIMITS.stylePattern },
    seed: { type: 'integer', minimum: 0, maximum: RENDER_LIMITS.maxSeed },
    // Checked further by the gateway (webhook-url.ts): https, public address, allowed port.
    webhookUrl: { type: 'string', minLength: 1, maxLength: 2048 },
  },
} as const;
