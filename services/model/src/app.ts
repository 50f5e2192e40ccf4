import Fastify, { FastifyInstance, FastifyServerOptions, LogController } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AJV_OPTIONS, RenderRequest, renderRequestSchema } from '../../shared/src/job';
import { PROBLEM_SERVER_OPTIONS } from '../../shared/src/framework-errors';
import { Lifecycle, registerHealthRoutes } from '../../shared/src/http-lifecycle';
import { DEFAULT_REQUEST_TIMEOUT_MS, slowClientOptions } from '../../shared/src/http-server';
import { registerProblemHandlers } from '../../shared/src/problem';
import { renderPng } from './renderer';
import { catalog } from './styles';

export interface ModelAppOptions {
  /** Delay of GET /v1/styles, standing in for a slow database read. @default 200 */
  readonly stylesDelayMs?: number;
  /** Where metrics are registered. @default a new registry with Node's default metrics */
  readonly registry?: Registry;
  /** Fastify logger option (a pino instance or config). @default false */
  readonly logger?: FastifyServerOptions['loggerInstance'];
}

/** `lifecycle` lets server.ts flip readiness to 503 while the process drains. */
export interface ModelApp extends FastifyInstance {
  lifecycle: Lifecycle;
  /** What the metrics listener (METRICS_PORT) serves; the public port has no /metrics. */
  metricsRegistry: Registry;
}

/** Largest body worth parsing: the longest prompt plus the other fields fits well within it. */
const BODY_LIMIT = 16 * 1024;

/**
 * The model API: a stand-in for an inference service, replaceable by a real one behind
 * MODEL_URL. No side effects until `listen()`.
 */
export function buildModelApp(options: ModelAppOptions = {}): ModelApp {
  const stylesDelayMs = options.stylesDelayMs ?? 200;
  const registry = options.registry ?? defaultRegistry();
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // No per-request log lines (a flood would cost more in logging than in serving);
    // errors are still logged by the problem handlers.
    logController: new LogController({ disableRequestLogging: true }),
    // Router errors, malformed HTTP and requests during the drain: problem details too.
    ...PROBLEM_SERVER_OPTIONS,
    ...slowClientOptions(DEFAULT_REQUEST_TIMEOUT_MS),
    bodyLimit: BODY_LIMIT,
    // Reject, never repair: no silent removal of unknown fields, no "512" → 512.
    ajv: { customOptions: AJV_OPTIONS },
  }) as unknown as ModelApp;
  const lifecycle: Lifecycle = { draining: false };
  app.decorate('lifecycle', lifecycle);
  app.decorate('metricsRegistry', registry);
  // JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  registerProblemHandlers(app);

  const requests = new Counter({
    name: 'levee_model_requests_total',
    help: 'Requests answered by the model API, per route.',
    labelNames: ['route'],
    registers: [registry],
  });
  const renderSeconds = new Histogram({
    name: 'levee_model_render_duration_seconds',
    help: 'Time to render and encode one image.',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request) => {
    requests.inc({ route: request.routeOptions.url ?? 'unmatched' });
  });

  app.post<{ Body: RenderRequest }>('/v1/render', { schema: { body: renderRequestSchema } }, async (request, reply) => {
    const { prompt, width, height, style, seed } = request.body;
    const end = renderSeconds.startTimer();
    const png = renderPng({ prompt, width, height, style, seed });
    end();
    return reply.type('image/png').header('content-length', png.length).send(png);
  });

  app.get('/v1/styles', async (_request, reply) => {
    await new Promise((resolve) => setTimeout(resolve, stylesDelayMs));
    return reply.header('cache-control', 'no-cache').send(catalog());
  });

  registerHealthRoutes(app, { lifecycle });
  return app;
}

/**
 * Plain registry, no default labels: the series stay exactly
 * `levee_model_requests_total{route="/v1/styles"}` (Prometheus adds pod/job labels itself).
 */
function defaultRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
