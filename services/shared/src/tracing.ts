/**
 * OpenTelemetry tracing, configured by the standard `OTEL_*` variables and off unless an OTLP
 * endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
 *
 * Off, nothing of the SDK is loaded: no provider, no exporter, no instrumentation, and the
 * helpers below return at their first test. On, each service entry calls {@link startTracing}
 * before it loads Fastify, ioredis, BullMQ or pino (instrumentation patches modules as they are
 * required), and the trace crosses the queue inside each job (BullMQ telemetry, bullmq-otel).
 *
 * What the SDK itself reads: `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (the trace
 * provider), `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` (the resource), the exporter's
 * endpoint, headers, timeout and compression. Levee picks the exporter by
 * `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`, and sets two defaults
 * of its own: the service name `levee-<service>` and the sampler `parentbased_traceidratio`
 * at 0.1 (a sampled `traceparent` from the caller is always kept).
 */
import type { Attributes, Context, Tracer } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHmac, randomBytes } from 'node:crypto';
import type { Telemetry } from 'bullmq';
import { parseSettings } from './settings-parse';
import { tracingSettings, tracingSettingsSchema, type TracingSettings } from './tracing-settings';

type Env = Record<string, string | undefined>;

// The API (small, a no-op without a provider) is loaded once tracing starts, and kept: a
// require() per call would resolve the module again on every request.
let apiModule: typeof import('@opentelemetry/api') | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const api = (): typeof import('@opentelemetry/api') => (apiModule ??= require('@opentelemetry/api') as typeof import('@opentelemetry/api'));

let on = false;
let bullmq: Telemetry | undefined;
let current: Tracing | undefined;
/** How long a shutdown waits for the last spans to leave. */
const SHUTDOWN_MS = 3000;
/** Per process: a client key's hash in a span cannot be reversed by hashing every address. */
const KEY_SALT = randomBytes(16);
let entryTracer: Tracer | undefined;
/**
 * The share of new requests traced, when the sampler is ratio-based: {@link traceRequest}
 * draws it itself before making any span, so an unsampled request costs one random number.
 */
let rootRatio: number | undefined;
/** The attribute that tells the sampler the request was drawn already (and is kept). */
const DRAWN = 'levee.sampling.drawn';
/** Probes and scrapes: never traced. */
const QUIET = new Set(['/healthz', '/readyz', '/metrics']);

/** Whether this process exports traces. */
export function tracingEnabled(): boolean {
  return on;
}

export interface Tracing {
  readonly settings: TracingSettings;
  /** Exports what is buffered, then stops the exporter (on shutdown, after the servers close). */
  shutdown(): Promise<void>;
}

/** Whether `env` asks for traces. */
export function tracingRequested(env: Env = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== 'true';
}

/**
 * Starts the trace provider, its OTLP exporter and the instrumentations, when `env` sets an
 * endpoint; else returns undefined and loads nothing. A bad value throws, naming the variable.
 */
export interface TracingOptions {
  /**
   * The process makes its request spans itself ({@link traceRequest}): the HTTP instrumentation
   * then leaves incoming requests alone. The gateway does, for its cost under a flood.
   */
  readonly ownRequestSpans?: boolean;
}

export function startTracing(service: string, env: Env = process.env, options: TracingOptions = {}): Tracing | undefined {
  if (!tracingRequested(env)) return undefined;
  const settings = tracingSettings(parseSettings(tracingSettingsSchema, env)); // a SettingsError names the variable
  // The SDK reads these from process.env: give it Levee's defaults where none is set.
  const defaults: Record<string, string> = { OTEL_SERVICE_NAME: `levee-${service}`, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' };
  if (!env.OTEL_TRACES_SAMPLER && !env.OTEL_TRACES_SAMPLER_ARG) defaults.OTEL_TRACES_SAMPLER_ARG = '0.1';
  for (const [k, v] of Object.entries(defaults)) if (!process.env[k]) process.env[k] = v;
  /* eslint-disable @typescript-eslint/no-require-imports */
  const sdk = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
  const { NodeTracerProvider, BatchSpanProcessor } = sdk;
  const { detectResources, envDetector, resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { registerInstrumentations } = require('@opentelemetry/instrumentation') as typeof import('@opentelemetry/instrumentation');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici') as typeof import('@opentelemetry/instrumentation-undici');
  const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');
  const { PinoInstrumentation } = require('@opentelemetry/instrumentation-pino') as typeof import('@opentelemetry/instrumentation-pino');
  const { AwsInstrumentation } = require('@opentelemetry/instrumentation-aws-sdk') as typeof import('@opentelemetry/instrumentation-aws-sdk');
  const { BullMQOtel } = require('bullmq-otel') as typeof import('bullmq-otel');
  /* eslint-enable @typescript-eslint/no-require-imports */

  const resource = resourceFromAttributes({ 'service.name': `levee-${service}` }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, sampler: samplerFor(sdk, settings, env), spanProcessors: [redacting(new BatchSpanProcessor(exporterFor(settings.protocol)))] });
  provider.register();
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      // Probes and scrapes are not requests anyone traces.
      new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => QUIET.has((req.url ?? '').split('?')[0]!), disableIncomingRequestInstrumentation: options.ownRequestSpans ?? false }),
      new UndiciInstrumentation(),
      // Redis commands inside a request or a job, never the background loops of BullMQ.
      // The statement is the command's name only: its arguments hold keys named after clients
      // (the rate limiter's), prompts (a job's data) and images, none of which a trace may carry.
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
      new PinoInstrumentation(),
      new AwsInstrumentation({ suppressInternalInstrumentation: true }),
    ],
  });
  bullmq = new BullMQOtel({ tracerName: 'levee-bullmq' });
  entryTracer = api().trace.getTracer('levee');
  on = true;
  current = {
    settings,
    shutdown: async () => {
      on = false;
      bullmq = undefined;
      entryTracer = undefined;
      rootRatio = undefined;
      current = undefined;
      unregister();
      // Bounded: an unreachable collector must not eat the pod's grace period (the exporter
      // itself waits up to 10 s); the spans still buffered then are lost.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([provider.shutdown().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, SHUTDOWN_MS).unref()))]);
      clearTimeout(timer);
    },
  };
  return current;
}

