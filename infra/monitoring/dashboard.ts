/**
 * The Grafana dashboard, built with Grafana's own builders (@grafana/grafana-foundation-sdk)
 * rather than hand-written JSON. Every query names only metrics of ./metrics.ts
 * (test/monitoring/catalog.test.ts parses each with the PromQL grammar and checks).
 */
import { DashboardBuilder, DatasourceVariableBuilder, MappingType, RowBuilder, ThresholdsConfigBuilder, ThresholdsMode } from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { LegendDisplayMode, LegendPlacement, VizLegendOptionsBuilder } from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StateTimelineBuilder } from '@grafana/grafana-foundation-sdk/statetimeline';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import type { LeveeConfig, MonitoringConfig } from '../config/resolve';
import { COMPONENTS } from '../names';
import { selectedMetrics } from './promql';

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const RATE = '[$__rate_interval]';

/**
 * Histograms whose observations carry exemplars with a `trace_id` label when tracing is on
 * (LEVEE_OTLP_ENDPOINT; docs/how-to/tracing.md): their queries ask Grafana for the exemplars,
 * which link a latency point to its trace. Harmless without exemplars (none are shown).
 */
export const EXEMPLAR_METRICS: readonly string[] = ['levee_http_request_duration_seconds'];

/** One query of a panel: the PromQL and its legend; exemplars on for the histograms that carry them. */
function query(expr: string, legend: string, refId: string): DataqueryBuilder {
  const q = new DataqueryBuilder().expr(expr).legendFormat(legend).refId(refId);
  if (selectedMetrics(expr).some((metric) => EXEMPLAR_METRICS.some((h) => metric === `${h}_bucket`))) q.exemplar(true);
  return q;
}

const legend = () => new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom);

function timeseries(title: string, unit: string, description: string, queries: readonly [string, string][]): TimeseriesBuilder {
  const panel = new TimeseriesBuilder().title(title).description(description).unit(unit).min(0).datasource(DATASOURCE).height(8).span(8).legend(legend());
  queries.forEach(([expr, legend], i) => panel.withTarget(query(expr, legend, String.fromCharCode(65 + i))));
  return panel;
}

