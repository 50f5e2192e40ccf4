/**
 * KEDA objects that scale a Deployment on the render queue (the workers; with scale to zero
 * the model too): a ScaledObject with Redis triggers on BullMQ's keys, and the
 * TriggerAuthentication that hands KEDA the queue Redis password (and CA).
 */
import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import type { LeveeConfig } from '../config/resolve';
import { CA_SECRET_KEY, COMPONENTS, PORTS, QUEUE_SENTINEL_MASTER, queueRedisSecret } from '../names';
import { scalingBehavior } from './app-workload';
import { objectMeta } from './pod';

/** Name of the KEDA TriggerAuthentication that hands the queue Redis password to KEDA. */
export const WORKER_TRIGGER_AUTH_NAME = 'levee-worker-queue-redis';

/** Worker env var that carries `enable` for KEDA's `tls` parameter (KEDA reads parameters only from Secrets or the target's env). */
export const KEDA_TLS_ENV = 'KEDA_REDIS_TLS';

/**
 * A managed queue Redis over TLS with a private CA: KEDA's redis scaler takes the CA from the
 * TriggerAuthentication (`ca`, from the CA Secret) only together with `tls: enable`, and that
 * value can only come from a Secret or the scale target's environment. (With the system CAs,
 * the trigger's `enableTLS: "true"` is enough.)
 */
export function kedaTlsFromEnv(config: LeveeConfig): boolean {
  const ext = config.queueRedis.external;
  return !!ext?.tls && !!ext.caSecret;
}

/**
 * How KEDA logs in: the queue Redis password (also the Sentinels'), and for a private CA its
 * certificate; `tls` from the scale target's container `containerName`.
 */
export function triggerAuthentication(config: LeveeConfig, name = WORKER_TRIGGER_AUTH_NAME, containerName = 'worker'): ITriggerAuthentication {
  const secret = queueRedisSecret(config);
  const ext = config.queueRedis.external;
  const password = { parameter: 'password', name: secret.name, key: secret.key };
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'TriggerAuthentication',
    metadata: plainMeta(config, name),
    spec: {
      secretTargetRef: [
        password,
        ...(config.queueRedis.mode === 'sentinel' ? [{ ...password, parameter: 'sentinelPassword' }] : []),
        ...(ext?.caSecret && kedaTlsFromEnv(config) ? [{ parameter: 'ca', name: ext.caSecret, key: CA_SECRET_KEY }] : []),
      ],
      ...(kedaTlsFromEnv(config) ? { env: [{ parameter: 'tls', name: KEDA_TLS_ENV, containerName }] } : {}),
    },
  };
}

/** What a queue-driven ScaledObject scales. */
export interface QueueScaleTarget {
  readonly name: string;
  readonly component: string;
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** The TriggerAuthentication to use. */
  readonly auth: string;
  /** Running jobs one replica holds (scale to zero's `active` trigger): the workers' concurrency. */
  readonly activePerReplica: number;
}

/** A trigger that only wakes (activation 0) and never asks for more than one replica. */
const WAKE_ONLY_LIST_LENGTH = 1_000_000;

/**
 * BullMQ keeps waiting jobs in the list `bull:<queue>:wait` and jobs with a priority in the
 * zset `bull:<queue>:prioritized`; KEDA's `redis` scaler reads the length of either type.
 * With scale to zero (LEVEE_MODEL_MIN_REPLICAS=0) the running jobs (`active`, a list) count
 * too, per `activePerReplica` (a replica busy with its jobs is not scaled in), and the
 * postponed or backing-off ones (`delayed`, a zset) only wake one replica (they wait for the
 * model: more replicas would not help them); any job wakes them (activation 0), and they go
 * to zero after LEVEE_KEDA_COOLDOWN_SECONDS of an empty queue. KEDA asks for the largest of
 * the triggers' replica counts, not their sum.
 * The operator runs in another namespace, hence the fully qualified addresses. The trigger
 * follows the queue Redis mode: the StatefulSet's Service; `redis-sentinel` asking the
 * Sentinels for the primary; or the managed Redis's address, ACL user and TLS.
 */
export function scaledObject(config: LeveeConfig, target: QueueScaleTarget): IScaledObject {
  const q = config.queueRedis;
  const toZero = config.modelServer.scaleToZero;
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
  const trigger = (name: string, key: string, perReplica = config.worker.kedaListLength) => ({
    type: q.mode === 'sentinel' ? 'redis-sentinel' : 'redis',
    name,
    metadata: {
      ...where,
      listName: `bull:${config.app.queueName}:${key}`,
      listLength: String(perReplica),
      activationListLength: '0',
      databaseIndex: '0',
    },
    authenticationRef: { name: target.auth },
  });
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: plainMeta(config, target.name, target.component),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target.name },
      // Workers also recover stalled jobs: they go to zero only with scale to zero, when nothing waits.
      minReplicaCount: target.minReplicas,
      maxReplicaCount: target.maxReplicas,
      pollingInterval: 5,
      cooldownPeriod: toZero ? config.modelServer.kedaCooldownSeconds : 300,
      advanced: { horizontalPodAutoscalerConfig: { name: target.name, behavior: scalingBehavior() } },
      triggers: [
        trigger('waiting', 'wait'),
        trigger('prioritized', 'prioritized'),
        ...(toZero ? [trigger('active', 'active', target.activePerReplica), trigger('delayed', 'delayed', WAKE_ONLY_LIST_LENGTH)] : []),
      ],
    },
  };
}

function plainMeta(config: LeveeConfig, name: string, component = 'worker') {
  const { namespace, labels } = objectMeta(config, name, component);
  return { name, namespace, labels };
}
