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
  /** The `sh -c` start script. @default REDIS_START_SCRIPT */
  readonly script?: string;
  /** Environment for the script besides the password (plain values, never secrets). */
  readonly env?: readonly k8s.EnvVar[];
  /** @default `redis-cli ping` answers PONG */
  readonly readinessProbe?: k8s.Probe;
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
/** Refuses an empty password, or one that would break or extend a config line. */
const PASSWORD_CHECK = [
  `case "$${REDIS_PASSWORD_ENV}" in`,
  `  ''|*[!A-Za-z0-9+/=._~-]*) echo '${REDIS_PASSWORD_ENV} must be non-empty and contain only A-Z a-z 0-9 + / = . _ ~ -' >&2; exit 1 ;;`,
  'esac',
];

export const REDIS_START_SCRIPT = [
  ...PASSWORD_CHECK,
  'exec redis-server - "$@" <<EOF',
  `requirepass $${REDIS_PASSWORD_ENV}`,
  'EOF',
  '',
].join('\n');

/**
 * Asks the Sentinels in `$SENTINELS` (space-separated host:port) for the current primary of
 * `$MASTER_NAME` and sets `primary` to "host port", or leaves it empty when none answers
 * (a cold start: no Sentinel is up yet). `skip` is an address not to ask (the caller itself).
 * Only sh built-ins and redis-cli (authenticated by REDISCLI_AUTH): the script runs on the
 * alpine image's busybox sh and on Debian's dash alike. Backquotes, never `$(`: Kubernetes
 * would try to expand `$(…)` in a command.
 */
const ASK_SENTINELS = [
  "nl='",
  "'",
  "primary=''",
  'for s in $SENTINELS; do',
  '  [ "$s" = "$skip" ] && continue',
  '  a=`redis-cli --no-auth-warning --raw -h "${s%:*}" -p "${s##*:}" sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null` || continue',
  '  host=${a%%"$nl"*}',
  '  port=${a#*"$nl"}',
  '  case "$port" in',
  "    ''|*[!0-9]*) continue ;;",
  '  esac',
  '  primary="$host $port"',
  '  break',
  'done',
];

/**
 * The data pods of the Sentinel topology. Each asks the Sentinels which pod is the primary
 * now (after a failover it is not the first pod any more) and starts as its replica; with no
 * Sentinel answering (the whole group starting cold) `$PRIMARY_HOST:$PRIMARY_PORT`, the
 * first pod, is the primary. Every pod announces its stable DNS name (`$ANNOUNCE_HOST`), so a
 * rescheduled pod with a new IP is the same replica to the Sentinels. Like
 * {@link REDIS_START_SCRIPT}, the password goes to `redis-server -` on stdin, also as
 * `masterauth` (any pod may become a replica).
 */
export const REPLICATED_REDIS_START_SCRIPT = [
  ...PASSWORD_CHECK,
  "skip=''",
  ...ASK_SENTINELS,
  '[ -n "$primary" ] || primary="$PRIMARY_HOST $PRIMARY_PORT"',
  'if [ "$primary" = "$ANNOUNCE_HOST $REDIS_PORT" ]; then',
  '  echo "levee: starting as the primary" >&2',
  'else',
  '  echo "levee: starting as a replica of $primary" >&2',
  '  set -- "$@" --replicaof $primary',
  'fi',
  'exec redis-server - "$@" --replica-announce-ip "$ANNOUNCE_HOST" --replica-announce-port "$REDIS_PORT" <<EOF',
  `requirepass $${REDIS_PASSWORD_ENV}`,
  `masterauth $${REDIS_PASSWORD_ENV}`,
  'EOF',
  '',
].join('\n');

/**
 * A Sentinel. Sentinel must own a writable config file (it rewrites it with what it learns:
 * the current primary, the replicas, the other Sentinels), so the script writes one into
 * `$SENTINEL_DIR` (an emptyDir: it survives a container restart, so a restarted Sentinel
 * keeps its knowledge) unless it is there already. A new Sentinel monitors the primary the
 * other Sentinels report, else the first data pod. Its id is fixed by its pod ordinal
 * (`$POD_NAME` = `…-<n>`), so a rescheduled Sentinel is the same Sentinel to its peers and
 * stale entries never pile up (they would raise the majority a failover needs). The password
 * goes on stdin (`-`, the last argument), as `requirepass` and as the password for the data
 * pods and the other Sentinels; Sentinel writes it into its own file (mode 0600, umask 077).
 */
