/**
 * Gateway benchmark: throughput, p50/p99 latency and CPU per request of the gateway's hot
 * paths against a bare Fastify route (the ceiling), the BullMQ floor and hand-written peers,
 * side by side in one run on this machine, 127.0.0.1 only.
 *
 *   npx tsx bench/gateway.ts                   # ~7 min
 *   BENCH_SECONDS=5 BENCH_ROUNDS=3 npx tsx bench/gateway.ts
 *   BENCH_ONLY=429 npx tsx bench/gateway.ts    # the ceiling and the scenarios matching /429/i
 *   BENCH_LOAD=autocannon …                    # instead of wrk
 *
 * Every server runs in its own process (as in production); the load generator is wrk when
 * installed (autocannon otherwise; see ./load.ts), and its CPU per request is reported next to
 * the server's and Redis's. Private redis-servers on free ports hold every key: two stand for
 * the deployed topology (CONTRACT section 2), the queue Redis (BullMQ) and the cache Redis
 * (cache and rate-limit keys), and a primary with a replica serves the POST with WAIT.
 * Levee's gateways use the first two; the hand-written peers get the same two (their
 * rate-limit store and catalog key on the cache Redis, their queue on the queue Redis), and
 * the rows marked "one Redis" put everything on the queue Redis, as the first measurement of
 * issue 15 did. All are removed at the end, and a stub model API answers /v1/styles —
 * nothing outside this run is touched.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import Redis from 'ioredis';
import { RENDER_JOB, RENDER_JOB_OPTIONS } from '../services/shared/src/job';
import { freePort } from '../test/helpers/ports';
import { cpuSecondsOf, ServiceProcess } from '../test/helpers/processes';
import { RedisServer } from '../test/helpers/redis-server';
import { LoadResult, loadGenerator, runLoad } from './load';
import { median, readCpuTimes, roundPlan, stealShare } from './plan';
import { onBenchNode } from './runtime';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
/** Rounds of every scenario. On a shared 2-core VM the ceiling itself drifts by ±30% from
 * minute to minute, so every scenario run is bracketed by two ceiling runs and its share is
 * taken against their mean; the median share over the rounds is reported. The drift comes in
 * episodes of seconds, so more short rounds steady a median more than fewer long ones; 10 is
 * twice the largest group (5), which balances its order (./plan.ts). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const WARMUP_SECONDS = 2;

/** One scenario's figures (also read by bench/run.ts and bench/chart.ts). */
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
  /** CPU time of the load generator per request, µs (median). */
  clientCpuUsPerRequest?: number;
  /** CPU time of the Redis servers per request (queue + cache Redis), µs (median). */
  redisCpuUsPerRequest?: number;
  /** Share of the run's wall time the server's main thread (Node's event loop) was on a CPU, percent (median; Linux only). */
  mainThreadBusyPercent?: number;
  /** Against what the target names (the floor, a peer): "0.93 of floor; 1.31× the peer". */
  versus?: string;
  /** p99 over the ceiling's p99 in the same run. */
  p99OfCeiling?: number;
  /** Share of the machine's CPU time the hypervisor took during this row's runs, percent (median; Linux only). */
  stealPercent?: number;
  /** Connections of the load (the ceiling's unless the row says otherwise). */
  connections: number;
  /** req/s of each run (the ceiling: two per slot), for recomputing any figure from a results file. */
  rpsRounds: number[];
  /** Server CPU µs per request of each run. */
  cpuUsRounds?: number[];
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

interface Scenario {
  name: string;
  target?: string;
  /** Scenarios of one group run back to back in every round (./plan.ts): give the ones compared with one another the same group. */
  group?: string;
  /** Scenarios this one is compared with, per round (ratio of their ceiling shares). */
  compare?: { name: string; label: string }[];
  /** The server process, for its CPU time per request (steadier than req/s on a shared VM). */
  pid?: number;
  /** The Redis servers it uses, for Redis's CPU per request. @default the bench's queue and cache Redis */
  redis?: Redis[];
  /** `connections`: this row's own number of connections (@default BENCH_CONNECTIONS, 100). */
  opts: { port: number; path: string; method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string>; distinctClients?: number; connections?: number };
}

