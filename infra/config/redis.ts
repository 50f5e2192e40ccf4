/**
 * The queue and cache Redis: each mode's own settings only with that mode, what each mode needs
 * (Sentinel data pods, acknowledged replicas, an external Redis's URL and CIDRs), and the
 * resolved `queueRedis` / `cacheRedis`.
 */
import type { Memory, SettingName, SettingValues } from './settings';
import { settingLabel } from './settings';
import { show } from './problems';
import { ExternalRedis, LeveeConfig, SENTINEL_DEFAULTS } from './types';

/** The Redis modes: each mode's own settings only with that mode, and what each mode needs. */
export function redisProblems(
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  const problems: string[] = [];
  const queueMode = v.queueRedis;
  const queueModeIs = `${show('queueRedis', raw.queueRedis)}`;
  if (queueMode === 'sentinel' && v.queueRedisReplicas < 2) {
    problems.push(`${show('queueRedisReplicas', raw.queueRedisReplicas)} is too few for ${queueModeIs}; allowed: at least 2 data pods (a primary and a replica to promote); 3 by default`);
  }
  if (queueMode !== 'sentinel' && given('queueRedisReplicas')) {
    problems.push(`${show('queueRedisReplicas', raw.queueRedisReplicas)} contradicts ${queueModeIs}; allowed: data pods only with queueRedis = "sentinel" (statefulset runs one, external none)`);
  }
  if (given('queueMinReplicasAcked')) {
    const replicasAvailable = queueMode === 'sentinel' ? v.queueRedisReplicas - 1 : queueMode === 'statefulset' ? 0 : Infinity;
    if (v.queueMinReplicasAcked > replicasAvailable) {
      problems.push(
        `${show('queueMinReplicasAcked', raw.queueMinReplicasAcked)} can never be confirmed with ${queueModeIs}${queueMode === 'sentinel' ? ` and ${show('queueRedisReplicas', raw.queueRedisReplicas)}` : ''}; allowed: at most ${replicasAvailable} (the replicas there are)`,
      );
    }
  }
  for (const role of ['queue', 'cache'] as const) {
    const mode = role === 'queue' ? 'queueRedis' : 'cacheRedis';
    const external = v[mode] === 'external';
    const url = `${role}RedisUrl` as const;
    const cidrs = `${role}RedisCidrs` as const;
    const onlyExternal = [url, `${role}RedisUsername`, `${role}RedisCaSecret`, cidrs] as const;
    if (external) {
      if (raw[url] === '') problems.push(`${settingLabel(url)} is required when ${show(mode, raw[mode])}; allowed: the managed Redis's redis:// or rediss:// URL (e.g. rediss://my-redis.example.com:6380)`);
      if (raw[cidrs] === '') problems.push(`${settingLabel(cidrs)} is required when ${show(mode, raw[mode])}; allowed: the CIDRs the managed Redis is reached at (the egress NetworkPolicy allows only those), e.g. 10.20.0.0/16`);
      if (given(`${role}RedisCaSecret`) && raw[`${role}RedisCaSecret`] !== '' && !String(raw[url]).startsWith('rediss://')) {
        problems.push(`${show(`${role}RedisCaSecret`, raw[`${role}RedisCaSecret`])} contradicts ${show(url, raw[url])}; allowed: a CA Secret only with a rediss:// (TLS) URL`);
      }
      const inCluster = role === 'queue' ? (['queueRedisMemory', 'queueRedisPersistence', 'queueRedisStorageSize', 'storageClass'] as const) : (['cacheRedisMemory'] as const);
      for (const name of inCluster) {
        if (given(name)) problems.push(`${show(name, raw[name])} contradicts ${show(mode, raw[mode])}; allowed: ${name} only with a Redis in the cluster`);
      }
    } else {
      for (const name of onlyExternal) {
        if (given(name) && raw[name] !== '') problems.push(`${show(name, raw[name])} contradicts ${show(mode, raw[mode])}; allowed: ${name} only with ${mode} = "external"`);
      }
    }
  }
  return problems;
}

/** `maxmemory` in MiB: 75% of the memory limit, leaving room for fork/AOF rewrite buffers. */
const maxmemoryMb = (m: Memory) => Math.floor((m.bytes * 0.75) / 1024 ** 2);

/** A managed Redis outside the cluster, from its URL, user, CA Secret and CIDRs. */
function external(v: SettingValues, role: 'queue' | 'cache'): ExternalRedis {
  const url = new URL(v[`${role}RedisUrl`]);
  const tls = url.protocol === 'rediss:';
  const username = v[`${role}RedisUsername`];
  const caSecret = v[`${role}RedisCaSecret`];
  return {
    url: v[`${role}RedisUrl`],
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 6379,
    tls,
    ...(username !== '' ? { username } : {}),
    ...(caSecret !== '' ? { caSecret } : {}),
    cidrs: v[`${role}RedisCidrs`].split(','),
  };
}

/** The resolved queue Redis. */
export function queueRedisConfig(v: SettingValues): LeveeConfig['queueRedis'] {
  return {
    mode: v.queueRedis,
    replicas: v.queueRedis === 'sentinel' ? v.queueRedisReplicas : v.queueRedis === 'statefulset' ? 1 : 0,
    minReplicasAcked: v.queueMinReplicasAcked ?? (v.queueRedis === 'sentinel' ? 1 : 0),
    ...(v.queueRedis === 'sentinel' ? { sentinel: SENTINEL_DEFAULTS } : {}),
    ...(v.queueRedis === 'external' ? { external: external(v, 'queue') } : {}),
    passwordSecret: v.queueRedisPasswordSecret,
    memory: v.queueRedisMemory,
    maxmemoryMb: maxmemoryMb(v.queueRedisMemory),
    persistence: v.queueRedisPersistence,
    storageSize: v.queueRedisStorageSize,
    ...(v.storageClass !== '' ? { storageClass: v.storageClass } : {}),
  };
}

/** The resolved cache Redis. */
export function cacheRedisConfig(v: SettingValues): LeveeConfig['cacheRedis'] {
  return {
    mode: v.cacheRedis,
    ...(v.cacheRedis === 'external' ? { external: external(v, 'cache') } : {}),
    passwordSecret: v.cacheRedisPasswordSecret,
    memory: v.cacheRedisMemory,
    maxmemoryMb: maxmemoryMb(v.cacheRedisMemory),
  };
}
