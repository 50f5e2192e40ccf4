import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, METRICS_PORT_NAME, PORTS, QUEUE_REDIS_SECRET } from '../names';
import { AppWorkload, scalingBehavior } from './app-workload';
import { MODEL_URL, QUEUE_REDIS_URL } from './endpoints';
import { appImage, httpProbe, objectMeta, plainEnv, secretEnv } from './pod';
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
          QUEUE_REDIS_URL,
          MODEL_URL,
          QUEUE_NAME: config.app.queueName,
          WORKER_CONCURRENCY: config.worker.concurrency,
          MODEL_TIMEOUT_MS: config.worker.modelTimeoutMs,
          BREAKER_OPEN_SECONDS: config.app.breakerOpenSeconds,
          IMAGE_TTL_SECONDS: config.app.imageTtlSeconds,
        }),
        secretEnv('QUEUE_REDIS_PASSWORD', QUEUE_REDIS_SECRET),
      ],
      // Liveness fails only when the worker is stuck (no progress), never because Redis is down.
      livenessProbe: httpProbe('/healthz', PORTS.workerMetrics, { period: 15, failures: 4, initialDelay: 10 }),
      readinessProbe: httpProbe('/readyz', PORTS.workerMetrics, { period: 5, failures: 2 }),
      terminationGracePeriodSeconds: workerGracePeriodSeconds(config),
      service: false,
      cpuAutoscaler: !keda,
    });

    if (keda) {
      const auth: ITriggerAuthentication = {
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'TriggerAuthentication',
        metadata: plainMeta(config, WORKER_TRIGGER_AUTH_NAME),
        spec: { secretTargetRef: [{ parameter: 'password', name: QUEUE_REDIS_SECRET.name, key: QUEUE_REDIS_SECRET.key }] },
      };
      this.triggerAuthentication = new ApiObject(this, 'trigger-authentication', auth);
      this.scaledObject = new ApiObject(this, 'scaled-object', scaledObject(config));
    }
  }
}

/**
 * BullMQ keeps waiting jobs in the list `bull:<queue>:wait` and jobs with a priority in the
 * zset `bull:<queue>:prioritized`; KEDA's `redis` scaler reads the length of either type.
 * The operator runs in another namespace, hence the fully qualified address.
 */
export function scaledObject(config: LeveeConfig): IScaledObject {
  const address = `${COMPONENTS.queueRedis}.${config.namespace}.svc.cluster.local:${PORTS.redis}`;
  const trigger = (name: string, key: string) => ({
    type: 'redis',
    name,
    metadata: {
      address,
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
