import { isTaskCancelledError } from 'cockatiel';
import type Redis from 'ioredis';
import type { Breaker } from '../../shared/src/breaker';
import { IDEMPOTENCY_SECONDS, JobOutcome } from '../../shared/src/job';
import { imageKey, outcomeKey } from '../../shared/src/keys';
import { ReplicaAckError, ReplicatedWrites } from '../../shared/src/replication';
import { ImageStoreError, S3Images } from '../../shared/src/s3-images';

/** Where rendered PNGs, and the outcomes of finished jobs, go: media and the gateway read them back by job id. */
export interface ImageStore {
  /** Stores the PNG for `ttlSeconds` and the job's outcome (completed) for at least the idempotency window. */
  put(jobId: string, png: Buffer, ttlSeconds: number, outcome: JobOutcome): Promise<void>;
  /** Stores the outcome of a job that BullMQ has failed for good, for the idempotency window. */
  putFailure(jobId: string, outcome: JobOutcome): Promise<void>;
  /**
   * The size of the PNG when the job was rendered and stored already (an earlier attempt whose
   * completion BullMQ lost: a worker killed in between, or a failover), else undefined.
   */
  stored?(jobId: string): Promise<{ bytes: number } | undefined>;
  /** Where the PNG went, for the job's return value: the object key in s3. @default its Redis key */
  location?(jobId: string): string;
  /**
   * How long the store will refuse work from now on, in ms: 0 when it takes uploads (closed
   * breaker). Jobs are postponed rather than rendered while it is not 0. @default always 0
   */
  unavailableForMs?(now: number): number;
}

export interface RedisImageStoreOptions {
  /** Replicas that must confirm each store (Redis WAIT); 0: the master's answer is enough. @default 0 */
  readonly minReplicasAcked?: number;
  /** Longest one WAIT blocks. @default 1000 */
  readonly replicaAckTimeoutMs?: number;
  /** Writes (and WAITs) per store before it gives up (with a ReplicaAckError when the replicas never confirmed). @default 5 */
  readonly ackAttempts?: number;
}

/**
 * PNG bytes under `imageKey(id)` and the job's outcome under `outcomeKey(id)` in the queue
 * Redis (the key layout lives in shared/keys). A completed job's PNG and outcome go in one
 * MULTI (both or neither). The outcome (a few dozen bytes) lives as long as the image, and at
 * least 24 h: an idempotent replay within the window must find it even when IMAGE_TTL_SECONDS
 * is shorter, or it would add (and render) the job again.
 *
 * With `minReplicasAcked`, every store is confirmed by that many replicas (WAIT) before it
 * resolves, so BullMQ marks a job completed only once its image would survive a failover; give
 * the store a connection of its own then (WAIT blocks the connection it runs on).
 *
 * Every write here is idempotent, so a store that fails for a reason that passes (its primary
 * went away mid-transaction and ioredis sent the EXEC alone to the new one; READONLY; not
 * confirmed in time) is written again, a few times, before the error goes to the processor
 * (which would otherwise render the job again). A worker connection waits out a reconnect, so
 * the next try goes to the new primary. Redis refusing for lack of memory (OOM) is not retried.
 */
export class RedisImageStore implements ImageStore {
  private readonly replicated: ReplicatedWrites;
  private readonly attempts: number;

  constructor(
    private readonly redis: Redis,
    options: RedisImageStoreOptions = {},
  ) {
    this.replicated = new ReplicatedWrites(redis, options.minReplicasAcked ?? 0, options.replicaAckTimeoutMs ?? 1000);
    this.attempts = options.ackAttempts ?? 5;
  }

