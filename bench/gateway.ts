/**
 * Gateway benchmark: throughput and p50/p99 latency of the gateway's hot paths against a bare
 * Fastify route (the ceiling), side by side in one run on this machine, 127.0.0.1 only.
 *
 *   npx tsx bench/gateway.ts            # ~4 min
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=100 npx tsx bench/gateway.ts
 *   BENCH_ONLY=429 npx tsx bench/gateway.ts    # the ceiling and the scenarios matching /429/i
 *
 * Every server runs in its own process (as in production); autocannon runs here. A private
 * redis-server on a free port holds the queue, cache and rate-limit keys and is removed at
 * the end, and a stub model API answers /v1/styles — nothing outside this run is touched.
 */
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { RENDER_JOB, RENDER_JOB_OPTIONS } from '../services/shared/src/job';
import { freePort } from '../test/helpers/ports';
import { cpuSecondsOf, ServiceProcess } from '../test/helpers/processes';
import { RedisServer } from '../test/helpers/redis-server';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** Rounds of every scenario. On a shared 2-core VM the ceiling itself drifts by ±30% from
 * minute to minute, so every scenario run is bracketed by two ceiling runs and its share is
 * taken against their mean; the median share over the rounds is reported. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const WARMUP_SECONDS = 2;

/** One scenario's figures (also read by bench/run.ts). */
export interface GatewayBenchRow {
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  statuses: string;
  ceilingShare?: string;
  target?: string;
  /** Share of the ceiling in each round, percent (the reported share is their median). */
  shares?: number[];
  /** Server process CPU time per request, µs (median of the rounds). */
  cpuUsPerRequest?: number;
  /** CPU time of the load generator (autocannon, in this process) per request, µs (median). */
  clientCpuUsPerRequest?: number;
}

/** What one BullMQ add costs by itself, outside any HTTP server (see bullmqAddCost). */
export interface BullmqAddCost {
  jobs: number;
  batch: number;
  /** CPU of this process (BullMQ + ioredis building and sending the adds) per job, µs. */
  clientCpuUsPerJob: number;
  /** CPU of the Redis server (the add script) per job, µs. */
  redisCpuUsPerJob: number;
}

