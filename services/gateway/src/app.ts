import { createServer, IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import { traceRequest, tracingEnabled } from '../../shared/src/tracing';
import Fastify, { FastifyInstance, FastifyServerFactory, LogController, onRequestHookHandler } from 'fastify';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { isBreakerOpen } from '../../shared/src/breaker';
import { AJV_OPTIONS } from '../../shared/src/job';
import { Lifecycle, registerHealthRoutes } from '../../shared/src/http-lifecycle';
import { registerHttpMetrics } from '../../shared/src/http-metrics';
import { createRegistry } from '../../shared/src/metrics';
import { ModelClient } from '../../shared/src/model-client';
import { countedFrameworkErrors, PROBLEM_SERVER_OPTIONS, problemFrameworkErrors } from '../../shared/src/framework-errors';
import { registerProblemHandlers } from '../../shared/src/problem';
import { createRedis } from '../../shared/src/redis';
import { slowClientOptions } from '../../shared/src/http-server';
import { RedisImageSource, S3ImageSource } from '../../media/src/image-source';
import { mediaRoutes } from '../../media/src/plugin';
import { imageStoreTarget, imageUrlOf } from '../../shared/src/image-settings';
import { S3Images } from '../../shared/src/s3-images';
import { Lookup, webhookUrlPolicy } from '../../shared/src/webhook-url';
import { FloodCache } from './cache';
import { JobCanceller } from './cancel';
import { JobEvents } from './job-events';
import { Producer } from './producer';
import { isApiPath, registerRateLimit } from './rate-limit';
import { eventRoutes } from './routes/events';
import { imageRoutes } from './routes/images';
import { styleRoutes } from './routes/styles';
import { GatewaySettings, queueMinReplicasAcked, redisTargets } from './settings';

/**
 * The cache Redis client (a `request`-role client) without auto-pipelining: its hot traffic
 * is the rate limiter's, which corks the socket per event-loop turn instead — the same single
 * write, without a pipeline object per turn (measured: ~25% less gateway CPU per request with
 * 50,000 client IPs, ~7% with one).
 */
export const CACHE_REDIS_OPTIONS = { enableAutoPipelining: false } as const;

/** Largest request body: a 1000-character prompt and the other fields fit well within it. */
export const BODY_LIMIT = 16 * 1024;

export interface GatewayDeps {
  /** Accept or create: clients passed in are the caller's to close; created ones close with the app. */
  readonly queueRedis?: Redis;
  readonly cacheRedis?: Redis;
  /** The model API client (breaker included). @default one built from MODEL_URL and the settings */
  readonly modelClient?: ModelClient;
  /** Fastify logs to this pino logger. @default no logging */
  readonly logger?: Logger;
  /** Metrics registry. @default a new one with Node's default metrics */
  readonly registry?: Registry;
  /** Prefix of the cache and rate-limit keys (tests use a unique one). @default "levee" */
  readonly keyPrefix?: string;
  /** Consecutive model failures that open the breaker. @default 5 */
  readonly breakerFailures?: number;
  /** Show the media routes (`/images/{id}.png`) on the gateway, as `npm run dev` needs. @default settings.SERVE_MEDIA */
  readonly serveMedia?: boolean;
  /** How webhook hosts are resolved at submit (tests). @default the system resolver */
  readonly webhookLookup?: Lookup;
}

export interface Gateway extends FastifyInstance {
  lifecycle: Lifecycle;
  /** What the metrics listener (METRICS_PORT) serves; the public port has no /metrics. */
  metricsRegistry: Registry;
  levee: { producer: Producer; cache: FloodCache; modelClient: ModelClient; queueRedis: Redis; cacheRedis: Redis; registry: Registry; redisTargets: ReturnType<typeof redisTargets>; events: JobEvents };
}

/**
 * The gateway as a Fastify instance with no side effects until `listen()`: tests build it
 * in-process (several at once against one Redis to act as replicas); server.ts runs it.
 */
export function buildGateway(settings: GatewaySettings, deps: GatewayDeps = {}): Gateway {
  let limit: onRequestHookHandler | undefined; // the rate limiter's hook, registered below
  let guard: ((request: IncomingMessage, response: ServerResponse) => boolean) | undefined; // and its guard
  const app = Fastify({
    // A request of a client the limiter has blocked is answered before Fastify sees it.
    serverFactory: guardedServer((request, response) => guard?.(request, response) ?? false),
    ...slowClientOptions(settings.REQUEST_TIMEOUT_MS),
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    // No per-request log lines: at flood rates they would cost more than the requests.
    logController: new LogController({ disableRequestLogging: true }),
    // Router errors, malformed HTTP and requests during the drain: problem details too.
    ...PROBLEM_SERVER_OPTIONS,
    // A URL the router rejects (/api/%zz) runs no hooks; under /api it still counts against
    // the client's budget and carries the RateLimit headers, like every /api answer.
    frameworkErrors: countedFrameworkErrors((err, request, reply) => {
      if (limit && isApiPath(request.url)) limit.call(app, request, reply, () => problemFrameworkErrors(err, request, reply));
      else problemFrameworkErrors(err, request, reply);
    }),
    // No per-request child logger (pino serializes its bindings on every request): the
    // few request-scoped lines (errors) go to the app logger.
    childLoggerFactory: (logger) => logger,
    bodyLimit: BODY_LIMIT,
    // The socket peer is the client unless it is a trusted proxy (CIDRs, never a hop count).
    trustProxy: settings.TRUST_PROXY.length > 0 ? settings.TRUST_PROXY : false,
    // Reject, never repair: unknown fields are a 400, and "512" is not an integer.
    ajv: { customOptions: AJV_OPTIONS },
  }) as unknown as Gateway;
  // JSON only: a text/plain body is a 415, not a string that then fails validation.
  app.removeContentTypeParser('text/plain');

  const keyPrefix = deps.keyPrefix ?? 'levee';
  const registry = deps.registry ?? createRegistry('gateway');
  const targets = redisTargets(settings);
  const queueRedis = deps.queueRedis ?? createRedis('request', targets.queue);
  const cacheRedis = deps.cacheRedis ?? createRedis('request', targets.cache, CACHE_REDIS_OPTIONS);
  const modelClient =
    deps.modelClient ??
    new ModelClient({
      baseUrl: settings.MODEL_URL,
      api: settings.MODEL_API,
      ...(settings.MODEL_API_KEY ? { apiKey: settings.MODEL_API_KEY } : {}),
      openSeconds: settings.BREAKER_OPEN_SECONDS,
      timeoutMs: settings.MODEL_TIMEOUT_MS,
      consecutiveFailures: deps.breakerFailures ?? settings.BREAKER_FAILURES,
      registry,
    });
  const producer = new Producer({
    redis: queueRedis,
    queueName: settings.QUEUE_NAME,
    maxWaiting: settings.QUEUE_MAX_WAITING,
    maxMemoryPercent: settings.QUEUE_MAX_MEMORY_PERCENT,
    minReplicasAcked: queueMinReplicasAcked(settings),
    replicaAckTimeoutMs: settings.QUEUE_REPLICA_ACK_TIMEOUT_MS,
    registry,
  });
  const cache = new FloodCache({
    name: 'styles',
    redis: cacheRedis,
    keyPrefix: `${keyPrefix}:cache`,
    ttlMs: settings.CACHE_TTL_SECONDS * 1000,
    lockMs: settings.MODEL_TIMEOUT_MS + 1000,
    staleWaitMs: settings.CACHE_STALE_WAIT_MS,
    registry,
    notAttempted: isBreakerOpen,
    onLoadError: (err, key) => app.log.warn({ err, key }, 'cache: origin load failed'),
  });
  const canceller = new JobCanceller(producer, producer.writerRedis, settings.QUEUE_NAME);
  const events = new JobEvents({
    producer,
    // QueueEvents blocks on a connection of its own (XREAD BLOCK): a 'worker'-role client.
    connect: () => createRedis('worker', targets.queue),
    queueName: settings.QUEUE_NAME,
    maxPerClient: settings.EVENTS_MAX_PER_CLIENT,
    maxStreams: settings.EVENTS_MAX,
    registry,
    onError: (err) => app.log.warn({ err: err.message }, 'job events: queue Redis error'),
  });
  const lifecycle: Lifecycle = { draining: false };
  app.decorate('lifecycle', lifecycle);
  // However the app is closed (drainAndClose sets this earlier), it is draining from then on:
  // readiness fails, and the guard leaves requests to Fastify, which adds Connection: close.
  app.addHook('preClose', (done) => {
    lifecycle.draining = true;
    // Open event streams end now (their clients reconnect to another replica) rather than hold the drain.
    events.closeAll();
    done();
  });
  app.decorate('levee', { producer, cache, modelClient, queueRedis, cacheRedis, registry, redisTargets: targets, events });
  app.decorate('metricsRegistry', registry);

  registerProblemHandlers(app);
  const { recordRaw } = registerHttpMetrics(app, registry);
  let keyOf: (request: IncomingMessage) => string;
  ({ hook: limit, guard, keyOf } = registerRateLimit(app, {
    redis: cacheRedis,
    perSecond: settings.RATE_LIMIT_PER_SECOND,
    keyPrefix: `${keyPrefix}:rl`,
    registry,
    trustProxy: settings.TRUST_PROXY,
    ipv6Prefix: settings.RATE_LIMIT_IPV6_PREFIX,
    draining: () => lifecycle.draining,
    recordRaw,
  }));
  registerHealthRoutes(app, { lifecycle });
  // Idempotency-Keys are scoped by the same client key as the rate limit.
  const store = imageStoreTarget(settings);
  const imageUrl = (id: string) => imageUrlOf(store, settings.IMAGE_PUBLIC_BASE_URL, id);
  const clientKey = (request: { raw: IncomingMessage }) => keyOf(request.raw);
  app.register(imageRoutes, { producer, clientKey, imageUrl, webhookPolicy: webhookUrlPolicy(settings), canceller, ...(deps.webhookLookup ? { lookup: deps.webhookLookup } : {}) });
  app.register(eventRoutes, { producer, events, clientKey, imageUrl });
  app.register(styleRoutes, { cache, modelClient, ...(settings.MODEL_API === 'openai-images' ? { catalog: settings.MODEL_STYLES ?? null } : {}) });
  if (deps.serveMedia ?? settings.SERVE_MEDIA) {
    // Local use (npm run dev): the gateway serves /images too, from the same store as media would.
    const source = store.kind === 's3' ? new S3ImageSource(new S3Images(store), { logger: deps.logger }) : new RedisImageSource(queueRedis);
    app.addHook('onClose', async () => source.close());
    app.register(mediaRoutes, { source, delivery: settings.IMAGE_DELIVERY, urlTtlSeconds: settings.IMAGE_URL_TTL_SECONDS });
  }

  app.addHook('onClose', async () => {
    cache.close();
    await events.close();
    await canceller.close().catch(() => undefined);
    await producer.close().catch(() => undefined);
    for (const [client, owned] of [
      [queueRedis, !deps.queueRedis],
      [cacheRedis, !deps.cacheRedis],
    ] as const) {
      if (owned) await client.quit().catch(() => client.disconnect());
    }
  });
  return app;
}

/**
 * Fastify's `serverFactory`: the HTTP server Fastify would create (same timeouts), whose
 * requests pass `answered` first; those it answers never reach Fastify. With a factory,
 * Fastify listens on one address only: `HOST=localhost` binds the first address it resolves
 * to, not both 127.0.0.1 and ::1 (the defaults, 0.0.0.0 and 127.0.0.1, are single addresses).
 */
export function guardedServer(answered: (request: IncomingMessage, response: ServerResponse) => boolean): FastifyServerFactory {
  return (handler, fastifyOptions) => {
    // Fastify passes its options with the defaults filled in.
    const options = fastifyOptions as {
      http?: ServerOptions;
      https?: unknown;
      http2?: boolean;
      keepAliveTimeout: number;
      requestTimeout: number;
      connectionTimeout: number;
      maxRequestsPerSocket: number;
    };
    if (options.https || options.http2) throw new Error('guardedServer makes plain HTTP/1.1 servers (TLS ends at the ingress); https and http2 are not supported');
    const serve = (request: IncomingMessage, response: ServerResponse) => {
      if (!answered(request, response)) handler(request, response);
    };
    // With tracing on, each request runs in its own server span (when sampled): see traceRequest.
    const server = createServer(options.http ?? {}, tracingEnabled() ? (request, response) => traceRequest(request, response, serve) : serve);
    // What Fastify sets on the server it creates itself (lib/server.js).
    server.keepAliveTimeout = options.keepAliveTimeout;
    server.requestTimeout = options.requestTimeout;
    server.setTimeout(options.connectionTimeout);
    if (options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
    return server;
  };
}
