import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS } from '../names';
import { AppWorkload } from './app-workload';
import { modelApiEnv } from './endpoints';
import { KEDA_TLS_ENV, kedaTlsFromEnv, scaledObject, triggerAuthentication } from './keda';
import { appImage, httpProbe, plainEnv } from './pod';
import { httpGracePeriodSeconds } from './termination';

/** The longest render the model accepts (2048 × 2048) blocks its event loop about this long. */
export const MODEL_LONGEST_RENDER_SECONDS = 4;
const LIVENESS_PERIOD_SECONDS = 10;
const LIVENESS_TIMEOUT_SECONDS = 10;
/** Floor: 60 s of unanswered liveness probes = 15 back-to-back longest renders. */
const LIVENESS_MIN_FAILURES = 6;

/**
 * The model renders on its event loop, so /healthz waits behind every render already
 * running or queued. Liveness must only catch a *hung* process, never a busy one:
 * restarting a busy pod kills its in-flight renders and brings back an empty pod under the
 * same load. The kubelet probes one at a time, so a loop blocked from t = 0 is restarted
 * after failureThreshold probes of max(period, timeout) each: F × 10 s (probe k starts at
 * (k−1) × 10 s and fails at k × 10 s). With a 10 s timeout one probe alone outlasts two
 * longest renders (2 × 4 s). F = max(6, ceil(MODEL_TIMEOUT_MS / 10 s) + 1), so the pod
 * survives ≥ 60 s of blocking (15 × 4 s renders back to back) and always longer than a
 * worker waits for a reply (MODEL_TIMEOUT_MS, 30 s → F = 6 → 60 s; 120 s → F = 13 → 130 s).
 * Readiness must not fail on a busy pod either: when every model pod is rendering, a tight
 * readiness probe would empty the Service and turn a slowdown into connection errors (the
 * breakers open, jobs are postponed) — an outage amplifier. So its timeout also outlasts a
 * render in progress plus one queued (8 s); it still differs from liveness (`/readyz`, which
 * fails at once while draining; every 5 s; out of the Service after 3 misses).
 */
export function modelLivenessProbe(config: LeveeConfig): k8s.Probe {
  const failures = Math.max(LIVENESS_MIN_FAILURES, Math.ceil(config.worker.modelTimeoutMs / 1000 / LIVENESS_PERIOD_SECONDS) + 1);
  return httpProbe('/healthz', PORTS.model, { period: LIVENESS_PERIOD_SECONDS, timeout: LIVENESS_TIMEOUT_SECONDS, failures, initialDelay: 5 });
}

/** Readiness of the model: tolerant of a busy event loop (see above), quick to react to draining. */
export function modelReadinessProbe(): k8s.Probe {
  return httpProbe('/readyz', PORTS.model, { period: 5, timeout: 2 * MODEL_LONGEST_RENDER_SECONDS, failures: 3 });
}

export interface ModelProps {
  readonly config: LeveeConfig;
}

/** Name of the TriggerAuthentication of the model's ScaledObject (scale to zero). */
export const MODEL_TRIGGER_AUTH_NAME = 'levee-model-queue-redis';
const STARTUP_PERIOD_SECONDS = 10;

/**
 * The model loads (weights, then a warm-up render) before it answers `/readyz`: the
 * startupProbe gives it LEVEE_MODEL_STARTUP_SECONDS, and liveness only starts once it passed,
 * so a loading model is never killed for being slow to start.
 */
export function modelStartupProbe(config: LeveeConfig): k8s.Probe {
  // At least 3 probes: the first may come before the server listens.
  return httpProbe('/readyz', PORTS.model, { period: STARTUP_PERIOD_SECONDS, timeout: 5, failures: Math.max(3, Math.ceil(config.modelServer.startupSeconds / STARTUP_PERIOD_SECONDS)) });
}

/**
 * The image model API (cluster-internal), called by the gateway (styles) and the workers
 * (renders): Levee's stand-in or the image of LEVEE_MODEL_IMAGE. With GPUs it asks for them
 * (requests = limits), tolerates the GPU nodes' taint and goes where LEVEE_MODEL_NODE_SELECTOR
 * (and the Karpenter NodePool) say. Scaled by a CPU HPA, or from zero by KEDA on the queue
 * (LEVEE_MODEL_MIN_REPLICAS=0; never both).
 */
export class Model extends AppWorkload {
  /** Only with scale to zero. */
  public readonly scaledObject?: ApiObject;
  public readonly triggerAuthentication?: ApiObject;

  constructor(scope: Construct, id: string, props: ModelProps) {
    const { config } = props;
    const m = config.modelServer;
    const gpu = m.gpus > 0;
    const nodeSelector = { ...m.nodeSelector, ...(m.karpenter ? { 'karpenter.sh/nodepool': m.karpenter.nodePool } : {}) };
    super(scope, id, {
      config,
      name: COMPONENTS.model,
      component: 'model',
      sizing: config.model,
      image: m.image ?? appImage(config, COMPONENTS.model),
      ports: [{ name: 'http', port: PORTS.model }],
      metricsPort: PORTS.modelMetrics,
      env: [
        ...plainEnv({ PORT: PORTS.model, METRICS_PORT: PORTS.modelMetrics, DRAIN_TIMEOUT_SECONDS: config.shutdown.drainSeconds }),
        ...modelApiEnv(config, 'model'),
        // KEDA reads `tls: enable` and the ACL user from the scale target's environment.
        ...(m.scaleToZero && kedaTlsFromEnv(config) ? plainEnv({ [KEDA_TLS_ENV]: 'enable' }) : []),
        ...(m.scaleToZero && config.queueRedis.external?.username ? plainEnv({ QUEUE_REDIS_USERNAME: config.queueRedis.external.username }) : []),
      ],
      startupProbe: modelStartupProbe(config),
      livenessProbe: modelLivenessProbe(config),
      readinessProbe: modelReadinessProbe(),
      preStopSeconds: config.shutdown.preStopSeconds,
      terminationGracePeriodSeconds: httpGracePeriodSeconds(config, false),
      cpuAutoscaler: !m.scaleToZero,
      ...(gpu ? { extendedResources: { [m.gpuResource]: m.gpus } } : {}),
      scheduling: {
        ...(gpu ? { tolerations: [{ key: m.gpuTaintKey, operator: 'Exists', effect: 'NoSchedule' }] } : {}),
        nodeSelector,
        ...(m.runtimeClass ? { runtimeClassName: m.runtimeClass } : {}),
      },
    });
    if (m.scaleToZero) {
      this.triggerAuthentication = new ApiObject(this, 'trigger-authentication', triggerAuthentication(config, MODEL_TRIGGER_AUTH_NAME, 'model'));
      this.scaledObject = new ApiObject(
        this,
        'scaled-object',
        scaledObject(config, { name: COMPONENTS.model, component: 'model', minReplicas: 0, maxReplicas: config.model.maxReplicas, auth: MODEL_TRIGGER_AUTH_NAME, activePerReplica: config.worker.kedaListLength }),
      );
    }
  }
}
