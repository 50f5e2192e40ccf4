/**
 * The benchmark's ceiling: Fastify with nothing but one route answering a small JSON object,
 * in its own process. The floor and the hand-written peers are in ./peer-server.ts.
 */
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
void app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
