import { Job } from 'bullmq';
import type Redis from 'ioredis';
import { IDEMPOTENCY_SECONDS, JobOutcome, RenderRequest } from '../../shared/src/job';
import { CANCEL_CHANNEL, cancelKey, outcomeKey } from '../../shared/src/keys';
import { deliveryOf, finishedDocument, WebhookNotifier } from '../../shared/src/webhooks';
import type { JobStatus, Producer } from './producer';

export type CancelResult =
  /** It was waiting (or delayed): removed, it never renders. 200. */
  | { readonly outcome: 'cancelled'; readonly status: JobStatus }
  /** It is being rendered: its worker aborts it. 202 until it has stopped. */
  | { readonly outcome: 'cancelling'; readonly status: JobStatus }
  /** It completed or failed already. 409. */
  | { readonly outcome: 'finished'; readonly status: JobStatus };

/**
 * DELETE /api/images/{id}. First the job's cancel key is set (a worker that takes it from now
 * on drops it); then a job not yet taken is removed from BullMQ, its outcome stored as
 * `cancelled` and its webhook (`image.failed`, `error: "cancelled"`) enqueued; a job a worker
 * holds (BullMQ refuses to remove a locked job) gets its id published on CANCEL_CHANNEL, and
 * that worker aborts its model call (the job then fails `cancelled`, never retried).
 * Undefined when there is no such job.
 */
export class JobCanceller {
  private notifier?: WebhookNotifier;

  constructor(
    private readonly producer: Producer,
    /** The queue Redis (the producer's writer: the cancel key, the outcome and the publish go to the master). */
    private readonly redis: Redis,
    private readonly queueName: string,
  ) {}

  async cancel(id: string, now = Date.now()): Promise<CancelResult | undefined> {
    const status = await this.producer.status(id);
    if (!status) return undefined;
    if (status.status === 'cancelled') return { outcome: 'cancelled', status };
    if (status.status === 'completed' || status.status === 'failed') return { outcome: 'finished', status };
    await this.producer.guard(this.redis.set(cancelKey(id), '1', 'EX', IDEMPOTENCY_SECONDS));
    const job = await this.producer.guard(Job.fromId<RenderRequest>(this.producer.queue, id));
    if (job && status.status === 'queued') {
      const url = job.data?.webhookUrl;
      const outcome: JobOutcome = { status: 'cancelled', createdAt: job.timestamp, finishedAt: now, attempts: job.attemptsMade, ...(url ? { webhook: true as const } : {}) };
      // The outcome first: while the job exists its status comes from BullMQ, and the moment it
      // is removed (BullMQ's `removed` event: open event streams read again) its outcome is there.
      const key = outcomeKey(id);
      await this.producer.guard(this.redis.set(key, JSON.stringify(outcome), 'EX', IDEMPOTENCY_SECONDS));
      const removed = await this.producer.guard(job.remove()).then(
        () => true,
        async (err: unknown) => {
          // Locked: a worker took it meanwhile (it is cancelled as an active job, below). Anything
          // else is a queue failure: the outcome goes again, and the client gets a 503.
          await this.redis.del(key).catch(() => undefined);
          if (err instanceof Error && /locked/.test(err.message)) return false;
          throw err;
        },
      );
      if (removed) {
        if (url) await this.producer.guard((this.notifier ??= new WebhookNotifier(this.redis, this.queueName)).notify(id, deliveryOf(id, outcome, url)));
        return { outcome: 'cancelled', status: { ...finishedDocument(id, outcome), ...(url ? { webhook: { state: 'pending', attempts: 0 } } : {}) } };
      }
    }
    await this.producer.guard(this.redis.publish(CANCEL_CHANNEL, id));
    const after = await this.producer.status(id);
    if (after?.status === 'cancelled') return { outcome: 'cancelled', status: after };
    // It finished while the cancel was on its way.
    if (after?.status === 'completed' || after?.status === 'failed') return { outcome: 'finished', status: after };
    return { outcome: 'cancelling', status: after ?? status };
  }

  async close(): Promise<void> {
    await this.notifier?.close();
  }
}


