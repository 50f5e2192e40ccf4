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

export function redisContainer(props: RedisContainerProps): k8s.Container {
  const small = props.config.environment !== 'production';
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
        cpuRequest: { text: small ? '50m' : '250m', millis: small ? 50 : 250 },
        cpuLimit: { text: small ? '500m' : '1', millis: small ? 500 : 1000 },
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
