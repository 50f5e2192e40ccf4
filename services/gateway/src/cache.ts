import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { defineReleaseCommand, releaseIfHeld } from '../../shared/src/redis';

/** What a loader returns for a key the origin does not know: cached negatively. */
export const NOT_FOUND: unique symbol = Symbol('levee.cache.notFound');
export type Loaded = unknown | typeof NOT_FOUND;

/** How an answer was obtained; `coalesced` waited for another caller's origin load. */
export type CacheSource = 'hit' | 'miss' | 'stale' | 'coalesced';

/** A cached value: the JSON body as sent (serialized once), or a negative entry. */
export interface CacheEntry {
  /** Serialized JSON, or null when the origin said "not found". */
  readonly body: string | null;
  /** Until when (epoch ms) the entry is fresh. */
  readonly freshUntil: number;
  /** Until when (epoch ms) it may still be served stale, when the origin cannot be reached. */
  readonly staleUntil: number;
}

export interface CacheResult {
  readonly entry: CacheEntry;
  readonly source: CacheSource;
}

/** No copy at all and the origin load did not finish within the bounded wait. */
export class CacheWaitTimeoutError extends Error {
  constructor(key: string, ms: number) {
    super(`no value for cache key "${key}" within ${ms} ms`);
    this.name = 'CacheWaitTimeoutError';
  }
}

export interface FloodCacheOptions {
  /** Label of the cache metrics, e.g. "styles". */
  readonly name: string;
  readonly redis: Redis;
  /** Prefix of every Redis key of this cache (values and locks). */
  readonly keyPrefix: string;
  /** Fresh lifetime of a loaded value, before jitter. */
  readonly ttlMs: number;
  /** Fresh lifetime of a negative ("not found") entry, before jitter. @default min(ttlMs, 5000) */
  readonly negativeTtlMs?: number;
  /** How long past freshness a copy may be served when the origin is failing. @default 24 h */
  readonly staleMs?: number;
  /** Relative TTL jitter (0.1 = ±10%) against cache avalanches. @default 0.1 */
  readonly jitter?: number;
  /** Lifetime of the origin-load lock; also the longest a caller waits for another's load. */
  readonly lockMs: number;
  /**
   * Longest a caller waits on an origin load while a stale copy exists: then it gets the stale
   * copy and the load goes on in the background (a hung origin costs clients nothing). @default 250
   */
  readonly staleWaitMs?: number;
  /** How often a waiter re-reads Redis while another replica loads. @default 20 */
  readonly pollMs?: number;
  /** In-process copy in front of Redis, capped by freshness. @default min(1000, ttlMs) */
  readonly localMs?: number;
  /** Most keys kept in process (a flood of unknown keys must not grow memory). @default 1000 */
  readonly maxLocalKeys?: number;
  readonly registry?: Registry;
  /**
   * Errors meaning the loader never reached the origin (an open circuit breaker): not counted
   * in `levee_cache_origin_loads_total`. @default none
   */
  readonly notAttempted?: (err: unknown) => boolean;
  /** Told of every origin load that failed and was attempted (e.g. to log it). @default none */
  readonly onLoadError?: (err: unknown, key: string) => void;
}

interface LocalCopy {
  entry: CacheEntry;
  localUntil: number;
  /** Held after a failed refresh: served as `stale` until localUntil, with no new attempt. */
  stale?: true;
}

interface Flight {
  promise: Promise<CacheResult>;
  /** True once this flight is waiting on the origin (or on another replica's load). */
  loading: boolean;
}

/** Lookups counted since the last scrape, per (cache, result). */
interface PendingCount {
  readonly labels: { cache: string; result: CacheSource };
  n: number;
}

const counters = new WeakMap<Registry, { requests: Counter<'cache' | 'result'>; loads: Counter<'cache'>; pending: PendingCount[] }>();

