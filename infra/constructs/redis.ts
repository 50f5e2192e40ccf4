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
  /** Redis flags besides port, password and data dir. */
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

export function redisContainer(props: RedisContainerProps): k8s.Container {
  const cpu = redisCpu(props.config);
  return {
    name: 'redis',
    image: props.config.images.redis,
    imagePullPolicy: 'IfNotPresent',
    // Bypass the image's entrypoint (it chowns as root); run redis-server directly as 10001.
    command: ['redis-server'],
    args: [
      '--port', String(PORTS.redis),
      // Kubernetes expands $(REDIS_PASSWORD) from the Secret-backed env var; the YAML holds no password.
      '--requirepass', '$(REDIS_PASSWORD)',
      '--dir', props.dataMount ? props.dataMount.mountPath : '/tmp',
      ...props.flags,
    ],
    ports: [{ name: 'redis', containerPort: PORTS.redis, protocol: 'TCP' }],
    env: [secretEnv('REDIS_PASSWORD', props.secret), secretEnv('REDISCLI_AUTH', props.secret)],
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