function distinctClients(n: number) {
  let i = 0;
  return (req: autocannon.Request): autocannon.Request => {
    i = (i + 1) % n;
    return { ...req, headers: { ...req.headers, 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` } };
  };
}

interface Scenario {
  name: string;
  target?: string;
  /** The server process, for its CPU time per request (steadier than req/s on a shared VM). */
  pid?: number;
  opts: { port: number; path: string; method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; distinctClients?: number };
}

function cannon(s: Scenario, duration: number) {
  const { opts } = s;
  return autocannon({
    url: `http://127.0.0.1:${opts.port}${opts.path}`,
    connections: CONNECTIONS,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    duration,
    // Each request from another client IP (X-Forwarded-For from a trusted proxy): the limiter
    // then makes one Redis increment per request instead of one per client per event-loop turn.
    ...(opts.distinctClients ? { requests: [{ setupRequest: distinctClients(opts.distinctClients) }] } : {}),
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One autocannon run and the server CPU it cost. */
async function run(s: Scenario): Promise<{ result: autocannon.Result; cpuUs?: number; clientUs: number }> {
  const before = cpuSecondsOf(s.pid);
  const client = process.cpuUsage();
  const result = await cannon(s, SECONDS);
  const clientCpu = process.cpuUsage(client);
  const after = cpuSecondsOf(s.pid);
  const n = Math.max(1, result.requests.total);
  const cpuUs = before !== undefined && after !== undefined && result.requests.total > 0 ? ((after - before) * 1e6) / n : undefined;
  return { result, cpuUs, clientUs: (clientCpu.user + clientCpu.system) / n };
}

/**
 * Warms every scenario up, then runs ROUNDS rounds. A round is ceiling, scenario 1, ceiling,
 * scenario 2, …, ceiling: each scenario's share is its throughput over the mean of the two
 * ceiling runs around it, so a drift of the machine between runs cancels out.
 */
async function measure(all: Scenario[]): Promise<GatewayBenchRow[]> {
  // BENCH_ONLY=<regex>: only the scenarios whose name matches (the ceiling always runs)
  const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : undefined;
  const scenarios = all.filter((s, i) => i === 0 || !only || only.test(s.name));
  const [ceiling, ...rest] = scenarios;
  for (const s of scenarios) await cannon(s, WARMUP_SECONDS); // JIT, connection pools, caches
  const results: autocannon.Result[][] = scenarios.map(() => []);
  const cpu: number[][] = scenarios.map(() => []);
  const clientCpu: number[][] = scenarios.map(() => []);
  const shares: number[][] = scenarios.map(() => []);
  const record = (i: number, r: Awaited<ReturnType<typeof run>>) => {
    results[i].push(r.result);
    clientCpu[i].push(r.clientUs);
    if (r.cpuUs !== undefined) cpu[i].push(r.cpuUs);
  };
  for (let round = 0; round < ROUNDS; round++) {
    let before = await run(ceiling);
    record(0, before);
    for (const [j, s] of rest.entries()) {
      const r = await run(s);
      const after = await run(ceiling);
      record(j + 1, r);
      record(0, after);
      shares[j + 1].push(r.result.requests.average / ((before.result.requests.average + after.result.requests.average) / 2));
      before = after;
    }
  }
  return scenarios.map((s, i) => {
    const rs = results[i];
    const statuses = new Map<string, number>();
    let errors = 0;
    for (const r of rs) {
      errors += r.errors;
      for (const [code, st] of Object.entries(r.statusCodeStats ?? {})) statuses.set(code, (statuses.get(code) ?? 0) + (st as { count: number }).count);
    }
    return {
      scenario: s.name,
      rps: median(rs.map((r) => r.requests.average)),
      p50: median(rs.map((r) => r.latency.p50)),
      p99: median(rs.map((r) => r.latency.p99)),
      statuses: [...statuses].map(([code, n]) => `${code}×${n}`).join(' ') + (errors ? ` errors×${errors}` : ''),
      ...(i > 0 ? { ceilingShare: `${(100 * median(shares[i])).toFixed(0)}%`, shares: shares[i].map((x) => Math.round(100 * x)) } : {}),
      ...(s.target ? { target: s.target } : {}),
      ...(cpu[i].length ? { cpuUsPerRequest: median(cpu[i]) } : {}),
      clientCpuUsPerRequest: median(clientCpu[i]),
    };
  });
}

/** User + system CPU seconds the Redis server has used (INFO cpu). */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/**
 * The floor under POST /api/images: what one BullMQ add of a render job costs by itself, with
 * no HTTP at all — in this process (BullMQ and ioredis preparing and sending it) and in Redis
 * (BullMQ's add script). Jobs go out as the gateway sends them: `addBulk` batches with the
 * production job options and a UUID job id each.
 */
export async function bullmqAddCost(redisUrl: string, jobs = 20_000, batch = 50): Promise<BullmqAddCost> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(`bench-add-${randomUUID()}`, { connection, defaultJobOptions: RENDER_JOB_OPTIONS });
  const data = { prompt: 'a lighthouse in a storm', width: 512, height: 512, style: 'sunset' };
  const addAll = async (n: number) => {
    // `concurrency` batches in flight at once, like a gateway under load
    const concurrency = 4;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const size = Math.min(batch, n - next);
          next += size;
          await queue.addBulk(Array.from({ length: size }, () => ({ name: RENDER_JOB, data, opts: { jobId: randomUUID() } })));
        }
      }),
    );
  };
  try {
    await addAll(2_000); // warm-up: JIT, script loading
    const redisBefore = await redisCpuSeconds(connection);
    const before = process.cpuUsage();
    await addAll(jobs);
    const used = process.cpuUsage(before);
    const redisUsed = (await redisCpuSeconds(connection)) - redisBefore;
    await queue.obliterate({ force: true });
    return { jobs, batch, clientCpuUsPerJob: (used.user + used.system) / jobs, redisCpuUsPerJob: (redisUsed * 1e6) / jobs };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** A gateway's answer as the ceiling server can replay it: status, headers (less the per-connection ones) and body. */
async function record(url: string, status: number): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(url);
    const body = await res.text();
    if (res.status !== status) continue; // e.g. the 200s before the limit is reached
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name)) headers[name] = value;
    });
    return { status, headers, body };
  }
  throw new Error(`${url} never answered ${status}`);
}