/** The dashboard of one chart (namespace), as Grafana's JSON model. */
export function leveeDashboard(config: LeveeConfig, monitoring: MonitoringConfig): Dashboard {
  const ns = config.namespace;
  const gw = `namespace="${ns}",job="${COMPONENTS.gateway}"`;
  const api = `${gw},route=~"/api/.*"`;
  const any = `namespace="${ns}"`;
  const quantile = (q: number) => `histogram_quantile(${q}, sum by (le) (rate(levee_http_request_duration_seconds_bucket{${api}}${RATE})))`;

  const builder = new DashboardBuilder(`Levee (${ns})`)
    .uid(`levee-${ns}`)
    .tags(['levee'])
    .description('The Levee image API under load: admission (rate limiter), cache, circuit breakers, the render queue and its workers.')
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'))
    .withRow(new RowBuilder('Gateway'))
    .withPanel(timeseries('Requests by status', 'reqps', 'Every gateway answer per second, by HTTP status.', [[`sum by (status) (rate(levee_http_requests_total{${gw}}${RATE}))`, '{{status}}']]))
    .withPanel(
      timeseries('/api admitted vs rate limited', 'reqps', 'Requests to /api answered by the routes, against those refused with 429 by the per-IP limiter.', [
        [`sum(rate(levee_http_requests_total{${api},status!="429"}${RATE}))`, 'admitted'],
        [`sum(rate(levee_rate_limited_total{${gw}}${RATE}))`, '429'],
      ]),
    )
    .withPanel(
      timeseries('/api latency', 's', 'p50 and p99 of /api answers, from the request duration histogram.', [
        [quantile(0.5), 'p50'],
        [quantile(0.99), 'p99'],
      ]),
    )
    .withPanel(
      timeseries('Cache: lookups and origin loads', 'reqps', 'Lookups of the flood-proof cache by result, and the loads that reached the origin (one per key and expiry, whatever the flood).', [
        [`sum by (result) (rate(levee_cache_requests_total{${gw}}${RATE}))`, '{{result}}'],
        [`sum(rate(levee_cache_origin_loads_total{${gw}}${RATE}))`, 'origin loads'],
      ]),
    )
    .withPanel(
      new StateTimelineBuilder()
        .title('Circuit breakers')
        .description('State of each breaker per component and target (the worst of its pods).')
        .datasource(DATASOURCE)
        .height(8)
        .span(8)
        .legend(legend())
        .withTarget(query(`max by (job, target) (levee_circuit_state{${any}})`, '{{job}} → {{target}}', 'A'))
        .mappings([
          {
            type: MappingType.ValueToText,
            options: { '0': { text: 'closed', color: 'green' }, '1': { text: 'open', color: 'red' }, '2': { text: 'half-open', color: 'orange' } },
          },
        ]),
    )
    .withPanel(
      timeseries('Replicas (scraped pods)', 'short', 'Pods of each component that Prometheus scrapes.', [
        [`count by (job) (up{${any},job=~"${COMPONENTS.gateway}|${COMPONENTS.worker}|${COMPONENTS.webhooks}|${COMPONENTS.media}|${COMPONENTS.model}"})`, '{{job}}'],
      ]),
    )
    .withRow(new RowBuilder('Queue and workers'))
    .withPanel(
      timeseries('Queue depth', 'short', 'Jobs in the render queue by state (postponed jobs are delayed).', [
        [`max by (state) (levee_queue_jobs{${any},state=~"waiting|prioritized|delayed|active"})`, '{{state}}'],
      ]),
    )
    .withPanel(
      timeseries('Oldest waiting job', 's', `Age of the oldest job waiting for a worker; the alert line is at ${monitoring.alerts.oldestJobMinutes} minutes.`, [
        [`max(levee_queue_oldest_waiting_seconds{${any}})`, 'oldest'],
      ]).thresholds(
        new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
          { value: null, color: 'green' },
          { value: monitoring.alerts.oldestJobMinutes * 60, color: 'red' },
        ]),
      ),
    )
    .withPanel(
      timeseries('Job outcomes', 'ops', 'Job attempts per second by result, and stalled jobs recovered after a worker died.', [
        [`sum by (result) (rate(levee_jobs_total{${any}}${RATE}))`, '{{result}}'],
        [`sum(rate(levee_queue_stalled_jobs_total{${any}}${RATE}))`, 'stalled, recovered'],
      ]),
    )
    .withPanel(
      timeseries('Refused by the queue bound', 'reqps', 'POST /api/images answered 503 because the queue is full (depth) or its Redis nearly is (memory).', [
        [`sum by (reason) (rate(levee_queue_rejected_total{${gw}}${RATE}))`, '{{reason}}'],
      ]),
    )
    .withPanel(
      timeseries('Queue Redis memory', 'bytes', 'Used memory against maxmemory (noeviction: writes fail when full).', [
        [`max(levee_queue_redis_memory_used_bytes{${any}})`, 'used'],
        [`max(levee_queue_redis_memory_max_bytes{${any}})`, 'maxmemory'],
      ]),
    )
    .withPanel(
      timeseries('Job duration', 's', 'p50 and p99 of a job attempt (one model call plus storing the PNG).', [
        [`histogram_quantile(0.5, sum by (le) (rate(levee_job_duration_seconds_bucket{${any}}${RATE})))`, 'p50'],
        [`histogram_quantile(0.99, sum by (le) (rate(levee_job_duration_seconds_bucket{${any}}${RATE})))`, 'p99'],
      ]),
    )
    .withRow(new RowBuilder('Push: webhooks and event streams'))
    .withPanel(
      timeseries('Webhook deliveries', 'ops', `Delivery attempts per second by result; the alert fires above ${monitoring.alerts.webhookFailurePercent}% not delivered.`, [
        [`sum by (result) (rate(levee_webhook_deliveries_total{${any}}${RATE}))`, '{{result}}'],
      ]),
    )
    .withPanel(
      timeseries('Webhook delivery time', 's', 'p50 and p99 of one delivery attempt (the receiver answering, or the 10 s timeout).', [
        [`histogram_quantile(0.5, sum by (le) (rate(levee_webhook_delivery_duration_seconds_bucket{${any}}${RATE})))`, 'p50'],
        [`histogram_quantile(0.99, sum by (le) (rate(levee_webhook_delivery_duration_seconds_bucket{${any}}${RATE})))`, 'p99'],
      ]),
    )
    .withPanel(
      timeseries('Event streams', 'short', 'Open GET /api/images/{id}/events streams, and those refused per second by the per-client and per-pod limits.', [
        [`sum(levee_event_streams{${gw}})`, 'open'],
        [`sum by (reason) (rate(levee_event_streams_refused_total{${gw}}${RATE}))`, 'refused: {{reason}}'],
      ]),
    );
  return builder.build();
}

/** Every PromQL expression of a dashboard's panels (for the tests). */
export function dashboardQueries(dashboard: Dashboard): { panel: string; expr: string }[] {
  return (dashboard.panels ?? []).flatMap((p) => {
    const panel = p as { title?: string; targets?: { expr?: string }[] };
    return (panel.targets ?? []).map((t) => ({ panel: panel.title ?? '', expr: t.expr ?? '' }));
  });
}