function cacheMetrics(registry: Registry) {
  let m = counters.get(registry);
  if (!m) {
    const pending: PendingCount[] = [];
    m = {
      pending,
      // Hits are counted as plain numbers and handed to prom-client at scrape time: a
      // labelled inc() per hit costs a label hash, a measurable share of a cached request.
      requests: new Counter({
        name: 'levee_cache_requests_total',
        help: 'Cache lookups by result: hit, miss (this caller loaded from the origin), stale, coalesced (waited for another load).',
        labelNames: ['cache', 'result'],
        registers: [registry],
        collect() {
          for (const p of pending) {
            if (p.n > 0) this.inc(p.labels, p.n);
            p.n = 0;
          }
        },
      }),
      loads: new Counter({
        name: 'levee_cache_origin_loads_total',
        help: 'Loads from the origin (one per expiry per key across all replicas, by design).',
        labelNames: ['cache'],
        registers: [registry],
      }),
    };
    counters.set(registry, m);
  }
  return m;
}

/**
 * A read-through cache that survives floods:
 * - breakdown: an in-process single flight per key plus a Redis lock (SET NX PX, token-checked
 *   release) so that one caller per key across all replicas loads from the origin; the others
 *   get the stale copy or wait (bounded) for the result to appear in Redis;
 * - stale-if-error: a copy is kept `staleMs` past freshness and served when the origin fails;
 * - penetration: NOT_FOUND results are cached (negatively) like values;
 * - avalanche: every TTL is jittered.
 * A short in-process copy in front of Redis makes hits cost no round trip. If Redis is
 * unreachable, the cache degrades to in-process single flight (one load per replica).
 */
export class FloodCache {
  private readonly local = new Map<string, LocalCopy>();
  private readonly flights = new Map<string, Flight>();
  private readonly metrics?: ReturnType<typeof cacheMetrics>;
  private readonly pending?: Record<CacheSource, PendingCount>;
  private readonly negativeTtlMs: number;
  private readonly staleMs: number;
  private readonly jitter: number;
  private readonly pollMs: number;
  private readonly localMs: number;
  private readonly maxLocalKeys: number;
  private readonly staleWaitMs: number;
  private closed = false;

  constructor(private readonly options: FloodCacheOptions) {
    this.negativeTtlMs = options.negativeTtlMs ?? Math.min(options.ttlMs, 5000);
    this.staleMs = options.staleMs ?? 24 * 3600 * 1000;
    this.jitter = options.jitter ?? 0.1;
    this.pollMs = options.pollMs ?? 20;
    this.localMs = options.localMs ?? Math.min(1000, options.ttlMs);
    this.maxLocalKeys = options.maxLocalKeys ?? 1000;
    this.staleWaitMs = options.staleWaitMs ?? 250;
    if (options.registry) {
      this.metrics = cacheMetrics(options.registry);
      const pending = this.metrics.pending;
      const slot = (result: CacheSource) => {
        const p: PendingCount = { labels: { cache: options.name, result }, n: 0 };
        pending.push(p);
        return p;
      };
      this.pending = { hit: slot('hit'), miss: slot('miss'), stale: slot('stale'), coalesced: slot('coalesced') };
    }
    defineReleaseCommand(options.redis);
  }

  /** Returns the value of `key`, loading it with `loader` when needed (see class doc). */
  get(key: string, loader: () => Promise<Loaded>): Promise<CacheResult> | CacheResult {
    const now = Date.now();
    const copy = this.local.get(key);
    if (copy && now < copy.localUntil) return this.count({ entry: copy.entry, source: copy.stale ? 'stale' : 'hit' });

    const flight = this.flights.get(key);
    if (flight) {
      // While another caller in this process loads, a stale copy is the fastest honest answer.
      if (flight.loading && copy && now < copy.entry.staleUntil) return this.count({ entry: copy.entry, source: 'stale' });
      return flight.promise.then((r) => this.count({ entry: r.entry, source: r.source === 'miss' ? 'coalesced' : r.source }));
    }
    const f: Flight = { loading: false, promise: undefined as unknown as Promise<CacheResult> };
    f.promise = this.resolve(key, loader, f).finally(() => this.flights.delete(key));
    this.flights.set(key, f);
    return f.promise.then((r) => this.count(r));
  }

