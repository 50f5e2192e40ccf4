/**
 * `npm run bench`: Levee's flood scenario, measured on this machine, side by side in one
 * run. Starts everything it needs (private redis-servers, stub and real services) on
 * 127.0.0.1 only, every load bounded in time, and prints one table; the figures also go to
 * bench/results/latest.json and the table to BENCHMARKS.md (with the machine and date).
 *
 *   npm run bench                      # ~12 minutes
 *   BENCH_SECONDS=3 npm run bench      # shorter load runs
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Fastify, { FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import { freePort } from '../test/helpers/ports';
import { RedisServer } from '../test/helpers/redis-server';
import { request } from '../test/helpers/http';
import { ServiceProcess } from '../test/helpers/processes';
import { BlockList } from '../services/gateway/src/block-list';
import { bullmqAddCost, describeLoad, GatewayBenchRow, ofCeiling, runGatewayBench } from './gateway';
import { loadGenerator, runLoad } from './load';
import { BenchResults, renderBenchChartSvg } from './chart';
import { onBenchNode } from './runtime';
import { runModelOverheadBench, runWorkerBench } from './worker';
import { runQueueMemoryBench, S3_GOAL_BYTES } from './queue-memory';

const ROOT = path.resolve(__dirname, '..');
const FLOOD = 10_000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);

interface Row {
  scenario: string;
  figure: string;
  /** Requests per second, for the ratio to the ceiling. */
  rps?: number;
  p50?: number;
  p99?: number;
  ofCeiling?: string;
  target?: string;
  /** Origin loads per hot-key expiry (the cache-breakdown rows), for the chart. */
  loads?: number;
}

