/**
 * The liveness signal: notices a worker stuck without progress. Every model call is bounded
 * by the breaker's timeout, so a call still running well past `limitMs` means the process is
 * wedged (a lost timer, a hung socket the timeout could not abort, a starved event loop) and
 * a restart is the cure. Redis waits are deliberately not tracked: a Redis outage is not
 * cured by restarting workers, and liveness must never depend on Redis.
 */
export class ProgressMonitor {
  private readonly inFlight = new Map<number, number>();
  private nextId = 0;
  private lastProgressAt: number;

  constructor(
    /** A tracked call older than this is "stuck". */
    readonly limitMs: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.lastProgressAt = clock();
  }

  /** Runs `work`, tracked until it settles. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    const id = this.nextId++;
    this.inFlight.set(id, this.clock());
    try {
      return await work();
    } finally {
      this.inFlight.delete(id);
      this.lastProgressAt = this.clock();
    }
  }

  /** Age in ms of the oldest tracked call (0 when none). */
  oldestMs(now = this.clock()): number {
    let oldest = now;
    for (const started of this.inFlight.values()) oldest = Math.min(oldest, started);
    return now - oldest;
  }

  stuck(now = this.clock()): boolean {
    return this.oldestMs(now) > this.limitMs;
  }

  status(now = this.clock()): { stuck: boolean; inFlight: number; oldestMs: number; lastProgressAt: number } {
    return { stuck: this.stuck(now), inFlight: this.inFlight.size, oldestMs: this.oldestMs(now), lastProgressAt: this.lastProgressAt };
  }
}
