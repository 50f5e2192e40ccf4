/**
 * No alert or panel is dead on arrival: every metric the alerts and the dashboard select is
 * in the catalog (infra/monitoring/metrics.ts), with labels it has; the catalog is exactly
 * what the services register (read from their real registries); every runbook link has its
 * section; and the README points to the generated references (docs/reference/) instead of copying them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Registry } from 'prom-client';
import { ALERT_NAMES, alertGroups, dashboardQueries, leveeDashboard, METRICS, resolveConfig, selectors, SERIES } from '../../infra';
import { buildGateway } from '../../services/gateway/src/app';
import { buildMedia } from '../../services/media/src/app';
import { parseMediaSettings } from '../../services/media/src/settings';
import { buildModelApp } from '../../services/model/src/app';
import { createLogger } from '../../services/shared/src/logger';
import { createRegistry } from '../../services/shared/src/metrics';
import { STRICT_WEBHOOK_POLICY } from '../../services/shared/src/webhook-url';
import { createWebhookSender } from '../../services/worker/src/webhook-sender';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { testSettings } from '../gateway/helpers';
import { startWorker, uniqueQueueName } from '../worker/support';
import { monitoredManifests } from './helpers';

const ROOT = join(__dirname, '../..');
const config = resolveConfig({ monitoring: 'prometheus-operator' });
/** Labels Prometheus adds to every scraped series (prometheus-operator's target labels, and `le` of histogram buckets). */
const TARGET_LABELS = ['namespace', 'job', 'pod', 'service', 'endpoint', 'container', 'instance'];

const expressions = [
  ...alertGroups(config, config.monitoring!).flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
  ...dashboardQueries(leveeDashboard(config, config.monitoring!)).map((q) => ({ where: `panel "${q.panel}"`, expr: q.expr })),
];

test.each(expressions.map((e) => [e.where, e.expr] as const))('%s selects only catalogued metrics, by labels they have', (_where, expr) => {
  const found = selectors(expr);
  expect(found.length).toBeGreaterThan(0);
  for (const { metric, labels } of found) {
    const spec = SERIES.get(metric);
    expect([metric, spec !== undefined]).toEqual([metric, true]);
    const allowed = [...spec!.labels, ...TARGET_LABELS, ...(metric.endsWith('_bucket') ? ['le'] : [])];
    expect([metric, labels.filter((l) => !allowed.includes(l))]).toEqual([metric, []]);
  }
});

test('the check catches a metric that does not exist and a label a metric does not have', () => {
  const bad = selectors('sum(rate(levee_http_request_total{namespace="levee"}[5m])) + levee_jobs_total{staus="failed"}');
  expect(bad.map((s) => SERIES.has(s.metric))).toEqual([false, true]);
  expect(bad[1]!.labels.filter((l) => !SERIES.get('levee_jobs_total')!.labels.includes(l))).toEqual(['staus']);
});

describe('the catalog is what the services register', () => {
  const registries: Record<string, Registry> = {};
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    const gateway = buildGateway(testSettings(), { keyPrefix: `test:catalog:${process.pid}` });
    closers.push(() => gateway.close());
    registries.gateway = gateway.metricsRegistry;
    const redis = new Redis(TEST_REDIS_URL);
    const media = buildMedia(parseMediaSettings({ REDIS_URL: TEST_REDIS_URL }), { redis });
    closers.push(async () => {
      await media.close();
      redis.disconnect();
    });
    registries.media = media.metricsRegistry;
    const model = buildModelApp();
    closers.push(() => model.close());
    registries.model = model.metricsRegistry;
    const worker = startWorker(TEST_REDIS_URL, { QUEUE_NAME: uniqueQueueName() });
    closers.push(async () => {
      await worker.render.close();
      worker.connection.disconnect();
    });
    registries.worker = worker.registry;
    const senderConnection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const sender = createWebhookSender({
      connection: senderConnection,
      queueName: uniqueQueueName(),
      secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
      policy: STRICT_WEBHOOK_POLICY,
      registry: (registries.webhooks = createRegistry('webhooks')),
      logger: createLogger('webhooks', 'silent'),
    });
    closers.push(async () => {
      await sender.close();
      senderConnection.disconnect();
    });
  });
  afterAll(async () => {
    for (const close of closers) await close();
  });

  test.each(['gateway', 'media', 'model', 'worker', 'webhooks'])('%s registers exactly the catalogued levee_* metrics, with their types', (service) => {
    const registered = registries[service]!.getMetricsAsArray().filter((m) => m.name.startsWith('levee_'));
    const expected = METRICS.filter((m) => (m.sources as readonly string[]).includes(service));
    expect(registered.map((m) => m.name).sort()).toEqual(expected.map((m) => m.name).sort());
    for (const m of registered) {
      const spec = expected.find((e) => e.name === m.name)!;
      expect([m.name, (m as unknown as { type: string }).type]).toEqual([m.name, spec.type]);
      expect([m.name, [...((m as unknown as { labelNames?: string[] }).labelNames ?? [])].sort()]).toEqual([m.name, [...spec.labels].sort()]);
    }
  });
});

test('every runbook_url points at a section of docs/runbooks.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/runbooks.md'), 'utf8');
  const anchors = new Set([...doc.matchAll(/^## (\S+)$/gm)].map((m) => m[1]!.toLowerCase()));
  const rule = monitoredManifests().find((m) => m.kind === 'PrometheusRule') as any;
  const urls: string[] = rule.spec.groups.flatMap((g: any) => g.rules.map((r: any) => r.annotations.runbook_url));
  expect(urls.length).toBeGreaterThanOrEqual(9);
  for (const url of urls) {
    const [base, anchor] = url.split('#');
    expect(base).toBe('https://github.com/levee-dev/levee/blob/main/docs/runbooks.md');
    expect([url, anchors.has(anchor!)]).toEqual([url, true]);
  }
});

test('the README sends readers to the generated metrics and alerts references, and copies neither', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  expect(readme).toContain('(docs/reference/metrics.md)');
  expect(readme).toContain('(docs/reference/alerts.md)');
  expect(readme).not.toContain('| `levee_jobs_total` |');
  expect(readme).not.toContain('| `LeveeQueueFull` |');
});

test('the alerts reference names each alert with its severity and its threshold setting at its default', () => {
  const reference = readFileSync(join(ROOT, 'docs/reference/alerts.md'), 'utf8');
  const rules = alertGroups(config, config.monitoring!).flatMap((g) => g.rules);
  for (const alert of ALERT_NAMES) {
    const severity = rules.find((r) => r.alert === alert)!.labels.severity;
    expect(reference).toContain(`[\`${alert}\`](../runbooks.md#${alert.toLowerCase()}) | ${severity} |`);
  }
  const a = config.monitoring!.alerts;
  for (const shown of [`\`LEVEE_ALERT_JOB_FAILURE_PERCENT\` (${a.jobFailurePercent})`, `\`LEVEE_ALERT_WEBHOOK_FAILURE_PERCENT\` (${a.webhookFailurePercent})`, `\`LEVEE_ALERT_STALLED_JOBS\` (${a.stalledJobs})`]) {
    expect(reference).toContain(shown);
  }
});