/** A stand-in model API whose /v1/styles counts its loads and takes 200 ms; `mode` can break it. */
async function stubOrigin(): Promise<{ app: FastifyInstance; url: string; loads: () => number; setMode(m: 'ok' | 'hang'): void }> {
  let loads = 0;
  let mode: 'ok' | 'hang' = 'ok';
  const app = Fastify({ logger: false });
  app.get('/v1/styles', async () => {
    loads++;
    if (mode === 'hang') await new Promise((r) => setTimeout(r, 60_000));
    await new Promise((r) => setTimeout(r, 200));
    return { styles: [{ id: 'sunset', name: 'Sunset', description: 'Warm purples, reds and golds.' }] };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url, loads: () => loads, setMode: (m) => (mode = m) };
}

/** FLOOD concurrent GET /api/styles spread over `ports`, each from its own client IP. */
async function flood(ports: number[]): Promise<number[]> {
  const agents = ports.map(() => new http.Agent({ keepAlive: true, maxSockets: 200 }));
  try {
    const res = await Promise.all(
      Array.from({ length: FLOOD }, (_, i) =>
        request(ports[i % ports.length], '/api/styles', { agent: agents[i % ports.length], headers: { 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` } }),
      ),
    );
    return res.map((r) => r.status);
  } finally {
    agents.forEach((a) => a.destroy());
  }
}

/** Origin loads caused by one hot-key expiry under FLOOD concurrent requests: naive cache-aside vs Levee. */
async function cacheBreakdown(redis: RedisServer): Promise<Row[]> {
  const origin = await stubOrigin();
  const procs: ServiceProcess[] = [];
  const admin = new Redis(redis.url);
  try {
    // naive: two replicas of textbook cache-aside; the key is absent (just expired)
    const naivePorts = [await freePort(), await freePort()];
    for (const port of naivePorts) {
      procs.push(new ServiceProcess('naive-cache', { PORT: String(port), REDIS_URL: redis.url, ORIGIN_URL: origin.url }, 'bench/naive-cache-server.ts'));
    }
    // Levee: two gateway replicas sharing the cache Redis, as in production
    const ttl = 4;
    const gatewayPorts = [await freePort(), await freePort()];
    for (const port of gatewayPorts) {
      procs.push(
        new ServiceProcess('gateway', {
          PORT: String(port),
          REDIS_URL: redis.url,
          MODEL_URL: origin.url,
          QUEUE_NAME: 'bench-cache',
          TRUST_PROXY: '127.0.0.1/32',
          CACHE_TTL_SECONDS: String(ttl),
          SHUTDOWN_DELAY_SECONDS: '0',
        }),
      );
    }
    await Promise.all(procs.map((p, i) => p.waitHttp(Number(p.env.PORT), i < 2 ? '/api/styles' : '/readyz')));

    const rounds = 2;
    let naiveLoads = 0;
    let leveeLoads = 0;
    let naiveMs = 0;
    let leveeMs = 0;
    for (let round = 0; round < rounds; round++) {
      await request(naivePorts[0], '/api/styles');
      await admin.del('naive:styles'); // the hot key expires
      let before = origin.loads();
      let t = performance.now();
      const naive = await flood(naivePorts);
      naiveMs += performance.now() - t;
      naiveLoads += origin.loads() - before;
      if (naive.some((s) => s !== 200)) throw new Error('naive cache-aside answered non-200');

      await request(gatewayPorts[0], '/api/styles', { headers: { 'x-forwarded-for': '10.255.255.255' } });
      await new Promise((r) => setTimeout(r, ttl * 1000 * 1.15)); // past the TTL and its ±10% jitter
      before = origin.loads();
      t = performance.now();
      const levee = await flood(gatewayPorts);
      leveeMs += performance.now() - t;
      leveeLoads += origin.loads() - before;
      if (levee.some((s) => s !== 200)) throw new Error('Levee answered non-200 during the flood');
    }
    return [
      { scenario: `naive cache-aside: origin loads per hot-key expiry (${FLOOD.toLocaleString('en')} concurrent, 2 replicas)`, figure: `${(naiveLoads / rounds).toFixed(0)} loads (${((FLOOD * rounds) / (naiveMs / 1000)).toFixed(0)} req/s)`, rps: (FLOOD * rounds) / (naiveMs / 1000), loads: naiveLoads / rounds },
      { scenario: `Levee cache: origin loads per hot-key expiry (${FLOOD.toLocaleString('en')} concurrent, 2 replicas)`, figure: `${(leveeLoads / rounds).toFixed(0)} load${leveeLoads === rounds ? '' : 's'} (${((FLOOD * rounds) / (leveeMs / 1000)).toFixed(0)} req/s)`, rps: (FLOOD * rounds) / (leveeMs / 1000), target: '1', loads: leveeLoads / rounds },
    ];
  } finally {
    admin.disconnect();
    await Promise.all(procs.map((p) => p.stop(5000)));
    await origin.app.close();
  }
}

/** Latency of answers refused by the open breaker (model hangs; no stale copy). */
async function breakerFastFail(redis: RedisServer): Promise<Row[]> {
  const origin = await stubOrigin();
  origin.setMode('hang');
  const port = await freePort();
  const metricsPort = await freePort();
  const timeoutMs = 1000;
  const gw = new ServiceProcess('gateway', {
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    REDIS_URL: redis.url,
    MODEL_URL: origin.url,
    QUEUE_NAME: 'bench-breaker',
    MODEL_TIMEOUT_MS: String(timeoutMs),
    BREAKER_OPEN_SECONDS: '600',
    RATE_LIMIT_PER_SECOND: '10000000',
    SHUTDOWN_DELAY_SECONDS: '0',
  });
  try {
    await gw.waitHttp(port, '/readyz');
    // five consecutive timeouts open the breaker
    for (let i = 0; i < 5; i++) {
      const res = await request(port, '/api/styles');
      if (res.status !== 503) throw new Error(`expected 503 while the model hangs, got ${res.status}`);
    }
    const metrics = (await request(metricsPort, '/metrics')).body.toString();
    if (!/levee_circuit_state\{[^}]*target="model"[^}]*\} 1/.test(metrics)) throw new Error('breaker did not open');
    const loadsBefore = origin.loads();
    const result = await runLoad({ port, path: '/api/styles', connections: 100, seconds: SECONDS });
    const reached = origin.loads() - loadsBefore;
    // Every answer is the breaker's 503 (wrk counts only 2xx/3xx vs other).
    if (result.non2xx !== result.total) throw new Error(`breaker fast-fail answered ${result.total - result.non2xx} non-503s: ${JSON.stringify(result.statuses)}`);
    return [
      {
        scenario: `breaker open: GET /api/styles fails fast (model hangs, timeout ${timeoutMs} ms)`,
        figure: `${result.rps.toFixed(0)} req/s of 503, ${reached} model calls`,
        rps: result.rps,
        p50: result.p50,
        p99: result.p99,
      },
    ];
  } finally {
    await gw.stop(5000);
    await origin.app.close();
  }
}

/**
 * CPU time to block `clients` distinct clients within one 1 s window: rate-limiter-flexible's
 * in-memory block list (`inMemoryBlockOnConsumed`; it scans its whole map on each add past 999
 * keys) against Levee's BlockList. A flood from that many IPs makes this many adds per window.
 */
function blockListCost(clients: number): Row {
  // The library's internal class (no public export; the path is pinned by package-lock).
  const LibraryBlockedKeys = require('rate-limiter-flexible/lib/component/BlockedKeys/BlockedKeys.js') as new () => { addMs(key: string, ms: number): void };
  const time = (add: (key: string) => void) => {
    const started = process.cpuUsage();
    for (let i = 0; i < clients; i++) add(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const used = process.cpuUsage(started);
    return (used.user + used.system) / 1000;
  };
  const library = new LibraryBlockedKeys();
  const levee = new BlockList(1000);
  const libraryMs = time((k) => library.addMs(k, 1000));
  const leveeMs = time((k) => levee.add(k, 1000));
  return {
    scenario: `in-memory block of ${clients.toLocaleString('en')} distinct clients within one window (CPU per window)`,
    figure: `rate-limiter-flexible inMemoryBlockOnConsumed ${libraryMs.toFixed(0)} ms; Levee BlockList ${leveeMs.toFixed(1)} ms`,
  };
}

function table(rows: Row[]): string {
  const header = ['scenario', 'result', 'p50 ms', 'p99 ms', 'of ceiling', 'target'];
  const cells = rows.map((r) => [r.scenario, r.figure, r.p50?.toString() ?? '', r.p99?.toString() ?? '', r.ofCeiling ?? '', r.target ?? '']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  const redis = await RedisServer.start();
  const rows: Row[] = [];
  const workerRows: Row[] = []; // measured first, on a quiet machine; printed last
  const raw: Record<string, unknown> = {};
  try {
    process.stderr.write('bench: worker jobs/s…\n');
    const worker = await runWorkerBench();
    raw.worker = worker;
    for (const w of worker) {
      workerRows.push({
        scenario: `worker: ${w.size} renders end to end (enqueue → stored PNG)`,
        figure: `${w.e2ePerSec.toFixed(1)} jobs/s (${w.jobsPerCpuSecond.toFixed(1)} per CPU-second); direct ${w.directPerSec.toFixed(1)}/s`,
        ofCeiling: `${(w.efficiency * 100).toFixed(0)}% of direct`,
        target: '≥ 85% of direct',
      });
    }
    process.stderr.write('bench: the worker against direct model calls, per model API…\n');
    const overhead = await runModelOverheadBench();
    raw.modelOverhead = overhead;
    for (const o of overhead) {
      workerRows.push({
        scenario: `worker with MODEL_API=${o.api}: ${o.size} jobs end to end against direct calls to the model API`,
        figure: `${o.e2ePerSec.toFixed(1)} jobs/s; direct calls ${o.directCallsPerSec.toFixed(1)}/s; worker ${o.workerCpuMsPerJob.toFixed(2)} ms CPU per job`,
        ofCeiling: `${(o.efficiency * 100).toFixed(0)}% of direct calls`,
        target: '≥ 90% of direct calls',
      });
    }
    process.stderr.write('bench: queue Redis per finished job, images in Redis vs in object storage (s3rver)…\n');
    const memory = await runQueueMemoryBench();
    raw.queueMemory = memory;
    for (const m of memory) {
      workerRows.push({
        scenario: `queue Redis per finished 512² job, IMAGE_STORE=${m.store} (used_memory delta / ${m.jobs} jobs)`,
        figure: `${(m.bytesPerJob / 1024).toFixed(1)} KiB (${Math.round(m.jobsPerGiB).toLocaleString('en')} finished jobs per GiB)`,
        ...(m.store === 's3' ? { target: `≤ ${S3_GOAL_BYTES / 1024} KiB` } : {}),
      });
    }
    process.stderr.write(`bench: gateway throughput (ceiling, styles hit, POST, floor, peers, 429 flood); load generator ${loadGenerator()}…\n`);
    const gateway: GatewayBenchRow[] = await runGatewayBench();
    raw.gateway = gateway;
    for (const g of gateway) {
      const cpu = g.cpuUsPerRequest !== undefined ? `; CPU µs/req: server ${g.cpuUsPerRequest.toFixed(0)}, Redis ${g.redisCpuUsPerRequest?.toFixed(0)}, client ${g.clientCpuUsPerRequest?.toFixed(0)}` : '';
      const p99 = g.p99OfCeiling !== undefined ? `; p99 ${g.p99OfCeiling.toFixed(1)}× ceiling's` : '';
      const busy = g.mainThreadBusyPercent !== undefined ? `; main thread busy ${g.mainThreadBusyPercent.toFixed(0)}%` : '';
      const steal = g.stealPercent !== undefined ? `; steal ${g.stealPercent.toFixed(0)}%` : '';
      rows.push({
        scenario: g.scenario,
        figure: `${g.rps.toFixed(0)} req/s${g.shares ? ` (rounds: ${g.shares.join('/')}%)` : ''}${g.versus ? `; ${g.versus}` : ''}${p99}${cpu}${busy}${steal}`,
        rps: g.rps,
        p50: Math.round(g.p50 * 1000) / 1000,
        p99: Math.round(g.p99 * 1000) / 1000,
        ofCeiling: ofCeiling(g),
        target: g.target,
      });
    }
    process.stderr.write('bench: one BullMQ add by itself…\n');
    const add = await bullmqAddCost(redis.url);
    raw.bullmqAdd = add;
    rows.push({
      scenario: `one BullMQ add by itself (no HTTP; addBulk of ${add.batch}, ${add.jobs.toLocaleString('en')} jobs)`,
      figure: `${add.clientCpuUsPerJob.toFixed(0)} µs CPU in the producer + ${add.redisCpuUsPerJob.toFixed(0)} µs in Redis per job`,
    });
    rows.push(blockListCost(5_000), blockListCost(20_000));
    process.stderr.write('bench: cache breakdown, naive vs Levee…\n');
    const cache = await cacheBreakdown(redis);
    raw.cache = cache;
    rows.push(...cache);
    process.stderr.write('bench: breaker fast-fail…\n');
    await redis.kill(); // a restart keeps nothing: no stale copy of the catalog to fall back on
    await redis.restart();
    const breaker = await breakerFastFail(redis);
    raw.breaker = breaker;
    rows.push(...breaker);
  } finally {
    await redis.stop();
  }

  rows.push(...workerRows);
  // Every request-rate figure as a share of the ceiling measured in the same run.
  const ceiling = rows[0]?.rps;
  for (const r of rows) if (ceiling && r.rps !== undefined && r.ofCeiling === undefined) r.ofCeiling = `${((100 * r.rps) / ceiling).toFixed(0)}%`;

  const cpus = os.cpus();
  const machine = `${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
  const text = table(rows);
  process.stdout.write(`\nLevee benchmark — ${started.toISOString()} — ${machine}\n\n${text}\n`);

  fs.mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  const results = { date: started.toISOString(), machine, rows, raw };
  fs.writeFileSync(path.join(ROOT, 'bench', 'results', 'latest.json'), JSON.stringify(results, null, 2));
  // The picture of this run, next to BENCHMARKS.md (redraw: npx tsx bench/render-chart.ts).
  fs.writeFileSync(path.join(ROOT, 'BENCHMARKS.svg'), await renderBenchChartSvg(results as unknown as BenchResults));
  fs.writeFileSync(
    path.join(ROOT, 'BENCHMARKS.md'),
    `# Benchmarks\n\nThe latest \`npm run bench\` (written by \`bench/run.ts\`; figures are from the machine it ran on — rerun on yours).\n\n` +
      `- date: ${started.toISOString()}\n- machine: ${machine}\n- load: ${describeLoad()}; the median share of the mean of those two ceilings (the per-round shares in parentheses); CPU per request of the server process, of the Redis servers (queue + cache) and of the load generator (client); main thread busy: the share of the time the server's event loop thread was on a CPU; steal: the share of the machine's CPU time the hypervisor took during the row's runs; two Redis servers as deployed, a queue Redis and a cache Redis (the peers' rate-limit store and catalog on the cache Redis; rows that say "one Redis" put everything on one); 127.0.0.1 only. Method and analysis: [docs/benchmarks.md](docs/benchmarks.md)\n` +
      `- ceiling: a bare Fastify route answering a small JSON object, in its own process\n\n${text}\n\n` +
      `![Throughput and p99 per scenario against the ceiling and the peers, and origin loads per expiry, naive vs Levee](BENCHMARKS.svg)\n`,
  );
}

onBenchNode()
  .then(main)
  .then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
