import Fastify, { FastifyInstance, LogController } from 'fastify';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { Lifecycle, registerHealthRoutes } from '../../shared/src/http-lifecycle';
import { registerHttpMetrics } from '../../shared/src/http-metrics';
import { createRegistry } from '../../shared/src/metrics';
import { PROBLEM_SERVER_OPTIONS } from '../../shared/src/framework-errors';
import { registerProblemHandlers } from '../../shared/src/problem';
import { createRedis, RedisTarget } from '../../shared/src/redis';
import { redisTarget } from '../../shared/src/redis-settings';
import { slowClientOptions } from '../../shared/src/http-server';
import { MediaSettings } from './settings';
import { mediaRoutes } from './plugin';

export interface MediaDeps {
  /** Accept or create: a passed client is the caller's to close. */
  readonly redis?: Redis;
  readonly logger?: Logger;
  readonly registry?: Registry;
}

export interface MediaApp extends FastifyInstance {
  lifecycle: Lifecycle;
  /** What the metrics listener (METRICS_PORT) serves; the public port has no /metrics. */
  metricsRegistry: Registry;
  /** The image store's connection (the queue Redis) and where it points. */
  imageStore: { redis: Redis; target: RedisTarget };
}

/**
 * The media backend: a small, separately scaled, read-only app serving rendered PNGs.
 * Readiness also fails while the image store (queue Redis) is unreachable, so a media pod
 * that cannot serve images leaves the rotation.
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
  const target = redisTarget(settings, 'QUEUE');
  const redis = deps.redis ?? createRedis('request', target);
  if (!deps.redis) app.addHook('onClose', async () => void (await redis.quit().catch(() => redis.disconnect())));
  app.decorate('imageStore', { redis, target });

  registerProblemHandlers(app);
  registerHttpMetrics(app, registry);
  registerHealthRoutes(app, {
    lifecycle,
    ready: () => redis.status === 'ready',
    notReadyDetail: 'The image store (Redis) is unreachable.',
  });
  app.register(mediaRoutes, { redis });
  return app;
}
