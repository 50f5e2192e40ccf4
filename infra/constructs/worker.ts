import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, METRICS_PORT_NAME, PORTS } from '../names';
import { AppWorkload } from './app-workload';
import { KEDA_TLS_ENV, WORKER_TRIGGER_AUTH_NAME, kedaTlsFromEnv, scaledObject, triggerAuthentication } from './keda';
import { imageStoreEnv, modelApiEnv, modelUrl, queueRedisClient } from './endpoints';
import { appImage, httpProbe, plainEnv } from './pod';
import { workerGracePeriodSeconds } from './termination';

export interface WorkerProps {
  readonly config: LeveeConfig;
}


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
          MODEL_URL: modelUrl(config),
          QUEUE_NAME: config.app.queueName,
          WORKER_CONCURRENCY: config.worker.concurrency,
          MODEL_TIMEOUT_MS: config.worker.modelTimeoutMs,
          // A cold model (scaled from zero, loading for up to LEVEE_MODEL_STARTUP_SECONDS on a node
          // that may still be coming up) is waited for this long before attempts count again.
          MODEL_WAIT_MAX_SECONDS: Math.max(900, config.modelServer.startupSeconds + 600),
          BREAKER_OPEN_SECONDS: config.app.breakerOpenSeconds,
          IMAGE_TTL_SECONDS: config.app.imageTtlSeconds,
          // Older jobs are not rendered: nobody waits for them any more.
          JOB_DEADLINE_SECONDS: config.worker.jobDeadlineSeconds,
          // Replicas that confirm each stored image and outcome (Redis WAIT) before the job completes.
          QUEUE_MIN_REPLICAS_ACKED: config.queueRedis.minReplicasAcked,
          // Not the worker's: KEDA's TriggerAuthentication takes its `tls: enable` from here (see kedaTlsFromEnv).
          ...(kedaTls ? { [KEDA_TLS_ENV]: 'enable' } : {}),
        }),
        ...modelApiEnv(config, 'worker'),
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
      this.scaledObject = new ApiObject(
        this,
        'scaled-object',
        scaledObject(config, { name: COMPONENTS.worker, component: 'worker', minReplicas: config.worker.minReplicas, maxReplicas: config.worker.maxReplicas, auth: WORKER_TRIGGER_AUTH_NAME, activePerReplica: config.worker.concurrency }),
      );
    }
  }
}

export { WORKER_TRIGGER_AUTH_NAME, scaledObject, triggerAuthentication } from './keda';
