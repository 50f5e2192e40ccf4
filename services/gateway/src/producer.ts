import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Job, Queue } from 'bullmq';
import type { Context } from '@opentelemetry/api';
import type Redis from 'ioredis';
import { Counter, Gauge, Registry } from 'prom-client';
import { CANCELLED, IDEMPOTENCY_SECONDS, JobOutcome, RENDER_JOB, RENDER_JOB_OPTIONS, RenderRequest } from '../../shared/src/job';
import { idempotencyKey, outcomeKey } from '../../shared/src/keys';
import { duplicateRedis } from '../../shared/src/redis';
import { ReplicaAckError, ReplicatedWrites } from '../../shared/src/replication';
import { activeContext, traceQueueWhenSampled, withContext } from '../../shared/src/tracing';
import { finishedDocument, readWebhookState, StatusDocument } from '../../shared/src/webhooks';

/** The queue holds QUEUE_MAX_WAITING jobs already: answer 503 instead of growing Redis. */
export class QueueFullError extends Error {
  constructor(
    readonly waiting: number,
    readonly max: number,
    /** `depth`: QUEUE_MAX_WAITING reached; `memory`: the queue Redis is near its maxmemory. */
    readonly reason: 'depth' | 'memory' = 'depth',
  ) {
    super(reason === 'depth' ? `queue is full: ${waiting} jobs waiting (bound ${max})` : `queue Redis memory at ${waiting}% (bound ${max}%)`);
    this.name = 'QueueFullError';
  }
}

/** The same Idempotency-Key was used with a different body. */
export class IdempotencyConflictError extends Error {
  constructor(readonly jobId: string) {
    super('Idempotency-Key reused with a different request body');
    this.name = 'IdempotencyConflictError';
  }
}

