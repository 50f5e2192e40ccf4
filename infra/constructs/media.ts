import { Construct } from 'constructs';
import type { LeveeConfig } from '../config/resolve';
import { COMPONENTS, PORTS } from '../names';
import { AppWorkload } from './app-workload';
import { imageStoreEnv, queueRedisClient } from './endpoints';
import { appImage, httpProbe, plainEnv } from './pod';
import { httpGracePeriodSeconds } from './termination';

export interface MediaProps {
  readonly config: LeveeConfig;
}

/**
 * Read-only backend for `/images/{id}.png`, scaled apart from the gateway. With the images in
 * object storage it reads (or presigns) them there and has no Redis at all; with `redis`, it
 * reads the queue Redis.
 */
export class Media extends AppWorkload {
  constructor(scope: Construct, id: string, props: MediaProps) {
    const { config } = props;
    const s3 = config.imageStore.kind === 's3' ? config.imageStore : undefined;
    const queue = s3 ? { env: [], volumes: [], mounts: [] } : queueRedisClient(config);
    super(scope, id, {
      config,
      name: COMPONENTS.media,
      component: 'media',
      sizing: config.media,
      image: appImage(config, COMPONENTS.media),
      ports: [{ name: 'http', port: PORTS.media }],
      metricsPort: PORTS.mediaMetrics,
      env: [
        ...plainEnv({ PORT: PORTS.media, METRICS_PORT: PORTS.mediaMetrics, SHUTDOWN_DELAY_SECONDS: config.shutdown.shutdownDelaySeconds, DRAIN_TIMEOUT_SECONDS: config.shutdown.drainSeconds }),
        ...queue.env,
        ...imageStoreEnv(config, 'media'),
      ],
      volumes: queue.volumes,
      volumeMounts: queue.mounts,
      ...(s3 ? { serviceAccountAnnotations: s3.serviceAccountAnnotations } : {}),
      livenessProbe: httpProbe('/healthz', PORTS.media, { period: 10, failures: 3, initialDelay: 5 }),
      readinessProbe: httpProbe('/readyz', PORTS.media, { period: 5, failures: 2 }),
      preStopSeconds: config.shutdown.preStopSeconds,
      terminationGracePeriodSeconds: httpGracePeriodSeconds(config, true),
    });
  }
}