  /** Drops the in-process copies (tests; an operator-triggered purge). */
  clearLocal(): void {
    this.local.clear();
  }

  close(): void {
    this.closed = true;
  }

  private count(result: CacheResult): CacheResult {
    if (this.pending) this.pending[result.source].n++;
    return result;
  }

  private valueKey(key: string): string {
    return `${this.options.keyPrefix}:v:${key}`;
  }

  private lockKey(key: string): string {
    return `${this.options.keyPrefix}:lock:${key}`;
  }

  private async resolve(key: string, loader: () => Promise<Loaded>, flight: Flight): Promise<CacheResult> {
    const { redis } = this.options;
    let stored: CacheEntry | undefined;
    let redisUp = true;
    try {
      stored = parseEntry(await redis.get(this.valueKey(key)));
    } catch {
      redisUp = false;
    }
    const now = Date.now();
    if (stored) {
      this.remember(key, stored, now);
      if (now < stored.freshUntil) return { entry: stored, source: 'hit' };
    }
    const local = this.local.get(key)?.entry;
    const stale = stored ?? (local && now < local.staleUntil ? local : undefined);
    flight.loading = true;

    if (!redisUp) {
      // Redis down: this replica's own copy is the cache until it expires (one load per TTL).
      if (local && now < local.freshUntil) {
        this.remember(key, local, now);
        return { entry: local, source: 'hit' };
      }
      return this.load(key, loader, stale, undefined);
    }

    const token = randomUUID();
    if (await this.tryLock(key, token)) return this.loadLocked(key, loader, stale, token);
    if (stale) {
      // Another replica is refreshing it: serve the stale copy from memory for the local window
      // rather than read Redis and try the lock again on every request meanwhile.
      this.remember(key, stale, Date.now(), true);
      return { entry: stale, source: 'stale' };
    }

    // Another replica is loading and there is no copy: wait for its result, bounded. If its
    // lock vanishes without a value (it failed or died), take the lock and load ourselves.
    const deadline = Date.now() + this.options.lockMs;
    while (Date.now() < deadline && !this.closed) {
      await sleep(this.pollMs);
      let entry: CacheEntry | undefined;
      try {
        entry = parseEntry(await redis.get(this.valueKey(key)));
      } catch {
        return this.load(key, loader, undefined, undefined);
      }
      if (entry) {
        this.remember(key, entry, Date.now());
        return { entry, source: 'coalesced' };
      }
      if (await this.tryLock(key, token)) return this.loadLocked(key, loader, undefined, token);
    }
    throw new CacheWaitTimeoutError(key, this.options.lockMs);
  }

  /**
   * Holding the lock, checks once more before loading: another replica may have stored a
   * fresh value and released the lock between our read and our lock (double-checked locking).
   */
  private async loadLocked(key: string, loader: () => Promise<Loaded>, stale: CacheEntry | undefined, token: string): Promise<CacheResult> {
    let current: CacheEntry | undefined;
    try {
      current = parseEntry(await this.options.redis.get(this.valueKey(key)));
    } catch {
      current = undefined; // Redis just failed: load (the lock expires by itself)
    }
    const now = Date.now();
    if (current && now < current.freshUntil) {
      await this.release(key, token);
      this.remember(key, current, now);
      return { entry: current, source: 'coalesced' };
    }
    return this.load(key, loader, stale, token);
  }

