import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import type { LeveeConfig } from '../config/resolve';
import { CA_SECRET_KEY, COMPONENTS, METRICS_PORT_NAME, PORTS, QUEUE_SENTINEL_MASTER, queueRedisSecret } from '../names';
import { AppWorkload, scalingBehavior } from './app-workload';
import { MODEL_URL, imageStoreEnv, queueRedisClient } from './endpoints';
import { appImage, httpProbe, objectMeta, plainEnv } from './pod';
import { workerGracePeriodSeconds } from './termination';

export interface WorkerProps {
  readonly config: LeveeConfig;
}

/** Name of the KEDA TriggerAuthentication that hands the queue Redis password to KEDA. */
export const WORKER_TRIGGER_AUTH_NAME = 'levee-worker-queue-redis';

/**
 * BullMQ workers. Scaled by a CPU HPA, or — when `workerAutoscaler` is `keda` — by a KEDA
 * ScaledObject on the queue depth; the two are exclusive by construction (KEDA owns its HPA).
 */
export class Worker extends AppWorkload {
  /** Present only with `workerAutoscaler = keda`. */
  public readonly scaledObject?: ApiObject;
  public readonly triggerAuthentication?: ApiObject;

  constructor(scope: Construct, id: string, props: WorkerProps) {
    const { config } = props;
    const keda = config.worker.autoscaler === 'keda';
    const queue = queueRedisClient(config);
    const kedaTls = keda && kedaTlsFromEnv(config);
    super(scope, id, {
      config,
      name: COMPONENTS.worker,
      component: 'worker',
      sizing: config.worker,
      image: appImage(config, COMPONENTS.worker),
      // The worker's one port: /metrics, /healthz and /readyz. No Service: a PodMonitor scrapes it.
      ports: [{ name: METRICS_PORT_NAME, port: PORTS.workerMetrics }],
      env: [
        ...plainEnv({
          METRICS_PORT: PORTS.workerMetrics,
          MODEL_URL,
          QUEUE_NAME: config.app.queueName,
          WORKER_CONCURRENCY: config.worker.concurrency,
          MODEL_TIMEOUT_MS: config.worker.modelTimeoutMs,
          BREAKER_OPEN_SECONDS: config.app.breakerOpenSeconds,
          IMAGE_TTL_SECONDS: config.app.imageTtlSeconds,
          // Replicas that confirm each stored image and outcome (Redis WAIT) before the job completes.
          QUEUE_MIN_REPLICAS_ACKED: config.queueRedis.minReplicasAcked,
          // Not the worker's: KEDA's TriggerAuthentication takes its `tls: enable` from here (see kedaTlsFromEnv).
          ...(kedaTls ? { [KEDA_TLS_ENV]: 'enable' } : {}),
        }),
        ...queue.env,
        ...imageStoreEnv(config, 'worker'),
      ],
      volumes: queue.volumes,
      volumeMounts: queue.mounts,
      ...(config.imageStore.kind === 's3' ? { serviceAccountAnnotations: config.imageStore.serviceAccountAnnotations } : {}),
      // Liveness fails only when the worker is stuck (no progress), never because Redis is down.
      livenessProbe: httpProbe('/healthz', PORTS.workerMetrics, { period: 15, failures: 4, initialDelay: 10 }),
      readinessProbe: httpProbe('/readyz', PORTS.workerMetrics, { period: 5, failures: 2 }),
      terminationGracePeriodSeconds: workerGracePeriodSeconds(config),
      service: false,
      cpuAutoscaler: !keda,
    });

    if (keda) {
      this.triggerAuthentication = new ApiObject(this, 'trigger-authentication', triggerAuthentication(config));
      this.scaledObject = new ApiObject(this, 'scaled-object', scaledObject(config));
    }
  }
}

/** Worker env var that carries `enable` for KEDA's `tls` parameter (KEDA reads parameters only from Secrets or the target's env). */
export const KEDA_TLS_ENV = 'KEDA_REDIS_TLS';

