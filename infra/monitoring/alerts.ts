/**
 * The alert rules of the PrometheusRule, as plain data (the Monitoring construct wraps them;
 * test/monitoring/ checks them with promtool). Every expression is scoped to the chart's
 * namespace; `job` is the component's name (the ServiceMonitors and the PodMonitor set
 * `jobLabel: app.kubernetes.io/name`). Each alert has a severity, a summary, a description
 * with the values, and a runbook_url to its section of docs/runbooks.md.
 */
import type { LeveeConfig, MonitoringConfig } from '../config/resolve';
import { COMPONENTS } from '../names';

export type Severity = 'critical' | 'warning';

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: { readonly severity: Severity; readonly namespace: string; readonly [k: string]: string };
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly AlertRule[];
}

/** The components that must always have a scrape target, by the `job` Prometheus gives them. */
export const SCRAPED_COMPONENTS = ['gateway', 'media', 'model', 'worker', 'webhooks'] as const;

/** Alert names, in the order of docs/runbooks.md. */
export const ALERT_NAMES = [
  'LeveeCircuitBreakerOpen',
  'LeveeRateLimitedShareHigh',
  'LeveeQueueFull',
  'LeveeOldestJobWaiting',
  'LeveeJobFailureRatioHigh',
  'LeveeWebhookFailureRatioHigh',
  'LeveeStalledJobsRecovered',
  'LeveeQueueRedisMemoryHigh',
  'LeveeGatewayAtMaxReplicas',
  'LeveeTargetMissing',
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

/** `{namespace="levee",job="levee-gateway",…}` */
function selector(namespace: string, matchers: Record<string, string> = {}): string {
  const parts = [`namespace="${namespace}"`, ...Object.entries(matchers).map(([k, v]) => (v.startsWith('~') ? `${k}=~"${v.slice(1)}"` : `${k}="${v}"`))];
  return `{${parts.join(',')}}`;
}

/** The alert rules for one chart (its settings guarantee the gateway's minimum replicas < its maximum). */
export function alertGroups(config: LeveeConfig, monitoring: MonitoringConfig): RuleGroup[] {
  const ns = config.namespace;
  const a = monitoring.alerts;
  const gw = COMPONENTS.gateway;
  const runbook = (alert: AlertName) => `${monitoring.runbookUrl}#${alert.toLowerCase()}`;
  const rule = (alert: AlertName, severity: Severity, expr: string, forDuration: string | undefined, summary: string, description: string, labels: Record<string, string> = {}): AlertRule => ({
    alert,
    expr,
    ...(forDuration !== undefined ? { for: forDuration } : {}),
    labels: { severity, namespace: ns, ...labels },
    annotations: { summary, description, runbook_url: runbook(alert) },
  });
  const ratio = (percent: number) => String(percent / 100);

  const traffic: AlertRule[] = [
    rule(
      'LeveeCircuitBreakerOpen',
      'critical',
      `max by (namespace, job, target) (levee_circuit_state${selector(ns)}) >= 1`,
      // A model scaled from zero is away while it loads: that is not an outage yet.
      `${config.modelServer.scaleToZero ? Math.max(a.breakerOpenMinutes, Math.ceil(config.modelServer.startupSeconds / 60) + 5) : a.breakerOpenMinutes}m`,
      'The circuit breaker of {{ $labels.job }} around {{ $labels.target }} is not closed',
      `The breaker of {{ $labels.job }} around {{ $labels.target }} in {{ $labels.namespace }} has been open or half-open for more than ${a.breakerOpenMinutes}m (state {{ $value }}: 1 open, 2 half-open): calls to it fail or time out. Renders are postponed (not lost) and GET /api/styles serves stale copies or 503s.`,
    ),
    rule(
      'LeveeRateLimitedShareHigh',
      'warning',
      `sum by (namespace) (rate(levee_http_requests_total${selector(ns, { job: gw, route: '~/api/.*', status: '429' })}[5m]))\n  / sum by (namespace) (rate(levee_http_requests_total${selector(ns, { job: gw, route: '~/api/.*' })}[5m]))\n  > ${ratio(a.rateLimitedPercent)}`,
      '10m',
      'Many /api answers are 429s',
      `{{ $value | humanizePercentage }} of the /api answers in {{ $labels.namespace }} have been 429 (rate limited) for 10 minutes, above ${a.rateLimitedPercent}%: a flood the limiter is holding off, or a limit too low for real clients.`,
    ),
    rule(
      'LeveeQueueFull',
      'critical',
      `sum by (namespace) (rate(levee_queue_rejected_total${selector(ns, { job: gw })}[5m]))\n  / sum by (namespace) (rate(levee_http_requests_total${selector(ns, { job: gw, route: '/api/images', method: 'POST' })}[5m]))\n  > ${ratio(a.queueRejectedPercent)}`,
      '5m',
      'Render requests are refused: the queue is at its bound',
      `{{ $value | humanizePercentage }} of POST /api/images in {{ $labels.namespace }} are answered 503 by the queue bound (QUEUE_MAX_WAITING or the queue Redis memory), above ${a.queueRejectedPercent}% for 5 minutes: the workers do not keep up, or they are postponing while the model is down.`,
    ),
  ];

  const queue: AlertRule[] = [
    rule(
      'LeveeOldestJobWaiting',
      'warning',
      `max by (namespace) (levee_queue_oldest_waiting_seconds${selector(ns)}) > ${a.oldestJobMinutes * 60}`,
      '1m',
      'Render jobs wait too long for a worker',
      `The oldest waiting job in {{ $labels.namespace }} was submitted {{ $value | humanizeDuration }} ago, more than ${a.oldestJobMinutes}m: the workers do not keep up with the queue.`,
    ),
    rule(
      'LeveeJobFailureRatioHigh',
      'warning',
      `sum by (namespace) (rate(levee_jobs_total${selector(ns, { result: 'failed' })}[15m]))\n  / sum by (namespace) (rate(levee_jobs_total${selector(ns, { result: '~completed|failed' })}[15m]))\n  > ${ratio(a.jobFailurePercent)}`,
      '5m',
      'Many render jobs fail for good',
      `{{ $value | humanizePercentage }} of the jobs finished in {{ $labels.namespace }} over 15 minutes failed for good (all attempts used, or rejected by the model), above ${a.jobFailurePercent}%.`,
    ),
    rule(
      'LeveeWebhookFailureRatioHigh',
      'warning',
      `sum by (namespace) (rate(levee_webhook_deliveries_total${selector(ns, { result: '~retried|failed|refused' })}[15m]))\n  / sum by (namespace) (rate(levee_webhook_deliveries_total${selector(ns)}[15m]))\n  > ${ratio(a.webhookFailurePercent)}`,
      '15m',
      'Many webhook deliveries fail',
      `{{ $value | humanizePercentage }} of the webhook delivery attempts in {{ $labels.namespace }} over 15 minutes got no 2xx (an error status, a timeout, a refused connection or address), above ${a.webhookFailurePercent}%: receivers are down or slow, or the sender cannot reach the internet. Deliveries are retried for about an hour; rendering is not affected.`,
    ),
    rule(
      'LeveeStalledJobsRecovered',
      'warning',
      `sum by (namespace) (increase(levee_queue_stalled_jobs_total${selector(ns)}[15m])) >= ${a.stalledJobs}`,
      undefined,
      'Workers die in the middle of jobs',
      `{{ $value | humanize }} stalled jobs were recovered in {{ $labels.namespace }} within 15 minutes (at least ${a.stalledJobs}): workers are killed mid-job (OOM, evictions, crashes). The jobs are not lost; they run again.`,
    ),
    rule(
      'LeveeQueueRedisMemoryHigh',
      'critical',
      `max by (namespace) (levee_queue_redis_memory_used_bytes${selector(ns)})\n  / max by (namespace) (levee_queue_redis_memory_max_bytes${selector(ns)} > 0)\n  > ${ratio(a.queueRedisMemoryPercent)}`,
      '5m',
      'The queue Redis is nearly full',
      `The queue Redis in {{ $labels.namespace }} uses {{ $value | humanizePercentage }} of its maxmemory (above ${a.queueRedisMemoryPercent}%). It is noeviction: when full, writes fail, and the gateway refuses new jobs from QUEUE_MAX_MEMORY_PERCENT on.`,
    ),
  ];

  const capacity: AlertRule[] = [
    rule(
      'LeveeGatewayAtMaxReplicas',
      'warning',
      `count by (namespace) (up${selector(ns, { job: gw })}) >= ${config.gateway.maxReplicas}`,
      `${a.gatewayMaxedMinutes}m`,
      'The gateway has been at its maximum replicas',
      `{{ $value }} gateway pods run in {{ $labels.namespace }}, the autoscaler's maximum (${config.gateway.maxReplicas}), for ${a.gatewayMaxedMinutes}m: it cannot add more, so CPU per pod and latency rise with the load.`,
      { component: 'gateway' },
    ),
  ];
  // A component that may have no pod at all (scaled to zero, or a model outside the chart) is not missing.
  const mayBeAbsent = (c: (typeof SCRAPED_COMPONENTS)[number]) => (c === 'model' && !!config.modelServer.external) || ((c === 'model' || c === 'worker') && config.modelServer.scaleToZero);
  for (const component of SCRAPED_COMPONENTS.filter((c) => !mayBeAbsent(c))) {
    const job = COMPONENTS[component];
    capacity.push(
      rule(
        'LeveeTargetMissing',
        'critical',
        `absent(up${selector(ns, { job })} == 1)`,
        '5m',
        `No ${component} pod is scraped`,
        `Prometheus has had no ${component} target up (job ${job}) in ${ns} for 5 minutes: every pod is down, or the ServiceMonitor/PodMonitor, the NetworkPolicy from the monitoring namespace or the metrics port is broken. Its alerts cannot fire meanwhile.`,
        { component, job },
      ),
    );
  }
  return [
    { name: 'levee.traffic', rules: traffic },
    { name: 'levee.queue', rules: queue },
    { name: 'levee.capacity', rules: capacity },
  ];
}