  /**
   * Loads from the origin (see loadAndStore). With a stale copy, the caller waits at most
   * `staleWaitMs`: then it gets that copy, served from memory for the local window, while the
   * load goes on and stores its result (or fails) in the background.
   */
  private async load(key: string, loader: () => Promise<Loaded>, stale: CacheEntry | undefined, token: string | undefined): Promise<CacheResult> {
    const loading = this.loadAndStore(key, loader, stale, token);
    if (!stale) return loading;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.staleWaitMs)));
    const first = await Promise.race([loading, late]);
    clearTimeout(timer);
    if (first) return first;
    this.remember(key, stale, Date.now(), true);
    return { entry: stale, source: 'stale' };
  }

  /** Loads from the origin (holding the lock when `token` is set) and stores the result; with a stale copy it never rejects. */
  private async loadAndStore(key: string, loader: () => Promise<Loaded>, stale: CacheEntry | undefined, token: string | undefined): Promise<CacheResult> {
    try {
      let value: Loaded;
      try {
        value = await loader();
        this.metrics?.loads.inc({ cache: this.options.name });
      } catch (err) {
        if (!this.options.notAttempted?.(err)) {
          this.metrics?.loads.inc({ cache: this.options.name });
          try {
            this.options.onLoadError?.(err, key);
          } catch {
            // a failing reporter must not cost the caller its stale copy
          }
        }
        if (stale) {
          // Serve this stale copy from memory for the short local window before trying again:
          // otherwise, while the origin fails or the breaker is open, every request would start
          // a new flight (Redis read, lock, release) only to fail again.
          this.remember(key, stale, Date.now(), true);
          return { entry: stale, source: 'stale' };
        }
        throw err;
      }
      const now = Date.now();
      const entry: CacheEntry =
        value === NOT_FOUND
          ? { body: null, freshUntil: now + this.jittered(this.negativeTtlMs), staleUntil: 0 }
          : { body: JSON.stringify(value), freshUntil: now + this.jittered(this.options.ttlMs), staleUntil: 0 };
      const full: CacheEntry = { ...entry, staleUntil: entry.body === null ? entry.freshUntil : entry.freshUntil + this.staleMs };
      this.remember(key, full, now);
      await this.options.redis
        .set(this.valueKey(key), JSON.stringify(full), 'PX', Math.max(1, full.staleUntil - now))
        .catch(() => undefined); // Redis down: the in-process copy still serves this replica
      return { entry: full, source: 'miss' };
    } finally {
      if (token) await this.release(key, token);
    }
  }

  private async tryLock(key: string, token: string): Promise<boolean> {
    try {
      return (await this.options.redis.set(this.lockKey(key), token, 'PX', this.options.lockMs, 'NX')) === 'OK';
    } catch {
      return false;
    }
  }

  private async release(key: string, token: string): Promise<void> {
    try {
      // token-checked: a slow loader whose lock expired must not release another replica's lock
      await releaseIfHeld(this.options.redis, this.lockKey(key), token);
    } catch {
      // the lock expires by itself (PX)
    }
  }

  /** Keeps an in-process copy: a fresh one until it is no longer fresh, a stale one until it is no longer servable. */
  private remember(key: string, entry: CacheEntry, now: number, stale = false): void {
    if (!this.local.has(key) && this.local.size >= this.maxLocalKeys) {
      const oldest = this.local.keys().next().value;
      if (oldest !== undefined) this.local.delete(oldest);
    }
    const localUntil = Math.min(now + this.localMs, stale ? entry.staleUntil : entry.freshUntil);
    this.local.set(key, stale ? { entry, localUntil, stale: true } : { entry, localUntil });
  }

  private jittered(ms: number): number {
    return Math.max(1, Math.round(ms * (1 + (Math.random() * 2 - 1) * this.jitter)));
  }
}

function parseEntry(raw: string | null): CacheEntry | undefined {
  if (!raw) return undefined;
  try {
    const e = JSON.parse(raw) as CacheEntry;
    return typeof e.freshUntil === 'number' && typeof e.staleUntil === 'number' ? e : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
