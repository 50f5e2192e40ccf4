/**
 * A queue Redis you can lose a node of. GIVEN the chart's Sentinel topology (three data pods,
 * three Sentinels, their own start scripts) on loopback ports, a gateway and two workers as
 * real processes in Sentinel mode (QUEUE_MIN_REPLICAS_ACKED defaulting to 1), and a steady
 * flood of POSTs, each retried with its Idempotency-Key until accepted:
 * WHEN the primary is SIGKILLed mid-flood (and, later, moved by a planned failover that
 * leaves the old primary up as a replica), THEN every request that got a 202 ends completed,
 * none is lost and none rendered twice, every answer meanwhile is a 202 or a quick 503, the
 * style catalog and the rate limiter keep answering, and the services recover by themselves.
 * The figures (failover time, 503s, recovery) are printed.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { MASTER_NAME, SentinelGroup } from '../helpers/sentinel-group';
import { until } from '../helpers/wait';
import { FakeModel } from '../worker/support';

jest.setTimeout(170_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Concurrent clients in the flood, and the pause each takes after an accepted request. */
const CLIENTS = 6;
const PACE_MS = 20;
/** A client waits this long before retrying a 503 (shorter than Retry-After, to measure recovery). */
const RETRY_MS = 100;
/** No answer may take longer: the POST is bounded (queue timeouts 2 s, WAIT 0.5 s), never hangs. */
const LONGEST_ANSWER_MS = 6000;

let group: SentinelGroup;
let model: FakeModel;
let gateway: ServiceProcess;
let gatewayPort: number;
const workers: ServiceProcess[] = [];
const queueName = `failover-${process.pid}-${Date.now()}`;
/** Set when the tests end, so a flood left running by a failed test stops too. */
let aborted = false;

interface Attempt {
  /** Sent at (epoch ms). */
  start: number;
  /** Answered at. */
  at: number;
  ms: number;
  status: number;
}
interface Submission {
  key: string;
  prompt: string;
  id?: string;
  attempts: Attempt[];
}

beforeAll(async () => {
  group = await SentinelGroup.start();
  model = await FakeModel.start();
  const redisEnv = {
    QUEUE_REDIS_SENTINELS: group.sentinelList,
    QUEUE_REDIS_PASSWORD: group.password,
    QUEUE_NAME: queueName,
    MODEL_URL: model.url,
  };
  gatewayPort = await freePort();
  gateway = new ServiceProcess('gateway', {
    ...redisEnv,
    PORT: String(gatewayPort),
    HOST: '127.0.0.1',
    // The cache and the limiter live on the same group here, so the failover hits them too.
    CACHE_REDIS_SENTINELS: group.sentinelList,
    CACHE_REDIS_SENTINEL_NAME: MASTER_NAME,
    CACHE_REDIS_PASSWORD: group.password,
    RATE_LIMIT_PER_SECOND: '1000000',
    SHUTDOWN_DELAY_SECONDS: '0',
  });
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    workers.push(new ServiceProcess('worker', { ...redisEnv, METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1', WORKER_CONCURRENCY: '4' }));
  }
  await gateway.waitHttp(gatewayPort, '/readyz', 30_000);
  await Promise.all(workers.map((w) => w.waitHttp(Number(w.env.METRICS_PORT), '/readyz', 30_000)));
});

afterAll(async () => {
  aborted = true;
  // LEVEE_FAILOVER_LOGS=<file>: keep every process's log of this run (to study a failure).
  if (process.env.LEVEE_FAILOVER_LOGS && group) {
    const logs = [group.describe(5000), `--- gateway\n${gateway?.output.join('')}`, ...workers.map((w, i) => `--- worker ${i}\n${w.output.join('')}`)];
    writeFileSync(process.env.LEVEE_FAILOVER_LOGS, logs.join('\n'));
  }
  await Promise.all([gateway, ...workers].filter(Boolean).map((p) => p.stop(5000)));
  await model?.close();
  await group?.stop();
});

/** Submissions from `CLIENTS` clients until `stop()` says so; each one is retried (same key) until accepted or `deadline`. */
async function flood(port: number, stop: () => boolean, deadline: number): Promise<Submission[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS + 2 });
  const all: Submission[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      while (!stop() && !aborted) {
        const s: Submission = { key: randomUUID(), prompt: `failover ${c} ${randomUUID()}`, attempts: [] };
        all.push(s);
        for (;;) {
          const started = performance.now();
          const start = Date.now();
          let status = 0;
          try {
            const res = await request(port, '/api/images', { body: { prompt: s.prompt, width: 64, height: 64 }, headers: { 'idempotency-key': s.key }, agent, timeoutMs: 20_000 });
            status = res.status;
            if (status === 202) s.id = res.json.id as string;
          } catch {
            status = 0; // no answer at all (a hung request ends here after 20 s)
          }
          s.attempts.push({ start, at: Date.now(), ms: performance.now() - started, status });
          if (status === 202 || Date.now() > deadline || aborted) break;
          await sleep(RETRY_MS);
        }
        await sleep(PACE_MS);
      }
    }),
  );
  agent.destroy();
  return all;
}

