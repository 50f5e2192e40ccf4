import { timingSafeEqual } from 'node:crypto';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions, LogController } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AJV_OPTIONS, RENDER_LIMITS, RenderRequest, renderRequestSchema } from '../../shared/src/job';
import { PROBLEM_SERVER_OPTIONS } from '../../shared/src/framework-errors';
import { Lifecycle, registerHealthRoutes } from '../../shared/src/http-lifecycle';
import { DEFAULT_REQUEST_TIMEOUT_MS, slowClientOptions } from '../../shared/src/http-server';
import { registerProblemHandlers, sendProblem } from '../../shared/src/problem';
import { renderPng } from './renderer';
import { catalog } from './styles';

export interface ModelAppOptions {
  /** Delay of GET /v1/styles, standing in for a slow database read. @default 200 */
  readonly stylesDelayMs?: number;
  /**
   * Simulated model load: from listen(), this long before the warm-up render; until that has
   * run, `/readyz` and the render routes answer 503 (with Retry-After). @default 0
   */
  readonly loadSeconds?: number;
  /** Render routes require `Authorization: Bearer <key>` when set. */
  readonly apiKey?: string;
  /** Where metrics are registered. @default a new registry with Node's default metrics */
  readonly registry?: Registry;
  /** Fastify logger option (a pino instance or config). @default false */
  readonly logger?: FastifyServerOptions['loggerInstance'];
}

/** `lifecycle` lets server.ts flip readiness to 503 while the process drains. */
export interface ModelApp extends FastifyInstance {
  lifecycle: Lifecycle;
  /** Loaded and warmed up: it renders, and /readyz is 200. */
  warm: { ready: boolean };
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

  // The model's load: a real one reads gigabytes of weights, then renders once to warm up
  // (kernels compiled, memory allocated) before it takes work. Until then it says 503.
  const warm = { ready: false };
  app.decorate('warm', warm);
  const loadMs = Math.max(0, (options.loadSeconds ?? 0) * 1000);
  let loading: NodeJS.Timeout | undefined;
  const warmUp = () => {
    renderPng({ prompt: 'warm-up', width: 64, height: 64, seed: 0 });
    warm.ready = true;
    app.log.info({ loadSeconds: loadMs / 1000 }, 'model loaded and warmed up: ready');
  };
  app.addHook('onListen', (done) => {
    if (loadMs === 0) warmUp();
    else loading = setTimeout(warmUp, loadMs);
    done();
  });
  app.addHook('onClose', async () => clearTimeout(loading));
  const RETRY_AFTER_SECONDS = 1;

  /** Before a render: the key when one is set, and a warm model. Returns true when it answered. */
  const refused = (request: FastifyRequest, reply: FastifyReply, openai: boolean): boolean => {
    if (options.apiKey && !sameKey(request.headers.authorization, `Bearer ${options.apiKey}`)) {
      if (openai) void reply.code(401).send(openAiError('Incorrect API key provided.', 'invalid_api_key'));
      else void sendProblem(reply, 401, 'A valid Authorization: Bearer <key> is required.');
      return true;
    }
    if (!warm.ready) {
      reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      if (openai) void reply.code(503).send(openAiError('The model is loading; retry shortly.', 'model_loading', 'server_error'));
      else void sendProblem(reply, 503, 'The model is loading; retry shortly.');
      return true;
    }
    return false;
  };

  app.post<{ Body: RenderRequest }>('/v1/render', { schema: { body: renderRequestSchema } }, async (request, reply) => {
    if (refused(request, reply, false)) return reply;
    const { prompt, width, height, style, seed } = request.body;
    const end = renderSeconds.startTimer();
    const png = renderPng({ prompt, width, height, style, seed });
    end();
    return reply.type('image/png').header('content-length', png.length).send(png);
  });

  // The OpenAI images API (POST /v1/images/generations), as local and hosted servers expose
  // it: one image, base64 in the JSON answer; errors in OpenAI's shape. Checked by hand, not by
  // a schema, so that a bad request gets OpenAI's error body rather than a problem detail.
  app.post('/v1/images/generations', async (request, reply) => {
    if (refused(request, reply, true)) return reply;
    const parsed = parseGeneration(request.body);
    if ('error' in parsed) return reply.code(400).send(openAiError(parsed.error, null, 'invalid_request_error', parsed.param));
    const end = renderSeconds.startTimer();
    const png = renderPng(parsed.request);
    end();
    return reply.send({ created: Math.floor(Date.now() / 1000), data: [{ b64_json: png.toString('base64') }] });
  });

  app.get('/v1/styles', async (_request, reply) => {
    await new Promise((resolve) => setTimeout(resolve, stylesDelayMs));
    return reply.header('cache-control', 'no-cache').send(catalog());
  });

  registerHealthRoutes(app, { lifecycle, ready: () => warm.ready, notReadyDetail: 'The model is loading (MODEL_LOAD_SECONDS) or warming up.' });
  return app;
}

/** The key compared in constant time (no timing tells how much of a guess was right). */
function sameKey(given: string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An error body as the OpenAI API writes it. */
function openAiError(message: string, code: string | null, type = 'invalid_request_error', param: string | null = null) {
  return { error: { message, type, param, code } };
}

/** The body of POST /v1/images/generations, checked: the render it asks for, or what is wrong. */
export function parseGeneration(body: unknown): { request: RenderRequest } | { error: string; param: string | null } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { error: 'The body must be a JSON object.', param: null };
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.length === 0) return { error: "'model' is required: a string.", param: 'model' };
  if (typeof b.prompt !== 'string' || b.prompt.length < 1 || b.prompt.length > RENDER_LIMITS.promptMaxLength) {
    return { error: `'prompt' is required: a string of 1 to ${RENDER_LIMITS.promptMaxLength} characters.`, param: 'prompt' };
  }
  const size = typeof b.size === 'string' ? /^(\d{1,5})x(\d{1,5})$/.exec(b.size) : b.size === undefined ? ['', '512', '512'] : null;
  const [width, height] = size ? [Number(size[1]), Number(size[2])] : [NaN, NaN];
  const inRange = (n: number) => Number.isInteger(n) && n >= RENDER_LIMITS.minSize && n <= RENDER_LIMITS.maxSize;
  if (!inRange(width) || !inRange(height)) return { error: `'size' must be "<width>x<height>", each from ${RENDER_LIMITS.minSize} to ${RENDER_LIMITS.maxSize}.`, param: 'size' };
  if (b.n !== undefined && b.n !== 1) return { error: "'n' must be 1: this server makes one image per request.", param: 'n' };
  if (b.response_format !== undefined && b.response_format !== 'b64_json') return { error: "'response_format' must be b64_json: this server hosts no image URLs.", param: 'response_format' };
  if (b.seed !== undefined && !(Number.isInteger(b.seed) && (b.seed as number) >= 0 && (b.seed as number) <= RENDER_LIMITS.maxSeed)) {
    return { error: `'seed' must be an integer from 0 to ${RENDER_LIMITS.maxSeed}.`, param: 'seed' };
  }
  if (b.style !== undefined && !(typeof b.style === 'string' && new RegExp(RENDER_LIMITS.stylePattern).test(b.style))) return { error: `'style' must match ${RENDER_LIMITS.stylePattern}.`, param: 'style' };
  return { request: { prompt: b.prompt, width, height, ...(b.seed !== undefined ? { seed: b.seed as number } : {}), ...(b.style !== undefined ? { style: b.style as string } : {}) } };
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
