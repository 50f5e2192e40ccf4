/**
 * The baseline Levee is measured against: textbook cache-aside with no lock and no
 * single-flight — on a miss every caller loads from the origin and writes the result back.
 * Started twice (two "replicas") by bench/run.ts; PORT, REDIS_URL, ORIGIN_URL from env.
 */
import Fastify from 'fastify';
import Redis from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });
const origin = process.env.ORIGIN_URL ?? 'http://127.0.0.1:8081';
const key = process.env.CACHE_KEY ?? 'naive:styles';
const app = Fastify({ logger: false });

app.get('/api/styles', async (_request, reply) => {
  const cached = await redis.get(key);
  if (cached !== null) return reply.type('application/json').send(cached);
  const body = await (await fetch(`${origin}/v1/styles`)).text();
  await redis.set(key, body, 'EX', 30);
  return reply.type('application/json').send(body);
});

app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' }).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
process.on('SIGTERM', () => void app.close().then(() => redis.quit()).then(() => process.exit(0)));
