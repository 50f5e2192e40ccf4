import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { renderPng } from '../../services/model/src/renderer';
import { imageKey, outcomeKey } from '../../services/shared/src/keys';
import { S3Images } from '../../services/shared/src/s3-images';
import { S3ImageStore } from '../../services/worker/src/image-store';
import { RenderWorker, RenderWorkerSettings, STORE_FAILURES_TO_OPEN, createRenderWorker } from '../../services/worker/src/worker';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { S3Server } from '../helpers/s3-server';
import { FAST_SETTINGS, FakeModel, SMALL, enqueue, metric, obliterateWithImages, uniqueQueueName, until } from './support';

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('render worker with IMAGE_STORE=s3 (s3rver on loopback)', () => {
  let s3: S3Server;
  let images: S3Images;
  let queueName: string;
  let queue: Queue;
  let redis: Redis;
  let model: FakeModel;
  let running: { render: RenderWorker; connection: Redis }[];
  let logLines: string[];

  beforeAll(async () => {
    s3 = await S3Server.start(['levee-worker']);
    images = s3.images();
  });
  afterAll(async () => {
    images.destroy();
    await s3.stop();
  });
  beforeEach(async () => {
    queueName = uniqueQueueName();
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
    queue = new Queue(queueName, { connection: redis });
    model = await FakeModel.start();
    running = [];
    logLines = [];
  });
  afterEach(async () => {
    for (const w of running) {
      await w.render.close();
      w.connection.disconnect();
    }
    await model.close();
    await obliterateWithImages(queue, redis);
    await queue.close();
    redis.disconnect();
  });

  /** The production wiring (createRenderWorker) on the s3 store, logging into logLines. */
  function start(settings: Partial<RenderWorkerSettings> = {}, client = images): { render: RenderWorker; registry: Registry } {
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const registry = new Registry();
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) }));
    const render = createRenderWorker({
      settings: {
        ...FAST_SETTINGS,
        QUEUE_NAME: queueName,
        MODEL_URL: model.url,
        IMAGE_STORE_BREAKER_OPEN_SECONDS: 1,
        IMAGE_STORE_CHECK_SECONDS: 1,
        imageStore: { kind: 's3', ...client.location },
        ...settings,
      },
      connection,
      registry,
      logger,
      images: client,
    });
    running.push({ render, connection });
    return { render, registry };
  }

  it('uploads the PNG to <prefix><job id>.png before the job completes; the queue Redis keeps only the small outcome', async () => {
    const id = await enqueue(queue, SMALL);
    const { render, registry } = start();
    const atCompletion = new Promise<boolean>((resolve) => render.worker.on('completed', () => void images.head(id).then((h) => resolve(!!h))));
    expect(await atCompletion).toBe(true);
    const job = (await queue.getJob(id))!;
    expect(await job.getState()).toBe('completed');
    expect(job.returnvalue).toEqual({ imageKey: `images/${id}.png`, bytes: renderPng(SMALL).length, width: 64, height: 64 });
    expect((await readAll((await images.get(id))!.body)).equals(renderPng(SMALL))).toBe(true);
    expect(await redis.exists(imageKey(id))).toBe(0);
    expect(JSON.parse((await redis.get(outcomeKey(id)))!)).toMatchObject({ status: 'completed', attempts: 1 });
    expect(await metric(registry, 'levee_circuit_state', { target: 'image-store' })).toBe(0);
    expect(render.ready()).toBe(true);
  });

  it('GIVEN a missing bucket THEN it is not ready, says so in one line naming the bucket, takes no job (no attempt burned), and starts once the bucket exists', async () => {
    const bucket = `late-${randomUUID().slice(0, 8)}`;
    const late = s3.images({ bucket });
    try {
      const id = await enqueue(queue, SMALL);
      const { render } = start({}, late);
      await until(() => logLines.some((l) => l.includes(bucket)), 5000, 'the log line');
      await new Promise((r) => setTimeout(r, 2500)); // two more checks
      expect(render.ready()).toBe(false);
      const lines = logLines.filter((l) => l.includes(bucket));
      expect(lines).toHaveLength(1); // said once, not once per check
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 50, msg: expect.stringMatching(new RegExp(`^image store s3://${bucket}/images/ at .*: reach the bucket: answered 404 NotFound \\(no such bucket: create it, or fix IMAGE_S3_BUCKET\\); taking no jobs until it answers$`)) });
      expect(model.requests).toHaveLength(0);
      const waiting = (await queue.getJob(id))!;
      expect(await waiting.getState()).toBe('waiting');
      expect(waiting.attemptsMade).toBe(0);

      await images.client.send(new CreateBucketCommand({ Bucket: bucket }));
      await until(async () => (await queue.getJobState(id)) === 'completed', 10_000, 'the job to complete once the bucket exists');
      expect(render.ready()).toBe(true);
      expect((await queue.getJob(id))!.attemptsMade).toBe(1);
      expect(await late.head(id)).toBeDefined();
      expect(logLines.some((l) => l.includes('lifecycle'))).toBe(true); // it looked for the expiry rule once started
    } finally {
      late.destroy();
    }
  });

  it('GIVEN the store stopped for 10 s while 50 jobs render THEN all 50 complete with their images after it returns, none lost, few attempts spent', async () => {
    model.delayMs = 100;
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => enqueue(queue, { ...SMALL, seed: i })));
    const { render, registry } = start({ WORKER_CONCURRENCY: 2 });
    const completedWithoutImage: string[] = [];
    render.worker.on('completed', (job) => void images.head(job.id!).then((h) => h || completedWithoutImage.push(job.id!), () => undefined));
    await until(async () => (await queue.getCompletedCount()) >= 5, 10_000, '5 jobs to complete');

    await s3.kill();
    const downAt = Date.now();
    await until(() => !render.ready(), 10_000, 'the store breaker to open');
    const completedWhileDown = await queue.getCompletedCount();
    await new Promise((r) => setTimeout(r, 500)); // renders in flight when it opened end
    const rendersWhileDown = model.requests.length;
    await new Promise((r) => setTimeout(r, 10_000 - (Date.now() - downAt)));
    // While the store was down nothing completed (beyond uploads finished when it went) and
    // nothing was rendered: the worker took no new job, the jobs waited.
    expect((await queue.getCompletedCount()) - completedWhileDown).toBe(0);
    expect(model.requests.length - rendersWhileDown).toBe(0);
    expect(await metric(registry, 'levee_circuit_state', { target: 'image-store' })).toBe(1);
    expect(render.worker.isPaused()).toBe(true);
    await s3.restart();

    await until(async () => (await queue.getCompletedCount()) === 50, 60_000, 'all 50 jobs to complete');
    expect(await queue.getFailedCount()).toBe(0);
    expect(completedWithoutImage).toEqual([]);
    for (const [i, id] of ids.entries()) {
      const head = await images.head(id);
      expect(head?.bytes).toBe(renderPng({ ...SMALL, seed: i }).length);
    }
    // Uploads that failed before the breaker opened spend an attempt each (retried with backoff);
    // after that, jobs are postponed without spending one.
    const retried = await metric(registry, 'levee_jobs_total', { result: 'retried' });
    expect(retried).toBeLessThanOrEqual(STORE_FAILURES_TO_OPEN + 2);
    expect(render.ready()).toBe(true);
    const said = logLines.map((l) => JSON.parse(l).msg as string);
    expect(said.filter((m) => m.startsWith('image store failing: its breaker is open'))).toHaveLength(1);
    expect(said.filter((m) => m === 'image store back: jobs resume')).toHaveLength(1);
    expect((render.store as S3ImageStore).breaker.state).toBe('closed');
  }, 90_000);
});
