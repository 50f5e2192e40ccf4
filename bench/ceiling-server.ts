/**
 * The benchmark's ceiling: Fastify with nothing but one route answering a small JSON object.
 * REPLAY (JSON: path → { status, headers, body }) adds routes that answer exactly the bytes a
 * gateway answered (same status, headers and body) and do nothing else: what the contract's
 * responses cost by themselves, apart from the gateway's machinery.
 */
import Fastify from 'fastify';

interface Recorded {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));
const replay: Record<string, Recorded> = JSON.parse(process.env.REPLAY ?? '{}');
for (const [path, r] of Object.entries(replay)) app.get(path, (_request, reply) => void reply.code(r.status).headers(r.headers).send(r.body));
void app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