/** Runs every scenario (servers started and stopped here) and returns the rows, ceiling first. */
export async function runGatewayBench(): Promise<GatewayBenchRow[]> {
  const redis = await RedisServer.start();
  const procs: ServiceProcess[] = [];
  const model = Fastify({ logger: false });
  model.get('/v1/styles', async () => {
    await new Promise((r) => setTimeout(r, 200));
    return { styles: [{ id: 'sunset', name: 'Sunset', description: 'Warm purples, reds and golds.' }] };
  });
  try {
    const modelUrl = await model.listen({ port: 0, host: '127.0.0.1' });
    const [ceilingPort, gatewayPort, limitedPort, proxiedPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const gatewayEnv = {
      REDIS_URL: redis.url,
      MODEL_URL: modelUrl,
      LOG_LEVEL: 'warn',
      QUEUE_NAME: 'bench',
      QUEUE_MAX_WAITING: '100000000',
      CACHE_TTL_SECONDS: '3600',
      HOST: '127.0.0.1',
    };
    // Rate limiter in the path but not binding: every request makes its Redis round trip.
    const gateway = new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(gatewayPort), RATE_LIMIT_PER_SECOND: '10000000' });
    // The default limit of 10/s: a flood from one client is almost all 429s.
    const limited = new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(limitedPort), RATE_LIMIT_PER_SECOND: '10' });
    // Behind a trusted proxy, the default limit, many clients each under it: the limiter's
    // honest cost (no coalescing of one client's requests).
    const proxied = new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(proxiedPort), RATE_LIMIT_PER_SECOND: '10', TRUST_PROXY: '127.0.0.1/32' });
    procs.push(gateway, limited, proxied);
    await Promise.all(procs.map((p) => p.waitHttp(Number(p.env.PORT), '/readyz')));
    const hit = await record(`http://127.0.0.1:${gatewayPort}/api/styles`, 200); // loads the catalog, then a hit
    await fetch(`http://127.0.0.1:${proxiedPort}/api/styles`);
    const rejected = await record(`http://127.0.0.1:${limitedPort}/api/styles`, 429);
    // The ceiling, and the same bare Fastify answering exactly the gateway's bytes.
    const ceiling = new ServiceProcess('ceiling', { PORT: String(ceilingPort), QUEUE_REDIS_URL: redis.url, REPLAY: JSON.stringify({ '/as-cache-hit': hit, '/as-429': rejected }) }, 'bench/ceiling-server.ts');
    procs.push(ceiling);
    await ceiling.waitHttp(ceilingPort, '/');

    const post = {
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse in a storm', width: 512, height: 512, style: 'sunset' }),
    };
    const rows = await measure([
      { name: 'bare Fastify route (ceiling)', pid: ceiling.pid, opts: { port: ceilingPort, path: '/' } },
      { name: 'GET /api/styles, cache hit', target: '≥ 75%', pid: gateway.pid, opts: { port: gatewayPort, path: '/api/styles' } },
      { name: 'reference: bare Fastify answering the cache hit\'s exact bytes', pid: ceiling.pid, opts: { port: ceilingPort, path: '/as-cache-hit' } },
      { name: 'POST /api/images (enqueue)', target: '≥ 40%', pid: gateway.pid, opts: { port: gatewayPort, path: '/api/images', ...post } },
      { name: 'reference: bare Fastify POST route, same body and validation, 202 (no limiter, no queue)', pid: ceiling.pid, opts: { port: ceilingPort, path: '/as-post', ...post } },
      { name: 'reference: that bare POST route + one plain BullMQ queue.add (no limiter, no idempotency, no bound)', pid: ceiling.pid, opts: { port: ceilingPort, path: '/as-post-queued', ...post } },
      { name: '429 flood (one IP, limit 10/s)', target: '≥ 90%', pid: limited.pid, opts: { port: limitedPort, path: '/api/styles' } },
      { name: 'reference: bare Fastify answering the 429\'s exact bytes', pid: ceiling.pid, opts: { port: ceilingPort, path: '/as-429' } },
      { name: 'GET /api/styles, 50,000 client IPs under 10/s', pid: proxied.pid, opts: { port: proxiedPort, path: '/api/styles', distinctClients: 50_000 } },
    ]);
    return rows;
  } finally {
    await Promise.all(procs.map((p) => p.kill()));
    await model.close();
    await redis.stop();
  }
}

function print(rows: GatewayBenchRow[]): void {
  process.stdout.write(`\nGateway benchmark: ${CONNECTIONS} connections, ${ROUNDS} rounds × ${SECONDS} s per scenario (after ${WARMUP_SECONDS} s warm-up), medians, node ${process.version}\n\n`);
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'of ceiling', 'rounds %', 'target', 'server CPU µs/req', 'client CPU µs/req', 'statuses'];
  const table = rows.map((r) => [r.scenario, r.rps.toFixed(0), String(r.p50), String(r.p99), r.ceilingShare ?? '100%', r.shares?.join('/') ?? '', r.target ?? '', r.cpuUsPerRequest?.toFixed(1) ?? '', r.clientCpuUsPerRequest?.toFixed(1) ?? '', r.statuses]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${table.map(line).join('\n')}\n`);
  process.stdout.write(`\np99 target: < 25 ms at ${CONNECTIONS} connections.\n`);
}

if (require.main === module) {
  runGatewayBench().then(print, (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