/** Exports the spans still buffered and stops tracing: the last step of a shutdown (a no-op when off). */
export async function shutdownTracing(): Promise<void> {
  await current?.shutdown();
}

/** What the HTTP instrumentations record of a person: the client's address and user agent. */
const PERSONAL = ['client.address', 'http.client_ip', 'user_agent.original', 'http.user_agent'];

/**
 * Spans leave without what identifies a person (the end user's address, from X-Forwarded-For,
 * and user agent), and a client span's URL keeps only its origin: a webhook receiver's path or
 * query may hold a secret token.
 */
function redacting(next: import('@opentelemetry/sdk-trace-node').SpanProcessor): import('@opentelemetry/sdk-trace-node').SpanProcessor {
  const { SpanKind } = api();
  return {
    onStart: (span, ctx) => next.onStart(span, ctx),
    onEnd: (span) => {
      const attributes = span.attributes as Record<string, unknown>;
      for (const k of PERSONAL) delete attributes[k];
      if (span.kind === SpanKind.CLIENT) {
        for (const k of ['url.full', 'http.url']) {
          const url = attributes[k];
          if (typeof url === 'string' && URL.canParse(url)) attributes[k] = new URL(url).origin;
        }
        for (const k of ['url.path', 'url.query', 'http.target']) delete attributes[k];
      }
      next.onEnd(span);
    },
    forceFlush: () => next.forceFlush(),
    shutdown: () => next.shutdown(),
  };
}

/**
 * The sampler of the OTEL_TRACES_SAMPLER variables, with one rule of Levee's for the
 * `parentbased_*` ones: a trace starts only at a request (a server span). A span without a
 * parent of any other kind (a queue add outside any request, a job whose request was not
 * sampled, BullMQ's own background work) is not sampled: such traces would be fragments.
 */
function samplerFor(sdk: typeof import('@opentelemetry/sdk-trace-node'), settings: TracingSettings, env: Env) {
  const { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, SamplingDecision, TraceIdRatioBasedSampler } = sdk;
  const { SpanKind } = api();
  const arg = env.OTEL_TRACES_SAMPLER_ARG || process.env.OTEL_TRACES_SAMPLER_ARG;
  const ratio = arg ? Number(arg) : 1;
  const base = (name: string) => (name.endsWith('always_on') ? new AlwaysOnSampler() : name.endsWith('always_off') ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio));
  if (!settings.sampler.startsWith('parentbased_')) return base(settings.sampler);
  const inner: import('@opentelemetry/sdk-trace-node').Sampler = base(settings.sampler);
  rootRatio = settings.sampler === 'parentbased_always_on' ? 1 : settings.sampler === 'parentbased_always_off' ? 0 : ratio;
  const entriesOnly: import('@opentelemetry/sdk-trace-node').Sampler = {
    shouldSample: (...args) =>
      args[3] !== SpanKind.SERVER ? { decision: SamplingDecision.NOT_RECORD } : args[4]?.[DRAWN] ? { decision: SamplingDecision.RECORD_AND_SAMPLED } : inner.shouldSample(...args),
    toString: () => `EntrySpansOnly{${inner.toString()}}`,
  };
  return new ParentBasedSampler({ root: entriesOnly });
}

/**
 * A request's server span, made by Levee (see {@link TracingOptions.ownRequestSpans}): it
 * continues the caller's `traceparent`, and only a sampled request runs with it in context;
 * an unsampled one runs with no span at all, so Redis and the queue are not instrumented for
 * it (the cost of tracing under a flood is that of the sampled share). Off: runs `handle`.
 * `handle` gets the request and response back, so a caller needs no closure per request.
 */
