import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { annotate } from '../../../shared/src/tracing';
import { RenderRequest, renderRequestSchema } from '../../../shared/src/job';
import { imagePath } from '../../../shared/src/image-settings';
import { isJobId } from '../../../shared/src/keys';
import { sendProblem } from '../../../shared/src/problem';
import { checkWebhookUrl, Lookup, STRICT_WEBHOOK_POLICY, WebhookUrlError, WebhookUrlPolicy } from '../../../shared/src/webhook-url';
import type { StatusDocument } from '../../../shared/src/webhooks';
import type { JobCanceller } from '../cancel';
import { IdempotencyConflictError, Producer, QueueFullError, QueueUnavailableError } from '../producer';

export interface ImageRoutesOptions {
  readonly producer: Producer;
  /** The client an Idempotency-Key belongs to (the rate limiter's client key). @default request.ip */
  readonly clientKey?: (request: FastifyRequest) => string;
  /** The `imageUrl` of a job (IMAGE_PUBLIC_BASE_URL makes it absolute). @default /images/{id}.png */
  readonly imageUrl?: (id: string) => string;
  /** Which webhook URLs are accepted (WEBHOOK_*). @default public https on 443/8443 only */
  readonly webhookPolicy?: WebhookUrlPolicy;
  /** How a webhook host is resolved for the check. @default the system resolver */
  readonly lookup?: Lookup;
  /** DELETE /api/images/{id}; without it, no DELETE route. */
  readonly canceller?: JobCanceller;
}

/** 1–128 printable ASCII characters (CONTRACT section 3). */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,128}$/;

/** Seconds a client should wait when the queue is at its bound. */
const QUEUE_FULL_RETRY_AFTER = 5;

/**
 * Webhook hosts resolved at once (dns.lookup runs on libuv's thread pool: a name server that
 * never answers holds a thread for its whole timeout). Beyond this, a submission with a
 * webhookUrl gets a 503, and everything else keeps its threads (the chart sets UV_THREADPOOL_SIZE 32).
 */
export const WEBHOOK_LOOKUPS_MAX = 16;

/**
 * `POST /api/images` only enqueues (202 + Location) and `GET /api/images/{id}` reads the
 * job's state from BullMQ. Both answer 503 + Retry-After, at once, when the queue Redis is
 * unreachable or the queue is at its bound.
 */
export const imageRoutes: FastifyPluginAsync<ImageRoutesOptions> = async (app, { producer, clientKey = (request) => request.ip, imageUrl = imagePath, webhookPolicy = STRICT_WEBHOOK_POLICY, lookup, canceller }) => {
  const withImageUrl = (status: StatusDocument): StatusDocument => (status.status === 'completed' ? { ...status, imageUrl: imageUrl(status.id) } : status);
  let lookups = 0;

  app.post<{ Body: RenderRequest }>('/api/images', { schema: { body: renderRequestSchema } }, async (request, reply) => {
    const header = request.headers['idempotency-key'];
    let idempotency: { clientIp: string; key: string } | undefined;
    if (header !== undefined) {
      if (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header)) {
        return sendProblem(reply, 400, 'The Idempotency-Key header must be 1-128 printable ASCII characters.');
      }
      idempotency = { clientIp: clientKey(request), key: header };
    }
    if (request.body.webhookUrl !== undefined) {
      // The cluster will call this URL: refused unless public (the sender checks again at delivery).
      if (lookups >= WEBHOOK_LOOKUPS_MAX) return sendProblem(reply.header('retry-after', '1'), 503, 'Too many webhook URLs are being checked at once; retry later.');
      lookups++;
      try {
        await checkWebhookUrl(request.body.webhookUrl, webhookPolicy, lookup);
      } catch (err) {
        if (err instanceof WebhookUrlError) return sendProblem(reply, 400, `${err.message}.`);
        throw err;
      } finally {
        lookups--;
      }
    }
    try {
      const { id } = await producer.submit(request.body, idempotency);
      annotate(() => ({ 'levee.job.id': id, 'levee.render.width': request.body.width, 'levee.render.height': request.body.height }));
      const statusUrl = `/api/images/${id}`;
      return reply.code(202).header('location', statusUrl).send({ id, status: 'queued', statusUrl, imageUrl: imageUrl(id) });
    } catch (err) {
      if (err instanceof QueueFullError) producer.recordRejected(err.reason);
      return queueProblem(reply, err);
    }
  });

  app.get<{ Params: { id: string } }>('/api/images/:id', async (request, reply) => {
    annotate({ 'levee.job.id': request.params.id });
    const { id } = request.params;
    if (!isJobId(id)) return sendProblem(reply, 404, 'No such job: job ids are UUIDs returned by POST /api/images.');
    try {
      const status = await producer.status(id);
      if (!status) return sendProblem(reply, 404, `No job ${id} (unknown, or expired from the queue's history).`);
      return reply.header('cache-control', 'no-store').send(withImageUrl(status));
    } catch (err) {
      return queueProblem(reply, err);
    }
  });

  if (canceller) {
    app.delete<{ Params: { id: string } }>('/api/images/:id', async (request, reply) => {
      const { id } = request.params;
      if (!isJobId(id)) return sendProblem(reply, 404, 'No such job: job ids are UUIDs returned by POST /api/images.');
      try {
        const result = await canceller.cancel(id);
        if (!result) return sendProblem(reply, 404, `No job ${id} (unknown, or expired from the queue's history).`);
        reply.header('cache-control', 'no-store');
        switch (result.outcome) {
          case 'cancelled':
            return reply.code(200).send(withImageUrl(result.status));
          case 'cancelling':
            return reply.code(202).header('location', `/api/images/${id}`).send(result.status);
          case 'finished':
            return sendProblem(reply, 409, `Job ${id} has already ${result.status.status === 'completed' ? 'completed' : 'failed'}; it cannot be cancelled.`, { status: result.status.status });
        }
      } catch (err) {
        return queueProblem(reply, err);
      }
    });
  }
};

/** The 503/422 of a queue error (the error itself when it is none of those). */
export function queueProblem(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof QueueFullError) {
    return sendProblem(reply.header('retry-after', String(QUEUE_FULL_RETRY_AFTER)), 503, 'The render queue is full; retry later.');
  }
  if (err instanceof QueueUnavailableError) {
    reply.log.warn({ err }, 'queue unavailable');
    const detail = err.unconfirmed
      ? 'The job could not be confirmed by a queue replica in time; retry with the same Idempotency-Key (it finds the job if it was kept).'
      : 'The render queue is temporarily unreachable; retry later.';
    return sendProblem(reply.header('retry-after', '1'), 503, detail);
  }
  if (err instanceof IdempotencyConflictError) {
    return sendProblem(reply, 422, 'This Idempotency-Key was already used with a different request body.', { jobId: err.jobId });
  }
  throw err;
}
