/**
 * The synthesized PrometheusRule, checked with Prometheus's own tool: `promtool check rules`,
 * and `promtool test rules` with synthetic series under which every alert fires, and under
 * which it does not (production defaults: namespace levee, gateway at most 30 replicas).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ALERT_NAMES } from '../../infra';
import { describeWith, monitoredManifests, ruleFile } from './helpers';

const RUNBOOK = 'https://github.com/levee-dev/levee/blob/main/docs/runbooks.md';
const NS = 'levee';

type Series = { series: string; values: string };
interface Expected {
  labels: Record<string, string>;
  summary: string;
  description: string;
}
interface Case {
  /** What the case shows. */
  name: string;
  alert: (typeof ALERT_NAMES)[number];
  series: Series[];
  evalTime: string;
  /** The alerts firing at evalTime; [] = none. */
  fires: Expected[];
}

const sel = (metric: string, labels: Record<string, string>) =>
  `${metric}{${Object.entries({ namespace: NS, ...labels })
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;
const gw = { job: 'levee-gateway' };
const wk = { job: 'levee-worker' };
const wh = { job: 'levee-webhooks' };
const api = (status: string, perMinute: number, route = '/api/styles', method = 'GET'): Series => ({
  series: sel('levee_http_requests_total', { ...gw, route, method, status }),
  values: `0+${perMinute}x40`,
});

const breakerDescription = (job: string, value: number) =>
  `The breaker of ${job} around model in ${NS} has been open or half-open for more than 1m (state ${value}: 1 open, 2 half-open): calls to it fail or time out. Renders are postponed (not lost) and GET /api/styles serves stale copies or 503s.`;
const missingDescription = (component: string) =>
  `Prometheus has had no ${component} target up (job levee-${component}) in ${NS} for 5 minutes: every pod is down, or the ServiceMonitor/PodMonitor, the NetworkPolicy from the monitoring namespace or the metrics port is broken. Its alerts cannot fire meanwhile.`;

const CASES: Case[] = [
  {
    name: 'a gateway breaker open for over a minute fires; a worker breaker flapping open/closed each minute does not',
    alert: 'LeveeCircuitBreakerOpen',
    series: [
      { series: sel('levee_circuit_state', { ...gw, target: 'model', pod: 'gw-1' }), values: '0 1 1 1 1 1' },
      { series: sel('levee_circuit_state', { ...gw, target: 'model', pod: 'gw-2' }), values: '0 0 0 0 0 0' },
      { series: sel('levee_circuit_state', { ...wk, target: 'model', pod: 'w-1' }), values: '0 1 0 1 0 1' },
    ],
    evalTime: '4m',
    fires: [
      {
        labels: { severity: 'critical', namespace: NS, job: 'levee-gateway', target: 'model' },
        summary: 'The circuit breaker of levee-gateway around model is not closed',
        description: breakerDescription('levee-gateway', 1),
      },
    ],
  },
  {
    name: 'a breaker open for less than a minute is only pending',
    alert: 'LeveeCircuitBreakerOpen',
    series: [{ series: sel('levee_circuit_state', { ...gw, target: 'model', pod: 'gw-1' }), values: '0 0 1 1' }],
    evalTime: '2m',
    fires: [],
  },
  {
    name: 'half-open counts as not closed',
    alert: 'LeveeCircuitBreakerOpen',
    series: [{ series: sel('levee_circuit_state', { ...wk, target: 'model', pod: 'w-1' }), values: '1 2 1 2 1' }],
    evalTime: '3m',
    fires: [
      {
        labels: { severity: 'critical', namespace: NS, job: 'levee-worker', target: 'model' },
        summary: 'The circuit breaker of levee-worker around model is not closed',
        description: breakerDescription('levee-worker', 2),
      },
    ],
  },
  {
    name: '30% of /api answers are 429 for 10 minutes (non-/api routes do not dilute the share)',
    alert: 'LeveeRateLimitedShareHigh',
    series: [api('200', 70), api('429', 30), { series: sel('levee_http_requests_total', { ...gw, route: '/healthz', method: 'GET', status: '200' }), values: '0+1000x40' }],
    evalTime: '20m',
    fires: [
      {
        labels: { severity: 'warning', namespace: NS },
        summary: 'Many /api answers are 429s',
        description: `30% of the /api answers in ${NS} have been 429 (rate limited) for 10 minutes, above 25%: a flood the limiter is holding off, or a limit too low for real clients.`,
      },
    ],
  },
  { name: '20% of 429s stay below the 25% threshold', alert: 'LeveeRateLimitedShareHigh', series: [api('200', 80), api('429', 20)], evalTime: '20m', fires: [] },
  {
    name: '5% of POST /api/images refused by the bound for 5 minutes',
    alert: 'LeveeQueueFull',
    series: [
      api('202', 95, '/api/images', 'POST'),
      api('503', 5, '/api/images', 'POST'),
      { series: sel('levee_queue_rejected_total', { ...gw, reason: 'depth', pod: 'gw-1' }), values: '0+5x40' },
      { series: sel('levee_queue_rejected_total', { ...gw, reason: 'memory', pod: 'gw-1' }), values: '0x40' },
    ],
    evalTime: '10m',
    fires: [
      {
        labels: { severity: 'critical', namespace: NS },
        summary: 'Render requests are refused: the queue is at its bound',
        description: `5% of POST /api/images in ${NS} are answered 503 by the queue bound (QUEUE_MAX_WAITING or the queue Redis memory), above 1% for 5 minutes: the workers do not keep up, or they are postponing while the model is down.`,
      },
    ],
  },
  {
    name: 'no refusals, no alert (a 503 from an unreachable Redis is not the bound)',
    alert: 'LeveeQueueFull',
    series: [api('202', 95, '/api/images', 'POST'), api('503', 5, '/api/images', 'POST'), { series: sel('levee_queue_rejected_total', { ...gw, reason: 'depth', pod: 'gw-1' }), values: '0x40' }],
    evalTime: '10m',
    fires: [],
  },
  {
    name: 'the oldest waiting job passes 10 minutes and stays there a minute',
    alert: 'LeveeOldestJobWaiting',
    series: [
      { series: sel('levee_queue_oldest_waiting_seconds', { ...wk, pod: 'w-1' }), values: '0+60x20' },
      { series: sel('levee_queue_oldest_waiting_seconds', { ...wk, pod: 'w-2' }), values: '0+60x20' },
    ],
    evalTime: '12m',
    fires: [
      {
        labels: { severity: 'warning', namespace: NS },
        summary: 'Render jobs wait too long for a worker',
        description: `The oldest waiting job in ${NS} was submitted 12m 0s ago, more than 10m: the workers do not keep up with the queue.`,
      },
    ],
  },
  {
    name: 'a job just past 10 minutes is only pending',
    alert: 'LeveeOldestJobWaiting',
    series: [{ series: sel('levee_queue_oldest_waiting_seconds', { ...wk, pod: 'w-1' }), values: '0+60x20' }],
    evalTime: '11m',
    fires: [],
  },
  {
    name: '10% of finished jobs failed for good (retries and postponements do not count)',
    alert: 'LeveeJobFailureRatioHigh',
    series: [
      { series: sel('levee_jobs_total', { ...wk, pod: 'w-1', result: 'completed' }), values: '0+90x40' },
      { series: sel('levee_jobs_total', { ...wk, pod: 'w-1', result: 'failed' }), values: '0+10x40' },
      { series: sel('levee_jobs_total', { ...wk, pod: 'w-1', result: 'retried' }), values: '0+500x40' },
    ],
    evalTime: '30m',
    fires: [
      {
        labels: { severity: 'warning', namespace: NS },
        summary: 'Many render jobs fail for good',
        description: `10% of the jobs finished in ${NS} over 15 minutes failed for good (all attempts used, or rejected by the model), above 5%.`,
      },
    ],
  },
  {
    name: '2% of failures stay below the 5% threshold',
    alert: 'LeveeJobFailureRatioHigh',
    series: [
      { series: sel('levee_jobs_total', { ...wk, pod: 'w-1', result: 'completed' }), values: '0+98x40' },
      { series: sel('levee_jobs_total', { ...wk, pod: 'w-1', result: 'failed' }), values: '0+2x40' },
    ],
    evalTime: '30m',
    fires: [],
  },
  {
    name: 'a third of the webhook attempts of two senders retried or failed for 15 minutes',
    alert: 'LeveeWebhookFailureRatioHigh',
    series: [
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-1', result: 'delivered' }), values: '0+40x40' },
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-1', result: 'retried' }), values: '0+15x40' },
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-2', result: 'delivered' }), values: '0+40x40' },
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-2', result: 'failed' }), values: '0+5x40' },
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-2', result: 'refused' }), values: '0+20x40' },
    ],
    evalTime: '35m',
    fires: [
      {
        labels: { severity: 'warning', namespace: NS },
        summary: 'Many webhook deliveries fail',
        description: `33.33% of the webhook delivery attempts in ${NS} over 15 minutes got no 2xx (an error status, a timeout, a refused connection or address), above 20%: receivers are down or slow, or the sender cannot reach the internet. Deliveries are retried for about an hour; rendering is not affected.`,
      },
    ],
  },
  {
    name: '10% of the webhook attempts retried stay below the 20% threshold',
    alert: 'LeveeWebhookFailureRatioHigh',
    series: [
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-1', result: 'delivered' }), values: '0+90x40' },
      { series: sel('levee_webhook_deliveries_total', { ...wh, pod: 'wh-1', result: 'retried' }), values: '0+10x40' },
    ],
    evalTime: '35m',
    fires: [],
  },
  {
    name: 'six stalled jobs recovered by two workers within 15 minutes',
    alert: 'LeveeStalledJobsRecovered',
    series: [
      { series: sel('levee_queue_stalled_jobs_total', { ...wk, pod: 'w-1' }), values: '0x5 1 2 3 3 3 3 3' },
      { series: sel('levee_queue_stalled_jobs_total', { ...wk, pod: 'w-2' }), values: '0x5 1 2 3 3 3 3 3' },
    ],
    evalTime: '12m',
    fires: [
      {
        labels: { severity: 'warning', namespace: NS },
        summary: 'Workers die in the middle of jobs',
        description: `6 stalled jobs were recovered in ${NS} within 15 minutes (at least 3): workers are killed mid-job (OOM, evictions, crashes). The jobs are not lost; they run again.`,
      },
    ],
  },
  {
    name: 'two stalled jobs stay below 3',
    alert: 'LeveeStalledJobsRecovered',
    series: [{ series: sel('levee_queue_stalled_jobs_total', { ...wk, pod: 'w-1' }), values: '0x5 1 2 2 2 2 2 2' }],
    evalTime: '12m',
    fires: [],
  },
  {
    name: 'the queue Redis at 85% of its maxmemory for 5 minutes',
    alert: 'LeveeQueueRedisMemoryHigh',
    series: [
      { series: sel('levee_queue_redis_memory_used_bytes', { ...wk, pod: 'w-1' }), values: '850000000x20' },
      { series: sel('levee_queue_redis_memory_max_bytes', { ...wk, pod: 'w-1' }), values: '1000000000x20' },
    ],
    evalTime: '10m',
    fires: [
      {
        labels: { severity: 'critical', namespace: NS },
        summary: 'The queue Redis is nearly full',
        description: `The queue Redis in ${NS} uses 85% of its maxmemory (above 80%). It is noeviction: when full, writes fail, and the gateway refuses new jobs from QUEUE_MAX_MEMORY_PERCENT on.`,
      },
    ],
  },
  {
    name: 'a queue Redis without maxmemory (0) never counts as full',
    alert: 'LeveeQueueRedisMemoryHigh',
    series: [
      { series: sel('levee_queue_redis_memory_used_bytes', { ...wk, pod: 'w-1' }), values: '850000000x20' },
      { series: sel('levee_queue_redis_memory_max_bytes', { ...wk, pod: 'w-1' }), values: '0x20' },
    ],
    evalTime: '10m',
    fires: [],
  },
  {
    name: '30 gateway pods (the maximum) for 15 minutes',
    alert: 'LeveeGatewayAtMaxReplicas',
    series: Array.from({ length: 30 }, (_, i) => ({ series: sel('up', { ...gw, pod: `gw-${i}` }), values: '1x30' })),
    evalTime: '20m',
    fires: [
      {
        labels: { severity: 'warning', namespace: NS, component: 'gateway' },
        summary: 'The gateway has been at its maximum replicas',
        description: `30 gateway pods run in ${NS}, the autoscaler's maximum (30), for 15m: it cannot add more, so CPU per pod and latency rise with the load.`,
      },
    ],
  },
  {
    name: '29 gateway pods are below the maximum',
    alert: 'LeveeGatewayAtMaxReplicas',
    series: Array.from({ length: 29 }, (_, i) => ({ series: sel('up', { ...gw, pod: `gw-${i}` }), values: '1x30' })),
    evalTime: '20m',
    fires: [],
  },
  {
    name: 'the model down since minute 2 and the worker never scraped; gateway and media up',
    alert: 'LeveeTargetMissing',
    series: [
      { series: sel('up', { ...gw, pod: 'gw-1' }), values: '1x20' },
      { series: sel('up', { job: 'levee-media', pod: 'm-1' }), values: '1x20' },
      { series: sel('up', { job: 'levee-model', pod: 'md-1' }), values: '1 1 0x18' },
      { series: sel('up', { ...wh, pod: 'wh-1' }), values: '1x20' },
    ],
    evalTime: '10m',
    fires: [
      { labels: { severity: 'critical', namespace: NS, component: 'model', job: 'levee-model' }, summary: 'No model pod is scraped', description: missingDescription('model') },
      { labels: { severity: 'critical', namespace: NS, component: 'worker', job: 'levee-worker' }, summary: 'No worker pod is scraped', description: missingDescription('worker') },
    ],
  },
  {
    name: 'a component down for less than 5 minutes is only pending',
    alert: 'LeveeTargetMissing',
    series: ['levee-gateway', 'levee-media', 'levee-worker', 'levee-webhooks'].map((job) => ({ series: sel('up', { job, pod: `${job}-1` }), values: '1x20' })).concat([{ series: sel('up', { job: 'levee-model', pod: 'md-1' }), values: '1 1 0x18' }]),
    evalTime: '6m',
    fires: [],
  },
];