/** Redis did not answer in time (fail fast; never hang a request on the queue). */
export class QueueUnavailableError extends Error {
  constructor(
    cause: unknown,
    /** No answer within the timeout (the operation may still complete later). */
    readonly timedOut = false,
  ) {
    super(`queue Redis unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'QueueUnavailableError';
  }

  /** The jobs reached the master but too few replicas confirmed them: they may still be lost in a failover. */
  get unconfirmed(): boolean {
    return this.cause instanceof ReplicaAckError;
  }
}

interface PendingAdd {
  id: string;
  data: RenderRequest;
  resolve: () => void;
  reject: (err: unknown) => void;
  /** The request's trace context (tracing on only). */
  context: Context | undefined;
}

/** The `error` of a failed job whose reason was not kept. */
const UNKNOWN_FAILURE = 'rendering failed';

export type PublicJobStatus = StatusDocument['status'];

/** The status document (GET /api/images/{id}); `position` is an estimate (see Producer.position). */
export type JobStatus = StatusDocument;

/** The waiting list at one moment: its length and the creation times of its oldest and newest jobs. */
export interface WaitWindow {
  n: number;
  oldest: number;
  newest: number;
}

/**
 * Where a waiting job created at `timestamp` stands in `window`: 1 + (N − 1) × (its time −
 * the oldest's) / (the newest's − the oldest's), exact for steady arrivals. Undefined when the
 * list is out of creation order: a job back from `delayed` (postponed, or backing off) rejoins
 * at the newest end with its old creation time.
 */
export function estimatePosition({ n, oldest: t0, newest: t1 }: WaitWindow, timestamp: number): number | undefined {
  if (n === 1) return 1;
  if (!(t1 > t0) || timestamp < t0 || timestamp > t1) return undefined;
  return Math.max(1, Math.min(n, 1 + Math.round(((n - 1) * (timestamp - t0)) / (t1 - t0))));
}

/**
 * One round trip, O(1) whatever the queue's length: the waiting list's length and the
 * creation times of its oldest (the tail: BullMQ takes jobs from the right) and newest jobs.
 */
const WAIT_WINDOW_SCRIPT = `
local n = redis.call('LLEN', KEYS[1])
if n == 0 then return {0, false, false} end
local oldest = redis.call('LINDEX', KEYS[1], -1)
local newest = redis.call('LINDEX', KEYS[1], 0)
return {n, redis.call('HGET', ARGV[1] .. oldest, 'timestamp'), redis.call('HGET', ARGV[1] .. newest, 'timestamp')}
`;

export interface ProducerOptions {
  /** The queue Redis, a request-role client (no offline queue). */
  readonly redis: Redis;
  readonly queueName: string;
  /** Bound of waiting jobs (QUEUE_MAX_WAITING). */
  readonly maxWaiting: number;
  /** How long an Idempotency-Key maps to its job. @default 24 h */
  readonly idempotencySeconds?: number;
  /**
   * Refuse new jobs once the queue Redis uses this share of its `maxmemory`: it is
   * `noeviction`, so the rest is the room the accepted jobs' PNGs still need. @default 80
   */
  readonly maxMemoryPercent?: number;
  /** How often the queue Redis memory is read (INFO memory). @default 1000 */
  readonly memoryRefreshMs?: number;
  /** How long the waiting count read from Redis is trusted before it is read again. @default 100 */
  readonly depthRefreshMs?: number;
  /** Longest a queue operation may take before the request gets a 503. @default 2000 */
  readonly timeoutMs?: number;
  /**
   * Replicas that must confirm each add (Redis WAIT) before it counts as accepted; 0: the
   * master's answer is enough. With more than 0 the adds go over a connection of their own
   * (a duplicate of `redis`), because WAIT blocks the connection it runs on. @default 0
   */
  readonly minReplicasAcked?: number;
  /** Longest one WAIT blocks (the 503 comes at most this much later). @default 500 */
  readonly replicaAckTimeoutMs?: number;
  readonly registry?: Registry;
}

/**
 * The BullMQ producer: enqueues render jobs (never waits for them), bounds the queue,
 * maps Idempotency-Keys to jobs, and reads job status for the status route.
 *
 * The bound is checked against a waiting count read from Redis at most every
 * `depthRefreshMs` (one read in flight at a time) and counted up locally between reads, so
 * the check costs no round trip per request; N replicas may overshoot the bound by what
 * they accept within one refresh interval.
 */
export class Producer {
  private current: Queue;
  /** The queue the adds go through: `current` itself, or one on the WAIT connection. */
  private writeQueue: Queue;
  private queueFailed = false;
  /** The connection the adds and their WAIT use (`options.redis` when no confirmation is required). */
  private readonly writer: Redis;
  private readonly replicated: ReplicatedWrites;
  private waiting = 0;
  private waitingReadAt = 0;
  private waitingRead?: Promise<void>;
  private pendingAdds: PendingAdd[] = [];
  private memoryPercent = 0;
  private memoryReadAt = 0;
  private memoryRead?: Promise<void>;
  private readonly idempotencySeconds: number;
  private readonly depthRefreshMs: number;
  private readonly timeoutMs: number;
  private rejected?: Counter<'reason'>;
  /** Each connection's first connect, while it is under way (see ensureConnected). */
  private readonly firstConnect = new Map<Redis, Promise<void>>();

  constructor(private readonly options: ProducerOptions) {
    this.idempotencySeconds = options.idempotencySeconds ?? IDEMPOTENCY_SECONDS;
    this.depthRefreshMs = options.depthRefreshMs ?? 100;
    this.timeoutMs = options.timeoutMs ?? 2000;
    const minReplicas = options.minReplicasAcked ?? 0;
    // The adds get a connection of their own, without auto-pipelining: each add's reply comes
    // back as soon as Redis has run it. Through the auto-pipelined request client (or one
    // addBulk transaction) every job of an event-loop turn waited for the whole turn's batch,
    // and at flood rates the gateway sat idle on those waits (POST at ~0.7 of a plain
    // queue.add producer; ~0.95 with this). It is also the connection WAIT blocks.
    this.writer = duplicateRedis(options.redis, { enableAutoPipelining: false });
    this.replicated = new ReplicatedWrites(this.writer, minReplicas, options.replicaAckTimeoutMs ?? 500);
    this.current = this.openQueue(options.redis);
    this.writeQueue = this.openQueue(this.writer);
    for (const client of new Set([options.redis, this.writer])) {
      if (client.status === 'ready') continue;
      const first = once(client, 'ready').then(() => undefined);
      first.catch(() => undefined).finally(() => this.firstConnect.delete(client));
      this.firstConnect.set(client, first);
    }
    if (options.registry) this.registerGauge(options.registry);
  }

  /** The BullMQ queue (a new one after a failed start-up: see openQueue). */
  get queue(): Queue {
    return this.current;
  }

  /** The queue the adds go through, on the writer connection. */
  get addQueue(): Queue {
    return this.writeQueue;
  }

  /** The connection of the adds, the idempotency claims and WAIT (no auto-pipelining). */
  get writerRedis(): Redis {
    return this.writer;
  }

  /**
   * BullMQ reads the server's version once (INFO) when a Queue is created, and keeps that first
   * answer for good: on this fail-fast client an INFO that failed or timed out (Redis restarting
   * as the gateway starts) would leave every later add and status read failing until the
   * process restarted. So a Queue whose start-up failed is replaced at the next request. (Not
   * `skipVersionCheck`: BullMQ then assumes Redis 5 and reads job states with its older script,
   * which scans the wait and active lists on every status read.)
   */
  private openQueue(connection: Redis): Queue {
    // With tracing on, each job carries its request's trace context (BullMQ telemetry).
    const queue = new Queue(this.options.queueName, { connection, defaultJobOptions: RENDER_JOB_OPTIONS });
    traceQueueWhenSampled(queue);
    queue.on('error', () => undefined); // connection errors surface per call as 503s
    queue.waitUntilReady().catch(() => {
      if (this.current === queue || this.writeQueue === queue) this.queueFailed = true;
    });
    return queue;
  }

  /**
   * Enqueues a render. With an idempotency key, the same client and key return the job
   * created first (within 24 h), however many requests race.
   */
  async submit(request: RenderRequest, idempotency?: { clientIp: string; key: string }): Promise<{ id: string; created: boolean }> {
    await this.ensureConnected();
    const id = randomUUID();
    if (!idempotency) {
      await this.checkBound();
      await this.add(id, request);
      return { id, created: true };
    }
    // The same request whatever the order of its fields (the body is one flat object).
    const fingerprint = createHash('sha256').update(JSON.stringify(request, Object.keys(request).sort())).digest('base64url').slice(0, 22);
    const key = idempotencyKey(idempotency.clientIp, idempotency.key);
    // The bound is checked before the key is claimed, so a refused request never holds a
    // claim that a concurrent replay could take for an accepted job. When the queue is full,
    // only a replay of a key already claimed gets an answer (its job).
    try {
      await this.checkBound();
    } catch (err) {
      if (!(err instanceof QueueFullError)) throw err;
      const holder = await this.withTimeout(this.writer.get(key));
      if (!holder) throw err;
      return this.replay(holder, fingerprint, request);
    }
    // SET NX GET: one round trip claims the key or returns the job that holds it.
    // On the connection the adds and their WAIT use: in a failover two connections may sit on
    // two different nodes for a moment, and the claim must be confirmed with its job.
    const previous = await this.withTimeout(this.writer.set(key, `${id} ${fingerprint}`, 'EX', this.idempotencySeconds, 'NX', 'GET') as Promise<string | null>);
    if (previous) return this.replay(previous, fingerprint, request);
    // On a failed add the claim stays: a retry with the same key adds the job under the same id.
    await this.add(id, request);
    return { id, created: true };
  }

  /**
   * A repeated Idempotency-Key: the job that holds it (`holder` is "<jobId> <body hash>").
   * It gets its job even when the queue is full now. The first request may still be adding
   * that job, or may have failed to: add it under the same id (a no-op in BullMQ when it
   * exists), so a 202 always names a job in Redis. Unless it has finished (an outcome is
   * stored): BullMQ may have dropped it from its history already, and adding it again would
   * render it again. Either way the answer is confirmed like a new job's: the add's WAIT, or,
   * for a finished job, the outcome written again (same value and TTL) and WAITed for, on the
   * node it was read from (confirming that write confirms everything the node had before it).
   */
  private async replay(holder: string, fingerprint: string, request: RenderRequest): Promise<{ id: string; created: boolean }> {
    const [existing, existingPrint] = holder.split(' ');
    if (existingPrint !== fingerprint) throw new IdempotencyConflictError(existing);
    const key = outcomeKey(existing);
    const outcome = await this.withTimeout(this.writer.get(key));
    if (outcome === null) await this.add(existing, request);
    else if (this.replicated.enabled) await this.withTimeout(this.replicated.write(() => this.writer.set(key, outcome, 'KEEPTTL', 'XX')));
    return { id: existing, created: false };
  }

  /**
   * The public status of a job, or undefined when no such job exists (any more). A finished
   * job that BullMQ's bounded history has dropped keeps its status from the outcome the worker
   * stored (`completed` while its image lasts, and at least 24 h; `failed` for 24 h).
   */
  async status(id: string): Promise<JobStatus | undefined> {
    await this.ensureConnected();
    // The state first, then the job: read the other way round, a job finishing in between
    // showed `completed` with the attempts (and finish time) it had while still active.
    const state = await this.withTimeout(this.queue.getJobState(id));
    if (state === 'unknown') return this.finishedStatus(id);
    const job = await this.withTimeout(Job.fromId<RenderRequest>(this.queue, id));
    if (!job) return this.finishedStatus(id);
    const cancelled = state === 'failed' && job.failedReason === CANCELLED;
    const status: PublicJobStatus = cancelled ? 'cancelled' : state === 'active' || state === 'completed' || state === 'failed' ? state : 'queued';
    const result: JobStatus = { id, status, attempts: job.attemptsMade, createdAt: new Date(job.timestamp).toISOString() };
    if (state === 'waiting') {
      // Best effort: the status never fails for want of an estimate.
      const position = await this.withTimeout(this.position(job.timestamp)).catch(() => undefined);
      if (position !== undefined) result.position = position;
    }
    if (state === 'active' && typeof job.progress === 'number') result.progress = job.progress;
    if (status !== 'queued' && status !== 'active' && job.finishedOn) result.finishedAt = new Date(job.finishedOn).toISOString();
    if (status === 'failed') result.error = job.failedReason || UNKNOWN_FAILURE;
    if (status === 'cancelled') result.error = CANCELLED;
    if (typeof job.data?.webhookUrl === 'string') result.webhook = await this.withTimeout(readWebhookState(this.options.redis, id));
    return result;
  }

  /**
   * Where a waiting job created at `timestamp` stands, estimated in O(1): the waiting list is
   * ordered by arrival, so with N jobs waiting between the oldest's and the newest's creation
   * times, it is 1 + (N − 1) × (its time − the oldest's) / (the newest's − the oldest's),
   * exact for steady arrivals. Never a scan of the list per request: clients poll in a flood.
 * Undefined when the list is out of creation order (a postponed job came back to its end).
   */
  private async position(timestamp: number): Promise<number | undefined> {
    const window = await this.waitWindow();
    return window && estimatePosition(window, timestamp);
  }

  /** The waiting list's length and the creation times at its two ends, in one O(1) round trip (undefined: empty). */
  async waitWindow(): Promise<WaitWindow | undefined> {
    const redis = this.options.redis;
    const prefix = `${this.current.opts.prefix ?? 'bull'}:${this.current.name}:`;
    if (!('leveeWaitWindow' in redis)) redis.defineCommand('leveeWaitWindow', { numberOfKeys: 1, lua: WAIT_WINDOW_SCRIPT });
    const window = (redis as unknown as { leveeWaitWindow(key: string, prefix: string): Promise<[number, string | null, string | null]> }).leveeWaitWindow;
    const [n, oldest, newest] = await window.call(redis, `${prefix}wait`, prefix);
    if (!n || oldest === null || newest === null) return undefined;
    return { n, oldest: Number(oldest), newest: Number(newest) };
  }

  async close(): Promise<void> {
    await this.current.close();
    await this.writeQueue.close();
    // QUIT only where it can be answered; a client that is (re)connecting just stops.
    if (this.writer.status === 'ready') await this.writer.quit().catch(() => this.writer.disconnect());
    else this.writer.disconnect();
  }

  /** A finished job from the outcome the worker stored; undefined when there is none (or it is unreadable). */
  private async finishedStatus(id: string): Promise<JobStatus | undefined> {
    const json = await this.withTimeout(this.options.redis.get(outcomeKey(id)));
    if (!json) return undefined;
    let record: Partial<JobOutcome> | undefined;
    try {
      record = JSON.parse(json) as Partial<JobOutcome>;
    } catch {
      record = undefined;
    }
    const valid = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    if (!record || !['completed', 'failed', 'cancelled'].includes(record.status as string) || !valid(record.createdAt) || !valid(record.finishedAt) || !valid(record.attempts)) return undefined;
    const status = finishedDocument(id, { status: record.status!, createdAt: record.createdAt, finishedAt: record.finishedAt, attempts: record.attempts, ...(typeof record.error === 'string' && record.error ? { error: record.error } : {}) });
    if (record.webhook) status.webhook = await this.withTimeout(readWebhookState(this.options.redis, id));
    return status;
  }

  /**
   * A disconnected client fails at once: no BullMQ call that would wait for a reconnect. Only
   * a connection still making its first connect (the gateway has just started, and the
   * writer is a connection of its own) is waited for, within the queue timeout; its first
   * error fails the request like any other.
   */
  private ensureConnected(): Promise<void> | void {
    let starting: Promise<void>[] | undefined;
    for (const client of new Set([this.options.redis, this.writer])) {
      if (client.status === 'ready') continue;
      const first = this.firstConnect.get(client);
      if (first) (starting ??= []).push(first);
      else throw new QueueUnavailableError(new Error(`Redis connection is ${client.status}`));
    }
    if (starting) return this.withTimeout(Promise.all(starting)).then(() => this.ensureConnected());
    if (this.queueFailed) {
      this.queueFailed = false;
      // Queues share their clients: closing one leaves the client open.
      const failed = new Set([this.current, this.writeQueue]);
      this.current = this.openQueue(this.options.redis);
      this.writeQueue = this.openQueue(this.writer);
      for (const q of failed) q.close().catch(() => undefined);
    }
  }

  /**
   * Adds one job; resolves once it is in Redis (and, with `minReplicasAcked`, confirmed by
   * that many replicas). Each add goes out on its own, on the writer connection. With
   * confirmation on, the adds of one event-loop turn share one WAIT, sent once they are all
   * in: WAIT blocks its connection, so one per job would queue every add behind the last.
   */
  private add(id: string, request: RenderRequest): Promise<void> {
    this.corkTurn();
    if (!this.replicated.enabled) {
      return this.withTimeout(this.writeQueue.add(RENDER_JOB, request, { jobId: id })).then(() => {
        this.waiting++;
      });
    }
    return new Promise<void>((resolve, reject) => {
      // The add leaves later, in the turn's batch: it keeps its own request's trace context.
      if (this.pendingAdds.push({ id, data: request, resolve, reject, context: activeContext() }) === 1) setImmediate(this.flushAdds);
    });
  }

  /**
   * The adds of one event-loop turn leave in one socket write: the writer's socket is corked
   * from the turn's first add until the turn ends (one write syscall per command was a sixth
   * of the gateway's CPU at flood rates). Unlike a pipeline, corking batches only the writes:
   * each reply still settles its own add as soon as it arrives.
   */
  private corked?: { uncork(): void };
  private corkTurn(): void {
    if (this.corked) return;
    const stream = this.writer.stream as { cork(): void; uncork(): void } | undefined;
    if (!stream) return;
    stream.cork();
    this.corked = stream;
    setImmediate(this.uncorkTurn);
  }

  private readonly uncorkTurn = (): void => {
    const stream = this.corked;
    this.corked = undefined;
    stream?.uncork();
  };

  private readonly flushAdds = (): void => {
    const batch = this.pendingAdds;
    this.pendingAdds = [];
    const queue = this.writeQueue;
    this.withTimeout(this.replicated.write(() => Promise.allSettled(batch.map((a) => withContext(a.context, () => queue.add(RENDER_JOB, a.data, { jobId: a.id })))))).then(
      (results) =>
        results.forEach((r, i) => {
          const a = batch[i]!;
          if (r.status === 'rejected') return a.reject(new QueueUnavailableError(r.reason));
          this.waiting++;
          a.resolve();
        }),
      // Timed out, or in Redis but not confirmed by enough replicas: every job of the turn gets
      // the 503 (a retry with the same Idempotency-Key finds its job if it landed).
      (err: QueueUnavailableError) => batch.forEach((a) => a.reject(err)),
    );
  };

  private async checkBound(): Promise<void> {
    if (Date.now() - this.waitingReadAt > this.depthRefreshMs) {
      this.waitingRead ??= this.withTimeout(this.queue.getJobCounts('waiting', 'prioritized', 'delayed'))
        .then((counts) => {
          this.waiting = Object.values(counts).reduce((a, b) => a + b, 0);
          this.waitingReadAt = Date.now();
        })
        .finally(() => (this.waitingRead = undefined));
      // Only the first reads after a stale interval wait; everyone else uses the last count.
      if (this.waitingReadAt === 0 || Date.now() - this.waitingReadAt > this.depthRefreshMs * 10) await this.waitingRead;
      else this.waitingRead.catch(() => undefined);
    }
    if (this.waiting >= this.options.maxWaiting) throw new QueueFullError(this.waiting, this.options.maxWaiting);
    this.refreshMemory();
    const maxMemoryPercent = this.options.maxMemoryPercent ?? 80;
    if (this.memoryPercent >= maxMemoryPercent) throw new QueueFullError(Math.round(this.memoryPercent), maxMemoryPercent, 'memory');
  }

  /** Reads used_memory / maxmemory of the queue Redis in the background, at most every second. */
  private refreshMemory(): void {
    if (this.memoryRead || Date.now() - this.memoryReadAt < (this.options.memoryRefreshMs ?? 1000)) return;
    this.memoryRead = this.withTimeout(this.options.redis.info('memory'))
      .then((info) => {
        const used = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
        const max = Number(/^maxmemory:(\d+)/m.exec(info)?.[1] ?? 0);
        this.memoryPercent = max > 0 ? (100 * used) / max : 0; // 0: no maxmemory, no bound
        this.memoryReadAt = Date.now();
      })
      .catch(() => undefined) // Redis trouble surfaces on the add itself
      .finally(() => (this.memoryRead = undefined));
  }

  /** A queue operation bounded like the producer's own (QueueUnavailableError past the timeout), for its helpers (cancel). */
  guard<T>(promise: Promise<T>): Promise<T> {
    return this.withTimeout(promise);
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueueUnavailableError(new Error(`no answer within ${this.timeoutMs} ms`), true)), this.timeoutMs);
    });
    return Promise.race([promise, timeout])
      .catch((err: unknown) => {
        if (err instanceof QueueUnavailableError) throw err;
        throw new QueueUnavailableError(err);
      })
      .finally(() => clearTimeout(timer));
  }

  /** A submission refused with a 503 by the bound (`depth`: QUEUE_MAX_WAITING, `memory`: QUEUE_MAX_MEMORY_PERCENT). */
  recordRejected(reason: QueueFullError['reason']): void {
    this.rejected?.inc({ reason });
  }

  private registerGauge(registry: Registry): void {
    this.rejected = new Counter({
      name: 'levee_queue_rejected_total',
      help: 'POST /api/images answered 503 because the queue is at its bound, by reason: depth (QUEUE_MAX_WAITING) or memory (QUEUE_MAX_MEMORY_PERCENT of maxmemory).',
      labelNames: ['reason'],
      registers: [registry],
    });
    // Both series exist from the start, so rate() and alerts see a 0, not a gap.
    for (const reason of ['depth', 'memory'] as const) this.rejected.inc({ reason }, 0);
    const current = () => this.current;
    new Gauge({
      name: 'levee_queue_jobs',
      help: 'Jobs in the render queue by state (read from Redis at scrape time).',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        try {
          const counts = await Promise.race([
            current().getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref()),
          ]);
          for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
        } catch {
          // Redis unreachable: keep the last values rather than fail the scrape
        }
      },
    });
  }
}
