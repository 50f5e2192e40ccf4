/**
 * Worker benchmark: render jobs per second end to end (enqueue → PNG stored in Redis →
 * job completed) against calling the renderer directly in a loop, for 256×256 and 512×512.
 *
 *   npx tsx bench/worker.ts          (needs Redis at REDIS_URL, default redis://127.0.0.1:6379)
 *
 * Setup, all on 127.0.0.1: the model API runs as its own process (one Node process = one
 * core of rendering); the BullMQ worker runs in this process with the production wiring
 * (createRenderWorker: breaker, model client over HTTP, Redis image store). "Direct" is
 * renderPng() in a loop on one core. Efficiency = end-to-end jobs/s ÷ direct renders/s: what
 * the queue, HTTP, the breaker and Redis cost on top of the rendering itself.
 * "Per core" divides jobs by the CPU seconds the model and worker processes used.
 * Direct and end-to-end runs alternate for ROUNDS rounds of ~SECONDS each and the best of
 * each is kept, so a burst of load from elsewhere on the machine skews neither side.
 * Bounded: the whole run takes well under a minute.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { Registry } from 'prom-client';
import { renderPng } from '../services/model/src/renderer';
import { RENDER_JOB, RENDER_JOB_OPTIONS, RenderRequest } from '../services/shared/src/job';
import { MODEL_APIS, ModelApi } from '../services/shared/src/model-client';
import { imageKey, outcomeKey } from '../services/shared/src/keys';
import { createRenderWorker } from '../services/worker/src/worker';
import { freePort } from '../test/helpers/ports';
import { cpuSecondsOf, ServiceProcess } from '../test/helpers/processes';
import { onBenchNode } from './runtime';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

export interface WorkerBenchRow {
  size: string;
  directPerSec: number;
  e2ePerSec: number;
  efficiency: number;
  jobsPerCpuSecond: number;
  workerCpuMsPerJob: number;
  jobs: number;
  rounds: number;
}

const request = (size: number, i: number): RenderRequest => ({ prompt: `benchmark picture ${i}`, width: size, height: size, style: 'ocean', seed: i });

function directRate(size: number): number {
  for (let i = 0; i < 3; i++) renderPng(request(size, -i)); // warm the JIT
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < SECONDS * 1000) renderPng(request(size, n++));
  return n / ((performance.now() - started) / 1000);
}

/** The model API as its own process, as `npm run start:model` runs it. */
export async function startModel(): Promise<{ proc: ServiceProcess; url: string }> {
  const port = await freePort();
  const proc = new ServiceProcess('model', { PORT: String(port), HOST: '127.0.0.1' });
  await proc.waitHttp(port, '/healthz');
  return { proc, url: `http://127.0.0.1:${port}` };
}

