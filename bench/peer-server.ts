/**
 * The benchmark's peers: what a user would write by hand in twenty lines, each run in its own
 * process next to the ceiling, so Levee is measured against them in the same run.
 *
 *   PEER=get    Fastify + @fastify/rate-limit (Redis store) + one plain Redis GET of the
 *               catalog per request: the hand-written cache hit.
 *   PEER=post   Fastify + @fastify/rate-limit (Redis store) + one plain BullMQ `queue.add`
 *               per request: the hand-written producer.
 *   PEER=floor  a bare Fastify POST + one plain BullMQ `queue.add` per request (the same body
 *               schema, job options and 202): the cheapest producer BullMQ allows, the floor
 *               under POST /api/images.
 *
 * Env: PORT, REDIS_URL (the queue, and everything else unless CACHE_REDIS_URL is set),
 * CACHE_REDIS_URL (the rate-limit store and the catalog key, as Levee's cache Redis holds its
 * own), RATE_LIMIT_PER_SECOND (the peers' limit; the bench makes it as non-binding as
 * Levee's), QUEUE_NAME.
 */
import { randomUUID } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { AJV_OPTIONS, RENDER_JOB, RENDER_JOB_OPTIONS, renderRequestSchema } from '../services/shared/src/job';

const mode = process.env.PEER;
// @fastify/rate-limit needs clients without a retry limit of their own for its store.
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const cache = process.env.CACHE_REDIS_URL ? new Redis(process.env.CACHE_REDIS_URL, { maxRetriesPerRequest: null }) : redis;
const app = Fastify({ logger: false, ajv: { customOptions: AJV_OPTIONS } });
const accepted = (id: string) => ({ id, status: 'queued', statusUrl: `/api/images/${id}`, imageUrl: `/images/${id}.png` });

async function main(): Promise<void> {
  if (mode === 'get' || mode === 'post') {
    await app.register(rateLimit, { max: Number(process.env.RATE_LIMIT_PER_SECOND ?? 10), timeWindow: 1000, redis: cache });
  }
  if (mode === 'get') {
    await cache.set('peer:styles', JSON.stringify({ styles: [{ id: 'sunset', name: 'Sunset', description: 'Warm purples, reds and golds.' }] }));
    app.get('/api/styles', async (_request, reply) => reply.type('application/json').send(await cache.get('peer:styles')));
  } else if (mode === 'post' || mode === 'floor') {
    const queue = new Queue(process.env.QUEUE_NAME ?? `peer-${mode}`, { connection: redis, defaultJobOptions: RENDER_JOB_OPTIONS });
    app.post('/api/images', { schema: { body: renderRequestSchema } }, async (request, reply) => {
      const body = accepted(randomUUID());
      await queue.add(RENDER_JOB, request.body, { jobId: body.id });
      return reply.code(202).header('location', body.statusUrl).send(body);
    });
  } else {
    throw new Error(`PEER must be get, post or floor (got ${mode})`);
  }
  app.get('/readyz', async () => ({ ok: true }));
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
}

main().catch((err: unknown) => {
  process.stderr.write(`peer-server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
