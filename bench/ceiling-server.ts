/**
 * The benchmark's ceiling: Fastify with nothing but one route answering a small JSON object.
 * REPLAY (JSON: path → { status, headers, body }) adds routes that answer exactly the bytes a
 * gateway answered (same status, headers and body) and do nothing else: what the contract's
 * responses cost by themselves, apart from the gateway's machinery. POST /as-post is the HTTP
 * half of the gateway's POST /api/images: the same body schema and Ajv options, a 202 of the
 * same shape, and nothing else (no rate limiter, no queue). With QUEUE_REDIS_URL, POST
 * /as-post-queued is that route plus one plain BullMQ `queue.add` of the job (production job
 * options) before the 202: the cheapest producer BullMQ allows, measured, with no limiter,
 * no idempotency, no bound and no batching.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { AJV_OPTIONS, RENDER_JOB, RENDER_JOB_OPTIONS, renderRequestSchema } from '../services/shared/src/job';

interface Recorded {
  status: number;
  headers: Record<string, string>;
  body: string;
}

// The gateway's Ajv options (the ceiling route has no schema, so they do not touch it).
const app = Fastify({ logger: false, ajv: { customOptions: AJV_OPTIONS } });
app.get('/', async () => ({ hello: 'world' }));
const accepted = (id: string) => {
  const statusUrl = `/api/images/${id}`;
  return { id, status: 'queued', statusUrl, imageUrl: `/images/${id}.png` };
};
app.post('/as-post', { schema: { body: renderRequestSchema } }, (_request, reply) => {
  const body = accepted(randomUUID());
  void reply.code(202).header('location', body.statusUrl).send(body);
});
if (process.env.QUEUE_REDIS_URL) {
  const queue = new Queue('ceiling', { connection: new Redis(process.env.QUEUE_REDIS_URL, { maxRetriesPerRequest: null }), defaultJobOptions: RENDER_JOB_OPTIONS });
  app.post('/as-post-queued', { schema: { body: renderRequestSchema } }, async (request, reply) => {
    const body = accepted(randomUUID());
    await queue.add(RENDER_JOB, request.body, { jobId: body.id });
    return reply.code(202).header('location', body.statusUrl).send(body);
  });
}
const replay: Record<string, Recorded> = JSON.parse(process.env.REPLAY ?? '{}');
for (const [path, r] of Object.entries(replay)) app.get(path, (_request, reply) => void reply.code(r.status).headers(r.headers).send(r.body));
void app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
