/**
 * The Redis connection settings every service reads, once per role (CONTRACT §4):
 * `<ROLE>_REDIS_URL` (`rediss://` turns TLS on), `<ROLE>_REDIS_USERNAME` (ACL user),
 * `<ROLE>_REDIS_PASSWORD`, `<ROLE>_REDIS_CA_FILE`, or Sentinel with `<ROLE>_REDIS_SENTINELS`
 * (comma-separated host:port) and `<ROLE>_REDIS_SENTINEL_NAME`.
 */
import fs from 'node:fs';
import net from 'node:net';
import { z } from 'zod';
import type { RedisTarget, SentinelAddress } from './redis';
import { optionalRedisUrlSetting } from './settings';

export type RedisRoleName = 'QUEUE' | 'CACHE';

/** Sentinel master group names (the chart's Sentinels monitor `levee-queue`). */
export const DEFAULT_SENTINEL_NAMES: Record<RedisRoleName, string> = { QUEUE: 'levee-queue', CACHE: 'levee-cache' };

const SENTINELS_ERROR = 'must be a comma-separated list of host:port (e.g. levee-queue-sentinel-0.levee-queue-sentinel:26379,…)';

/** `host:port,host:port` (IPv6 as `[::1]:26379`) → addresses. */
export function parseSentinels(raw: string): SentinelAddress[] | undefined {
  const out: SentinelAddress[] = [];
  for (const part of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(part);
    if (!m) return undefined;
    const host = m[1] ?? m[2]!;
    const port = Number(m[3]);
    if (port < 1 || port > 65535 || (m[1] !== undefined && net.isIPv6(host) === false)) return undefined;
    out.push({ host, port });
  }
  return out.length > 0 ? out : undefined;
}

function sentinelsSetting() {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const list = parseSentinels(v);
      if (!list) {
        ctx.addIssue({ code: 'custom', message: SENTINELS_ERROR });
        return z.NEVER;
      }
      return list;
    });
}

/** A readable file of PEM certificates. */
function caFileSetting() {
  return z
    .string()
    .optional()
    .superRefine((path, ctx) => {
      if (path === undefined) return;
      let text: string;
      try {
        text = fs.readFileSync(path, 'utf8');
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be a readable file of PEM CA certificates (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` });
        return;
      }
      if (!text.includes('-----BEGIN CERTIFICATE-----')) ctx.addIssue({ code: 'custom', message: 'must be a file of PEM CA certificates (no "-----BEGIN CERTIFICATE-----" in it)' });
    });
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

type Shape<R extends string> = {
  [K in `${R}_REDIS_URL`]: ReturnType<typeof optionalRedisUrlSetting>;
} & {
  [K in `${R}_REDIS_USERNAME` | `${R}_REDIS_PASSWORD`]: z.ZodOptional<z.ZodString>;
} & {
  [K in `${R}_REDIS_CA_FILE`]: ReturnType<typeof caFileSetting>;
} & {
  [K in `${R}_REDIS_SENTINELS`]: ReturnType<typeof sentinelsSetting>;
} & {
  [K in `${R}_REDIS_SENTINEL_NAME`]: z.ZodDefault<z.ZodString>;
};

/** The six `<ROLE>_REDIS_*` variables of one role, for a service's settings schema. */
export function redisConnectionSettings<const R extends RedisRoleName>(role: R): Shape<R> {
  return {
    /** The role's Redis, `redis://` or `rediss://` (TLS); unset: `REDIS_URL`. With Sentinels only its scheme, user, password and database count. */
    [`${role}_REDIS_URL`]: optionalRedisUrlSetting(),
    /** ACL user (overrides the URL's). */
    [`${role}_REDIS_USERNAME`]: z.string().regex(NAME, { error: 'must be an ACL user name (1-128 characters of A-Z, a-z, 0-9, ".", "_" or "-")' }).optional(),
    /** Password (overrides the URL's; Kubernetes injects it from a Secret); with Sentinels also the Sentinels' password. */
    [`${role}_REDIS_PASSWORD`]: z.string().optional(),
    /** PEM file of the CA that signed the server's certificate (`rediss://` only; refused with `redis://`); unset: the system CAs. */
    [`${role}_REDIS_CA_FILE`]: caFileSetting(),
    /** Sentinel mode: comma-separated `host:port` of the Sentinels; the client connects to the primary they name (ioredis's Sentinel support). */
    [`${role}_REDIS_SENTINELS`]: sentinelsSetting(),
    /** Sentinel mode: the master group's name. */
    [`${role}_REDIS_SENTINEL_NAME`]: z
      .string()
      .regex(NAME, { error: 'must be a Sentinel master name (1-128 characters of A-Z, a-z, 0-9, ".", "_" or "-")' })
      .default(DEFAULT_SENTINEL_NAMES[role]),
  } as Shape<R>;
}

/** The parsed settings of one role (plus REDIS_URL, the fallback URL). */
export type RedisConnectionValues = { REDIS_URL: string } & Record<string, unknown>;

/** The effective URL of a role: `<ROLE>_REDIS_URL`, else `REDIS_URL`. */
function urlOf(values: RedisConnectionValues, role: RedisRoleName): string {
  return (values[`${role}_REDIS_URL`] as string | undefined) ?? values.REDIS_URL;
}

/**
 * Cross-setting checks for a service schema's `superRefine`: a CA file only means something
 * with TLS, so `<ROLE>_REDIS_CA_FILE` with a plain `redis://` URL is refused, not ignored.
 */
export function checkRedisConnections(roles: readonly RedisRoleName[]) {
  return (values: RedisConnectionValues, ctx: z.RefinementCtx): void => {
    for (const role of roles) {
      const url = urlOf(values, role);
      if (values[`${role}_REDIS_CA_FILE`] !== undefined && !url.startsWith('rediss://')) {
        const from = values[`${role}_REDIS_URL`] !== undefined ? `${role}_REDIS_URL` : 'REDIS_URL';
        ctx.addIssue({ code: 'custom', path: [`${role}_REDIS_CA_FILE`], message: `is only used for TLS, but ${from} is not a rediss:// URL` });
      }
    }
  };
}

/** The target of one role, after the defaults: the CA file is read here (it was checked when the settings were parsed). */
export function redisTarget(values: RedisConnectionValues, role: RedisRoleName): RedisTarget {
  const get = <T>(name: string) => values[`${role}_REDIS_${name}`] as T | undefined;
  const caFile = get<string>('CA_FILE');
  const sentinels = get<SentinelAddress[]>('SENTINELS');
  return {
    url: urlOf(values, role),
    settingsPrefix: role,
    ...(get<string>('USERNAME') !== undefined ? { username: get<string>('USERNAME') } : {}),
    ...(get<string>('PASSWORD') !== undefined ? { password: get<string>('PASSWORD') } : {}),
    ...(caFile !== undefined ? { ca: fs.readFileSync(caFile, 'utf8') } : {}),
    ...(sentinels ? { sentinels, sentinelName: get<string>('SENTINEL_NAME') ?? DEFAULT_SENTINEL_NAMES[role] } : {}),
  };
}

/** `QUEUE_MIN_REPLICAS_ACKED`: replicas that must confirm each accepted job; default 1 with Sentinel, else 0. */
export function minReplicasAcked(values: RedisConnectionValues): number {
  const explicit = values.QUEUE_MIN_REPLICAS_ACKED as number | undefined;
  return explicit ?? (values.QUEUE_REDIS_SENTINELS ? 1 : 0);
}
