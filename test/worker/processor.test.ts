import { DelayedError, UnrecoverableError } from 'bullmq';
import { BrokenCircuitError } from 'cockatiel';
import { Registry } from 'prom-client';
import type { JobOutcome } from '../../services/shared/src/job';
import { imageKey } from '../../services/shared/src/keys';
import { JobCancelledError, ModelHttpError } from '../../services/shared/src/model-client';
import type { WebhookDelivery } from '../../services/shared/src/webhooks';
import { createWorkerMetrics } from '../../services/worker/src/metrics';
import { MIN_POSTPONE_MS, MODEL_NOT_READY_POSTPONE_MS, MODEL_WAIT_MAX_MS, RenderJobLike, STORE_FULL_POSTPONE_MS, UNCONFIRMED_POSTPONE_MS, createRenderProcessor } from '../../services/worker/src/processor';
import { ReplicaAckError } from '../../services/shared/src/replication';
import { ProgressMonitor } from '../../services/worker/src/progress';

/** A stand-in for a BullMQ job: records what the processor asked of it. */
function fakeJob(data: unknown, attemptsMade = 0, attempts = 5): RenderJobLike & { delayedUntil?: number; token?: string } {
  const job = {
    id: '6f1c1f2e-8a44-4b8e-9d55-0f2b7b1e2c3d',
    data,
    attemptsMade,
    timestamp: 900_000,
    opts: { attempts },
    delayedUntil: undefined as number | undefined,
    token: undefined as string | undefined,
    async moveToDelayed(timestamp: number, token?: string) {
      job.delayedUntil = timestamp;
      job.token = token;
    },
  };
  return job;
}

