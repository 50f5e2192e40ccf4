import type Redis from 'ioredis';

/** Fewer replicas than required confirmed a write in time (or the connection changed under it). */
export class ReplicaAckError extends Error {
  constructor(
    readonly acked: number,
    readonly required: number,
    readonly timeoutMs: number,
    /** `timeout`: WAIT returned too few; `reconnected`: the connection was replaced between the write and WAIT. */
    readonly reason: 'timeout' | 'reconnected' = 'timeout',
  ) {
    super(
      reason === 'timeout'
        ? `${acked} of the ${required} replica(s) required confirmed the write within ${timeoutMs} ms`
        : 'the Redis connection was replaced between the write and its confirmation',
    );
    this.name = 'ReplicaAckError';
  }
}

/**
 * Writes confirmed by replicas: Redis replication is asynchronous, so a write the master
 * answered can still be lost in a failover. After the write, `WAIT <n> <timeout>` on the same
 * connection blocks until `n` replicas have acknowledged everything this connection wrote so
 * far (and, replication being one ordered stream, everything the master executed before it).
 *
 * WAIT only speaks for the connection it runs on: if ioredis reconnected between the write and
 * the WAIT (and resent the WAIT on a fresh connection, which has written nothing), its answer
 * would confirm nothing. Each `ready` of the connection is counted, and a write whose
 * connection changed is reported as not confirmed.
 *
 * WAIT blocks its connection until it returns, so give this its own connection: commands that
 * share it wait behind every WAIT.
 */
export class ReplicatedWrites {
  private epoch = 0;

  constructor(
    readonly redis: Redis,
    /** Replicas that must confirm; 0 turns confirmation off. */
    readonly minReplicas: number,
    /** Longest a WAIT blocks. */
    readonly timeoutMs: number,
  ) {
    redis.on('ready', () => this.epoch++);
  }

  get enabled(): boolean {
    return this.minReplicas > 0;
  }

  /** Runs `write` (commands on `this.redis`), then confirms it; rejects with {@link ReplicaAckError} when it is not confirmed. */
  async write<T>(write: () => Promise<T>): Promise<T> {
    if (!this.enabled) return write();
    const epoch = this.epoch;
    const result = await write();
    await this.confirm(epoch);
    return result;
  }

  /** One WAIT for everything this connection wrote since `epoch` was current. */
  private async confirm(epoch: number): Promise<void> {
    const acked = Number(await this.redis.wait(this.minReplicas, this.timeoutMs));
    if (this.epoch !== epoch) throw new ReplicaAckError(acked, this.minReplicas, this.timeoutMs, 'reconnected');
    if (acked < this.minReplicas) throw new ReplicaAckError(acked, this.minReplicas, this.timeoutMs);
  }
}