export const SENTINEL_START_SCRIPT = [
  ...PASSWORD_CHECK,
  'umask 077',
  'conf="$SENTINEL_DIR/sentinel.conf"',
  'if [ ! -s "$conf" ]; then',
  '  ordinal=${POD_NAME##*-}',
  '  case "$ordinal" in',
  "    ''|*[!0-9]*) echo 'POD_NAME must end in -<ordinal>' >&2; exit 1 ;;",
  '  esac',
  '  skip="$ANNOUNCE_HOST:$SENTINEL_PORT"',
  ...ASK_SENTINELS.map((l) => `  ${l}`.replace(/^  (')$/, '$1')),
  '  [ -n "$primary" ] || primary="$PRIMARY_HOST $PRIMARY_PORT"',
  "  myid=`printf '1e7ee%035d' \"$ordinal\"`",
  "  printf '%s\\n' \\",
  '    "port $SENTINEL_PORT" \\',
  '    "dir $SENTINEL_DIR" \\',
  '    "sentinel myid $myid" \\',
  '    "sentinel resolve-hostnames yes" \\',
  '    "sentinel announce-hostnames yes" \\',
  '    "sentinel announce-ip $ANNOUNCE_HOST" \\',
  '    "sentinel announce-port $SENTINEL_PORT" \\',
  '    "sentinel monitor $MASTER_NAME $primary $QUORUM" \\',
  '    "sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS" \\',
  '    "sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS" \\',
  '    "sentinel parallel-syncs $MASTER_NAME 1" > "$conf"',
  'fi',
  'exec redis-server "$conf" "$@" - <<EOF',
  `requirepass $${REDIS_PASSWORD_ENV}`,
  `sentinel auth-pass $MASTER_NAME $${REDIS_PASSWORD_ENV}`,
  `sentinel sentinel-pass $${REDIS_PASSWORD_ENV}`,
  'EOF',
  '',
].join('\n');

/**
 * Readiness of a data pod that knows a replica from a primary: the primary is ready when it
 * answers; a replica only while its link to the primary is up (in sync, not still loading a
 * full copy), so a rolling update waits for each replica to catch up before the next pod.
 */
export const REPLICATED_REDIS_READY_SCRIPT = [
  'r=`redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info replication` || exit 1',
  'case "$r" in',
  '  *role:master*|*master_link_status:up*) exit 0 ;;',
  'esac',
  'exit 1',
].join('\n');

/** Readiness of a Sentinel: it knows the primary and enough Sentinels to authorize a failover. */
export const SENTINEL_READY_SCRIPT = [
  'r=`redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" sentinel ckquorum "$MASTER_NAME"` || exit 1',
  'case "$r" in',
  '  OK*) exit 0 ;;',
  'esac',
  'exit 1',
].join('\n');

export function redisContainer(props: RedisContainerProps): k8s.Container {
  const cpu = redisCpu(props.config);
  return {
    name: 'redis',
    image: props.config.images.redis,
    imagePullPolicy: 'IfNotPresent',
    // Bypass the image's entrypoint (it chowns as root); run redis-server directly as 10001,
    // through the image's /bin/sh only to hand it the password on stdin (see REDIS_START_SCRIPT).
    command: ['sh', '-c', props.script ?? REDIS_START_SCRIPT, 'redis-server'],
    args: [
      '--port', String(PORTS.redis),
      '--dir', props.dataMount ? props.dataMount.mountPath : '/tmp',
      ...props.flags,
    ],
    ports: [{ name: 'redis', containerPort: PORTS.redis, protocol: 'TCP' }],
    // REDISCLI_AUTH: redis-cli (readiness probe) authenticates from the environment, not `-a`.
    env: [secretEnv(REDIS_PASSWORD_ENV, props.secret), secretEnv('REDISCLI_AUTH', props.secret), ...(props.env ?? [])],
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
    readinessProbe: props.readinessProbe ?? {
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