/** levee_jobs_total{result} in a registry (0 when never counted). */
async function jobCount(registry: Registry, result: string): Promise<number> {
  return (await registry.getSingleMetric('levee_jobs_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
}

function setup(render: () => Promise<Buffer>, retryAfterMs = 60_000) {
  const stored = new Map<string, { png: Buffer; ttl: number; record: JobOutcome }>();
  const order: string[] = [];
  const registry = new Registry();
  const metrics = createWorkerMetrics(registry);
  const processor = createRenderProcessor({
    render: async () => {
      order.push('render');
      return render();
    },
    store: {
      async put(id, png, ttl, record) {
        order.push('store');
        stored.set(id, { png, ttl, record });
      },
      putFailure: async () => undefined, // never called: worker.ts stores failures, after BullMQ
    },
    retryAfterMs: () => retryAfterMs,
    imageTtlSeconds: 3600,
    clock: () => 1_000_000,
    random: () => 0.5,
    metrics,
  });
  const count = (result: string) => jobCount(registry, result);
  return { processor, stored, order, count };
}

/** A processor whose image store refuses every put with `error` (fixed clock, no jitter), and its job counts. */
function refusingStore(error: Error) {
  const registry = new Registry();
  const processor = createRenderProcessor({
    render: async () => PNG_BYTES,
    store: { put: () => Promise.reject(error), putFailure: async () => undefined },
    retryAfterMs: () => 0,
    imageTtlSeconds: 1,
    clock: () => 1_000_000,
    random: () => 0,
    metrics: createWorkerMetrics(registry),
  });
  const count = (result: string) => jobCount(registry, result);
  return { processor, count };
}

const PNG_BYTES = Buffer.from('\x89PNG fake bytes');
const request = { prompt: 'a quiet harbour', width: 256, height: 128, style: 'ocean', seed: 3 };

describe('render processor (no Redis)', () => {
  it('renders, stores the PNG under imageKey with the TTL, then returns a summary', async () => {
    const { processor, stored, order, count } = setup(async () => PNG_BYTES);
    const job = fakeJob(request);
    await expect(processor(job, 'tok')).resolves.toEqual({ imageKey: imageKey(job.id!), bytes: PNG_BYTES.length, width: 256, height: 128 });
    // with the outcome record: created when BullMQ says, finished now, attempts counting this one
    expect(stored.get(job.id!)).toEqual({ png: PNG_BYTES, ttl: 3600, record: { status: 'completed', createdAt: 900_000, finishedAt: 1_000_000, attempts: 1 } });
    expect(order).toEqual(['render', 'store']);
    expect(await count('completed')).toBe(1);
  });

  it('counts the attempts made before this successful one in the outcome record', async () => {
    const { processor, stored } = setup(async () => PNG_BYTES);
    const job = fakeJob(request, 2);
    await processor(job, 'tok');
    expect(stored.get(job.id!)?.record).toEqual({ status: 'completed', createdAt: 900_000, finishedAt: 1_000_000, attempts: 3 });
  });

  it('fills the default size like the gateway does', async () => {
    let seen: unknown;
    const processor = createRenderProcessor({
      render: async (r) => ((seen = r), PNG_BYTES),
      store: { put: async () => undefined, putFailure: async () => undefined },
      retryAfterMs: () => 0,
      clock: () => 1_000_000, // shortly after the fake job was created (900 000)
      imageTtlSeconds: 1,
    });
    await expect(processor(fakeJob({ prompt: 'p' }))).resolves.toMatchObject({ width: 512, height: 512 });
    expect(seen).toEqual({ prompt: 'p', width: 512, height: 512 });
  });

  it('GIVEN an open breaker WHEN a job runs THEN it is moved to delayed until the breaker can half-open, without burning an attempt', async () => {
    const { processor, stored, count } = setup(() => Promise.reject(new BrokenCircuitError()), 42_000);
    const job = fakeJob(request, 2);
    const err = await processor(job, 'lock-token').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DelayedError);
    // 42 s until half-open, plus jitter: 10% of it capped at 2 s, × random() 0.5 = 1 s
    expect(job.delayedUntil).toBe(1_000_000 + 42_000 + 1_000);
    expect(job.delayedUntil! - 1_000_000).toBeGreaterThanOrEqual(42_000);
    expect(job.token).toBe('lock-token');
    expect(stored.size).toBe(0);
    expect(await count('postponed')).toBe(1);
    expect(await count('retried')).toBe(0);
    expect(await count('failed')).toBe(0);
  });

  it('never postpones by less than the minimum (a half-open breaker reports a short wait)', async () => {
    const { processor } = setup(() => Promise.reject(new BrokenCircuitError()), 0);
    const job = fakeJob(request);
    await expect(processor(job, 't')).rejects.toBeInstanceOf(DelayedError);
    expect(job.delayedUntil).toBeGreaterThanOrEqual(1_000_000 + MIN_POSTPONE_MS);
  });

  it('rethrows a model failure so BullMQ retries, counting it as retried while attempts remain', async () => {
    const { processor, count } = setup(() => Promise.reject(new ModelHttpError(500, 'boom')));
    await expect(processor(fakeJob(request, 0, 5))).rejects.toThrow('model API answered 500');
    expect(await count('retried')).toBe(1);
    await expect(processor(fakeJob(request, 4, 5))).rejects.toThrow('model API answered 500');
    expect(await count('failed')).toBe(1);
  });

  it('fails at once (UnrecoverableError) when the model rejects the request with a 4xx, with the server\'s message', async () => {
    const { processor, count } = setup(() => Promise.reject(new ModelHttpError(400, '{"detail":"bad"}')));
    const err = await processor(fakeJob(request)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('model refused the request (400): bad');
    expect(await count('failed')).toBe(1);
    const openai = setup(() => Promise.reject(new ModelHttpError(400, '{"error":{"message":"Your prompt was refused.","type":"invalid_request_error"}}')));
    expect(((await openai.processor(fakeJob(request)).catch((e: unknown) => e)) as Error).message).toBe('model refused the request (400): Your prompt was refused.');
  });

  it('retries a 408 from the model (the request itself was fine)', async () => {
    const { processor, count } = setup(() => Promise.reject(new ModelHttpError(408, 'timeout')));
    const err = await processor(fakeJob(request)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelHttpError);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect(await count('retried')).toBe(1);
  });

  it.each([401, 403, 404])('postpones on a %i (the model refuses us: a key, a URL, a model name to fix), burning no attempt, and keeps the answer out of the job', async (status) => {
    const { processor, count } = setup(() => Promise.reject(new ModelHttpError(status, '{"error":{"message":"Incorrect API key provided: sk-ab***cd"}}')));
    const job = fakeJob(request);
    await expect(processor(job, 't')).rejects.toBeInstanceOf(DelayedError);
    expect(await count('postponed')).toBe(1);
    // Too long after the job's creation: its attempts count again, and the error quotes nothing.
    const old = { ...fakeJob(request), timestamp: 1_000_000 - MODEL_WAIT_MAX_MS - 1 };
    const err = (await processor(old, 't').catch((e: unknown) => e)) as Error;
    expect(err).not.toBeInstanceOf(DelayedError);
    expect(err.message).toBe(`model API answered ${status} (its answer is in the worker's log)`);
    expect(await count('retried')).toBe(1);
  });

  it('stops postponing a job for a model that never gets ready once MODEL_WAIT_MAX_SECONDS have passed since its creation: its attempts count again', async () => {
    const { processor, count } = setup(() => Promise.reject(new ModelHttpError(503, 'loading', 1000)));
    const old = { ...fakeJob(request, 0, 5), timestamp: 1_000_000 - MODEL_WAIT_MAX_MS - 1 };
    await expect(processor(old, 't')).rejects.toThrow('model API answered 503');
    expect(await count('retried')).toBe(1);
    expect(await count('postponed')).toBe(0);
  });

  it.each([
    ['a 503 with Retry-After (a loading model)', () => new ModelHttpError(503, 'loading', 3000), 3000],
    ['a 429 with Retry-After', () => new ModelHttpError(429, 'slow down', 7000), 7000],
    ['a 503 without Retry-After', () => new ModelHttpError(503, 'busy'), MODEL_NOT_READY_POSTPONE_MS],
    ['a refused connection (no ready model pod: scaled to zero, or loading)', () => new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }), MODEL_NOT_READY_POSTPONE_MS],
  ])('postpones the job, burning no attempt, on %s, by that long', async (_name, error, wait) => {
    const { processor, count } = setup(() => Promise.reject(error()));
    const job = fakeJob(request);
    await expect(processor(job, 't')).rejects.toBeInstanceOf(DelayedError);
    expect(job.delayedUntil).toBeGreaterThanOrEqual(1_000_000 + wait);
    expect(job.delayedUntil).toBeLessThanOrEqual(1_000_000 + wait * 1.1 + 1);
    expect(await count('postponed')).toBe(1);
    expect(await count('retried')).toBe(0);
  });

  it.each([
    ['no prompt', { width: 64 }],
    ['an unknown field', { prompt: 'p', extra: 1 }],
    ['a size out of range', { prompt: 'p', width: 4096 }],
    ['not an object', 'just a string'],
  ])('fails a job with %s without calling the model', async (_name, data) => {
    const { processor, order } = setup(async () => PNG_BYTES);
    await expect(processor(fakeJob(data))).rejects.toBeInstanceOf(UnrecoverableError);
    expect(order).toEqual([]);
  });

  it('rethrows a store failure (retried by BullMQ) and never reports the job completed', async () => {
    const processor = createRenderProcessor({
      render: async () => PNG_BYTES,
      store: { put: () => Promise.reject(new Error('redis gone')), putFailure: async () => undefined },
      retryAfterMs: () => 0,
      clock: () => 1_000_000, // shortly after the fake job was created (900 000)
      imageTtlSeconds: 1,
    });
    await expect(processor(fakeJob(request))).rejects.toThrow('redis gone');
  });

  it('GIVEN a full image store (Redis OOM) THEN the job is postponed, not failed, and no attempt is burned', async () => {
    const { processor, count } = refusingStore(new Error("OOM command not allowed when used memory > 'maxmemory'."));
    const job = fakeJob(request, 0);
    await expect(processor(job, 'tok')).rejects.toBeInstanceOf(DelayedError);
    expect(job.delayedUntil).toBe(1_000_000 + STORE_FULL_POSTPONE_MS);
    expect(job.token).toBe('tok');
    expect(await count('postponed')).toBe(1);
    expect(await count('retried')).toBe(0);
  });

  it('tracks the model call in the progress monitor (liveness) until it settles', async () => {
    let now = 0;
    const progress = new ProgressMonitor(1000, () => now);
    let finish!: (b: Buffer) => void;
    const processor = createRenderProcessor({
      render: () => new Promise<Buffer>((r) => (finish = r)),
      store: { put: async () => undefined, putFailure: async () => undefined },
      retryAfterMs: () => 0,
      clock: () => 1_000_000, // shortly after the fake job was created (900 000)
      imageTtlSeconds: 1,
      progress,
    });
    const running = processor(fakeJob(request));
    await new Promise((r) => setImmediate(r));
    now = 900;
    expect(progress.status()).toMatchObject({ stuck: false, inFlight: 1, oldestMs: 900 });
    now = 1001;
    expect(progress.stuck()).toBe(true);
    finish(PNG_BYTES);
    await running;
    expect(progress.status()).toMatchObject({ stuck: false, inFlight: 0 });
  });

  it('GIVEN a store the replicas did not confirm (QUEUE_MIN_REPLICAS_ACKED) THEN the job is postponed, not completed, and no attempt is burned', async () => {
    const { processor, count } = refusingStore(new ReplicaAckError(0, 1, 1000));
    const job = fakeJob(request, 0);
    await expect(processor(job, 'tok')).rejects.toBeInstanceOf(DelayedError);
    expect(job.delayedUntil).toBe(1_000_000 + UNCONFIRMED_POSTPONE_MS);
    expect(await count('postponed')).toBe(1);
    expect(await count('completed')).toBe(0);
  });

  it('GIVEN a job whose image and outcome an earlier attempt stored THEN it completes without rendering again', async () => {
    const renders: string[] = [];
    const processor = createRenderProcessor({
      render: async () => {
        renders.push('render');
        return PNG_BYTES;
      },
      store: { put: async () => undefined, putFailure: async () => undefined, stored: async (id) => (id === fakeJob(request).id ? { bytes: 1234 } : undefined) },
      retryAfterMs: () => 0,
      clock: () => 1_000_000, // shortly after the fake job was created (900 000)
      imageTtlSeconds: 1,
    });
    await expect(processor(fakeJob(request))).resolves.toEqual({ imageKey: imageKey(fakeJob(request).id!), bytes: 1234, width: 256, height: 128 });
    expect(renders).toEqual([]);
  });

  it('GIVEN the stored check itself cannot be confirmed THEN the job is postponed before any render', async () => {
    const renders: string[] = [];
    const processor = createRenderProcessor({
      render: async () => {
        renders.push('render');
        return PNG_BYTES;
      },
      store: { put: async () => undefined, putFailure: async () => undefined, stored: () => Promise.reject(new ReplicaAckError(0, 1, 1000, 'reconnected')) },
      retryAfterMs: () => 0,
      imageTtlSeconds: 1,
      clock: () => 5,
      random: () => 0,
    });
    const job = fakeJob(request);
    await expect(processor(job)).rejects.toBeInstanceOf(DelayedError);
    expect(job.delayedUntil).toBe(5 + UNCONFIRMED_POSTPONE_MS);
    expect(renders).toEqual([]);
  });
});

