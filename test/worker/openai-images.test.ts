import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { renderPng } from '../../services/model/src/renderer';
import { imageKey } from '../../services/shared/src/keys';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { enqueue, metric, obliterateWithImages, startWorker, uniqueQueueName, until } from './support';

type Answer = { status: number; body: unknown; headers?: Record<string, string> };

/**
 * A server that speaks the OpenAI images API as the test scripts it: each request takes the
 * next scripted answer (the last one repeats). Records every request.
 */
class OpenAiServer {
  readonly requests: { at: number; headers: http.IncomingHttpHeaders; url: string; body: any }[] = [];
  script: Answer[] = [];
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<OpenAiServer> {
    let me!: OpenAiServer;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        me.requests.push({ at: Date.now(), headers: req.headers, url: req.url!, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') });
        const answer = me.script.length > 1 ? me.script.shift()! : me.script[0]!;
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(JSON.stringify(answer.body));
      });
    });
    me = new OpenAiServer(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return me;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const PICTURE = { prompt: 'a lighthouse at dusk', width: 96, height: 64, seed: 11, style: 'sunset' };
const image = () => ({ status: 200, body: { created: 1, data: [{ b64_json: renderPng(PICTURE).toString('base64') }] } });

describe('the worker against a server of the OpenAI images API (MODEL_API=openai-images)', () => {
  let server: OpenAiServer;
  let queue: Queue;
  let redis: Redis;
  let workers: ReturnType<typeof startWorker>[];

  beforeEach(async () => {
    server = await OpenAiServer.start();
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    queue = new Queue(uniqueQueueName(), { connection: redis });
    workers = [];
  });
  afterEach(async () => {
    for (const w of workers) {
      await w.render.close();
      w.connection.disconnect();
    }
    await server.close();
    await obliterateWithImages(queue, redis);
    await queue.close();
    redis.disconnect();
  });

  const start = () => {
    const w = startWorker(TEST_REDIS_URL, { QUEUE_NAME: queue.name, MODEL_URL: server.url, MODEL_API: 'openai-images', MODEL_NAME: 'sdxl-turbo', MODEL_API_KEY: 'sk-test-123' });
    workers.push(w);
    return w;
  };
  const settled = (id: string) => until(async () => ['completed', 'failed'].includes(await queue.getJobState(id)), 20_000, `job ${id} to finish`);

  it('sends the standard request with the key, and stores the decoded PNG byte for byte', async () => {
    server.script = [image()];
    const id = await enqueue(queue, PICTURE);
    start();
    await settled(id);
    expect(server.requests).toHaveLength(1);
    const [req] = server.requests;
    expect(req!.url).toBe('/v1/images/generations');
    expect(req!.headers.authorization).toBe('Bearer sk-test-123');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.body).toEqual({ model: 'sdxl-turbo', prompt: 'a lighthouse at dusk', size: '96x64', n: 1, response_format: 'b64_json', seed: 11, style: 'sunset' });
    expect((await redis.getBuffer(imageKey(id)))!.equals(renderPng(PICTURE))).toBe(true);
    expect((await queue.getJob(id))!.attemptsMade).toBe(1);
  });

  it('retries a 5xx (an attempt spent, the breaker counts it) and completes', async () => {
    server.script = [{ status: 500, body: { error: { message: 'CUDA out of memory', type: 'server_error' } } }, image()];
    const id = await enqueue(queue, PICTURE, { backoff: { type: 'exponential', delay: 50 } });
    const { registry } = start();
    await settled(id);
    expect(await queue.getJobState(id)).toBe('completed');
    expect((await queue.getJob(id))!.attemptsMade).toBe(2);
    expect(server.requests).toHaveLength(2);
    expect(await metric(registry, 'levee_jobs_total', { result: 'retried' })).toBe(1);
    // The breaker counted the 500 and then the success: closed again.
    expect(await metric(registry, 'levee_circuit_state', { target: 'model' })).toBe(0);
  });

  it('honours a 429 Retry-After: the job waits that long, no attempt spent, then completes', async () => {
    server.script = [{ status: 429, body: { error: { message: 'Rate limit reached', type: 'requests' } }, headers: { 'retry-after': '1' } }, image()];
    const id = await enqueue(queue, PICTURE);
    const { registry } = start();
    await settled(id);
    expect(await queue.getJobState(id)).toBe('completed');
    expect((await queue.getJob(id))!.attemptsMade).toBe(1);
    expect(server.requests).toHaveLength(2);
    // The second call came after the Retry-After (1 s, jitter on top).
    expect(server.requests[1]!.at - server.requests[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(await metric(registry, 'levee_jobs_total', { result: 'postponed' })).toBe(1);
  });

  it('fails a 400 at once, with the server\'s message as the job\'s error; one attempt, no retry, and 400s never open the breaker', async () => {
    server.script = [{ status: 400, body: { error: { message: 'Your request was rejected by the safety system.', type: 'invalid_request_error', code: 'content_policy_violation' } } }];
    const ids = await Promise.all(Array.from({ length: 6 }, () => enqueue(queue, PICTURE)));
    const { render } = start();
    for (const id of ids) await settled(id);
    const job = (await queue.getJob(ids[0]!))!;
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toBe('model refused the request (400): Your request was rejected by the safety system.');
    expect(server.requests).toHaveLength(6); // one each, more than the breaker's 5 failures
    expect(render.model.breaker.state).toBe('closed');
  });

  it('a 401 (a wrong or rotated key) fails no job: they wait, the breaker counts it, and the answer (which may quote the key) stays out of the job', async () => {
    server.script = [{ status: 401, body: { error: { message: 'Incorrect API key provided: sk-te***23.', type: 'invalid_request_error', code: 'invalid_api_key' } } }];
    const id = await enqueue(queue, PICTURE);
    const { registry } = start();
    await until(async () => (await metric(registry, 'levee_jobs_total', { result: 'postponed' })) >= 1, 10_000, 'the job to be postponed');
    const job = (await queue.getJob(id))!;
    expect(['delayed', 'waiting']).toContain(await job.getState());
    expect(job.attemptsMade).toBe(0);
    expect(JSON.stringify(job)).not.toContain('sk-te');
    server.script = [image()];
    await settled(id);
    expect(await queue.getJobState(id)).toBe('completed');
  });

  it('treats an answer that is not a PNG as a failure, never as an image', async () => {
    server.script = [{ status: 200, body: { data: [{ b64_json: Buffer.from('GIF89a not a png').toString('base64') }] } }];
    const id = await enqueue(queue, PICTURE, { attempts: 1 });
    start();
    await settled(id);
    const job = (await queue.getJob(id))!;
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toMatch(/^model API answered 200 with data\[0\]\.b64_json that is not a PNG/);
    expect(await redis.exists(imageKey(id))).toBe(0);
  });
});