/** The machine's CPU times now (undefined off Linux). */
const cpuTimes = (): number[] | undefined => {
  try {
    return readCpuTimes(readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
};

/** One load run and the server, client and Redis CPU it cost, how busy the server's main thread was, and the share the hypervisor stole. */
async function run(s: Scenario, redis: Redis[], seconds = SECONDS): Promise<{ result: LoadResult; cpuUs?: number; redisUs: number; busy?: number; steal?: number }> {
  const machineBefore = cpuTimes();
  const before = cpuSecondsOf(s.pid);
  const threadBefore = cpuSecondsOf(s.pid, { mainThread: true });
  const scenarioRedis = s.redis ?? redis;
  const redisBefore = await redisCpuSeconds(scenarioRedis);
  const started = performance.now();
  const result = await runLoad({ connections: CONNECTIONS, ...s.opts, seconds });
  const wall = (performance.now() - started) / 1000;
  const redisAfter = await redisCpuSeconds(scenarioRedis);
  const after = cpuSecondsOf(s.pid);
  const threadAfter = cpuSecondsOf(s.pid, { mainThread: true });
  const n = Math.max(1, result.total);
  const cpuUs = before !== undefined && after !== undefined && result.total > 0 ? ((after - before) * 1e6) / n : undefined;
  const busy = threadBefore !== undefined && threadAfter !== undefined ? (threadAfter - threadBefore) / wall : undefined;
  return { result, cpuUs, redisUs: ((redisAfter - redisBefore) * 1e6) / n, busy, steal: stealShare(machineBefore, cpuTimes()) };
}

/**
 * Warms every scenario up, then runs ROUNDS rounds. A round is ceiling, slot 1, ceiling,
 * slot 2, …, ceiling, where a slot is one scenario or a group of scenarios compared with one
 * another, run back to back in an order rotated every round (./plan.ts). Each scenario's share
 * is its throughput over the mean of the two ceiling runs around its slot, so a drift of the
 * machine between runs cancels out; comparisons between two scenarios are the ratio of their
 * shares, round by round (within a group, simply the ratio of their req/s seconds apart).
 */
async function measure(all: Scenario[], redis: Redis[]): Promise<GatewayBenchRow[]> {
  // BENCH_ONLY=<regex>: only the scenarios whose name matches (the ceiling always runs)
  const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : undefined;
  const scenarios = all.filter((s, i) => i === 0 || !only || only.test(s.name));
  const ceiling = scenarios[0]!;
  for (const s of scenarios) await run(s, redis, WARMUP_SECONDS); // JIT, connection pools, caches
  const results: LoadResult[][] = scenarios.map(() => []);
  const cpu: number[][] = scenarios.map(() => []);
  const redisCpu: number[][] = scenarios.map(() => []);
  const steal: number[][] = scenarios.map(() => []);
  const busy: number[][] = scenarios.map(() => []);
  const shares: number[][] = scenarios.map(() => []);
  const record = (i: number, r: Awaited<ReturnType<typeof run>>) => {
    results[i]!.push(r.result);
    redisCpu[i]!.push(r.redisUs);
    if (r.cpuUs !== undefined) cpu[i]!.push(r.cpuUs);
    if (r.steal !== undefined) steal[i]!.push(r.steal);
    if (r.busy !== undefined) busy[i]!.push(r.busy);
  };
  const planned = scenarios.map((s, index) => ({ index, group: s.group }));
  for (let round = 0; round < ROUNDS; round++) {
    let before = await run(ceiling, redis);
    record(0, before);
    for (const slot of roundPlan(planned, round)) {
      const runs: [number, Awaited<ReturnType<typeof run>>][] = [];
      for (const i of slot) runs.push([i, await run(scenarios[i]!, redis)]);
      const after = await run(ceiling, redis);
      record(0, after);
      for (const [i, r] of runs) {
        record(i, r);
        shares[i]!.push(r.result.rps / ((before.result.rps + after.result.rps) / 2));
      }
      before = after;
    }
  }
  const ceilingP99 = median(results[0]!.map((r) => r.p99));
  return scenarios.map((s, i) => {
    const rs = results[i]!;
    const statuses = new Map<string, number>();
    let errors = 0;
    for (const r of rs) {
      errors += r.errors;
      for (const [code, n] of Object.entries(r.statuses)) statuses.set(code, (statuses.get(code) ?? 0) + n);
    }
    const versus = (s.compare ?? [])
      .map((c) => {
        const j = scenarios.findIndex((x) => x.name === c.name);
        if (j < 0) return undefined;
        const ratio = median(shares[i]!.map((x, k) => x / shares[j]![k]!));
        const said = ratio >= 1 ? `${ratio.toFixed(2)}× ${c.label}` : `${ratio.toFixed(2)} of ${c.label}`;
        // Server CPU per request against theirs: steadier than req/s, and what the throughput
        // comes to once the server is the bottleneck (see docs/benchmarks.md).
        return cpu[i]!.length && cpu[j]!.length ? `${said} (CPU per request ${(median(cpu[i]!) / median(cpu[j]!)).toFixed(2)}× theirs)` : said;
      })
      .filter(Boolean)
      .join('; ');
    const p99 = median(rs.map((r) => r.p99));
    const connections = s.opts.connections ?? CONNECTIONS;
    return {
      scenario: s.name,
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99,
      statuses: [...statuses].map(([code, n]) => `${code}×${n}`).join(' ') + (errors ? ` errors×${errors}` : ''),
      connections,
      // Shares and p99 multiples only at the ceiling's own connection count.
      ...(i > 0 ? { shares: shares[i]!.map((x) => Math.round(100 * x)) } : {}),
      ...(i > 0 && connections === CONNECTIONS ? { ceilingShare: `${(100 * median(shares[i]!)).toFixed(0)}%`, p99OfCeiling: p99 / ceilingP99 } : {}),
      rpsRounds: rs.map((r) => Math.round(r.rps)),
      ...(cpu[i]!.length ? { cpuUsRounds: cpu[i]!.map((x) => Math.round(x * 10) / 10) } : {}),
      ...(s.target ? { target: s.target } : {}),
      ...(versus ? { versus } : {}),
      ...(cpu[i]!.length ? { cpuUsPerRequest: median(cpu[i]!) } : {}),
      clientCpuUsPerRequest: median(rs.map((r) => r.clientCpuUsPerRequest)),
      redisCpuUsPerRequest: median(redisCpu[i]!),
      ...(busy[i]!.length ? { mainThreadBusyPercent: 100 * median(busy[i]!) } : {}),
      ...(steal[i]!.length ? { stealPercent: 100 * median(steal[i]!) } : {}),
    };
  });
}

/** User + system CPU seconds the Redis servers have used (INFO cpu), summed. */
async function redisCpuSeconds(servers: Redis | Redis[]): Promise<number> {
  let total = 0;
  for (const redis of Array.isArray(servers) ? servers : [servers]) {
    const info = await redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
    total += field('used_cpu_user') + field('used_cpu_sys');
  }
  return total;
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

/** Runs every scenario (servers started and stopped here) and returns the rows, ceiling first. */
export async function runGatewayBench(): Promise<GatewayBenchRow[]> {
  // The queue Redis (BullMQ) and the cache Redis (cache and rate-limit keys), as deployed.
  const redis = await RedisServer.start();
  const admin = new Redis(redis.url);
  const cacheRedis = await RedisServer.start();
  const cacheAdmin = new Redis(cacheRedis.url);
  // The POST whose adds one replica must confirm (Redis WAIT, as with Sentinel) has a primary
  // and replica of its own. A replica of the shared Redis would apply every job of the floor,
  // the peers and the unconfirmed POST too, at ~11 µs of CPU each on the same two cores.
  const confirmedRedis = await RedisServer.start();
  const confirmedAdmin = new Redis(confirmedRedis.url);
  const replica = await RedisServer.start(['--replicaof', '127.0.0.1', String(confirmedRedis.port)]);
  const procs: ServiceProcess[] = [];
  const model = Fastify({ logger: false });
  model.get('/v1/styles', async () => {
    await new Promise((r) => setTimeout(r, 200));
    return { styles: [{ id: 'sunset', name: 'Sunset', description: 'Warm purples, reds and golds.' }] };
  });
  // The traced gateway's OTLP collector: takes the spans (OTLP/HTTP, protobuf) and drops them.
  let otlpBytes = 0;
  model.addContentTypeParser('application/x-protobuf', { parseAs: 'buffer' }, (_req, body: Buffer, done) => done(null, body.length));
  model.post('/v1/traces', async (request) => {
    otlpBytes += request.body as number;
    return {};
  });
  try {
    const modelUrl = await model.listen({ port: 0, host: '127.0.0.1' });
    const ports = await Promise.all(Array.from({ length: 12 }, () => freePort()));
    const [ceilingPort, gatewayPort, limitedPort, proxiedPort, peerGetPort, peerPostPort, floorPort, confirmedPort, twinPort, oneRedisPort, peerOneRedisPort, tracedPort] = ports as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    await waitForReplica(confirmedAdmin);
    const gatewayEnv = {
      REDIS_URL: redis.url,
      CACHE_REDIS_URL: cacheRedis.url,
      MODEL_URL: modelUrl,
      LOG_LEVEL: 'warn',
      QUEUE_NAME: 'bench',
      QUEUE_MAX_WAITING: '100000000',
      CACHE_TTL_SECONDS: '3600',
      HOST: '127.0.0.1',
      METRICS_PORT: '0',
    };
    // Rate limiter in the path but not binding: every request makes its Redis round trip.
    const unbound = (port: number, env: Record<string, string> = {}) => new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(port), RATE_LIMIT_PER_SECOND: '10000000', ...env });
    const gateway = unbound(gatewayPort);
    // The default limit of 10/s: a flood from one client is almost all 429s.
    const limited = new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(limitedPort), RATE_LIMIT_PER_SECOND: '10' });
    // Behind a trusted proxy, the default limit, many clients each under it: the limiter's
    // honest cost (no coalescing of one client's requests).
    const proxied = new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(proxiedPort), RATE_LIMIT_PER_SECOND: '10', TRUST_PROXY: '127.0.0.1/32' });
    const ceiling = new ServiceProcess('ceiling', { PORT: String(ceilingPort) }, 'bench/ceiling-server.ts');
    // The peers, limited as the gateway is (in the path, not binding), on the same two Redis
    // servers as the gateway; and the floor (no limiter: the queue Redis only).
    const peer = (mode: string, port: number, { oneRedis = false } = {}) =>
      new ServiceProcess(
        'peer',
        { PEER: mode, PORT: String(port), REDIS_URL: redis.url, ...(oneRedis ? {} : { CACHE_REDIS_URL: cacheRedis.url }), RATE_LIMIT_PER_SECOND: '10000000', QUEUE_NAME: `bench-${mode}-${port}` },
        'bench/peer-server.ts',
      );
    const peerGet = peer('get', peerGetPort);
    const peerPost = peer('post', peerPostPort);
    const floor = peer('floor', floorPort);
    // Issue 15's first setup: the gateway and the peer with everything on one Redis (the
    // queue Redis). There the limiter's one command per turn waits behind the other requests'
    // adds, and Levee's gateway idles (bench/results/HISTORY.md, the sixth session).
    const oneRedis = unbound(oneRedisPort, { CACHE_REDIS_URL: redis.url, QUEUE_NAME: 'bench-one-redis' });
    const peerOneRedis = peer('post', peerOneRedisPort, { oneRedis: true });
    // The same gateway on the primary with a replica, each turn's adds confirmed by the replica
    // before the 202s (QUEUE_MIN_REPLICAS_ACKED=1, the Sentinel default): one WAIT round trip
    // per event-loop turn's adds, on the writer connection.
    const confirmed = unbound(confirmedPort, { REDIS_URL: confirmedRedis.url, QUEUE_MIN_REPLICAS_ACKED: '1' });
    // A second gateway like the first: its POST against the first's is an A/A comparison, the
    // spread that two identical servers show in this run (on a shared 2-core VM, up to ±20%).
    const twin = unbound(twinPort);
    // The same gateway with tracing on, as LEVEE_OTLP_ENDPOINT turns it on: every request
    // instrumented, 10% of them sampled and exported (Levee's default sampler), to the collector above.
    const traced = unbound(tracedPort, { OTEL_EXPORTER_OTLP_ENDPOINT: modelUrl });
    procs.push(gateway, limited, proxied, ceiling, peerGet, peerPost, floor, confirmed, twin, oneRedis, peerOneRedis, traced);
    await Promise.all([gateway, limited, proxied, peerGet, peerPost, floor, confirmed, twin, oneRedis, peerOneRedis, traced].map((p) => p.waitHttp(Number(p.env.PORT), '/readyz')));
    await ceiling.waitHttp(ceilingPort, '/');
    await fetch(`http://127.0.0.1:${gatewayPort}/api/styles`); // loads the catalog: every later GET is a hit
    await fetch(`http://127.0.0.1:${proxiedPort}/api/styles`);

    const post = {
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a lighthouse in a storm', width: 512, height: 512, style: 'sunset' }),
    };
    const FLOOR = 'floor: bare Fastify POST + one plain BullMQ queue.add per request';
    const PEER_POST = 'peer: Fastify + @fastify/rate-limit (Redis) + queue.add, hand-written';
    const PEER_GET = 'peer: Fastify + @fastify/rate-limit (Redis) + Redis GET, hand-written';
    const POST = 'POST /api/images (enqueue)';
    const POST_400 = 'POST /api/images (enqueue), 400 connections';
    const PEER_POST_400 = 'peer: Fastify + @fastify/rate-limit (Redis) + queue.add, 400 connections';
    const TRACED = 'POST /api/images (enqueue), traced: OTLP export, 10% sampled';
    const UNTRACED = 'POST /api/images (enqueue), untraced: the traced row\'s pair';
    const TWIN = 'POST /api/images on a second, identical gateway (A/A: the noise of a comparison)';
    const ONE_REDIS = 'POST /api/images, queue and cache on one Redis';
    const PEER_ONE_REDIS = 'peer: Fastify + @fastify/rate-limit (Redis) + queue.add, on one Redis';
    const rows = await measure(
      [
        { name: 'bare Fastify route (ceiling)', pid: ceiling.pid, opts: { port: ceilingPort, path: '/' } },
        { name: 'GET /api/styles, cache hit, rate-limited', group: 'get', target: '≥ 75% of ceiling; p99 ≤ 3× ceiling', compare: [{ name: PEER_GET, label: 'the peer' }], pid: gateway.pid, opts: { port: gatewayPort, path: '/api/styles' } },
        { name: PEER_GET, group: 'get', pid: peerGet.pid, opts: { port: peerGetPort, path: '/api/styles' } },
        { name: POST, group: 'post', target: '≥ 0.90 of floor, ≥ 1.2× peer; p99 ≤ 3× ceiling', compare: [{ name: FLOOR, label: 'floor' }, { name: PEER_POST, label: 'the peer' }], pid: gateway.pid, opts: { port: gatewayPort, path: '/api/images', ...post } },
        {
          name: "POST /api/images, each turn's adds confirmed by 1 replica (WAIT; the Sentinel default)",
          group: 'post',
          compare: [{ name: POST, label: 'the unconfirmed POST' }],
          pid: confirmed.pid,
          redis: [confirmedAdmin, cacheAdmin],
          opts: { port: confirmedPort, path: '/api/images', ...post },
        },
        { name: TWIN, group: 'post', compare: [{ name: POST, label: 'the POST (A/A)' }], pid: twin.pid, opts: { port: twinPort, path: '/api/images', ...post } },
        { name: FLOOR, group: 'post', pid: floor.pid, opts: { port: floorPort, path: '/api/images', ...post } },
        { name: PEER_POST, group: 'post', pid: peerPost.pid, opts: { port: peerPostPort, path: '/api/images', ...post } },
        // A group of their own: the POST group stays at 5, which 10 rounds balance (./plan.ts).
        { name: ONE_REDIS, group: 'one-redis', compare: [{ name: PEER_ONE_REDIS, label: 'the peer on one Redis' }, { name: POST, label: 'the POST on two' }], pid: oneRedis.pid, opts: { port: oneRedisPort, path: '/api/images', ...post } },
        { name: PEER_ONE_REDIS, group: 'one-redis', pid: peerOneRedis.pid, opts: { port: peerOneRedisPort, path: '/api/images', ...post } },
        // The same two at 400 connections: closer to a flood of many clients, and enough
        // requests in flight that neither server waits on Redis with nothing to do.
        { name: POST_400, group: 'post400', compare: [{ name: PEER_POST_400, label: 'the peer at 400' }], pid: gateway.pid, opts: { port: gatewayPort, path: '/api/images', ...post, connections: 400 } },
        // A pair of its own: the same POST to the untraced gateway and to the traced one, back
        // to back between the same two ceilings (across slots, a ceiling's share drifts by more
        // than the 15% the goal allows; a pair balances in any even number of rounds).
        { name: UNTRACED, group: 'traced', pid: gateway.pid, opts: { port: gatewayPort, path: '/api/images', ...post } },
        { name: TRACED, group: 'traced', target: '≥ 0.85 of the POST', compare: [{ name: UNTRACED, label: 'the untraced POST' }], pid: traced.pid, opts: { port: tracedPort, path: '/api/images', ...post } },
        { name: PEER_POST_400, group: 'post400', pid: peerPost.pid, opts: { port: peerPostPort, path: '/api/images', ...post, connections: 400 } },
        { name: '429 flood (one IP, limit 10/s)', target: '≥ 90% of ceiling; p99 ≤ 3× ceiling', pid: limited.pid, opts: { port: limitedPort, path: '/api/styles' } },
        { name: 'GET /api/styles, 50,000 client IPs under 10/s', pid: proxied.pid, opts: { port: proxiedPort, path: '/api/styles', distinctClients: 50_000 } },
      ],
      [admin, cacheAdmin],
    );
    if (rows.some((r) => r.scenario === TRACED)) {
      // Proof that the traced row traced: its spans reached the collector.
      if (otlpBytes === 0 && process.env.OTEL_TRACES_SAMPLER_ARG !== '0') throw new Error('bench: the traced gateway exported no spans (tracing did not start)');
      process.stderr.write(`bench: the traced gateway exported ${(otlpBytes / 1024 / 1024).toFixed(1)} MiB of spans (OTLP/HTTP protobuf)\n`);
    }
    return rows;
  } finally {
    admin.disconnect();
    cacheAdmin.disconnect();
    confirmedAdmin.disconnect();
    await Promise.all(procs.map((p) => p.kill()));
    await model.close();
    await replica.stop();
    await confirmedRedis.stop();
    await redis.stop();
    await cacheRedis.stop();
  }
}

