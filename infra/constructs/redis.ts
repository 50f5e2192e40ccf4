/** The Redis container shared by the queue and the cache instance; only the flags differ. */
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import type { Memory } from '../config/settings';
import { PORTS, SecretRef } from '../names';
import { TMP_MOUNT, containerSecurityContext, resources, secretEnv } from './pod';

export interface RedisContainerProps {
  readonly config: LeveeConfig;
  readonly secret: SecretRef;
  readonly memory: Memory;
  /** Redis flags besides port and data dir (never the password: see REDIS_START_SCRIPT). */
  readonly flags: readonly string[];
  /** Data volume mount at /data, if any. */
  readonly dataMount?: k8s.VolumeMount;
  /** Ephemeral-storage limit (raised when /data is an emptyDir, which counts against it). */
  readonly ephemeralLimit?: string;
}

/** Redis CPU in millicores (not a setting: Redis is single-threaded; memory is what matters). */
export function redisCpu(config: LeveeConfig): { requestMillis: number; limitMillis: number } {
  return config.environment === 'production' ? { requestMillis: 250, limitMillis: 1000 } : { requestMillis: 50, limitMillis: 500 };
}

const cpuText = (millis: number) => (millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`);

/** Env var (from the Secret) that holds the password inside the Redis container. */
export const REDIS_PASSWORD_ENV = 'REDIS_PASSWORD';

/**
 * The Redis container's `sh -c` script. The password never becomes a process argument
 * (arguments are world-readable in `ps` and /proc/<pid>/cmdline): `redis-server -` reads
 * its configuration from stdin — here the single line `requirepass <password>` from a
 * here-document (ash writes it to a pipe, no file) — and then applies the remaining
 * `--flag value` arguments ("$@", the container's args) on top. `exec` keeps redis-server
 * as PID 1 so it receives SIGTERM and shuts down cleanly (a `printf … |` pipeline would
 * leave sh as PID 1 and redis-server unsignalled). An empty password, or one with
 * characters that would break or extend the config line (whitespace, quotes, newline),
 * stops the container instead of starting Redis without (or with a wrong) password.
 * No `$(` appears, so Kubernetes' `$(VAR)` expansion leaves the script alone.
 */
export const REDIS_START_SCRIPT = [
  `case "$${REDIS_PASSWORD_ENV}" in`,
  `  ''|*[!A-Za-z0-9+/=._~-]*) echo '${REDIS_PASSWORD_ENV} must be non-empty and contain only A-Z a-z 0-9 + / = . _ ~ -' >&2; exit 1 ;;`,
  'esac',
  'exec redis-server - "$@" <<EOF',
  `requirepass $${REDIS_PASSWORD_ENV}`,
  'EOF',
  '',
].join('\n');

export function redisContainer(props: RedisContainerProps): k8s.Container {
  const cpu = redisCpu(props.config);
  return {
    name: 'redis',
    image: props.config.images.redis,
    imagePullPolicy: 'IfNotPresent',
    // Bypass the image's entrypoint (it chowns as root); run redis-server directly as 10001,
    // through the image's /bin/sh only to hand it the password on stdin (see REDIS_START_SCRIPT).
    command: ['sh', '-c', REDIS_START_SCRIPT, 'redis-server'],
    args: [
      '--port', String(PORTS.redis),
      '--dir', props.dataMount ? props.dataMount.mountPath : '/tmp',
      ...props.flags,
    ],
    ports: [{ name: 'redis', containerPort: PORTS.redis, protocol: 'TCP' }],
    // REDISCLI_AUTH: redis-cli (readiness probe) authenticates from the environment, not `-a`.
    env: [secretEnv(REDIS_PASSWORD_ENV, props.secret), secretEnv('REDISCLI_AUTH', props.secret)],
    resources: resources(
      {
        cpuRequest: { text: cpuText(cpu.requestMillis), millis: cpu.requestMillis },
        cpuLimit: { text: cpuText(cpu.limitMillis), millis: cpu.limitMillis },
        // Request = limit: Redis memory is not something to overcommit.
        memoryRequest: props.memory,
        memoryLimit: props.memory,
      },
      props.ephemeralLimit,
    ),
    securityContext: containerSecurityContext(),
    // Liveness: the process accepts connections. Readiness: it answers PING (not while loading the AOF).
    livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(PORTS.redis) }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3, initialDelaySeconds: 5 },
    readinessProbe: {
      exec: { command: ['sh', '-c', `redis-cli -h 127.0.0.1 -p ${PORTS.redis} ping | grep -q PONG`] },
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 2,
    },
    volumeMounts: [TMP_MOUNT, ...(props.dataMount ? [props.dataMount] : [])],
  };
}

/** `maxmemory` in MiB, below the memory limit (see `maxmemoryMb` in the config). */
export function maxmemoryFlag(mb: number): string[] {
  return ['--maxmemory', `${mb}mb`];
}
