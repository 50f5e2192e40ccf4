import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { renderPng } from '../../services/model/src/renderer';
import { RENDER_JOB, RENDER_JOB_OPTIONS, RenderRequest } from '../../services/shared/src/job';
import { imageKey, outcomeKey } from '../../services/shared/src/keys';
import { RenderWorker, RenderWorkerSettings, createRenderWorker } from '../../services/worker/src/worker';

export type ModelMode = 'ok' | 'fail' | 'reject' | 'hold';

/**
 * A controllable model API on 127.0.0.1: renders for real ('ok'), answers 500 ('fail') or 400 ('reject'), or
 * holds requests until released ('hold'). Records every request it saw.
 */
export class FakeModel {
  mode: ModelMode = 'ok';
  delayMs = 0;
  readonly requests: { at: number; body: RenderRequest }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private held: (() => void)[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<FakeModel> {
    let model!: FakeModel;
    const server = http.createServer((req, res) => void model.handle(req, res));
    model = new FakeModel(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return model;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once `n` render requests have arrived in total. */
  waitForRequests(n: number): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  /** Lets every held request (and later ones) complete normally. */
  release(): void {
    this.mode = 'ok';
    for (const go of this.held.splice(0)) go();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url === '/v1/styles') {
      // The catalog, for gateways pointed at this model (not counted as a render).
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ styles: [{ id: 'sunset', name: 'Sunset' }] }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as RenderRequest;
    this.requests.push({ at: Date.now(), body });
    for (const w of this.waiters.filter((w) => this.requests.length >= w.n)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    if (this.mode === 'hold') await new Promise<void>((r) => this.held.push(r));
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.mode === 'reject') {
      res.writeHead(400, { 'content-type': 'application/problem+json' });
      res.end('{"status":400,"detail":"rejected"}');
      return;
    }
    if (this.mode === 'fail') {
      res.writeHead(500, { 'content-type': 'application/problem+json' });
      res.end('{"status":500}');
      return;
    }
    const png = renderPng({ prompt: body.prompt, width: body.width, height: body.height, style: body.style, seed: body.seed });
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
    res.end(png);
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

export const SMALL: RenderRequest = { prompt: 'a small test picture', width: 64, height: 64, seed: 1 };

export function uniqueQueueName(): string {
  return `test-worker-${randomUUID()}`;
}

/** Enqueues like the gateway: UUID job id, RENDER_JOB, RENDER_JOB_OPTIONS (overridable). */
export async function enqueue(queue: Queue, data: RenderRequest, opts: Partial<typeof RENDER_JOB_OPTIONS> = {}): Promise<string> {
  const id = randomUUID();
  await queue.add(RENDER_JOB, data, { ...RENDER_JOB_OPTIONS, ...opts, jobId: id });
  return id;
}

export const FAST_SETTINGS: RenderWorkerSettings = {
  MODEL_URL: 'http://127.0.0.1:1',
  QUEUE_NAME: 'unset',
  WORKER_CONCURRENCY: 2,
  MODEL_TIMEOUT_MS: 5000,
  BREAKER_OPEN_SECONDS: 60,
  BREAKER_FAILURES: 5,
  IMAGE_TTL_SECONDS: 600,
  WORKER_LOCK_DURATION_MS: 2000,
  WORKER_STALLED_INTERVAL_MS: 500,
  WORKER_MAX_STALLED_COUNT: 2,
  WORKER_STUCK_GRACE_MS: 1000,
};

/** An in-process render worker (the same wiring server.ts uses), with its own connection. */
export function startWorker(redisUrl: string, settings: Partial<RenderWorkerSettings>): { render: RenderWorker; registry: Registry; connection: Redis } {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null, retryStrategy: (t) => Math.min(50 * t, 500) });
  connection.on('error', () => undefined);
  const registry = new Registry();
  const render = createRenderWorker({
    settings: { ...FAST_SETTINGS, ...settings },
    connection,
    registry,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
  return { render, registry, connection };
}

export { until } from '../helpers/wait';

export async function metric(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const values = (await m.get()).values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return values.reduce((sum, v) => sum + v.value, 0);
}

/**
 * Deletes the PNGs and outcome records that the queue's jobs stored under the shared
 * `levee:` prefix, then the queue itself, so tests leave nothing in the shared Redis
 * (obliterate clears only `bull:*`).
 */
export async function obliterateWithImages(queue: Queue, redis: Redis): Promise<void> {
  const jobs = await queue.getJobs(['completed', 'failed', 'active', 'wait', 'delayed', 'prioritized', 'waiting-children']);
  const keys = jobs.filter((j) => j?.id).flatMap((j) => [imageKey(j.id!), outcomeKey(j.id!)]);
  if (keys.length) await redis.del(...keys);
  await queue.obliterate({ force: true });
}