  /** Runs an idempotent write (confirmed, when so configured) up to `attempts` times. */
  private async idempotent<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.replicated.write(write);
      } catch (err) {
        if (attempt >= this.attempts || (err instanceof Error && /^OOM\b/.test(err.message))) throw err;
        // Unconfirmed: WAIT has waited already. Anything else: give a reconnect a moment.
        if (!(err instanceof ReplicaAckError)) await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  async put(jobId: string, png: Buffer, ttlSeconds: number, outcome: JobOutcome): Promise<void> {
    await this.idempotent(async () => {
      let results: [Error | null, unknown][] | null;
      try {
        results = await this.redis
          .multi()
          .set(imageKey(jobId), png, 'EX', ttlSeconds)
          .set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', Math.max(ttlSeconds, IDEMPOTENCY_SECONDS))
          .exec();
      } catch (err) {
        // A command refused while queued (OOM at maxmemory) aborts the transaction: surface that
        // error, not the EXECABORT, so the caller can tell a full store from a failing one.
        const previous = (err as { previousErrors?: unknown[] }).previousErrors?.[0];
        throw previous ?? err;
      }
      const failed = results?.find(([err]) => err)?.[0];
      if (failed) throw failed;
    });
  }

  location(jobId: string): string {
    return imageKey(jobId);
  }

  /** The outcome of a completed job alone (its PNG is elsewhere), for max(ttl, 24 h): see put. */
  async putOutcome(jobId: string, outcome: JobOutcome, ttlSeconds: number): Promise<void> {
    await this.idempotent(() => this.redis.set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', Math.max(ttlSeconds, IDEMPOTENCY_SECONDS)));
  }

  /**
   * True when the job's outcome says completed; with replica confirmation on, the record is
   * rewritten and confirmed first (an earlier attempt may have stored it unconfirmed).
   */
  async completedOutcome(jobId: string): Promise<boolean> {
    const outcome = await this.redis.get(outcomeKey(jobId));
    if (!outcome || parseStatus(outcome) !== 'completed') return false;
    if (this.replicated.enabled) await this.idempotent(() => this.redis.set(outcomeKey(jobId), outcome, 'KEEPTTL', 'XX'));
    return true;
  }

  async putFailure(jobId: string, outcome: JobOutcome): Promise<void> {
    await this.idempotent(() => this.redis.set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', IDEMPOTENCY_SECONDS));
  }

  async stored(jobId: string): Promise<{ bytes: number } | undefined> {
    const results = await this.redis.multi().get(outcomeKey(jobId)).strlen(imageKey(jobId)).exec();
    const [outcome, bytes] = (results ?? []).map(([err, value]) => (err ? undefined : value)) as [string | null | undefined, number | undefined];
    if (!outcome || !bytes || parseStatus(outcome) !== 'completed') return undefined;
    // Found on this master, but an earlier attempt may have stored it without the replicas'
    // confirmation: rewriting the outcome (same value, same TTL) and confirming that write
    // confirms everything before it, the PNG included (replication is one ordered stream).
    if (this.replicated.enabled) await this.idempotent(() => this.redis.set(outcomeKey(jobId), outcome, 'KEEPTTL', 'XX'));
    return { bytes };
  }

  /**
   * Stores a failed outcome that nobody stored when the job failed, unless one exists now
   * (SET NX), for what is left of its window. True when it wrote one.
   */
  /** Whether the job has an outcome (any status). */
  async hasOutcome(jobId: string): Promise<boolean> {
    return (await this.redis.exists(outcomeKey(jobId))) === 1;
  }

  async restoreFailure(jobId: string, outcome: JobOutcome, ttlSeconds: number): Promise<boolean> {
    // One attempt: written again, NX would find its own first write (the next reconcile checks again).
    return (await this.replicated.write(() => this.redis.set(outcomeKey(jobId), JSON.stringify(outcome), 'EX', ttlSeconds, 'NX'))) === 'OK';
  }
}

function parseStatus(outcome: string): unknown {
  try {
    return (JSON.parse(outcome) as Partial<JobOutcome>).status;
  } catch {
    return undefined;
  }
}

/**
 * PNGs in object storage (S3Images), outcomes in the queue Redis (RedisImageStore): the queue
 * Redis then holds jobs and their small records only. The PNG is uploaded first and the
 * outcome written after it, so an outcome that says completed always has its image; a worker
 * that dies in between leaves an object and no outcome, and the retry renders again and
 * overwrites that one object (the key is the job id's).
 *
 * Every call to the store goes through a circuit breaker (target `image-store`): after a few
 * consecutive failures it opens: the worker then takes no new job, `unavailableForMs` tells
 * the processor to postpone the ones it holds (not render them, not burn their attempts), and
 * a probe of the bucket (`probe`, never a job's upload) is the trial that closes it again.
 */
export class S3ImageStore implements ImageStore {
  constructor(
    readonly images: S3Images,
    readonly outcomes: RedisImageStore,
    readonly breaker: Breaker,
  ) {}

  location(jobId: string): string {
    return this.images.key(jobId);
  }

  async put(jobId: string, png: Buffer, ttlSeconds: number, outcome: JobOutcome): Promise<void> {
    await this.guarded('upload', (signal) => this.images.put(jobId, png, signal));
    await this.outcomes.putOutcome(jobId, outcome, ttlSeconds);
  }

  /** A store call through the breaker; a timeout of the breaker's own is a store failure too. */
  private async guarded<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      return await this.breaker.execute(fn);
    } catch (err) {
      if (isTaskCancelledError(err)) throw new ImageStoreError(`image store ${this.images.describe()}: ${what}: timed out`, undefined, 'Timeout', { cause: err });
      throw err;
    }
  }

  putFailure(jobId: string, outcome: JobOutcome): Promise<void> {
    return this.outcomes.putFailure(jobId, outcome);
  }

  async stored(jobId: string): Promise<{ bytes: number } | undefined> {
    if (!(await this.outcomes.completedOutcome(jobId))) return undefined;
    const head = await this.guarded('read', (signal) => this.images.head(jobId, signal));
    return head ? { bytes: head.bytes } : undefined;
  }

  restoreFailure(jobId: string, outcome: JobOutcome, ttlSeconds: number): Promise<boolean> {
    return this.outcomes.restoreFailure(jobId, outcome, ttlSeconds);
  }

  /** 0 while the breaker is closed; else until it would allow a trial, and at least a second (the probe makes the trial). */
  unavailableForMs(now: number): number {
    return this.breaker.state === 'closed' ? 0 : Math.max(1000, this.breaker.retryAfterMs(now));
  }

  /** The breaker's trial, when one is due: a check that the bucket answers and takes a write. True when the store is usable (closed). */
  async probe(now = Date.now()): Promise<boolean> {
    if (this.breaker.state === 'closed') return true;
    if (this.breaker.state === 'half-open' || this.breaker.retryAfterMs(now) > 0) return false;
    await this.guarded('check', (signal) => this.check(signal));
    return true;
  }

  /** The bucket answers, and these credentials may write under the prefix (HeadBucket alone misses a denied PutObject). */
  async check(signal?: AbortSignal): Promise<void> {
    await this.images.checkBucket(signal);
    await this.images.checkWrite(signal);
  }
}
