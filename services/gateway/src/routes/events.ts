import sse from '@fastify/sse';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { isJobId } from '../../../shared/src/keys';
import { sendProblem } from '../../../shared/src/problem';
import type { StatusDocument } from '../../../shared/src/webhooks';
import { isFinal, JobEvents } from '../job-events';
import type { Producer } from '../producer';
import { queueProblem } from './images';

export interface EventRoutesOptions {
  readonly producer: Producer;
  readonly events: JobEvents;
  readonly clientKey: (request: FastifyRequest) => string;
  readonly imageUrl: (id: string) => string;
  /** Heartbeat comment interval. @default 15000 */
  readonly heartbeatMs?: number;
}

/** What a client that lost its stream waits before it reconnects (the SSE `retry` field). */
export const RECONNECT_MS = 3000;
/** Seconds a refused client is told to wait (Retry-After). */
const STREAMS_RETRY_AFTER = 5;

/**
 * `GET /api/images/{id}/events`, `text/event-stream` (@fastify/sse): a `status` event with
 * the status document at once, then one per change (queued and its position, active and its
 * progress, completed with `imageUrl`, failed with `error`, cancelled), a `: heartbeat`
 * comment every 15 s, and the end of the stream after the final document. Refused before the
 * stream starts: unknown job 404, EVENTS_MAX_PER_CLIENT streams open already 429, EVENTS_MAX
 * in this process 503, the queue Redis unreachable 503.
 */
export const eventRoutes: FastifyPluginAsync<EventRoutesOptions> = async (app, { producer, events, clientKey, imageUrl, heartbeatMs = 15_000 }) => {
  await app.register(sse, { heartbeatInterval: heartbeatMs });
  const withImageUrl = (status: StatusDocument): StatusDocument => (status.status === 'completed' ? { ...status, imageUrl: imageUrl(status.id) } : status);

  app.get<{ Params: { id: string } }>('/api/images/:id/events', { sse: 'only' }, async (request, reply) => {
    const { id } = request.params;
    if (!isJobId(id)) return sendProblem(reply, 404, 'No such job: job ids are UUIDs returned by POST /api/images.');
    let admission;
    try {
      admission = await events.subscribe(id, clientKey(request));
    } catch (err) {
      return queueProblem(reply, err);
    }
    if (!admission.ok) {
      reply.header('retry-after', String(STREAMS_RETRY_AFTER));
      return admission.reason === 'client'
        ? sendProblem(reply, 429, 'Too many event streams open from this client; close one, or poll GET /api/images/{id}.')
        : sendProblem(reply, 503, 'This gateway has as many event streams open as it allows; retry later, or poll GET /api/images/{id}.');
    }
    const sub = admission.subscription;
    let status: StatusDocument | undefined;
    try {
      status = await producer.status(id);
    } catch (err) {
      sub.close();
      return queueProblem(reply, err);
    }
    if (!status) {
      sub.close();
      return sendProblem(reply, 404, `No job ${id} (unknown, or expired from the queue's history).`);
    }

    reply.header('cache-control', 'no-store');
    // Tells nginx-style proxies not to buffer the stream.
    reply.header('x-accel-buffering', 'no');
    reply.sse.keepAlive();
    reply.sse.onClose(() => sub.close());
    sub.onEnd = () => reply.sse.close();
    let first = true;
    const send = (doc: StatusDocument) => {
      const message = { event: 'status', data: withImageUrl(doc), ...(first ? { retry: RECONNECT_MS } : {}) };
      first = false;
      // The final document ends the stream once it is written.
      const sent = reply.sse.send(message);
      if (isFinal(doc)) void sent.catch(() => undefined).finally(() => sub.close());
      else sent.catch(() => sub.close());
    };
    sub.last = status;
    sub.onStatus = send;
    send(status);
    // An event may have come between the subscription and the read above: read once more.
    if (!isFinal(status)) events.started(sub);
  });
};
