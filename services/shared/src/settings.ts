import { z } from 'zod';
import { DEFAULT_DRAIN_TIMEOUT_SECONDS, DEFAULT_REQUEST_TIMEOUT_MS } from './http-server';
import { type Env, parseSettings, SettingsError } from './settings-parse';

export { parseSettings, SettingsError, type Env } from './settings-parse';

/** Like parseSettings, but prints the problem and exits: for process entry points only. */
export function loadSettingsOrExit<S extends z.ZodObject>(schema: S, service: string, env: Env = process.env): z.infer<S> {
  try {
    return parseSettings(schema, env);
  } catch (err) {
    if (err instanceof SettingsError) {
      process.stderr.write(`levee-${service}: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

/** An integer variable in [min, max] with a default. */
export function intSetting(min: number, max: number, fallback: number) {
  return boundedInt(min, max).default(fallback);
}

/** REQUEST_TIMEOUT_MS of the HTTP services: the whole request must arrive within it (see slowClientOptions). */
export const requestTimeoutSetting = intSetting(1000, 600_000, DEFAULT_REQUEST_TIMEOUT_MS);

/**
 * DRAIN_TIMEOUT_SECONDS of the HTTP services: after close, in-flight requests get this long;
 * connections still open then are cut. The chart sets it from LEVEE_DRAIN_SECONDS, which also
 * sizes the pods' termination grace period.
 */
export const drainTimeoutSetting = intSetting(1, 600, DEFAULT_DRAIN_TIMEOUT_SECONDS);

/** METRICS_PORT of a service: its metrics listener, apart from the public PORT (0: a free port the OS picks, for tests). */
export function metricsPortSetting(fallback: number) {
  return intSetting(0, 65535, fallback);
}

/** METRICS_HOST: the address the metrics listener binds. */
export const metricsHostSetting = z.string().min(1).default('0.0.0.0');

/** `true` or `false`, with a default. */
export function booleanSetting(fallback: boolean) {
  return z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((v) => v === 'true')
    .default(fallback);
}

/** An integer setting whose default is derived from other settings (undefined when unset). */
export function optionalIntSetting(min: number, max: number) {
  return boundedInt(min, max).optional();
}

function boundedInt(min: number, max: number) {
  const error = `must be an integer from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

const redisUrl = () =>
  z.string().refine((v) => /^rediss?:\/\/[^\s]+$/.test(v) && URL.canParse(v), { error: 'must be a redis:// or rediss:// URL' });

/** A redis:// or rediss:// URL. */
export function redisUrlSetting(fallback: string) {
  return redisUrl().default(fallback);
}

/** A redis:// or rediss:// URL that falls back to another setting when unset (e.g. QUEUE_REDIS_URL → REDIS_URL). */
export function optionalRedisUrlSetting() {
  return redisUrl().optional();
}

/** An http(s) URL. */
export function httpUrlSetting(fallback: string) {
  return z
    .string()
    .refine((v) => /^https?:\/\//.test(v) && URL.canParse(v), { error: 'must be an http:// or https:// URL' })
    .default(fallback);
}

export const logLevelSetting = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'must be one of fatal, error, warn, info, debug, trace, silent',
  })
  .default('info');

/** A BullMQ queue name (it becomes part of Redis keys, so keep it plain). */
export const queueNameSetting = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'must be 1-64 characters of A-Z, a-z, 0-9, _ or -' })
  .default('images');
