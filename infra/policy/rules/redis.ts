/**
 * Policy rules on the Redis pods: the password only from a Secret and never a process argument,
 * maxmemory and eviction matching persistence, and a Sentinel group that can decide a failover.
 */
import { parseMemoryBytes } from '../../config/quantity';
import { Json, Rule, podTemplates, sameNamespace, v } from '../manifests';
import type { Violation } from '../types';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function redisBytes(text: string | undefined): number | undefined {
  const m = /^(\d+)(b|kb|mb|gb)?$/i.exec(text ?? '');
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase();
  return Number(m[1]) * ({ b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as Record<string, number>)[unit]!;
}

const ENV_NAME = '[A-Za-z_][A-Za-z0-9_]*';
const fromSecret = (c: Json, name: string | undefined) => !!(c.env ?? []).find((e: Json) => e.name === name)?.valueFrom?.secretKeyRef;

/** The `sh -c` script of a container, or '' when its command is not one. */
function shellScript(c: Json): string {
  const command: string[] = (c.command ?? []).map(String);
  return ['sh', '/bin/sh'].includes(command[0] ?? '') && command[1] === '-c' ? command[2] ?? '' : '';
}

/** A Redis Sentinel: redis-server started with --sentinel. */
function isSentinel(c: Json): boolean {
  const argv: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
  return argv.includes('--sentinel') || /(^|\s)--sentinel(\s|$)/.test(shellScript(c));
}

/** Config lines that carry a password: their value must be `$VAR` with VAR from a Secret. */
const PASSWORD_LINE = /^\s*(requirepass|masterauth|sentinel\s+auth-pass\s+\S+|sentinel\s+sentinel-pass)\s+(.*?)\s*$/gm;

/**
 * The Redis password must never be a process argument (`ps`, /proc/<pid>/cmdline are
 * world-readable): no `--requirepass` (not even `$(VAR)`, which Kubernetes expands into
 * argv), and instead `sh -c` feeding `requirepass $VAR` (and `masterauth`, and a Sentinel's
 * `sentinel auth-pass` / `sentinel sentinel-pass`) to `redis-server` on stdin (`-`), with VAR
 * from a secretKeyRef. redis-cli in the probes authenticates through REDISCLI_AUTH (from a
 * secretKeyRef), never `-a`/`--pass`.
 */
function redisPassword(c: Json, args: string[], replicated: boolean): string[] {
  const out: string[] = [];
  if (args.some((a) => /(^|\s)--(requirepass|masterauth)(\s|$)/.test(a))) {
    out.push('the password is a process argument (--requirepass/--masterauth); feed "requirepass $VAR" to "redis-server -" on stdin instead');
  }
  const script = shellScript(c);
  const lines = [...script.matchAll(PASSWORD_LINE)].map((m) => ({
    directive: m[1]!.startsWith('sentinel auth-pass') ? 'sentinel auth-pass' : m[1]!.replace(/\s+/g, ' '),
    value: m[2]!,
  }));
  const feedsStdin = /\bexec redis-server (- |[^\n]*\s- *<<)/.test(script);
  if (!feedsStdin || !lines.some((l) => l.directive === 'requirepass')) {
    out.push('no password on stdin: expected command sh -c with "exec redis-server … -" fed a "requirepass $VAR" line');
  }
  for (const { directive, value } of lines) {
    const envName = new RegExp(`^"?\\$(?:\\{(${ENV_NAME})\\}|(${ENV_NAME}))"?$`).exec(value);
    const name = envName?.[1] ?? envName?.[2];
    // The value itself is never echoed: it may be a literal password.
    if (!name || !fromSecret(c, name)) out.push(`the ${directive} value must be $VAR with VAR from a secretKeyRef (never a literal password)`);
  }
  const has = (d: string) => lines.some((l) => l.directive === d);
  if (isSentinel(c) && !has('sentinel auth-pass')) out.push('a Sentinel without "sentinel auth-pass <master> $VAR" on stdin cannot reach password-protected data pods');
  if (!isSentinel(c) && replicated && !has('masterauth')) out.push('a replicated Redis without "masterauth $VAR" on stdin: its replicas cannot authenticate to the primary');
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
    const cmd: string = (probe?.exec?.command ?? []).map(String).join(' ');
    if (!cmd.includes('redis-cli')) continue;
    if (/(^|\s)(-a|--pass|--askpass)(\s|$)/.test(cmd)) out.push('a probe passes the password to redis-cli as an argument; use REDISCLI_AUTH');
    else if (!fromSecret(c, 'REDISCLI_AUTH')) out.push('a probe runs redis-cli without REDISCLI_AUTH from a secretKeyRef');
  }
  return out;
}

