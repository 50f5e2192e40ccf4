/**
 * A real Prometheus (Debian's `prometheus` package) scraping the metrics ports of a small
 * local stack — gateway, media, worker and model as real processes against a private Redis —
 * with the synthesized alert rules loaded. A short flood and a model outage later, every
 * metric that an alert or a dashboard panel names has series in Prometheus, every rule
 * evaluates without error, and the breaker alert's expression is true (the alert pending).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { alertGroups, COMPONENTS, dashboardQueries, leveeDashboard, resolveConfig, SCRAPED_COMPONENTS, selectedMetrics } from '../../infra';
import { metricValue, request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { until } from '../helpers/wait';
import { describeWith, monitoredManifests, ruleFile } from './helpers';

jest.setTimeout(150_000);

const config = resolveConfig({ monitoring: 'prometheus-operator' });
const NAMESPACE = config.namespace;
const RULES = alertGroups(config, config.monitoring!).flatMap((g) => g.rules);
const BREAKER_EXPR = RULES.find((r) => r.alert === 'LeveeCircuitBreakerOpen')!.expr;
const MODEL_MISSING_EXPR = RULES.find((r) => r.alert === 'LeveeTargetMissing' && r.labels.component === 'model')!.expr;
const LOOPBACK = { HOST: '127.0.0.1', METRICS_HOST: '127.0.0.1' };

describeWith('prometheus')('a real Prometheus scraping a local stack', () => {
  let dir: string;
  let redis: RedisServer;
  const services: Record<'gateway' | 'media' | 'model' | 'worker' | 'webhooks', { proc: ServiceProcess; metricsPort: number; port?: number }> = {} as never;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let promPort: number;

  const query = async (expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const res = await request(promPort, `/api/v1/query?query=${encodeURIComponent(expr)}`, { timeoutMs: 5000 });
    if (res.status !== 200) throw new Error(`query ${expr}: ${res.status} ${res.body.toString()}`);
    return res.json.data.result;
  };
  const scrape = async (name: keyof typeof services) => (await request(services[name].metricsPort, '/metrics')).body.toString();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'levee-prometheus-'));
    redis = await RedisServer.start();
    const queueName = `prom-${process.pid}`;
    // Nine distinct free ports (the OS may hand the same free port out twice in a row).
    const picked = new Set<number>();
    while (picked.size < 9) picked.add(await freePort());
    const [p1, p2, p3, m1, m2, m3, m4, m5, prom] = [...picked] as number[];
    const ports = { gateway: p1!, media: p2!, model: p3! };
    const metrics = { gateway: m1!, media: m2!, model: m3!, worker: m4!, webhooks: m5! };
    promPort = prom!;
    const modelUrl = `http://127.0.0.1:${ports.model}`;
    services.model = { proc: new ServiceProcess('model', { ...LOOPBACK, PORT: String(ports.model), METRICS_PORT: String(metrics.model), STYLES_DELAY_MS: '20' }), metricsPort: metrics.model, port: ports.model };
    services.worker = {
      proc: new ServiceProcess('worker', { METRICS_HOST: '127.0.0.1', QUEUE_REDIS_URL: redis.url, MODEL_URL: modelUrl, QUEUE_NAME: queueName, METRICS_PORT: String(metrics.worker), WORKER_CONCURRENCY: '1', MODEL_TIMEOUT_MS: '400', BREAKER_OPEN_SECONDS: '60' }),
      metricsPort: metrics.worker,
    };
    services.gateway = {
      proc: new ServiceProcess('gateway', {
        ...LOOPBACK,
        PORT: String(ports.gateway), METRICS_PORT: String(metrics.gateway), REDIS_URL: redis.url, MODEL_URL: modelUrl, QUEUE_NAME: queueName,
        TRUST_PROXY: '127.0.0.1/32', QUEUE_MAX_WAITING: '3', CACHE_TTL_SECONDS: '1', MODEL_TIMEOUT_MS: '300', BREAKER_OPEN_SECONDS: '60', SHUTDOWN_DELAY_SECONDS: '0',
      }),
      metricsPort: metrics.gateway,
      port: ports.gateway,
    };
    services.webhooks = {
      proc: new ServiceProcess('webhooks', { METRICS_HOST: '127.0.0.1', QUEUE_REDIS_URL: redis.url, QUEUE_NAME: queueName, METRICS_PORT: String(metrics.webhooks), WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 3).toString('base64')}` }, 'services/worker/src/webhooks-server.ts'),
      metricsPort: metrics.webhooks,
    };
    services.media = { proc: new ServiceProcess('media', { ...LOOPBACK, PORT: String(ports.media), METRICS_PORT: String(metrics.media), REDIS_URL: redis.url, SHUTDOWN_DELAY_SECONDS: '0' }), metricsPort: metrics.media, port: ports.media };

    // Prometheus as the ServiceMonitors/PodMonitor would set it up: job = component name,
    // the namespace label, the metrics ports; scraped and evaluated every second.
    writeFileSync(join(dir, 'rules.yaml'), stringify(ruleFile(monitoredManifests())));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '900ms' },
        rule_files: [join(dir, 'rules.yaml')],
        scrape_configs: (['gateway', 'media', 'model', 'worker', 'webhooks'] as const).map((c) => ({
          job_name: COMPONENTS[c],
          static_configs: [{ targets: [`127.0.0.1:${metrics[c]}`], labels: { namespace: NAMESPACE, pod: `${COMPONENTS[c]}-0` } }],
        })),
      }),
    );
    prometheus = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--storage.tsdb.retention.time=1h'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (prometheusLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (prometheusLog = (prometheusLog + d.toString()).slice(-20_000)));

    await Promise.all([
      services.model.proc.waitHttp(ports.model, '/healthz', 30_000),
      services.worker.proc.waitHttp(metrics.worker, '/healthz', 30_000),
      services.webhooks.proc.waitHttp(metrics.webhooks, '/readyz', 30_000),
      services.gateway.proc.waitHttp(ports.gateway, '/readyz', 30_000),
      services.media.proc.waitHttp(ports.media, '/readyz', 30_000),
    ]);
    await until(async () => (await request(promPort, '/-/ready').catch(() => ({ status: 0 }))).status === 200, 30_000, `Prometheus to be ready:\n${prometheusLog}`);
  });

  afterAll(async () => {
    prometheus?.kill('SIGKILL');
    await Promise.all(Object.values(services).map((s) => s.proc.stop(5000)));
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('after a flood and a model outage, every alert and panel metric has series, every rule evaluates, and the breaker alert is pending', async () => {
    const gw = services.gateway.port!;
    const as = (ip: string) => ({ 'x-forwarded-for': ip });
    // Ordinary traffic: a catalog read (cache miss, then hits) and one job rendered.
    expect((await request(gw, '/api/styles', { headers: as('10.0.0.1') })).status).toBe(200);
    const accepted = await request(gw, '/api/images', { body: { prompt: 'a lighthouse', width: 64, height: 64 }, headers: as('10.0.0.2') });
    expect(accepted.status).toBe(202);
    await until(async () => (await request(gw, `/api/images/${accepted.json.id}`, { headers: as('10.0.0.3') })).json?.status === 'completed', 20_000, 'the first job to complete');
    expect((await request(services.media.port!, `/images/${accepted.json.id}.png`)).status).toBe(200);

    // The flood: one client far over its limit (429s)...
    const limited = await Promise.all(Array.from({ length: 60 }, () => request(gw, '/api/styles', { headers: as('10.1.0.1') })));
    expect(limited.filter((r) => r.status === 429).length).toBeGreaterThan(0); // 10/s: a burst of 60 spans at most a few windows

    // ...then the model hangs: the gateway's breaker opens on timeouts, and render jobs pile
    // up against the queue bound (3) while the worker's calls time out.
    services.model.proc.signal('SIGSTOP');
    let round = 0;
    await until(
      async () => {
        round++;
        await Promise.all([
          request(gw, '/api/styles', { headers: as(`10.2.0.${round % 250}`) }),
          ...Array.from({ length: 4 }, (_, i) => request(gw, '/api/images', { body: { prompt: `storm ${round}-${i}`, width: 64, height: 64 }, headers: as(`10.3.${round % 250}.${i}`) })),
        ]);
        const text = await scrape('gateway');
        return metricValue(text, 'levee_circuit_state', { target: 'model' }) === 1 && metricValue(text, 'levee_queue_rejected_total', { reason: 'depth' }) > 0;
      },
      30_000,
      'the gateway breaker to open and the queue bound to refuse jobs',
    );

    // Prometheus sees the breaker: the alert's own expression is true, and the alert pending.
    await until(async () => (await query(BREAKER_EXPR)).some((r) => r.metric.job === COMPONENTS.gateway && r.metric.target === 'model'), 20_000, `${BREAKER_EXPR} to be true`);
    await until(
      async () => {
        const res = await request(promPort, '/api/v1/alerts');
        return res.json.data.alerts.some((a: any) => a.labels.alertname === 'LeveeCircuitBreakerOpen' && a.labels.job === COMPONENTS.gateway && ['pending', 'firing'].includes(a.state));
      },
      20_000,
      'LeveeCircuitBreakerOpen to be pending',
    );

    // Every metric named by an alert or a panel has series (histograms: their _bucket).
    const named = new Set([
      ...alertGroups(config, config.monitoring!).flatMap((g) => g.rules.flatMap((r) => selectedMetrics(r.expr))),
      ...dashboardQueries(leveeDashboard(config, config.monitoring!)).flatMap((q) => selectedMetrics(q.expr)),
    ]);
    expect(named.size).toBeGreaterThanOrEqual(15);
    // Polled: on a loaded 2-core CI host a scrape (1 s interval, 900 ms timeout) can fail, and
    // one that lands later still counts. What is missing at the deadline fails the test, named,
    // with each target's last scrape error.
    let missing: string[] = [];
    const deadline = Date.now() + 20_000;
    do {
      missing = [];
      for (const name of named) if ((await query(`count(${name}{namespace="${NAMESPACE}"})`)).length === 0) missing.push(name);
      if (missing.length > 0) await new Promise((r) => setTimeout(r, 250));
    } while (missing.length > 0 && Date.now() < deadline);
    const targets = (await request(promPort, '/api/v1/targets')).json.data.activeTargets.map((t: any) => `${t.labels.job}: ${t.health} ${t.lastError}`);
    expect({ missing, targets: missing.length ? targets : [] }).toEqual({ missing: [], targets: [] });

    // The hung model cannot be scraped either: its target-missing expression is true too...
    await until(async () => (await query(MODEL_MISSING_EXPR)).length === 1, 20_000, `${MODEL_MISSING_EXPR} to be true`);
    // ...until it is back.
    services.model.proc.signal('SIGCONT');
    await until(async () => (await query(MODEL_MISSING_EXPR)).length === 0, 20_000, `${MODEL_MISSING_EXPR} to be false again`);

    // Every component is scraped, so no LeveeTargetMissing expression is true.
    for (const job of SCRAPED_COMPONENTS.map((c) => COMPONENTS[c])) {
      expect([job, (await query(`up{namespace="${NAMESPACE}",job="${job}"}`)).map((r) => r.value[1])]).toEqual([job, ['1']]);
    }

    // Every rule Prometheus loaded evaluates without error.
    const rules = (await request(promPort, '/api/v1/rules')).json.data.groups.flatMap((g: any) => g.rules);
    expect(rules.length).toBeGreaterThanOrEqual(9);
    expect(rules.filter((r: any) => r.health !== 'ok').map((r: any) => `${r.name}: ${r.lastError}`)).toEqual([]);
  });
});