export async function endToEnd(size: number, modelUrl: string, modelPid: number, jobs: number, api: ModelApi = 'levee'): Promise<Pick<WorkerBenchRow, 'e2ePerSec' | 'jobsPerCpuSecond' | 'workerCpuMsPerJob' | 'jobs'>> {
  const queueName = `bench-worker-${randomUUID()}`;
  const producer = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection: producer });
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const render = createRenderWorker({
    settings: {
      MODEL_URL: modelUrl,
      QUEUE_NAME: queueName,
      WORKER_CONCURRENCY: CONCURRENCY,
      MODEL_TIMEOUT_MS: 30_000,
      BREAKER_OPEN_SECONDS: 60,
      BREAKER_FAILURES: 5,
      IMAGE_TTL_SECONDS: 60, // deleted after the run, and they would expire anyway
      WORKER_LOCK_DURATION_MS: 10_000,
      WORKER_STALLED_INTERVAL_MS: 5_000,
      WORKER_MAX_STALLED_COUNT: 2,
      WORKER_STUCK_GRACE_MS: 15_000,
      MODEL_API: api,
    },
    connection,
    registry: new Registry(),
    logger: pino({ level: 'warn' }),
  });
  await render.worker.waitUntilReady();
  // warm-up: the model's JIT and the HTTP keep-alive pool
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => fetch(`${modelUrl}/v1/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request(size, -1 - i)) }).then((r) => r.arrayBuffer())));

  let done = 0;
  const finished = new Promise<void>((resolve) =>
    render.worker.on('completed', () => {
      if (++done === jobs) resolve();
    }),
  );
  const failed = new Promise<never>((_, reject) => render.worker.on('failed', (_job, err) => reject(err)));

  const cpu0 = process.cpuUsage();
  const model0 = cpuSecondsOf(modelPid) ?? 0;
  const started = performance.now();
  const ids = Array.from({ length: jobs }, () => randomUUID());
  await queue.addBulk(ids.map((jobId, i) => ({ name: RENDER_JOB, data: request(size, i), opts: { ...RENDER_JOB_OPTIONS, jobId } })));
  await Promise.race([finished, failed]);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const workerCpu = (cpu.user + cpu.system) / 1e6;
  const modelCpu = (cpuSecondsOf(modelPid) ?? 0) - model0;

  await render.close();
  // the images and outcome records live outside the queue's keys (obliterate leaves them)
  for (let i = 0; i < ids.length; i += 500) await producer.del(...ids.slice(i, i + 500).flatMap((id) => [imageKey(id), outcomeKey(id)]));
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  producer.disconnect();
  return { e2ePerSec: jobs / seconds, jobsPerCpuSecond: jobs / (workerCpu + modelCpu), workerCpuMsPerJob: (workerCpu * 1000) / jobs, jobs };
}

/**
 * Calls to the model API straight, CONCURRENCY at a time for ~SECONDS, as the worker makes them
 * (the same route and body; an OpenAI answer decoded): the rate a worker could at best reach.
 */
export async function directCalls(size: number, modelUrl: string, api: ModelApi): Promise<number> {
  const call = async (i: number): Promise<void> => {
    const r = request(size, i);
    if (api === 'levee') {
      const res = await fetch(`${modelUrl}/v1/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r) });
      if (!res.ok) throw new Error(`model answered ${res.status}`);
      await res.arrayBuffer();
    } else {
      const body = { model: 'levee-stand-in', prompt: r.prompt, size: `${size}x${size}`, n: 1, response_format: 'b64_json', seed: r.seed, style: r.style };
      const res = await fetch(`${modelUrl}/v1/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`model answered ${res.status}`);
      Buffer.from(((await res.json()) as { data: { b64_json: string }[] }).data[0]!.b64_json, 'base64');
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => call(1_000_000 + i))); // warm-up
  let n = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() - started < SECONDS * 1000) await call(n++);
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

/** The worker's throughput against calling the model API directly, per API (issue 25's goal: ≥ 90% at 512²). */
export interface ModelOverheadRow {
  api: ModelApi;
  size: string;
  directCallsPerSec: number;
  e2ePerSec: number;
  efficiency: number;
  workerCpuMsPerJob: number;
  rounds: number;
}

export async function runModelOverheadBench(size = 512): Promise<ModelOverheadRow[]> {
  const model = await startModel();
  const rows: ModelOverheadRow[] = [];
  try {
    for (const api of MODEL_APIS) {
      let direct = 0;
      let best: Awaited<ReturnType<typeof endToEnd>> | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        const d = await directCalls(size, model.url, api);
        direct = Math.max(direct, d);
        const e2e = await endToEnd(size, model.url, model.proc.pid, Math.max(16, Math.round(d * SECONDS)), api);
        if (!best || e2e.e2ePerSec > best.e2ePerSec) best = e2e;
      }
      rows.push({ api, size: `${size}x${size}`, directCallsPerSec: direct, e2ePerSec: best!.e2ePerSec, efficiency: best!.e2ePerSec / direct, workerCpuMsPerJob: best!.workerCpuMsPerJob, rounds: ROUNDS });
    }
  } finally {
    await model.proc.stop();
  }
  return rows;
}

export async function runWorkerBench(): Promise<WorkerBenchRow[]> {
  const model = await startModel();
  const rows: WorkerBenchRow[] = [];
  try {
    for (const size of [256, 512]) {
      let directPerSec = 0;
      let best: Awaited<ReturnType<typeof endToEnd>> | undefined;
      for (let round = 0; round < ROUNDS; round++) {
        const direct = directRate(size);
        directPerSec = Math.max(directPerSec, direct);
        const e2e = await endToEnd(size, model.url, model.proc.pid, Math.max(16, Math.round(direct * SECONDS)));
        if (!best || e2e.e2ePerSec > best.e2ePerSec) best = e2e;
      }
      rows.push({ size: `${size}x${size}`, directPerSec, efficiency: best!.e2ePerSec / directPerSec, ...best!, rounds: ROUNDS });
    }
  } finally {
    await model.proc.stop();
  }
  return rows;
}

function print(rows: WorkerBenchRow[]): void {
  const f = (n: number, d = 1) => n.toFixed(d);
  console.log(`\nworker benchmark (model API: 1 process; worker concurrency ${CONCURRENCY}; best of ${ROUNDS} rounds; Redis ${REDIS_URL})`);
  console.table(
    rows.map((r) => ({
      size: r.size,
      'direct renders/s (1 core)': f(r.directPerSec),
      'end-to-end jobs/s': f(r.e2ePerSec),
      'efficiency vs direct': `${f(r.efficiency * 100)}%`,
      'jobs per CPU-second': f(r.jobsPerCpuSecond),
      'worker CPU ms/job': f(r.workerCpuMsPerJob, 2),
      jobs: r.jobs,
    })),
  );
  console.log(JSON.stringify({ bench: 'worker', rows }));
}

export function printModelOverhead(rows: readonly ModelOverheadRow[]): void {
  const f = (n: number, d = 1) => n.toFixed(d);
  console.log(`\nworker against direct model calls (the same route and body, ${CONCURRENCY} at a time; best of ${ROUNDS} rounds)`);
  console.table(rows.map((r) => ({ 'MODEL_API': r.api, size: r.size, 'direct calls/s': f(r.directCallsPerSec), 'end-to-end jobs/s': f(r.e2ePerSec), 'of direct': `${f(r.efficiency * 100)}%`, 'goal': '≥ 90%', 'worker CPU ms/job': f(r.workerCpuMsPerJob, 2) })));
  console.log(JSON.stringify({ bench: 'model-overhead', rows }));
}

if (require.main === module) {
  onBenchNode()
    .then(async () => ({ worker: await runWorkerBench(), overhead: await runModelOverheadBench() }))
    .then(
      ({ worker, overhead }) => {
        print(worker);
        printModelOverhead(overhead);
        process.exit(0);
      },
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
}