/**
 * A managed queue Redis over TLS with a private CA: KEDA's redis scaler takes the CA from the
 * TriggerAuthentication (`ca`, from the CA Secret) only together with `tls: enable`, and that
 * value can only come from a Secret or the scale target's environment. (With the system CAs,
 * the trigger's `enableTLS: "true"` is enough.)
 */
function kedaTlsFromEnv(config: LeveeConfig): boolean {
  const ext = config.queueRedis.external;
  return !!ext?.tls && !!ext.caSecret;
}

/** How KEDA logs in: the queue Redis password (also the Sentinels'), and for a private CA its certificate. */
export function triggerAuthentication(config: LeveeConfig): ITriggerAuthentication {
  const secret = queueRedisSecret(config);
  const ext = config.queueRedis.external;
  const password = { parameter: 'password', name: secret.name, key: secret.key };
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'TriggerAuthentication',
    metadata: plainMeta(config, WORKER_TRIGGER_AUTH_NAME),
    spec: {
      secretTargetRef: [
        password,
        ...(config.queueRedis.mode === 'sentinel' ? [{ ...password, parameter: 'sentinelPassword' }] : []),
        ...(ext?.caSecret && kedaTlsFromEnv(config) ? [{ parameter: 'ca', name: ext.caSecret, key: CA_SECRET_KEY }] : []),
      ],
      ...(kedaTlsFromEnv(config) ? { env: [{ parameter: 'tls', name: KEDA_TLS_ENV, containerName: 'worker' }] } : {}),
    },
  };
}

/**
 * BullMQ keeps waiting jobs in the list `bull:<queue>:wait` and jobs with a priority in the
 * zset `bull:<queue>:prioritized`; KEDA's `redis` scaler reads the length of either type.
 * The operator runs in another namespace, hence the fully qualified addresses. The trigger
 * follows the queue Redis mode: the StatefulSet's Service; `redis-sentinel` asking the
 * Sentinels for the primary; or the managed Redis's address, ACL user and TLS.
 */
export function scaledObject(config: LeveeConfig): IScaledObject {
  const q = config.queueRedis;
  const where: Record<string, string> =
    q.mode === 'sentinel'
      ? { addresses: `${COMPONENTS.queueSentinel}.${config.namespace}.svc.cluster.local:${PORTS.sentinel}`, sentinelMaster: QUEUE_SENTINEL_MASTER }
      : q.external
        ? {
            address: `${q.external.host.includes(':') ? `[${q.external.host}]` : q.external.host}:${q.external.port}`,
            ...(q.external.username ? { usernameFromEnv: 'QUEUE_REDIS_USERNAME' } : {}),
            ...(q.external.tls && !q.external.caSecret ? { enableTLS: 'true' } : {}),
          }
        : { address: `${COMPONENTS.queueRedis}.${config.namespace}.svc.cluster.local:${PORTS.redis}` };
  const trigger = (name: string, key: string) => ({
    type: q.mode === 'sentinel' ? 'redis-sentinel' : 'redis',
    name,
    metadata: {
      ...where,
      listName: `bull:${config.app.queueName}:${key}`,
      listLength: String(config.worker.kedaListLength),
      activationListLength: '0',
      databaseIndex: '0',
    },
    authenticationRef: { name: WORKER_TRIGGER_AUTH_NAME },
  });
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: plainMeta(config, COMPONENTS.worker),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: COMPONENTS.worker },
      // Never scale to zero: workers also recover stalled jobs.
      minReplicaCount: config.worker.minReplicas,
      maxReplicaCount: config.worker.maxReplicas,
      pollingInterval: 5,
      cooldownPeriod: 300,
      advanced: { horizontalPodAutoscalerConfig: { name: COMPONENTS.worker, behavior: scalingBehavior() } },
      triggers: [trigger('waiting', 'wait'), trigger('prioritized', 'prioritized')],
    },
  };
}

function plainMeta(config: LeveeConfig, name: string) {
  const { namespace, labels } = objectMeta(config, name, 'worker');
  return { name, namespace, labels };
}