/** GET /api/styles every 100 ms until `stop()`: status and whether the RateLimit headers came with it. */
async function probeStyles(port: number, stop: () => boolean): Promise<{ status: number; limited: boolean }[]> {
  const seen: { status: number; limited: boolean }[] = [];
  while (!stop() && !aborted) {
    const res = await request(port, '/api/styles', { timeoutMs: 20_000 }).catch(() => ({ status: 0, headers: {} as http.IncomingHttpHeaders }));
    seen.push({ status: res.status, limited: typeof res.headers['ratelimit'] === 'string' && typeof res.headers['ratelimit-policy'] === 'string' });
    await sleep(100);
  }
  return seen;
}

/** Polls every accepted job until it is completed; fails at once on a job that is gone (lost) or failed. */
async function expectAllCompleted(ids: string[], timeoutMs: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const pending = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  try {
    while (pending.size > 0) {
      const batch = [...pending];
      for (let i = 0; i < batch.length; i += 64) {
        await Promise.all(
          batch.slice(i, i + 64).map(async (id) => {
            const res = await request(gatewayPort, `/api/images/${id}`, { agent });
            if (res.status === 404) {
              // Lost, or a stale read? Ask every data pod directly.
              const where = await Promise.all(group.data.map(async (m) => `:${m.port} ${String(await group.ask(m.port, 'ROLE')).split(',')[0]} job=${await group.ask(m.port, 'EXISTS', `bull:${queueName}:${id}`)} done=${await group.ask(m.port, 'EXISTS', `levee:done:${id}`)}`));
              throw new Error(`accepted job ${id} is lost (404); primary :${await group.primaryPort()}; ${where.join('; ')}`);
            }
            if (res.status === 200 && res.json.status === 'failed') throw new Error(`accepted job ${id} failed: ${res.json.error}`);
            if (res.status === 200 && res.json.status === 'completed') pending.delete(id);
          }),
        );
      }
      if (pending.size === 0) break;
      if (Date.now() > deadline) {
        const states = await Promise.all([...pending].slice(0, 5).map(async (id) => JSON.stringify((await request(gatewayPort, `/api/images/${id}`)).json)));
        const logs = workers.map((w, i) => `--- worker ${i}\n${w.output.join('').split('\n').slice(-20).join('\n')}`).join('\n');
        throw new Error(`${pending.size} accepted job(s) not completed after ${timeoutMs} ms, e.g.\n${states.join('\n')}\n${logs}`);
      }
      await sleep(300);
    }
  } finally {
    agent.destroy();
  }
}

/** True when the new primary stayed the primary; else says so (the re-renders are then only reported). */
function onlyOneFailover(primaries: number[]): boolean {
  if (primaries.length <= 1) return true;
  process.stdout.write(`note: the Sentinels failed over again (${primaries.join(' → ')}): unconfirmed work is redone, so re-renders are only counted\n`);
  return false;
}

/** Renders the model saw per prompt, for the given submissions. */
function rendersOf(subs: Submission[]): Map<string, number> {
  const counts = new Map(subs.map((s) => [s.prompt, 0]));
  for (const r of model.requests) if (counts.has(r.body.prompt)) counts.set(r.body.prompt, counts.get(r.body.prompt)! + 1);
  return counts;
}

/**
 * The primaries the Sentinels name from now until `stop()`. On a loaded 2-core machine a
 * Sentinel can miss the new primary's answers for longer than the test's 1 s detection and
 * fail over a second time: work that was not yet confirmed is then done again (as designed),
 * so "rendered once" is only asserted when there was exactly one failover.
 */
