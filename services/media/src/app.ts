import Fastify, { FastifyInstance, LogController } from 'fastify';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Lifecycle, registerHealthRoutes } from '../../shared/src/http-lifecycle';
import { registerHttpMetrics } from '../../shared/src/http-metrics';
import { imageStoreTarget } from '../../shared/src/image-settings';
import { createRegistry } from '../../shared/src/metrics';
import { PROBLEM_SERVER_OPTIONS } from '../../shared/src/framework-errors';
import { registerProblemHandlers } from '../../shared/src/problem';
import { createRedis, RedisTarget } from '../../shared/src/redis';
import { redisTarget } from '../../shared/src/redis-settings';
import { slowClientOptions } from '../../shared/src/http-server';
import { S3Images } from '../../shared/src/s3-images';
import { ImageSource, RedisImageSource, S3ImageSource } from './image-source';
import { MediaSettings } from './settings';
import { mediaRoutes } from './plugin';

export interface MediaDeps {
  /** Accept or create: a passed client is the caller's to close (IMAGE_STORE=redis). */
  readonly redis?: Redis;
  /** Accept or create (IMAGE_STORE=s3); a passed one is the caller's to close. */
  readonly images?: S3Images;
  readonly logger?: Logger;
  readonly registry?: Registry;
}

export interface MediaApp extends FastifyInstance {
  lifecycle: Lifecycle;
  /** What the metrics listener (METRICS_PORT) serves; the public port has no /metrics. */
  metricsRegistry: Registry;
  /** The image store: with `redis`, its connection (the queue Redis) and where it points. */
  imageStore: { source: ImageSource; redis?: Redis; target?: RedisTarget };
}

/**
 * The media backend: a small, separately scaled, read-only app serving rendered PNGs from the
 * image store (the queue Redis, or object storage with IMAGE_STORE=s3, when it needs no Redis
 * at all). Readiness also fails while the store is unreachable, so a media pod that cannot
 * serve images leaves the rotation.
 */
export function buildMedia(settings: MediaSettings, deps: MediaDeps = {}): MediaApp {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    // No per-request log lines: at flood rates they would cost more than the requests.
    logController: new LogController({ disableRequestLogging: true }),
    // Router errors, malformed HTTP and requests during the drain: problem details too.
    ...PROBLEM_SERVER_OPTIONS,
    ...slowClientOptions(settings.REQUEST_TIMEOUT_MS),
  }) as unknown as MediaApp;
  const lifecycle: Lifecycle = { draining: false };
  app.decorate('lifecycle', lifecycle);
  const registry = deps.registry ?? createRegistry('media');
  app.decorate('metricsRegistry', registry);
  const store = imageStoreTarget(settings);
  let imageStore: MediaApp['imageStore'];
  if (store.kind === 's3') {
    const images = deps.images ?? new S3Images(store);
    const source = new S3ImageSource(images, { logger: deps.logger, ownsClient: !deps.images });
    app.addHook('onClose', async () => source.close());
    imageStore = { source };
  } else {
    const target = redisTarget(settings, 'QUEUE');
    const redis = deps.redis ?? createRedis('request', target);
    if (!deps.redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => redis.disconnect())));
    imageStore = { source: new RedisImageSource(redis), redis, target };
  }
  app.decorate('imageStore', imageStore);
  const { source } = imageStore;

  registerProblemHandlers(app);
  registerHttpMetrics(app, registry);
  registerHealthRoutes(app, { lifecycle, ready: () => source.ready(), notReadyDetail: () => source.notReadyDetail });
  app.register(mediaRoutes, { source, delivery: settings.IMAGE_DELIVERY, urlTtlSeconds: settings.IMAGE_URL_TTL_SECONDS });
  return app;
}