/** Resolves once the primary has a replica in sync. */
async function waitForReplica(primary: Redis): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (/slave0:.*state=online/.test(await primary.info('replication'))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the bench replica did not come in sync within 10 s');
}

export function describeLoad(): string {
  return `${loadGenerator()}, ${CONNECTIONS} connections${loadGenerator() === 'wrk' ? ', 1 thread' : ''}; ${ROUNDS} rounds × ${SECONDS} s per scenario (after ${WARMUP_SECONDS} s warm-up), each between two ceiling runs (rows compared with one another run back to back between the same two, in an order rotated every round)`;
}

/** A row's share of the ceiling as printed: the ceiling is 100%; a row at another connection count has none. */
export function ofCeiling(row: GatewayBenchRow): string {
  return row.ceilingShare ?? (row.shares ? `— (${row.connections} connections)` : '100%');
}

function print(rows: GatewayBenchRow[]): void {
  process.stdout.write(`\nGateway benchmark: ${describeLoad()}, medians, node ${process.version}\n\n`);
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'p99 / ceiling', 'of ceiling', 'versus', 'rounds %', 'target', 'server µs/req', 'client µs/req', 'Redis µs/req', 'main thread busy %', 'steal %', 'statuses'];
  const table = rows.map((r) => [r.scenario, r.rps.toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1), r.p99OfCeiling?.toFixed(1) ?? '', ofCeiling(r), r.versus ?? '', r.shares?.join('/') ?? '', r.target ?? '', r.cpuUsPerRequest?.toFixed(1) ?? '', r.clientCpuUsPerRequest?.toFixed(1) ?? '', r.redisCpuUsPerRequest?.toFixed(1) ?? '', r.mainThreadBusyPercent?.toFixed(0) ?? '', r.stealPercent?.toFixed(1) ?? '', r.statuses]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(`${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${table.map(line).join('\n')}\n`);
}

if (require.main === module) {
  process.stderr.write(`bench: load generator ${loadGenerator()}\n`);
  onBenchNode()
    .then(runGatewayBench)
    .then(print, (err: unknown) => {
      process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    });
}