/** A promtool unit-test file for `cases` against rules.yaml. */
function testFile(cases: readonly Case[]): string {
  return stringify({
    rule_files: ['rules.yaml'],
    evaluation_interval: '1m',
    tests: cases.map((c) => ({
      name: `${c.alert}: ${c.name}`,
      interval: '1m',
      input_series: c.series,
      alert_rule_test: [
        {
          eval_time: c.evalTime,
          alertname: c.alert,
          exp_alerts: c.fires.map((f) => ({
            exp_labels: f.labels,
            exp_annotations: { summary: f.summary, description: f.description, runbook_url: `${RUNBOOK}#${c.alert.toLowerCase()}` },
          })),
        },
      ],
    })),
  });
}

function promtool(args: string[]) {
  const res = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

describeWith('promtool')('alert rules, checked with promtool', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'levee-promtool-'));
    writeFileSync(join(dir, 'rules.yaml'), stringify(ruleFile(monitoredManifests())));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('promtool check rules accepts the synthesized PrometheusRule', () => {
    const { status, output } = promtool(['check', 'rules', join(dir, 'rules.yaml')]);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
    expect(status).toBe(0);
  });

  test('every alert has a case where it fires and one where it does not', () => {
    for (const alert of ALERT_NAMES) {
      const cases = CASES.filter((c) => c.alert === alert);
      expect([alert, cases.some((c) => c.fires.length > 0)]).toEqual([alert, true]);
      expect([alert, cases.some((c) => c.fires.length === 0)]).toEqual([alert, true]);
    }
  });

  test('promtool test rules: each alert fires, with its labels and rendered annotations, exactly when it should', () => {
    writeFileSync(join(dir, 'tests.yaml'), testFile(CASES));
    const { status, output } = promtool(['test', 'rules', join(dir, 'tests.yaml')]);
    if (status !== 0) process.stderr.write(output);
    expect(output).toContain('SUCCESS');
    expect(status).toBe(0);
  });

  test('the harness can fail: a wrong expectation makes promtool test rules fail', () => {
    const wrong: Case = { ...CASES[0]!, fires: [] }; // the breaker case does fire
    writeFileSync(join(dir, 'wrong.yaml'), testFile([wrong]));
    const { status, output } = promtool(['test', 'rules', join(dir, 'wrong.yaml')]);
    expect(status).not.toBe(0);
    expect(output).toContain('FAILED');
  });

  test('a broken expression fails promtool check rules', () => {
    writeFileSync(join(dir, 'broken.yaml'), stringify({ groups: [{ name: 'x', rules: [{ alert: 'X', expr: 'max by (job (levee_circuit_state)' }] }] }));
    expect(promtool(['check', 'rules', join(dir, 'broken.yaml')]).status).not.toBe(0);
  });
});
