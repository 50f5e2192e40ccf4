/**
 * The monitoring objects (LEVEE_MONITORING=prometheus-operator): off by default, on in the
 * production example stack; what each object selects and scrapes, where the thresholds go,
 * and the dashboard ConfigMap for Grafana's sidecar.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { parse } from 'yaml';
import { DASHBOARD_FILE, EXEMPLAR_METRICS, LeveeChart, METRICS, resolveConfig, selectedMetrics } from '../../infra';
import { all, find, manifestsFor } from './helpers';

const ON = { monitoring: 'prometheus-operator' } as const;
const MONITORING_KINDS = ['ServiceMonitor', 'PodMonitor', 'PrometheusRule'];
const alertsOf = (m: any[]) => find(m, 'PrometheusRule', 'levee').spec.groups.flatMap((g: any) => g.rules);

describe('monitoring off (the default)', () => {
  test.each([['production', {}], ['preview', { environment: 'preview', previewId: 'pr-7' }], ['dev', { environment: 'dev' }]])('%s synthesizes no monitoring objects', (_env, settings) => {
    const m = manifestsFor(settings);
    expect(m.filter((o) => MONITORING_KINDS.includes(o.kind) || o.kind === 'ConfigMap')).toEqual([]);
  });

  test('the production example stack turns it on', () => {
    const stack = parse(readFileSync(join(__dirname, '../../Pulumi.production.yaml'), 'utf8'));
    expect(stack.config['levee:monitoring']).toBe('prometheus-operator');
  });
});

describe('monitoring on (production)', () => {
  const m = manifestsFor(ON);

  test('matches its snapshot', () => {
    const chart = new LeveeChart(Testing.app(), 'levee', { config: resolveConfig(ON) });
    expect(Testing.synth(chart).filter((o: any) => MONITORING_KINDS.includes(o.kind) || o.kind === 'ConfigMap')).toMatchSnapshot();
  });

  test.each(['levee-gateway', 'levee-media', 'levee-model'])('a ServiceMonitor scrapes the metrics port of the %s Service, job = its name', (name) => {
    const sm = find(m, 'ServiceMonitor', name);
    expect(sm.metadata.namespace).toBe('levee');
    expect(sm.spec).toEqual({
      jobLabel: 'app.kubernetes.io/name',
      selector: { matchLabels: { 'app.kubernetes.io/name': name } },
      endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }],
    });
    // it selects exactly the app's ClusterIP Service, never the L4 LoadBalancer
    const selected = all(m, 'Service').filter((s) => s.metadata.labels['app.kubernetes.io/name'] === name);
    expect(selected.map((s) => [s.metadata.name, s.spec.type])).toEqual([[name, 'ClusterIP']]);
    expect(selected[0].spec.ports.map((p: any) => p.name)).toContain('metrics');
  });

  test('a PodMonitor scrapes the worker pods (no Service) on their metrics port', () => {
    expect(find(m, 'PodMonitor', 'levee-worker').spec).toEqual({
      jobLabel: 'app.kubernetes.io/name',
      selector: { matchLabels: { 'app.kubernetes.io/name': 'levee-worker' } },
      podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }],
    });
    expect(find(m, 'Deployment', 'levee-worker').spec.template.spec.containers[0].ports).toEqual([{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
  });

  test('the PrometheusRule has every alert, each with severity, summary, description and a runbook section', () => {
    const alerts = alertsOf(m);
    expect([...new Set(alerts.map((r: any) => r.alert))]).toEqual([
      'LeveeCircuitBreakerOpen', 'LeveeRateLimitedShareHigh', 'LeveeQueueFull', 'LeveeOldestJobWaiting', 'LeveeJobFailureRatioHigh', 'LeveeWebhookFailureRatioHigh',
      'LeveeStalledJobsRecovered', 'LeveeQueueRedisMemoryHigh', 'LeveeGatewayAtMaxReplicas', 'LeveeTargetMissing',
    ]);
    for (const r of alerts) {
      expect(['critical', 'warning']).toContain(r.labels.severity);
      expect(r.labels.namespace).toBe('levee');
      expect(r.annotations.summary).not.toBe('');
      expect(r.annotations.runbook_url).toBe(`https://github.com/levee-dev/levee/blob/main/docs/runbooks.md#${r.alert.toLowerCase()}`);
      expect(r.expr).toContain('namespace="levee"');
    }
    // one target-missing rule per scraped component
    expect(alerts.filter((r: any) => r.alert === 'LeveeTargetMissing').map((r: any) => r.labels.component)).toEqual(['gateway', 'media', 'model', 'worker', 'webhooks']);
    // The webhook failure ratio: attempts without a 2xx over all attempts, above 20% for 15 minutes.
    const webhooks = alerts.find((r: any) => r.alert === 'LeveeWebhookFailureRatioHigh');
    expect(webhooks.expr).toContain('levee_webhook_deliveries_total{namespace="levee",result=~"retried|failed|refused"}');
    expect(webhooks.expr).toMatch(/> 0\.2$/);
    expect(webhooks.for).toBe('15m');
  });

  test('the default thresholds are in the expressions', () => {
    const expr = (name: string) => alertsOf(m).find((r: any) => r.alert === name);
    expect(expr('LeveeCircuitBreakerOpen').for).toBe('1m');
    expect(expr('LeveeRateLimitedShareHigh').expr).toMatch(/> 0\.25$/);
    expect(expr('LeveeQueueFull').expr).toMatch(/> 0\.01$/);
    expect(expr('LeveeOldestJobWaiting').expr).toMatch(/> 600$/);
    expect(expr('LeveeJobFailureRatioHigh').expr).toMatch(/> 0\.05$/);
    expect(expr('LeveeStalledJobsRecovered').expr).toMatch(/>= 3$/);
    expect(expr('LeveeQueueRedisMemoryHigh').expr).toMatch(/> 0\.8$/);
    expect(expr('LeveeGatewayAtMaxReplicas').expr).toBe('count by (namespace) (up{namespace="levee",job="levee-gateway"}) >= 30');
    expect(expr('LeveeGatewayAtMaxReplicas').for).toBe('15m');
  });

  test('the dashboard ConfigMap carries the sidecar label and a dashboard with the panels the issue asks for', () => {
    const cm = find(m, 'ConfigMap', 'levee-dashboard');
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    const dashboard = JSON.parse(cm.data[DASHBOARD_FILE]);
    expect(dashboard.uid).toBe('levee-levee');
    expect(dashboard.templating.list.map((v: any) => [v.name, v.type, v.query])).toEqual([['datasource', 'datasource', 'prometheus']]);
    const panels = dashboard.panels.filter((p: any) => p.type !== 'row');
    expect(panels.map((p: any) => p.title)).toEqual([
      'Requests by status', '/api admitted vs rate limited', '/api latency', 'Cache: lookups and origin loads', 'Circuit breakers', 'Replicas (scraped pods)',
      'Queue depth', 'Oldest waiting job', 'Job outcomes', 'Refused by the queue bound', 'Queue Redis memory', 'Job duration',
      'Webhook deliveries', 'Webhook delivery time', 'Event streams',
    ]);
    for (const p of panels) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length).toBeGreaterThan(0);
    }
    // the metrics the issue names for each panel
    const metricsOf = (title: string) => panels.find((p: any) => p.title === title).targets.flatMap((t: any) => selectedMetrics(t.expr));
    expect(metricsOf('/api latency')).toEqual(['levee_http_request_duration_seconds_bucket', 'levee_http_request_duration_seconds_bucket']);
    expect(metricsOf('Circuit breakers')).toEqual(['levee_circuit_state']);
    expect(metricsOf('Cache: lookups and origin loads')).toEqual(['levee_cache_requests_total', 'levee_cache_origin_loads_total']);
    expect(metricsOf('Queue depth')).toEqual(['levee_queue_jobs']);
    expect(metricsOf('Oldest waiting job')).toEqual(['levee_queue_oldest_waiting_seconds']);
    expect(metricsOf('Job outcomes')).toEqual(['levee_jobs_total', 'levee_queue_stalled_jobs_total']);
  });
});

describe('the dashboard and exemplars (tracing)', () => {
  const panelsOf = (settings: Record<string, string>) =>
    JSON.parse(find(manifestsFor({ ...ON, ...settings }), 'ConfigMap', 'levee-dashboard').data[DASHBOARD_FILE]).panels.filter((p: any) => p.type !== 'row');

  test('the request-latency queries ask for exemplars (trace_id links to the trace), tracing on or off', () => {
    for (const settings of [{}, { otlpEndpoint: 'http://otel-collector.observability:4318' }] as Record<string, string>[]) {
      const latency = panelsOf(settings).find((p: any) => p.title === '/api latency');
      expect(latency.targets.map((t: any) => [t.refId, t.exemplar])).toEqual([['A', true], ['B', true]]);
    }
  });

  test('exactly the queries on levee_http_request_duration_seconds do; no other query asks for exemplars', () => {
    expect(EXEMPLAR_METRICS).toEqual(['levee_http_request_duration_seconds']);
    // The metric is a histogram of the catalog, the one the services attach trace_id exemplars to.
    expect(METRICS.find((x) => x.name === EXEMPLAR_METRICS[0])?.type).toBe('histogram');
    const targets = panelsOf({}).flatMap((p: any) => p.targets.map((t: any) => ({ panel: p.title, expr: t.expr, exemplar: t.exemplar })));
    const withExemplars = targets.filter((t: any) => t.exemplar === true);
    expect(withExemplars.map((t: any) => t.panel)).toEqual(['/api latency', '/api latency']);
    for (const t of withExemplars) expect(selectedMetrics(t.expr)).toEqual(['levee_http_request_duration_seconds_bucket']);
    for (const t of targets.filter((x: any) => x.exemplar !== true)) {
      expect(t.exemplar).toBeUndefined();
      expect(selectedMetrics(t.expr)).not.toContain('levee_http_request_duration_seconds_bucket');
    }
  });
});

describe('monitoring settings', () => {
  test('LEVEE_MONITORING_LABELS go on the monitors and the rule, so a Prometheus selector picks them', () => {
    const m = manifestsFor({ ...ON, monitoringLabels: 'release=kube-prometheus-stack,team=levee' });
    for (const o of m.filter((x) => MONITORING_KINDS.includes(x.kind))) {
      expect(o.metadata.labels).toMatchObject({ release: 'kube-prometheus-stack', team: 'levee', 'app.kubernetes.io/part-of': 'levee' });
    }
    expect(find(m, 'ConfigMap', 'levee-dashboard').metadata.labels.release).toBeUndefined();
  });

  test('thresholds, scrape interval, dashboard label and runbook URL follow the settings', () => {
    const m = manifestsFor({
      ...ON, alertOldestJobMinutes: '20', alertRateLimitedPercent: '40', alertBreakerOpenMinutes: '3', alertStalledJobs: '7',
      scrapeIntervalSeconds: '30', grafanaDashboardLabel: 'grafana.io/dashboard=levee', runbookUrl: 'https://wiki.example.com/levee/runbooks',
    });
    const rule = (name: string) => alertsOf(m).find((r: any) => r.alert === name);
    expect(rule('LeveeOldestJobWaiting').expr).toMatch(/> 1200$/);
    expect(rule('LeveeRateLimitedShareHigh').expr).toMatch(/> 0\.4$/);
    expect(rule('LeveeCircuitBreakerOpen').for).toBe('3m');
    expect(rule('LeveeStalledJobsRecovered').expr).toMatch(/>= 7$/);
    expect(rule('LeveeQueueFull').annotations.runbook_url).toBe('https://wiki.example.com/levee/runbooks#leveequeuefull');
    expect(find(m, 'ServiceMonitor', 'levee-gateway').spec.endpoints[0]).toMatchObject({ interval: '30s', scrapeTimeout: '10s' });
    expect(find(m, 'ConfigMap', 'levee-dashboard').metadata.labels['grafana.io/dashboard']).toBe('levee');
  });

  test("a preview scopes everything to its namespace, and the at-maximum alert follows its gateway's maximum", () => {
    const m = manifestsFor({ ...ON, environment: 'preview', previewId: 'pr-7' });
    const alerts = alertsOf(m);
    expect(alerts.find((r: any) => r.alert === 'LeveeGatewayAtMaxReplicas').expr).toBe('count by (namespace) (up{namespace="levee-pr-7",job="levee-gateway"}) >= 3');
    for (const r of alerts) expect(r.expr).toContain('namespace="levee-pr-7"');
    expect(find(m, 'ServiceMonitor', 'levee-gateway').metadata.namespace).toBe('levee-pr-7');
    expect(JSON.parse(find(m, 'ConfigMap', 'levee-dashboard').data[DASHBOARD_FILE]).title).toBe('Levee (levee-pr-7)');
  });
});