function watchPrimaries(stop: () => boolean): Promise<number[]> {
  return (async () => {
    const seen: number[] = [];
    while (!stop() && !aborted) {
      const port = await group.primaryPort();
      if (port !== undefined && seen.at(-1) !== port) seen.push(port);
      await sleep(250);
    }
    return seen;
  })();
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Checks and reports one flood around a failover. `rendersOnce`: assert that no accepted job
 * was rendered twice (else the count of those rendered more than once is only reported).
 */
async function judge(
  label: string,
  subs: Submission[],
  styles: { status: number; limited: boolean }[],
  t: { failedAt: number; promotedAt: number },
  rendersOnce: boolean,
): Promise<void> {
  const attempts = subs.flatMap((s) => s.attempts);
  const statuses = new Map<number, number>();
  for (const a of attempts) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
  const unavailable = attempts.filter((a) => a.status === 503);
  const accepted = subs.filter((s) => s.id);
  // The first acceptance of a request sent after the failure: the new primary is serving.
  const firstAfter = Math.min(...accepted.map((s) => s.attempts.at(-1)!).filter((a) => a.start > t.failedAt).map((a) => a.at));
  // Throughput: accepted per second in the 2 s before the failure vs the 2 s after the first acceptance after it.
  const acceptedIn = (from: number, to: number) => accepted.filter((s) => s.attempts.at(-1)!.at >= from && s.attempts.at(-1)!.at < to).length / ((to - from) / 1000);
  const before = acceptedIn(t.failedAt - 2000, t.failedAt);
  const after = acceptedIn(firstAfter, firstAfter + 2000);
  process.stdout.write(
    `${label}: ${subs.length} submissions, ${accepted.length} accepted (202), ${attempts.length} attempts ${JSON.stringify(Object.fromEntries(statuses))}; ` +
      `primary lost → promoted ${t.promotedAt - t.failedAt} ms, → first 202 ${firstAfter - t.failedAt} ms; ` +
      `503s: ${unavailable.length} (p50 ${percentile(unavailable.map((a) => a.ms), 50).toFixed(0)} ms, max ${percentile(unavailable.map((a) => a.ms), 100).toFixed(0)} ms); ` +
      `accepted/s ${before.toFixed(0)} before, ${after.toFixed(0)} after; styles ${styles.length} probes, ${styles.filter((x) => x.status === 200).length} × 200`,
  );
  // Never accepted: the gateway's last lines say why (seen once in CI under Node 24, not reproduced since).
  if (subs.some((s) => !s.id)) process.stdout.write(`\n--- gateway, last lines\n${gateway.output.join('').split('\n').slice(-40).join('\n')}\n`);
  // Only 202s and 503s, every answer bounded, every submission accepted in the end.
  expect([...statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([]);
  expect(Math.max(...attempts.map((a) => a.ms))).toBeLessThan(LONGEST_ANSWER_MS);
  expect(subs.filter((s) => !s.id).map((s) => s.key)).toEqual([]);
  // The cache and the limiter kept going while their Redis failed over (in-memory fallbacks).
  expect(styles.filter((x) => x.status !== 200 || !x.limited)).toEqual([]);
  // Recovery by the services themselves, within a bound: detection (1 s here), an election
  // (a split vote retries after 2 × failover-timeout = 10 s here) and the reconnect.
  expect(firstAfter - t.failedAt).toBeLessThan(25_000);

  await expectAllCompleted(accepted.map((s) => s.id!), 90_000);
  const renders = [...rendersOf(accepted)];
  process.stdout.write(`; all ${accepted.length} completed; rendered once: ${renders.filter(([, n]) => n === 1).length}, more than once: ${renders.filter(([, n]) => n > 1).length}\n`);
  for (const [prompt, n] of renders.filter(([, n]) => n > 1)) {
    const sub = subs.find((x) => x.prompt === prompt)!;
    const at = model.requests.filter((r) => r.body.prompt === prompt).map((r) => r.at - t.failedAt);
    process.stdout.write(`  rendered ${n}×: id ${sub.id}, attempts ${JSON.stringify(sub.attempts.map((a) => [a.start - t.failedAt, a.at - t.failedAt, a.status]))}, renders at ${JSON.stringify(at)} (ms from the failure)\n`);
  }
  expect(renders.filter(([, n]) => n === 0)).toEqual([]);
  if (rendersOnce) expect(renders.filter(([, n]) => n !== 1)).toEqual([]);
  expect(gateway.running && workers.every((w) => w.running)).toBe(true);
}

test('GIVEN a flood WHEN the primary is SIGKILLed THEN every 202 completes exactly once, POSTs meanwhile get quick 503s, and the services recover by themselves', async () => {
  let stop = false;
  const started = Date.now();
  const floodDone = flood(gatewayPort, () => stop, started + 90_000);
  const stylesDone = probeStyles(gatewayPort, () => stop);
  await sleep(3000);

  const oldPrimary = (await group.primaryPort())!;
  const failedAt = Date.now();
  await group.kill(group.member(oldPrimary));
  await group.waitForNewPrimary(oldPrimary, 40_000);
  const promotedAt = Date.now();
  let watching = true;
  const primaries = watchPrimaries(() => !watching);
  // Slower than detection, an election and a retried one: say why (the Sentinels' view).
  if (promotedAt - failedAt > 10_000) process.stderr.write(`slow failover (${promotedAt - failedAt} ms); the group's logs:\n${group.describe(60)}\n`);
  // Run on for a while after the promotion: the recovery is read from the submissions.
  await sleep(5000);
  stop = true;
  const [subs, styles] = await Promise.all([floodDone, stylesDone]);
  watching = false;
  await judge('SIGKILL of the primary', subs, styles, { failedAt, promotedAt }, onlyOneFailover(await primaries));
});

test('GIVEN the killed pod back (as a replica, by its start script) WHEN a planned failover demotes the primary, which stays up THEN clients leave it (READONLY → reconnect) by themselves, and with every replica confirming nothing accepted is lost', async () => {
  const primary = (await group.primaryPort())!;
  const dead = group.data.find((m) => m.proc !== undefined && (m.proc.exitCode !== null || m.proc.signalCode !== null));
  expect(dead).toBeDefined();
  group.startData(dead!);
  await group.waitWhole(40_000);
  const rejoined = String(await group.ask(dead!.port, 'INFO', 'replication'));
  expect(rejoined).toContain('role:slave');
  expect(rejoined).toContain(`master_port:${primary}`);

  // Sentinel promotes the replica while the old primary still takes writes, until it is told
  // to follow: a write confirmed by the other replica alone in that moment is resynced away.
  // Confirmation by every replica (2 of 2) closes that window; the default 1 does not (docs/redis-failover.md).
  const strictPort = await freePort();
  const strict = new ServiceProcess('gateway', { ...gateway.env, PORT: String(strictPort), QUEUE_MIN_REPLICAS_ACKED: '2' });
  try {
    await strict.waitHttp(strictPort, '/readyz', 30_000);
    let stop = false;
    const floodDone = flood(strictPort, () => stop, Date.now() + 90_000);
    const stylesDone = probeStyles(strictPort, () => stop);
    await sleep(2000);
    const failedAt = Date.now();
    expect(await group.ask(group.sentinels[0]!.port, 'SENTINEL', 'FAILOVER', MASTER_NAME)).toBe('OK');
    await group.waitForNewPrimary(primary, 40_000);
    const promotedAt = Date.now();
    await sleep(4000);
    stop = true;
    const [subs, styles] = await Promise.all([floodDone, stylesDone]);
    // The old primary is still running, now a replica of the new one.
    await until(async () => String(await group.ask(primary, 'INFO', 'replication')).includes('role:slave'), 15_000, 'the old primary to become a replica');
    // Workers confirm with 1 replica (the default): a completion lost in that window makes a
    // job run again (counted, not asserted); nothing accepted is lost either way.
    await judge('planned failover (SENTINEL FAILOVER), gateway confirming with 2 of 2 replicas', subs, styles, { failedAt, promotedAt }, false);
    expect(strict.running).toBe(true);
  } finally {
    await strict.stop(5000);
  }
});

test('GIVEN a drain (SIGTERM to the primary pod, as a rolling update or node drain does) THEN Redis hands over to its replicas first: every 202 completes exactly once with the default confirmation', async () => {
  await group.waitWhole(40_000);
  const primary = (await group.primaryPort())!;
  let stop = false;
  const floodDone = flood(gatewayPort, () => stop, Date.now() + 90_000);
  const stylesDone = probeStyles(gatewayPort, () => stop);
  await sleep(2000);
  const failedAt = Date.now();
  // Redis ≥ 7 pauses writes on SIGTERM until its replicas have everything (shutdown-timeout), then exits.
  expect(await group.terminate(group.member(primary))).toBe(0);
  await group.waitForNewPrimary(primary, 40_000);
  const promotedAt = Date.now();
  let watching = true;
  const primaries = watchPrimaries(() => !watching);
  await sleep(4000);
  stop = true;
  const [subs, styles] = await Promise.all([floodDone, stylesDone]);
  watching = false;
  await judge('drain (SIGTERM of the primary)', subs, styles, { failedAt, promotedAt }, onlyOneFailover(await primaries));
});
