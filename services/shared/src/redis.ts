import Redis, { RedisOptions } from 'ioredis';

/**
 * One Redis client per role (BullMQ "going to production"):
 * - `request`: used on the request path (gateway producer, cache, rate limiter, media).
 *   Fails fast with no offline queue so an outage becomes a 503, never a hang.
 * - `worker`: BullMQ workers; `maxRetriesPerRequest: null` so blocking commands wait
 *   out a Redis restart and processing resumes by itself.
 */
export type RedisRole = 'request' | 'worker';

export interface RedisTarget {
  /** redis:// URL; a password in the URL is used unless `password` is given. */
  readonly url: string;
  /** Overrides the URL's password (Kubernetes injects it from a Secret). */
  readonly password?: string;
}

/**
 * A connection that has had commands waiting this long with not one byte back is dead (a
 * Redis whose node was lost sends no FIN or RST, and TCP alone would take ~15 minutes to
 * notice): ioredis destroys it and reconnects, and until then the client is not `ready`, so
 * the request paths fail fast (503, the in-memory limiter) instead of waiting out
 * `commandTimeout` on every request while the unsent commands pile up.
 */
export const REQUEST_SOCKET_TIMEOUT_MS = 5000;
/** For workers: above BullMQ's longest blocking wait (10 s), which legitimately sends nothing back. */
export const WORKER_SOCKET_TIMEOUT_MS = 30_000;

export function redisOptions(role: RedisRole, target: RedisTarget): RedisOptions {
  const base: RedisOptions = {
    ...(target.password ? { password: target.password } : {}),
    // Reconnect quickly, forever, with a small cap: a restarted Redis is picked up within 1 s.
    retryStrategy: (times) => Math.min(50 * times, 1000),
  };
  if (role === 'worker') {
    return { ...base, maxRetriesPerRequest: null, enableReadyCheck: true, socketTimeout: WORKER_SOCKET_TIMEOUT_MS };
  }
  return {
    ...base,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    socketTimeout: REQUEST_SOCKET_TIMEOUT_MS,
    enableAutoPipelining: true,
  };
}

export function createRedis(role: RedisRole, target: RedisTarget, extra: RedisOptions = {}): Redis {
  const client = new Redis(target.url, { ...redisOptions(role, target), ...extra });
  // An 'error' listener is required: without it ioredis errors crash the process.
  client.on('error', () => undefined);
  return client;
}

// Deletes a key only if it still holds the caller's token: a holder whose claim expired must
// not delete the claim that another holder has taken since.
const RELEASE_LUA = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

type WithRelease = Redis & { leveeRelease?(key: string, token: string): Promise<number> };

/**
 * Defines the release script on a client. Call it where the client is set up, never on the
 * request path: an auto-pipelined client copies its commands into each tick's pipeline, and a
 * command defined while a pipeline is open is missing from it (ioredis then crashes).
 */
export function defineReleaseCommand(redis: Redis): void {
  if (!(redis as WithRelease).leveeRelease) redis.defineCommand('leveeRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
}

/** `DEL key` if, and only if, its value is still `token` (one atomic script). Resolves to 1 if deleted. */
export function releaseIfHeld(redis: Redis, key: string, token: string): Promise<number> {
  const release = (redis as WithRelease).leveeRelease;
  if (!release) return Promise.reject(new Error('releaseIfHeld: call defineReleaseCommand(redis) when the client is set up'));
  return release.call(redis, key, token);
}
