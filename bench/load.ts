/**
 * The load generator of the gateway benchmark: `wrk` when it is installed (Debian package
 * `wrk`; its client costs a fraction of autocannon's per request, so the server's own cost
 * shows), autocannon otherwise. Either way the CPU the generator spent per request is
 * measured, so a benchmark bound by its own client is visible in the table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

export type Generator = 'wrk' | 'autocannon';

export interface LoadSpec {
  readonly port: number;
  readonly path: string;
  readonly method?: 'GET' | 'POST';
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Each request from another client (X-Forwarded-For 10.x.y.z, cycling through this many). */
  readonly distinctClients?: number;
  readonly connections: number;
  readonly seconds: number;
}

export interface LoadResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly total: number;
  /** Answers with a status outside 2xx/3xx (wrk counts no finer than that). */
  readonly non2xx: number;
  /** Socket errors and timeouts. */
  readonly errors: number;
  /** CPU time of the load generator per request, µs. */
  readonly clientCpuUsPerRequest: number;
  /** Status codes as counted (autocannon), or 2xx/3xx vs other (wrk). */
  readonly statuses: Readonly<Record<string, number>>;
}

let chosen: Generator | undefined;
/** wrk if it is on PATH (BENCH_LOAD=autocannon forces autocannon). */
export function loadGenerator(): Generator {
  if (chosen) return chosen;
  const forced = process.env.BENCH_LOAD;
  if (forced === 'wrk' || forced === 'autocannon') return (chosen = forced);
  chosen = spawnSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' }).status === 0 ? 'wrk' : 'autocannon';
  return chosen;
}

const luaString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** The wrk script: method, body, headers, optional per-request client address, and a JSON summary. */
export function wrkScript(spec: LoadSpec): string {
  const lines = [`wrk.method = ${luaString(spec.method ?? 'GET')}`];
  if (spec.body !== undefined) lines.push(`wrk.body = ${luaString(spec.body)}`);
  for (const [k, v] of Object.entries(spec.headers ?? {})) lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  if (spec.distinctClients) {
    lines.push(
      'local i = 0',
      'request = function()',
      `  i = (i + 1) % ${spec.distinctClients}`,
      '  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)',
      '  return wrk.format()',
      'end',
    );
  }
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'LEVEE_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n\',',
    '    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))',
    'end',
  );
  return lines.join('\n') + '\n';
}

async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'levee-wrk-'));
  try {
    const script = join(dir, 'load.lua');
    writeFileSync(script, wrkScript(spec));
    // bash's `times` prints the CPU its children (wrk) used: the generator's own cost.
    const cmd = `wrk -t1 -c${spec.connections} -d${spec.seconds}s --timeout 10s -s "$1" "$2" >"$3" && times`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('bash', ['-c', cmd, 'wrk', script, `http://127.0.0.1:${spec.port}${spec.path}`, join(dir, 'out.txt')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk failed (${code}): ${stderr.trim()}`))));
    });
    const report = spawnSync('cat', [join(dir, 'out.txt')]).stdout.toString();
    const json = /LEVEE_JSON (\{.*\})/.exec(report)?.[1];
    if (!json) throw new Error(`wrk printed no summary:\n${report}`);
    const s = JSON.parse(json) as { requests: number; duration_us: number; non2xx: number; errors: number; p50_us: number; p99_us: number };
    // `times`: line 1 the shell, line 2 its children: "0m1.234s 0m0.567s"
    const seconds = (t: string) => {
      const m = /(\d+)m([\d.]+)s/.exec(t);
      return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
    };
    const children = out.trim().split('\n').pop()!.split(/\s+/);
    const clientCpuS = seconds(children[0]!) + seconds(children[1]!);
    const total = Math.max(1, s.requests);
    return {
      rps: s.requests / (s.duration_us / 1e6),
      p50: s.p50_us / 1000,
      p99: s.p99_us / 1000,
      total: s.requests,
      non2xx: s.non2xx,
      errors: s.errors,
      clientCpuUsPerRequest: (clientCpuS * 1e6) / total,
      statuses: { '2xx/3xx': s.requests - s.non2xx, other: s.non2xx },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function distinctClientsSetup(n: number) {
  let i = 0;
  return (req: autocannon.Request): autocannon.Request => {
    i = (i + 1) % n;
    return { ...req, headers: { ...req.headers, 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` } };
  };
}

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  const client = process.cpuUsage();
  const r = await autocannon({
    url: `http://127.0.0.1:${spec.port}${spec.path}`,
    connections: spec.connections,
    method: spec.method ?? 'GET',
    headers: spec.headers as Record<string, string> | undefined,
    body: spec.body,
    duration: spec.seconds,
    ...(spec.distinctClients ? { requests: [{ setupRequest: distinctClientsSetup(spec.distinctClients) }] } : {}),
  });
  const used = process.cpuUsage(client);
  const statuses: Record<string, number> = {};
  for (const [code, st] of Object.entries(r.statusCodeStats ?? {})) statuses[code] = (st as { count: number }).count;
  const total = r.requests.total;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    total,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    clientCpuUsPerRequest: (used.user + used.system) / Math.max(1, total),
    statuses,
  };
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return loadGenerator() === 'wrk' ? runWrk(spec) : runAutocannon(spec);
}