const redis: Rule = {
  id: 'redis',
  description: 'Redis has a password from a Secret that never appears in process arguments (stdin config, REDISCLI_AUTH; masterauth for replicas, auth-pass for Sentinels), maxmemory below its limit, and eviction matching persistence (noeviction ⇒ AOF on; evicting cache ⇒ no persistence)',
  check: (manifests) => {
    const out: Violation[] = [];
    for (const { owner, spec } of podTemplates(manifests)) {
      for (const c of spec.containers ?? []) {
        const args: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
        if (!args.some((a) => a.includes('redis-server'))) continue;
        const where = `container "${c.name}"`;
        out.push(...redisPassword(c, args, (owner.spec?.replicas ?? 1) > 1).map((reason) => v('redis', owner, `${where}: ${reason}`)));
        if (isSentinel(c)) continue; // a Sentinel keeps no data: no memory or persistence flags
        const max = redisBytes(flag(args, '--maxmemory'));
        const limit = parseMemoryBytes(String(c.resources?.limits?.memory ?? ''));
        if (max === undefined || max === 0) out.push(v('redis', owner, `${where}: no --maxmemory`));
        else if (limit === undefined || max >= limit) out.push(v('redis', owner, `${where}: --maxmemory must be below the memory limit (${c.resources?.limits?.memory ?? 'none'})`));
        const policy = flag(args, '--maxmemory-policy');
        const aof = flag(args, '--appendonly');
        if (!policy) out.push(v('redis', owner, `${where}: no --maxmemory-policy`));
        else if (policy === 'noeviction' && aof !== 'yes') out.push(v('redis', owner, `${where}: noeviction (data that must not be lost) requires --appendonly yes`));
        else if (policy !== 'noeviction' && (aof === 'yes' || flag(args, '--save') !== '')) {
          out.push(v('redis', owner, `${where}: an evicting cache (${policy}) must not persist (--appendonly no, --save "")`));
        }
      }
    }
    return out;
  },
};

const plainEnvValue = (c: Json, name: string): string | undefined => (c.env ?? []).find((e: Json) => e.name === name && e.value !== undefined)?.value;

/**
 * The Sentinel shape: Sentinels in an odd number of at least 3 with a majority quorum (so a
 * failover is decided by a majority that survives losing one), each with a writable emptyDir
 * for the config file it rewrites; data pods with replicas know a replica from a primary in
 * their readiness probe (a rollout must wait for a replica to be in sync), and a Sentinel
 * group watches them (nothing else would promote a replica).
 */
const redisSentinel: Rule = {
  id: 'redis-sentinel',
  description: 'Sentinels: an odd number ≥ 3, quorum a majority, a writable emptyDir for their config; replicated Redis data pods: readiness tells a replica from a primary, and Sentinels watch them',
  check: (manifests) => {
    const out: Violation[] = [];
    const templates = podTemplates(manifests);
    const sentinelOwners = templates.filter((t) => (t.spec.containers ?? []).some(isSentinel));
    for (const { owner, spec } of sentinelOwners) {
      const n = owner.spec?.replicas ?? 1;
      if (n < 3 || n % 2 === 0) out.push(v('redis-sentinel', owner, `runs ${n} Sentinel(s); allowed: an odd number, at least 3 (a majority must survive losing one)`));
      for (const c of (spec.containers ?? []).filter(isSentinel)) {
        const quorum = Number(plainEnvValue(c, 'QUORUM'));
        if (!Number.isInteger(quorum) || quorum <= n / 2 || quorum > n) out.push(v('redis-sentinel', owner, `container "${c.name}": QUORUM ${plainEnvValue(c, 'QUORUM') ?? '(unset)'} is not a majority of ${n} Sentinels`));
        const dir = plainEnvValue(c, 'SENTINEL_DIR');
        const mount = (c.volumeMounts ?? []).find((m: Json) => m.mountPath === dir);
        const volume = (spec.volumes ?? []).find((vol: Json) => vol.name === mount?.name);
        if (!dir || !mount || !volume?.emptyDir || mount.readOnly) out.push(v('redis-sentinel', owner, `container "${c.name}": SENTINEL_DIR must be a writable emptyDir mount (Sentinel rewrites its config; the root filesystem is read-only)`));
      }
    }
    for (const { owner, spec } of templates) {
      if ((owner.spec?.replicas ?? 1) < 2) continue;
      for (const c of spec.containers ?? []) {
        const argv: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
        if (!argv.some((a) => a.includes('redis-server')) || isSentinel(c)) continue;
        const ready = (c.readinessProbe?.exec?.command ?? []).map(String).join(' ');
        if (!/master_link_status/.test(ready)) out.push(v('redis-sentinel', owner, `container "${c.name}": a replicated Redis's readiness probe must tell a replica from a primary (INFO replication: role, master_link_status)`));
        if (!sentinelOwners.some((t) => sameNamespace(t.owner, owner))) out.push(v('redis-sentinel', owner, 'a replicated Redis with no Sentinels in its namespace: nothing would promote a replica'));
      }
    }
    return out;
  },
};

export const REDIS_RULES: readonly Rule[] = [redis, redisSentinel];
