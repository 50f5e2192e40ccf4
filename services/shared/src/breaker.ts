import {
  BrokenCircuitError,
  CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
  timeout,
  wrap,
} from 'cockatiel';
import { Gauge, Registry } from 'prom-client';

/**
 * The circuit breaker around every call to the model API, shared by the gateway and the
 * worker: cockatiel's consecutive-failure breaker with a timeout inside it, so a timeout
 * counts as a failure. While open, calls fail fast with BrokenCircuitError; after
 * `openSeconds` exactly one trial call is let through (half-open).
 */
export interface BreakerOptions {
  /** Label of `levee_circuit_state{target}`. */
  readonly target: string;
  /** How long the circuit stays open before a trial call. */
  readonly openSeconds: number;
  /** Per-call timeout; a timeout is a failure. */
  readonly timeoutMs: number;
  /** Consecutive failures that open the circuit. @default 5 */
  readonly consecutiveFailures?: number;
  /** Errors for which this returns false do not count as failures (e.g. a 4xx). */
  readonly isFailure?: (err: unknown) => boolean;
  /** Where `levee_circuit_state` is registered; omitted: no metric. */
  readonly registry?: Registry;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** `levee_circuit_state` values: 0 closed, 1 open, 2 half-open. */
export const CIRCUIT_STATE_VALUE: Record<BreakerState, number> = { closed: 0, open: 1, 'half-open': 2 };

export class Breaker {
  private readonly policy: CircuitBreakerPolicy;
  private readonly execution;
  private openedAt = 0;
  readonly openMs: number;

  constructor(readonly options: BreakerOptions) {
    this.openMs = options.openSeconds * 1000;
    const isFailure = options.isFailure ?? (() => true);
    this.policy = circuitBreaker(handleWhen((err) => isFailure(err)), {
      halfOpenAfter: this.openMs,
      breaker: new ConsecutiveBreaker(options.consecutiveFailures ?? 5),
    });
    this.policy.onBreak(() => {
      this.openedAt = Date.now();
    });
    this.execution = wrap(this.policy, timeout(options.timeoutMs, TimeoutStrategy.Aggressive));
    if (options.registry) registerStateGauge(options.registry, options.target, () => this.state);
  }

  /** Runs `fn` through the breaker; `signal` aborts when the call times out. */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    // cockatiel queues callers behind a half-open trial; Levee fails them fast instead,
    // so exactly one call probes a recovering model API and nobody waits on it.
    if (this.policy.state === CircuitState.HalfOpen) return Promise.reject(new BrokenCircuitError());
    return this.execution.execute(({ signal }) => fn(signal));
  }

  get state(): BreakerState {
    switch (this.policy.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return 'open';
    }
  }

  /** Calls `listener` with the new state on every change (open after failures, half-open during a trial, closed after it passed). */
  onStateChange(listener: (state: BreakerState) => void): void {
    this.policy.onStateChange(() => listener(this.state));
  }

  /** Milliseconds until the circuit will let a trial call through (0 when it would now). */
  retryAfterMs(now = Date.now()): number {
    if (this.state === 'closed') return 0;
    if (this.state === 'half-open') return 1000; // a trial is running; ask again shortly
    return Math.max(0, this.openedAt + this.openMs - now);
  }
}

/** True when a call was refused because the circuit is open (not a failure of the call). */
export function isBreakerOpen(err: unknown): boolean {
  return isBrokenCircuitError(err);
}

/** Several breakers in one registry share one gauge family, one series per target. */
const gauges = new WeakMap<Registry, { gauge: Gauge<'target'>; readers: Map<string, () => BreakerState> }>();

function registerStateGauge(registry: Registry, target: string, read: () => BreakerState): void {
  let entry = gauges.get(registry);
  if (!entry) {
    const readers = new Map<string, () => BreakerState>();
    const gauge = new Gauge({
      name: 'levee_circuit_state',
      help: 'Circuit breaker state per target: 0 closed, 1 open, 2 half-open.',
      labelNames: ['target'],
      registers: [registry],
      collect() {
        for (const [t, r] of readers) this.set({ target: t }, CIRCUIT_STATE_VALUE[r()]);
      },
    });
    entry = { gauge, readers };
    gauges.set(registry, entry);
  }
  entry.readers.set(target, read);
}