describe('deadlines, cancels and webhooks (no Redis)', () => {
  const WEBHOOK = 'https://hooks.example/levee';
  function make(overrides: Partial<Parameters<typeof createRenderProcessor>[0]> = {}) {
    const renders: unknown[] = [];
    const notified: { id: string; delivery: WebhookDelivery }[] = [];
    const stored: JobOutcome[] = [];
    const registry = new Registry();
    const metrics = createWorkerMetrics(registry);
    const processor = createRenderProcessor({
      render: async (r) => (renders.push(r), PNG_BYTES),
      store: { put: async (_id, _png, _ttl, outcome) => void stored.push(outcome), putFailure: async () => undefined },
      retryAfterMs: () => 0,
      clock: () => 1_000_000,
      imageTtlSeconds: 1,
      notify: async (id, delivery) => void notified.push({ id, delivery }),
      metrics,
      ...overrides,
    });
    const count = async (result: string) => (await registry.getSingleMetric('levee_jobs_total')!.get()).values.find((v) => v.labels.result === result)?.value;
    return { processor, renders, notified, stored, count };
  }

  it('GIVEN a job older than the deadline THEN it fails for good with "expired…" and is never rendered', async () => {
    const { processor, renders, count } = make({ deadlineMs: 50_000 }); // the job waited 100 s
    const err = await processor(fakeJob({ prompt: 'late' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('expired: waited 100 s, past JOB_DEADLINE_SECONDS (50 s); not rendered');
    expect(renders).toEqual([]);
    expect(await count('expired')).toBe(1);
    // Just inside it: rendered.
    const inside = make({ deadlineMs: 100_001 });
    await expect(inside.processor(fakeJob({ prompt: 'in time' }))).resolves.toBeDefined();
    expect(inside.renders).toHaveLength(1);
  });

  it('GIVEN a job cancelled before it was taken (its cancel key) THEN it fails "cancelled" without rendering', async () => {
    const asked: string[] = [];
    const { processor, renders, count } = make({ isCancelled: async (id) => (asked.push(id), true) });
    const job = fakeJob({ prompt: 'p' });
    const err = await processor(job).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('cancelled');
    expect(asked).toEqual([job.id]);
    expect(renders).toEqual([]);
    expect(await count('cancelled')).toBe(1);
  });

  it('GIVEN the job is cancelled during its model call THEN the call gets the abort, and the job fails "cancelled", never stored, not retried', async () => {
    const controller = new AbortController();
    let sawSignal: AbortSignal | undefined;
    const { processor, stored } = make({
      render: (_r, signal) =>
        new Promise<Buffer>((_, reject) => {
          sawSignal = signal;
          signal!.addEventListener('abort', () => reject(new JobCancelledError()));
        }),
    });
    const running = processor(fakeJob({ prompt: 'p' }, 0, 5), 'tok', controller.signal).catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    controller.abort('cancelled');
    const err = await running;
    expect(sawSignal).toBe(controller.signal);
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('cancelled');
    expect(stored).toEqual([]);
  });

  it('GIVEN the job is cancelled while the model renders, its message lost (the key only) THEN it is not stored and sends nothing', async () => {
    let calls = 0;
    const { processor, stored, notified } = make({ isCancelled: async () => ++calls > 1 }); // set after the first check
    const err = await processor(fakeJob({ prompt: 'p', webhookUrl: WEBHOOK })).catch((e: unknown) => e);
    expect((err as Error).message).toBe('cancelled');
    expect(calls).toBe(2);
    expect(stored).toEqual([]);
    expect(notified).toEqual([]);
  });

  it('GIVEN an earlier attempt stored the image THEN the job completes even past its deadline or cancelled (its image.completed went out)', async () => {
    for (const overrides of [{ deadlineMs: 1 }, { isCancelled: async () => true }]) {
      const { processor, renders, notified } = make({
        ...overrides,
        store: { put: async () => undefined, putFailure: async () => undefined, stored: async () => ({ bytes: 42 }) },
      });
      await expect(processor(fakeJob({ prompt: 'p', webhookUrl: WEBHOOK }, 1))).resolves.toMatchObject({ bytes: 42 });
      expect(renders).toEqual([]);
      expect(notified.map((n) => n.delivery.type)).toEqual(['image.completed']);
    }
  });

  it('GIVEN a job with a webhookUrl THEN the model never sees the URL, the outcome is marked, and image.completed is enqueued after the store', async () => {
    const order: string[] = [];
    const { processor, renders, notified, stored } = make({
      imageUrl: (id) => `https://cdn.example/images/${id}.png`,
      store: { put: async (_id, _png, _ttl, outcome) => void (order.push('store'), stored.push(outcome)), putFailure: async () => undefined },
      notify: async (id, delivery) => void (order.push('notify'), notified.push({ id, delivery })),
    });
    const job = fakeJob({ prompt: 'p', width: 64, height: 64, webhookUrl: WEBHOOK }, 1);
    await processor(job);
    expect(renders).toEqual([{ prompt: 'p', width: 64, height: 64 }]);
    expect(order).toEqual(['store', 'notify']);
    expect(stored[0]).toEqual({ status: 'completed', createdAt: 900_000, finishedAt: 1_000_000, attempts: 2, webhook: true });
    expect(notified).toEqual([
      {
        id: job.id,
        delivery: {
          type: 'image.completed',
          timestamp: new Date(1_000_000).toISOString(),
          url: WEBHOOK,
          data: { id: job.id, status: 'completed', attempts: 2, createdAt: new Date(900_000).toISOString(), finishedAt: new Date(1_000_000).toISOString(), imageUrl: `https://cdn.example/images/${job.id}.png` },
        },
      },
    ]);
  });

  it('GIVEN the webhook cannot be enqueued THEN the attempt fails (BullMQ retries; the stored image completes it next time) ', async () => {
    const { processor } = make({ notify: () => Promise.reject(new Error('queue redis gone')) });
    const err = await processor(fakeJob({ prompt: 'p', webhookUrl: WEBHOOK })).catch((e: unknown) => e);
    expect((err as Error).message).toBe('queue redis gone');
    expect(err).not.toBeInstanceOf(UnrecoverableError);
  });

  it('GIVEN a job without a webhookUrl THEN nothing is enqueued and the outcome carries no webhook mark', async () => {
    const { processor, notified, stored } = make();
    await processor(fakeJob({ prompt: 'p' }));
    expect(notified).toEqual([]);
    expect(stored[0]).not.toHaveProperty('webhook');
  });
});
