/**
 * What a service checks about its Redis connections at start-up:
 * - a connection error that no retry can fix (a wrong password or ACL user, a certificate
 *   that is not trusted, TLS to a server that does not speak it) stops the process with one
 *   line naming the setting to fix, instead of a pod that retries for ever while looking alive;
 * - a queue Redis set to evict keys (a managed Redis's default is often `volatile-lru`) is
 *   reported loudly: BullMQ needs `noeviction`, or Redis may delete accepted jobs.
 * An unreachable Redis is not a configuration error: the services start and keep retrying.
 */
import type { EventEmitter } from 'node:events';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { RedisTarget, describeTarget } from './redis';

/** Node's codes for a server certificate that does not verify. */
const UNTRUSTED_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
]);
/** The same failures as OpenSSL words them (Sentinel mode wraps the error and keeps only its message). */
const UNTRUSTED_TEXT = /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate has expired|certificate is not yet valid|certificate signature failure/i;

/** One line naming the setting to fix, or undefined when `err` may go away by itself (Redis down, restarting). */
export function fatalRedisError(err: Error & { code?: string }, target: RedisTarget, what: string): string | undefined {
  const p = target.settingsPrefix ?? 'REDIS';
  const where = describeTarget(target);
  const message = err.message.split('\n')[0]!.trim();
  const user = target.username ?? (new URL(target.url).username || undefined);
  if (/WRONGPASS|invalid password|invalid username-password/i.test(message)) {
    const who = user ? `ACL user "${user}" (${p}_REDIS_USERNAME) with ${p}_REDIS_PASSWORD` : `${p}_REDIS_PASSWORD`;
    return `the ${what} (${where}) refused ${who}: ${message}`;
  }
  if (/NOAUTH/.test(message)) {
    return `the ${what} (${where}) requires a password and ${p}_REDIS_PASSWORD is ${target.password ? 'not accepted' : 'not set'}: ${message}`;
  }
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /Hostname\/IP does not match certificate/i.test(message)) {
    return `the ${what} (${where}) presented a certificate for another host (check the host in ${p}_REDIS_URL): ${message}`;
  }
  if ((err.code && UNTRUSTED_CODES.has(err.code)) || UNTRUSTED_TEXT.test(message)) {
    return target.ca !== undefined
      ? `the ${what} (${where}) presented a certificate that the CA in ${p}_REDIS_CA_FILE did not sign: ${message}`
      : `the ${what} (${where}) presented a certificate that no trusted CA signed; set ${p}_REDIS_CA_FILE to the CA that signed it: ${message}`;
  }
  if (err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message)) {
    return `${p}_REDIS_URL is rediss:// but the ${what} (${where}) does not speak TLS: ${message}`;
  }
  return undefined;
}

export interface GuardedConnection {
  readonly client: Redis;
  readonly target: RedisTarget;
  /** How messages call it: "queue Redis", "cache Redis". */
  readonly what: string;
  /** Report an evicting maxmemory-policy (the queue Redis: BullMQ requires noeviction). */
  readonly requireNoEviction?: boolean;
  /** Emitters sharing this connection's settings whose errors count too (e.g. a BullMQ Worker and its blocking connection). */
  readonly alsoFrom?: readonly EventEmitter[];
}

export interface StartupGuardOptions {
  /** For the line printed: `levee-<service>: …`. */
  readonly service: string;
  readonly connections: readonly GuardedConnection[];
  readonly logger: Pick<Logger, 'error' | 'warn'>;
  /** Prints the line and ends the process (exit code 78, EX_CONFIG, as for a bad setting). */
  readonly exit?: (line: string) => void;
}

function exitWith(line: string): void {
  process.stderr.write(`${line}\n`);
  process.exit(78);
}

/**
 * Watches each connection until its first `ready`: a configuration error ends the process
 * (see {@link fatalRedisError}). Its listener runs before any other, so that line is all that
 * is printed. After the first `ready`, errors are the services' business as usual.
 */
export function guardRedisStartup(options: StartupGuardOptions): void {
  const exit = options.exit ?? exitWith;
  let exited = false;
  for (const c of options.connections) {
    let ready = false;
    const onError = (err: Error) => {
      if (ready || exited) return;
      const line = fatalRedisError(err, c.target, c.what);
      if (!line) return;
      exited = true;
      exit(`levee-${options.service}: ${line}`);
    };
    c.client.prependListener('error', onError);
    for (const e of c.alsoFrom ?? []) e.prependListener('error', onError);
    c.client.once('ready', () => {
      ready = true;
      if (c.requireNoEviction) void checkEvictionPolicy(c, options.logger);
    });
  }
}

/** Reads `maxmemory_policy` (INFO memory) and says so, loudly, when it is not `noeviction`. */
export async function checkEvictionPolicy(c: Pick<GuardedConnection, 'client' | 'target' | 'what'>, logger: Pick<Logger, 'error' | 'warn'>): Promise<string | undefined> {
  let policy: string | undefined;
  try {
    policy = /^maxmemory_policy:(\S+)/m.exec(await c.client.info('memory'))?.[1];
  } catch (err) {
    logger.warn({ err: (err as Error).message }, `could not read the maxmemory-policy of the ${c.what} (INFO memory); BullMQ requires noeviction`);
    return undefined;
  }
  if (policy && policy !== 'noeviction') {
    logger.error(
      { maxmemoryPolicy: policy, redis: describeTarget(c.target) },
      `the ${c.what} has maxmemory-policy ${policy}: BullMQ requires noeviction, and when memory runs out Redis may delete accepted jobs and stored images; set maxmemory-policy noeviction on it (for a managed Redis, in its parameter group or configuration)`,
    );
  }
  return policy;
}
