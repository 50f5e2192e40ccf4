import type { FastifyInstance, onResponseHookHandler } from 'fastify';
import FindMyWay from 'find-my-way';
import { Counter, Metric, Registry } from 'prom-client';
import { errorRecorders, PROBLEM_SERVER_OPTIONS, RawResponseRecorder } from './framework-errors';
import { nameRequestSpan, sampledTraceId, tracingEnabled } from './tracing';

const DURATION_NAME = 'levee_http_request_duration_seconds';
const DURATION_HELP = 'Time from request received to response sent.';
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** What one (route, method) pair has seen: status counts not yet handed to prom-client, and a histogram. */
class RouteStats {
  /** status → responses since the last scrape */
  readonly pending = new Map<number, number>();
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly buckets = new Array<number>(BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;
  /** Per bucket, the last sampled request's trace (tracing on only): OpenMetrics exemplars. */
  exemplars?: (Exemplar | undefined)[];
  constructor(
    readonly route: string,
    readonly method: string,
  ) {}

  record(status: number, seconds: number, traceId?: string): void {
    this.pending.set(status, (this.pending.get(status) ?? 0) + 1);
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]) i++;
    this.buckets[i]++;
    if (traceId) (this.exemplars ??= [])[i] = { labelSet: { trace_id: traceId }, value: seconds, timestamp: Date.now() / 1000 };
    this.sum += seconds;
    this.count++;
  }
}

export type { RawResponseRecorder } from './framework-errors';

type RecordFn = (method: string, status: number, seconds: number, traceId?: string) => void;

/** An OpenMetrics exemplar as prom-client's registry formats it. */
interface Exemplar {
  labelSet: { trace_id: string };
  value: number;
  timestamp: number;
}

/**
 * `levee_http_requests_total{route,method,status}` and `levee_http_request_duration_seconds`
 * for every response. `route` is the matched route pattern (bounded cardinality), or
 * "unmatched" for 404s of unknown paths.
 *
 * Why not plain `counter.inc(labels)` / `histogram.observe(labels, v)`: prom-client hashes
 * and validates the label object on every call, a measurable share of a cheap request at
 * flood rates. Each route gets its own hook (added in `onRoute`, so no per-request route
 * lookup) that bumps plain numbers; they become prom-client values when scraped.
 *
 * Returns `recordRaw` for responses written on the raw request before Fastify routed it (the
 * gateway's answer to a client the rate limiter has blocked): their route pattern comes from
 * a find-my-way router (Fastify's own router library, same options) holding the same routes.
 * Their duration is the time to write the answer (Fastify's runs until the response finished).
 */
export function registerHttpMetrics(app: FastifyInstance, registry: Registry): { recordRaw: RawResponseRecorder } {
  const all: RouteStats[] = [];
  new Counter({
    name: 'levee_http_requests_total',
    help: 'HTTP responses by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
    collect() {
      for (const s of all) {
        for (const [status, n] of s.pending) this.inc({ route: s.route, method: s.method, status: String(status) }, n);
        s.pending.clear();
      }
    },
  });
  registry.registerMetric(durationMetric(all) as unknown as Metric);

  const recorder = (route: string): RecordFn => {
    const byMethod = new Map<string, RouteStats>();
    return (method, status, seconds, traceId) => {
      let stats = byMethod.get(method);
      if (!stats) {
        stats = new RouteStats(route, method);
        byMethod.set(method, stats);
        all.push(stats);
      }
      stats.record(status, seconds, traceId);
    };
  };

  // The router options every Levee app gives Fastify (the other options are both libraries' defaults).
  const routes = FindMyWay<FindMyWay.HTTPVersion.V1>({ ...PROBLEM_SERVER_OPTIONS.routerOptions });
  app.addHook('onRoute', (routeOptions) => {
    const record = recorder(routeOptions.url ?? 'unmatched');
    try {
      routes.on(routeOptions.method as FindMyWay.HTTPMethod | FindMyWay.HTTPMethod[], routeOptions.url ?? '/', () => undefined, record);
    } catch {
      // a route only Fastify can tell apart (by constraints): raw answers to it count as "unmatched"
    }
    // With tracing on (decided at start-up), the request's span, still open here (it ends on
    // 'close', after this 'finish'), is named after its route.
    const route = tracingEnabled() ? routeOptions.url : undefined;
    const hook: onResponseHookHandler = (request, reply, done) => {
      if (route) nameRequestSpan(request.method, route);
      record(request.method, reply.statusCode, reply.elapsedTime / 1000, sampledTraceId());
      done();
    };
    const existing = routeOptions.onResponse;
    routeOptions.onResponse = existing ? [...(Array.isArray(existing) ? existing : [existing]), hook] : [hook];
  });
  // Responses of no route (404s, malformed URLs) pass only the global hooks.
  const unmatched = recorder('unmatched');
  app.addHook('onResponse', (request, reply, done) => {
    if (request.is404) unmatched(request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  const recordRaw: RawResponseRecorder = (request, status, seconds) => {
    const method = request.method ?? 'GET';
    const route = routes.find(method as FindMyWay.HTTPMethod, request.url ?? '/');
    ((route?.store as RecordFn | undefined) ?? unmatched)(method, status, seconds);
  };
  // Malformed HTTP (answered by `problemClientErrorHandler` on the raw socket) has no method
  // or route: its own counter, by the status it got.
  const malformed = new Counter({
    name: 'levee_http_malformed_requests_total',
    help: 'Connections whose request Node rejected before it became an HTTP request (malformed request line or headers, headers too large, request timeout), by the status answered.',
    labelNames: ['status'],
    registers: [registry],
  });
  // Router errors (a malformed URL, an over-long parameter) run no route hooks: recorded by
  // `countedFrameworkErrors` through the same recorder (no route matches them: "unmatched").
  errorRecorders.set(app, { raw: recordRaw, malformed: (status) => malformed.inc({ status: String(status) }) });
  return { recordRaw };
}

/** The duration histogram in prom-client's metric shape (the registry formats it). */
function durationMetric(all: RouteStats[]) {
  const get = async () => {
    const values: { labels: Record<string, string | number>; value: number; metricName: string; exemplar?: Exemplar }[] = [];
    for (const s of all) {
      let cumulative = 0;
      for (let i = 0; i <= BUCKETS.length; i++) {
        cumulative += s.buckets[i];
        const exemplar = s.exemplars?.[i];
        values.push({ labels: { route: s.route, method: s.method, le: i < BUCKETS.length ? BUCKETS[i] : '+Inf' }, value: cumulative, metricName: `${DURATION_NAME}_bucket`, ...(exemplar ? { exemplar } : {}) });
      }
      values.push({ labels: { route: s.route, method: s.method }, value: s.sum, metricName: `${DURATION_NAME}_sum` });
      values.push({ labels: { route: s.route, method: s.method }, value: s.count, metricName: `${DURATION_NAME}_count` });
    }
    return { name: DURATION_NAME, help: DURATION_HELP, type: 'histogram', values, aggregator: 'sum' };
  };
  return {
    name: DURATION_NAME,
    help: DURATION_HELP,
    type: 'histogram',
    aggregator: 'sum',
    labelNames: ['route', 'method'],
    get,
    reset() {
      for (const s of all) {
        s.buckets.fill(0);
        s.sum = 0;
        s.count = 0;
      }
    },
  };
}
