import Redis, { RedisOptions } from 'ioredis';

/**
 * One Redis client per role (BullMQ "going to production"):
 * - `request`: used on the request path (gateway producer, cache, rate limiter, media).
 *   Fails fast with no offline queue so an outage becomes a 503, never a hang.
 * - `worker`: BullMQ workers; `maxRetriesPerRequest: null` so blocking commands wait
 *   out a Redis restart (or a Sentinel failover) and processing resumes by itself.
 */
export type RedisRole = 'request' | 'worker';

/** A Sentinel's address. */
export interface SentinelAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Where a Redis is and how to log in: `<ROLE>_REDIS_*` after defaults (see redis-settings.ts).
 * Standalone: the URL's host and port. Sentinel: the master group `sentinelName` as the
 * Sentinels report it; the URL then gives only the scheme (`rediss://` = TLS), the
 * credentials and the database.
 */
export interface RedisTarget {
  /** redis:// or rediss:// URL; its user and password are used unless `username` / `password` are given. */
  readonly url: string;
  /** ACL user (overrides the URL's). */
  readonly username?: string;
  /** Overrides the URL's password (Kubernetes injects it from a Secret). Also Sentinel's password. */
  readonly password?: string;
  /** PEM CA certificates that must have signed the server's certificate (`rediss://` only). */
  readonly ca?: string;
  /** Sentinel mode: the Sentinels to ask for the master of `sentinelName`. */
  readonly sentinels?: readonly SentinelAddress[];
  readonly sentinelName?: string;
  /** The settings this target came from (`QUEUE`, `CACHE`), so messages can name them. */
  readonly settingsPrefix?: string;
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
/** Longest wait for one Sentinel's answer (which master?): a hung Sentinel must not hang the connect. */
export const SENTINEL_COMMAND_TIMEOUT_MS = 1000;

/** The TLS or plain-TCP part of the options, and where to connect (host/port, or Sentinels). */
export function connectionOptions(target: RedisTarget): RedisOptions {
  const url = new URL(target.url);
  const tls = url.protocol === 'rediss:';
  const username = target.username ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = target.password ?? (url.password ? decodeURIComponent(url.password) : undefined);
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  const tlsOptions = tls ? { ...(target.ca !== undefined ? { ca: target.ca } : {}) } : undefined;
  const common: RedisOptions = {
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(db ? { db } : {}),
    ...(tlsOptions ? { tls: tlsOptions } : {}),
  };
  if (!target.sentinels?.length) {
    return { ...common, host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 6379 };
  }
  return {
    ...common,
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.sentinelName ?? 'mymaster',
    role: 'master',
    // Sentinels are protected by the same password (the chart's Sentinels use the same Secret).
    ...(password ? { sentinelPassword: password } : {}),
    // rediss:// means TLS to the data nodes and to the Sentinels alike.
    ...(tlsOptions ? { enableTLSForSentinelMode: true, sentinelTLS: tlsOptions } : {}),
    sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
    // Not ioredis's failoverDetector: when its +switch-master arrives while the client is
    // reconnecting (asking the Sentinels), it aborts that connect and the client ends for good
    // (status "end", seen under load in test/e2e/sentinel-failover.test.ts). A lost primary
    // drops the connection anyway, and a demoted one answers writes with READONLY, which
    // reconnects (reconnectOnError): every client of ours writes, or only reads, which a
    // replica serves too.
    failoverDetector: false,
  };
}

/**
 * A write refused because the connection landed on a replica (a failover demoted the master
 * this client was connected to): reconnect, which asks the Sentinels for the new master.
 */
export function isReadOnlyError(err: Error): boolean {
  return err.message.includes('READONLY');
}

export function redisOptions(role: RedisRole, target: RedisTarget): RedisOptions {
  const base: RedisOptions = {
    ...connectionOptions(target),
    // Reconnect quickly, forever, with a small cap: a restarted Redis is picked up within 1 s.
    retryStrategy: (times) => Math.min(50 * times, 1000),
  };
  if (role === 'worker') {
    return {
      ...base,
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      socketTimeout: WORKER_SOCKET_TIMEOUT_MS,
      // 2: reconnect and send the refused command again, to the new master (it was not executed).
      reconnectOnError: (err) => (isReadOnlyError(err) ? 2 : false),
    };
  }
  return {
    ...base,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: 2000,
    socketTimeout: REQUEST_SOCKET_TIMEOUT_MS,
    enableAutoPipelining: true,
    // 1: reconnect, and fail this command (a 503 now beats a request waiting for the failover).
    reconnectOnError: (err) => (isReadOnlyError(err) ? 1 : false),
  };
}

export function createRedis(role: RedisRole, target: RedisTarget, extra: RedisOptions = {}): Redis {
  const client = new Redis({ ...redisOptions(role, target), ...extra });
  // An 'error' listener is required: without it ioredis errors crash the process.
  client.on('error', () => undefined);
  return client;
}

/** A second connection with the same options (its own socket), with the required 'error' listener. */
export function duplicateRedis(client: Redis, override: Partial<RedisOptions> = {}): Redis {
  const copy = client.duplicate(override);
  copy.on('error', () => undefined);
  return copy;
}

/** `redis://host:port` or `sentinel levee-queue@host:port,…` — where a target points, without credentials. */
export function describeTarget(target: RedisTarget): string {
  const url = new URL(target.url);
  if (target.sentinels?.length) {
    return `${url.protocol === 'rediss:' ? 'TLS ' : ''}Sentinel master "${target.sentinelName}" via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  }
  return `${url.protocol}//${url.host}`;
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
