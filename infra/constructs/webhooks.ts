import { Construct } from 'constructs';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, METRICS_PORT_NAME, PORTS, WEBHOOK_SECRET_KEY } from '../names';
import { AppWorkload } from './app-workload';
import { queueRedisClient, webhookPolicyEnv } from './endpoints';
import { appImage, httpProbe, plainEnv, secretEnv } from './pod';

export interface WebhooksProps {
  readonly config: LeveeConfig;
}

/** How long one delivery may take (WEBHOOK_TIMEOUT_MS): the grace period lets the ones in flight finish. */
export const WEBHOOK_TIMEOUT_SECONDS = 10;

/**
 * The webhook sender: signs and posts each finished job's webhook, retrying with backoff
 * (services/worker/src/webhook-sender.ts). It runs in the worker image with its own command,
 * in pods of its own, so that only these pods may open connections to the internet (443/8443,
 * never the cluster's ranges or the metadata address: `levee-webhooks` NetworkPolicy) while the
 * gateway and the workers keep theirs closed. CPU-autoscaled like the other apps; no Service.
 */
export class Webhooks extends AppWorkload {
  constructor(scope: Construct, id: string, props: WebhooksProps) {
    const { config } = props;
    const queue = queueRedisClient(config);
    super(scope, id, {
      config,
      name: COMPONENTS.webhooks,
      component: 'webhooks',
      sizing: config.webhooks,
      image: appImage(config, COMPONENTS.worker),
      command: ['node', 'build/services/worker/src/webhooks-server.js'],
      // /metrics, /healthz and /readyz; no Service: a PodMonitor scrapes it.
      ports: [{ name: METRICS_PORT_NAME, port: PORTS.webhooksMetrics }],
      env: [
        ...plainEnv({
          METRICS_PORT: PORTS.webhooksMetrics,
          QUEUE_NAME: config.app.queueName,
          WEBHOOK_TIMEOUT_MS: WEBHOOK_TIMEOUT_SECONDS * 1000,
          // More threads than deliveries in flight (50): a receiver whose name server never
          // answers holds one of libuv's threads (dns.lookup), never the other deliveries' lookups.
          UV_THREADPOOL_SIZE: 64,
          ...webhookPolicyEnv(config),
          LOG_LEVEL: config.app.logLevel,
        }),
        secretEnv('WEBHOOK_SECRET', { name: config.webhooks.secret, key: WEBHOOK_SECRET_KEY }),
        ...queue.env,
      ],
      volumes: queue.volumes,
      volumeMounts: queue.mounts,
      livenessProbe: httpProbe('/healthz', PORTS.webhooksMetrics, { period: 15, failures: 4, initialDelay: 10 }),
      readinessProbe: httpProbe('/readyz', PORTS.webhooksMetrics, { period: 5, failures: 2 }),
      // The deliveries in flight finish (each bounded by WEBHOOK_TIMEOUT_MS); the rest wait in the queue.
      terminationGracePeriodSeconds: WEBHOOK_TIMEOUT_SECONDS + 10,
      service: false,
    });
  }
}