export function traceRequest(request: IncomingMessage, response: ServerResponse, handle: (request: IncomingMessage, response: ServerResponse) => void): void {
  if (!entryTracer) return handle(request, response);
  // A new trace (no traceparent): drawn here, so the 90% not kept make no span at all.
  const drawn = request.headers.traceparent === undefined && rootRatio !== undefined;
  if (drawn && !(Math.random() < rootRatio!)) return handle(request, response);
  const path = (request.url ?? '/').split('?')[0]!;
  if (QUIET.has(path)) return handle(request, response); // probes are not traced
  const { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode } = api();
  const parent = drawn ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, request.headers);
  const attributes = { 'http.request.method': request.method ?? 'GET', 'url.path': path, ...(drawn ? { [DRAWN]: true } : {}) };
  const span = entryTracer.startSpan(request.method ?? 'GET', { kind: SpanKind.SERVER, attributes }, parent);
  if (!span.isRecording()) return handle(request, response);
  response.once('close', () => {
    span.setAttribute('http.response.status_code', response.statusCode);
    if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  });
  context.with(trace.setSpan(parent, span), handle, undefined, request, response);
}

function exporterFor(protocol: TracingSettings['protocol']) {
  /* eslint-disable @typescript-eslint/no-require-imports */
  if (protocol === 'grpc') return new (require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  if (protocol === 'http/json') return new (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  return new (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** BullMQ's `telemetry` option: the trace context travels in each job (undefined when off). */
export function queueTelemetry(): { telemetry: Telemetry } | Record<string, never> {
  return bullmq ? { telemetry: bullmq } : {};
}

/**
 * For a queue added to on a request's path: BullMQ traces an add (and puts the trace context in
 * the job) only inside a sampled request, so an unsampled request's job costs nothing more.
 * (BullMQ reads `opts.telemetry` on every operation.) Nothing when off.
 */
export function traceQueueWhenSampled(queue: { opts: { telemetry?: Telemetry } }): void {
  if (!bullmq) return;
  const telemetry = bullmq;
  Object.defineProperty(queue.opts, 'telemetry', { configurable: true, enumerable: true, get: () => (api().trace.getActiveSpan()?.isRecording() ? telemetry : undefined) });
}

/** Sets attributes on the active span (the request's or the job's); nothing when off. */
export function annotate(attributes: Attributes | (() => Attributes)): void {
  if (!on) return;
  api().trace.getActiveSpan()?.setAttributes(typeof attributes === 'function' ? attributes() : attributes);
}

/** Names the active (server) span after its route, `POST /api/images`, and sets `http.route`. */
export function nameRequestSpan(method: string, route: string): void {
  if (!on) return;
  const span = api().trace.getActiveSpan();
  span?.updateName(`${method} ${route}`);
  span?.setAttribute('http.route', route);
}

/**
 * The active context, to resume later (a batched rate-limit check or add runs in the context
 * of the turn's first request: each waiter must resume in its own, span or none); undefined when off.
 */
export function activeContext(): Context | undefined {
  return on ? api().context.active() : undefined;
}

/**
 * Runs `fn` in `ctx` when there is one. Already in it (an unsampled waiter resumed by an
 * unsampled turn: both have no span), `fn` runs as is: a context switch costs every request.
 */
export function withContext<T>(ctx: Context | undefined, fn: () => T): T {
  if (!ctx) return fn();
  const { context } = api();
  return ctx === context.active() ? fn() : context.with(ctx, fn);
}

/** The trace id of the active span when it is sampled (an exemplar's label); undefined when off. */
export function sampledTraceId(): string | undefined {
  if (!on) return undefined;
  const ctx = api().trace.getActiveSpan()?.spanContext();
  return ctx && ctx.traceFlags & 1 ? ctx.traceId : undefined;
}

/**
 * A client key as a span may carry it: never the address, and not a plain hash of it either
 * (every IPv4 address can be hashed in minutes): an HMAC under a key of this process, 16 hex
 * digits. It groups one client's requests within a pod's traces.
 */
export function keyHash(key: string): string {
  let hash = KEY_HASHES.get(key);
  if (hash === undefined) {
    hash = createHmac('sha256', KEY_SALT).update(key).digest('hex').slice(0, 16);
    // A flood repeats its clients: the recent ones' hashes are kept (an HMAC is ~10 µs).
    if (KEY_HASHES.size >= KEY_HASHES_KEPT) KEY_HASHES.delete(KEY_HASHES.keys().next().value!);
    KEY_HASHES.set(key, hash);
  }
  return hash;
}
const KEY_HASHES_KEPT = 4096;
const KEY_HASHES = new Map<string, string>();

/** For a service entry, before anything else is loaded: starts tracing, or prints what is wrong and exits 78. */
export function startTracingOrExit(service: string, options: TracingOptions = {}): Tracing | undefined {
  try {
    return startTracing(service, process.env, options);
  } catch (err) {
    process.stderr.write(`levee-${service}: ${(err as Error).message}\n`);
    process.exit(78); // EX_CONFIG, like every other invalid setting
  }
}
