import { Queue } from 'bullmq';
import { queueTelemetry } from './tracing';
import type Redis from 'ioredis';
import { CANCELLED, JobOutcome } from './job';
import { webhookStateKey } from './keys';

/**
 * Webhooks, the shared half: what a delivery is, the queue it goes through, and the state
 * the status document shows. Whoever finishes a job enqueues its one delivery (the worker on
 * completion and on failure for good; the gateway when it cancels a waiting job); the sender
 * (services/worker/src/webhook-sender.ts) signs and posts it, retrying with backoff.
 */

/** The public status document of a job (GET /api/images/{id}), as a webhook carries it. */
export interface StatusDocument {
  id: string;
  status: 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
  attempts: number;
  createdAt: string;
  finishedAt?: string;
  /** Queued jobs: about how many are ahead of it, itself included (1 = next). An estimate. */
  position?: number;
  /** Active jobs: 0 when taken, 80 once the model has answered (the image is being stored). */
  progress?: number;
  imageUrl?: string;
  error?: string;
  webhook?: WebhookState;
}

export type WebhookEventType = 'image.completed' | 'image.failed';

/** One delivery: the data of a job in the webhook queue, whose BullMQ id is the render job's id. */
export interface WebhookDelivery {
  type: WebhookEventType;
  /** When the job finished (the event's time), ISO 8601. */
  timestamp: string;
  url: string;
  /** The status document at that time (a completed job's with its imageUrl). */
  data: StatusDocument;
}

/** What the status document says of the webhook (`webhook` field). */
export interface WebhookState {
  state: 'pending' | 'delivered' | 'failed';
  /** Delivery attempts made so far. */
  attempts: number;
  /** Why the last attempt failed ("HTTP 500", "timeout after 10000 ms", a refused address). */
  lastError?: string;
}

/** The BullMQ job name of a delivery. */
export const WEBHOOK_JOB = 'deliver';

/**
 * Retries: 12 attempts, exponential from 2 s (2, 4, 8 … 2048 s between them): the last one
 * about 68 minutes after the first. BullMQ keeps finished deliveries a day (so an enqueue
 * repeated by a retried worker is a no-op) and failed ones a week.
 */
export const WEBHOOK_JOB_OPTIONS = {
  attempts: 12,
  backoff: { type: 'exponential' as const, delay: 2000 },
  removeOnComplete: { age: 24 * 3600, count: 100_000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 100_000 },
};

/** How long a delivery's state is kept: as long as a failed job's history. */
export const WEBHOOK_STATE_SECONDS = 7 * 24 * 3600;

/** The webhook queue that goes with a render queue. */
export function webhookQueueName(queueName: string): string {
  return `${queueName}-webhooks`;
}

/** The status document of a finished job, from its outcome. */
export function finishedDocument(id: string, outcome: JobOutcome): StatusDocument {
  const doc: StatusDocument = {
    id,
    status: outcome.status,
    attempts: outcome.attempts,
    createdAt: new Date(outcome.createdAt).toISOString(),
    finishedAt: new Date(outcome.finishedAt).toISOString(),
  };
  if (outcome.status !== 'completed') doc.error = outcome.status === 'cancelled' ? CANCELLED : outcome.error || 'rendering failed';
  return doc;
}

/** The delivery of a finished job's outcome to `url`. */
export function deliveryOf(id: string, outcome: JobOutcome, url: string): WebhookDelivery {
  return {
    type: outcome.status === 'completed' ? 'image.completed' : 'image.failed',
    timestamp: new Date(outcome.finishedAt).toISOString(),
    url,
    data: finishedDocument(id, outcome),
  };
}

/**
 * Enqueues deliveries. The delivery's BullMQ id is the render job's id, so enqueuing it again
 * (a worker retried after a crash, a reconcile) adds nothing while BullMQ keeps the first.
 */
export class WebhookNotifier {
  readonly queue: Queue<WebhookDelivery>;

  constructor(connection: Redis, queueName: string) {
    this.queue = new Queue<WebhookDelivery>(webhookQueueName(queueName), { connection, defaultJobOptions: WEBHOOK_JOB_OPTIONS, ...queueTelemetry() });
    this.queue.on('error', () => undefined); // surfaces on the add itself
  }

  async notify(id: string, delivery: WebhookDelivery): Promise<void> {
    await this.queue.add(WEBHOOK_JOB, delivery, { jobId: id });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** The delivery state of a job that has a webhook: `pending` with no attempt until the sender records one. */
export async function readWebhookState(redis: Redis, id: string): Promise<WebhookState> {
  const json = await redis.get(webhookStateKey(id));
  if (json) {
    try {
      const state = JSON.parse(json) as WebhookState;
      if (['pending', 'delivered', 'failed'].includes(state.state) && Number.isSafeInteger(state.attempts)) return state;
    } catch {
      // unreadable: as if none
    }
  }
  return { state: 'pending', attempts: 0 };
}

export function writeWebhookState(redis: Redis, id: string, state: WebhookState): Promise<unknown> {
  return redis.set(webhookStateKey(id), JSON.stringify(state), 'EX', WEBHOOK_STATE_SECONDS);
}
