/**
 * Gateway benchmark: throughput and p50/p99 latency of the gateway's hot paths against a bare
 * Fastify route (the ceiling), side by side in one run on this machine, 127.0.0.1 only.
 *
 *   npx tsx bench/gateway.ts            # ~40 s
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=100 npx tsx bench/gateway.ts
 *
 * Every server runs in its own process (as in production); autocannon runs here. A private
 * redis-server on a free port holds the queue, cache and rate-limit keys and is removed at
 * the end, and a stub model API answers /v1/styles — nothing outside this run is touched.
 */
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { freePort } from '../test/helpers/ports';
import { cpuSecondsOf, ServiceProcess } from '../test/helpers/processes';
import { RedisServer } from '../test/helpers/redis-server';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
/** Rounds of every scenario, interleaved with the ceiling: on a shared 2-core VM the ceiling
 * itself drifts by ±15% from minute to minute, so each share is taken against the ceiling of
 * its own round and the median of the rounds is reported. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
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

/** Warms every scenario up, then runs ROUNDS rounds of all of them, ceiling first in each. */
async function measure(scenarios: Scenario[]): Promise<GatewayBenchRow[]> {
  for (const s of scenarios) await cannon(s, WARMUP_SECONDS); // JIT, connection pools, caches
  const results: autocannon.Result[][] = scenarios.map(() => []);
  const cpu: number[][] = scenarios.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, s] of scenarios.entries()) {
      const before = cpuSecondsOf(s.pid);
      const result = await cannon(s, SECONDS);
      const after = cpuSecondsOf(s.pid);
      results[i].push(result);
      if (before !== undefined && after !== undefined && result.requests.total > 0) cpu[i].push(((after - before) * 1e6) / result.requests.total);
    }
  }
  return scenarios.map((s, i) => {
    const rs = results[i];
    const shares = rs.map((r, round) => r.requests.average / results[0][round].requests.average);
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
      ...(i > 0 ? { ceilingShare: `${(100 * median(shares)).toFixed(0)}%` } : {}),
      ...(s.target ? { target: s.target } : {}),
      shares: shares.map((x) => Math.round(100 * x)),
      ...(cpu[i].length ? { cpuUsPerRequest: median(cpu[i]) } : {}),
    };
  });
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
    procs.push(new ServiceProcess('ceiling', { PORT: String(ceilingPort) }, 'bench/ceiling-server.ts'));
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
    procs.push(new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(gatewayPort), RATE_LIMIT_PER_SECOND: '10000000' }));
    // The default limit of 10/s: a flood from one client is almost all 429s.
    procs.push(new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(limitedPort), RATE_LIMIT_PER_SECOND: '10' }));
    // Behind a trusted proxy, the default limit, many clients each under it: the limiter's
    // honest cost (no coalescing of one client's requests).
    procs.push(new ServiceProcess('gateway', { ...gatewayEnv, PORT: String(proxiedPort), RATE_LIMIT_PER_SECOND: '10', TRUST_PROXY: '127.0.0.1/32' }));
    await Promise.all(procs.map((p) => p.waitHttp(Number(p.env.PORT), p.name === 'ceiling' ? '/' : '/readyz')));
    await fetch(`http://127.0.0.1:${gatewayPort}/api/styles`); // load the catalog once

    await fetch(`http://127.0.0.1:${proxiedPort}/api/styles`);
    const rows = await measure([
      { name: 'bare Fastify route (ceiling)', pid: procs[0].pid, opts: { port: ceilingPort, path: '/' } },
      { name: 'GET /api/styles, cache hit', target: '≥ 75%', pid: procs[1].pid, opts: { port: gatewayPort, path: '/api/styles' } },
      {
        name: 'POST /api/images (enqueue)',
        target: '≥ 40%',
        pid: procs[1].pid,
        opts: {
          port: gatewayPort,
          path: '/api/images',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: 'a lighthouse in a storm', width: 512, height: 512, style: 'sunset' }),
        },
      },
      { name: '429 flood (one IP, limit 10/s)', target: '≥ 90%', pid: procs[2].pid, opts: { port: limitedPort, path: '/api/styles' } },
      { name: 'GET /api/styles, 50,000 client IPs under 10/s', pid: procs[3].pid, opts: { port: proxiedPort, path: '/api/styles', distinctClients: 50_000 } },
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
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'of ceiling', 'target', 'server CPU µs/req', 'statuses'];
  const table = rows.map((r) => [r.scenario, r.rps.toFixed(0), String(r.p50), String(r.p99), r.ceilingShare ?? '100%', r.target ?? '', r.cpuUsPerRequest?.toFixed(1) ?? '', r.statuses]);
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
