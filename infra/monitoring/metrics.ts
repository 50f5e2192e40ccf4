/**
 * Every Prometheus metric the alerts and the dashboard may use: Levee's own (what the
 * services export; test/monitoring/catalog.test.ts checks this list against their real
 * registries, both ways) and `up`, which Prometheus records for every scrape. The README's
 * metrics table is written from this list.
 */
export type MetricType = 'counter' | 'gauge' | 'histogram';
export type MetricSource = 'gateway' | 'media' | 'worker' | 'model' | 'webhooks' | 'prometheus';

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
  /** The services that export it (or `prometheus` for `up`). */
  readonly sources: readonly MetricSource[];
  readonly help: string;
}

export const METRICS: readonly MetricSpec[] = [
  { name: 'levee_http_requests_total', type: 'counter', labels: ['route', 'method', 'status'], sources: ['gateway', 'media'], help: 'HTTP responses by route pattern (`unmatched` for unknown paths), method and status' },
  { name: 'levee_http_request_duration_seconds', type: 'histogram', labels: ['route', 'method'], sources: ['gateway', 'media'], help: 'time from request received to response sent' },
  { name: 'levee_http_malformed_requests_total', type: 'counter', labels: ['status'], sources: ['gateway', 'media'], help: 'connections whose request Node rejected before it became an HTTP request (malformed, too large, timed out)' },
  { name: 'levee_rate_limited_total', type: 'counter', labels: [], sources: ['gateway'], help: 'requests answered 429 by the per-IP rate limiter' },
  { name: 'levee_cache_requests_total', type: 'counter', labels: ['cache', 'result'], sources: ['gateway'], help: 'cache lookups by result: `hit`, `miss`, `stale`, `coalesced`' },
  { name: 'levee_cache_origin_loads_total', type: 'counter', labels: ['cache'], sources: ['gateway'], help: 'loads from the origin (the model API) on a miss or an expiry' },
  { name: 'levee_circuit_state', type: 'gauge', labels: ['target'], sources: ['gateway', 'worker'], help: 'circuit breaker state per target: 0 closed, 1 open, 2 half-open' },
  { name: 'levee_queue_jobs', type: 'gauge', labels: ['state'], sources: ['gateway', 'worker'], help: 'jobs in the render queue by state (`waiting`, `prioritized`, `delayed`, `active`, `completed`, `failed`), read from the queue Redis at scrape time' },
  { name: 'levee_queue_rejected_total', type: 'counter', labels: ['reason'], sources: ['gateway'], help: '`POST /api/images` answered 503 by the queue bound: `depth` (QUEUE_MAX_WAITING) or `memory` (QUEUE_MAX_MEMORY_PERCENT)' },
  { name: 'levee_jobs_total', type: 'counter', labels: ['result'], sources: ['worker'], help: 'job attempts by result: `completed`, `failed` (for good), `retried`, `postponed` (breaker open, model or store not ready), `cancelled` (DELETE), `expired` (past `JOB_DEADLINE_SECONDS`, not rendered)' },
  { name: 'levee_job_duration_seconds', type: 'histogram', labels: ['result'], sources: ['worker'], help: 'time spent on one job attempt' },
  { name: 'levee_queue_oldest_waiting_seconds', type: 'gauge', labels: [], sources: ['worker'], help: 'age of the oldest job waiting for a worker, since it was submitted (0 when none waits)' },
  { name: 'levee_queue_stalled_jobs_total', type: 'counter', labels: [], sources: ['worker'], help: 'stalled jobs (their worker died or lost its lock) this worker moved back to waiting' },
  { name: 'levee_queue_redis_memory_used_bytes', type: 'gauge', labels: [], sources: ['worker'], help: 'memory the queue Redis uses (`used_memory`)' },
  { name: 'levee_queue_redis_memory_max_bytes', type: 'gauge', labels: [], sources: ['worker'], help: "the queue Redis's `maxmemory` (0: no limit)" },
  { name: 'levee_webhook_deliveries_total', type: 'counter', labels: ['result'], sources: ['webhooks'], help: 'webhook delivery attempts by result: `delivered` (2xx), `retried` (will be tried again), `failed` (attempts used up), `refused` (an address the policy refuses)' },
  { name: 'levee_webhook_delivery_duration_seconds', type: 'histogram', labels: [], sources: ['webhooks'], help: "time of one delivery attempt, until the receiver's status line (or the failure)" },
  { name: 'levee_event_streams', type: 'gauge', labels: [], sources: ['gateway'], help: 'open `GET /api/images/{id}/events` streams in a gateway pod' },
  { name: 'levee_event_streams_refused_total', type: 'counter', labels: ['reason'], sources: ['gateway'], help: 'event streams refused: `client` (EVENTS_MAX_PER_CLIENT, 429) or `process` (EVENTS_MAX, 503)' },
  { name: 'levee_model_requests_total', type: 'counter', labels: ['route'], sources: ['model'], help: 'requests answered by the model API, per route' },
  { name: 'levee_model_render_duration_seconds', type: 'histogram', labels: [], sources: ['model'], help: 'time to render and encode one image' },
  { name: 'up', type: 'gauge', labels: [], sources: ['prometheus'], help: "Prometheus's own: 1 if the last scrape of a target succeeded" },
];

/** The series names a metric shows up under in Prometheus (a histogram has three). */
export function seriesNames(m: MetricSpec): string[] {
  return m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
}

/** Every series name the catalog knows → its metric. */
export const SERIES: ReadonlyMap<string, MetricSpec> = new Map(METRICS.flatMap((m) => seriesNames(m).map((s) => [s, m] as const)));
