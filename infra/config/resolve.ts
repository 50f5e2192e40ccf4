/**
 * Turns a plain record of settings (environment variables for synth, stack config for
 * Pulumi — same keys, same messages) into a validated {@link LeveeConfig}.
 * Nothing is built before this succeeds.
 *
 * This file is the entry point: the settings are parsed one by one (parse.ts), the general
 * cross-setting rules are checked here and each area's in its own file (redis.ts, model.ts,
 * image-store.ts, edge.ts, tracing.ts), then the config is assembled. The shape of the result is in
 * types.ts, the warnings about a valid config in warnings.ts.
 */
import { MONITORING_ONLY_SETTINGS, SettingName, settingLabel } from './settings';
import { edgeConfig, edgeProblems, loadBalancingConfig, loadBalancingProblems } from './edge';
import { imageStoreProblems, s3Store } from './image-store';
import { modelProblems, modelServer } from './model';
import { parseSettings } from './parse';
import { ConfigError, show } from './problems';
import { cacheRedisConfig, queueRedisConfig, redisProblems } from './redis';
import { tracingConfig, tracingProblems } from './tracing';
import type { AppSizing, LeveeConfig, SettingsInput } from './types';

export type {
  AlertThresholds, AppSizing, ClientIpDetectionConfig, EnvoyEdge, ExternalRedis, GatewayEdge, LeveeConfig, LoadBalancing, ModelServer,
  MonitoringConfig, Resources, S3Store, SentinelSettings, SettingsInput, TracingConfig,
} from './types';
export { NOT_THE_INTERNET, SENTINEL_DEFAULTS } from './types';
export { ConfigError } from './problems';
export { ENVOY_GATEWAY_SETTINGS } from './edge';
export { OTLP_DEFAULT_PORTS } from './tracing';
export { settingsFromEnv } from './parse';
export { configWarnings } from './warnings';

/** Validates and resolves the settings; throws {@link ConfigError} listing every problem. */
export function resolveConfig(input: SettingsInput): LeveeConfig {
  const { environment, raw, v, given } = parseSettings(input);
  const problems: string[] = [];

  // Cross-setting rules: contradictions are refused, not silently resolved.
  if (environment !== 'preview' && given('previewId')) {
    problems.push(`${show('previewId', raw.previewId)} is only allowed when ${settingLabel('environment')} = "preview" (got "${environment}")`);
  }
  for (const app of ['gateway', 'media', 'model', 'worker'] as const) {
    const min = `${app}MinReplicas` as const;
    const max = `${app}MaxReplicas` as const;
    if (v[min] >= v[max]) {
      problems.push(`${show(min, raw[min])} is not below ${show(max, raw[max])}; allowed: minimum replicas < maximum replicas (an autoscaler needs room to scale)`);
    }
    const cpuReq = `${app}CpuRequest` as const;
    const cpuLim = `${app}CpuLimit` as const;
    if (v[cpuReq].millis > v[cpuLim].millis) {
      problems.push(`${show(cpuReq, raw[cpuReq])} is greater than ${show(cpuLim, raw[cpuLim])}; allowed: request ≤ limit`);
    }
    const memReq = `${app}MemoryRequest` as const;
    const memLim = `${app}MemoryLimit` as const;
    if (v[memReq].bytes > v[memLim].bytes) {
      problems.push(`${show(memReq, raw[memReq])} is greater than ${show(memLim, raw[memLim])}; allowed: request ≤ limit`);
    }
  }
  if (v.workerAutoscaler === 'keda' && given('workerCpuTarget')) {
    problems.push(`${show('workerCpuTarget', raw.workerCpuTarget)} contradicts ${settingLabel('workerAutoscaler')} = "keda"; allowed: a CPU target only with workerAutoscaler = "cpu" (KEDA scales on queue depth)`);
  }
  if (v.workerAutoscaler === 'cpu' && given('kedaListLength')) {
    problems.push(`${show('kedaListLength', raw.kedaListLength)} contradicts ${settingLabel('workerAutoscaler')} = "cpu"; allowed: a KEDA list length only with workerAutoscaler = "keda"`);
  }
  if (!v.queueRedisPersistence && (given('queueRedisStorageSize') || given('storageClass'))) {
    const which: SettingName = given('queueRedisStorageSize') ? 'queueRedisStorageSize' : 'storageClass';
    problems.push(`${show(which, raw[which])} contradicts ${settingLabel('queueRedisPersistence')} = "false"; allowed: storage settings only with persistence = "true"`);
  }
  if (v.monitoring !== 'prometheus-operator') {
    for (const name of MONITORING_ONLY_SETTINGS.filter(given)) {
      problems.push(`${show(name, raw[name])} contradicts ${show('monitoring', raw.monitoring)}; allowed: ${name} only with monitoring = "prometheus-operator"`);
    }
  }
  problems.push(...tracingProblems(environment, v, raw, given));
  for (const [mem, label] of [['queueRedisMemory', 'queue'], ['cacheRedisMemory', 'cache']] as const) {
    if (v[mem].bytes < 64 * 1024 ** 2) {
      problems.push(`${show(mem, raw[mem])} is too small for the ${label} Redis; allowed: at least 64Mi`);
    }
  }

  // Each area's own rules (redis.ts, model.ts, image-store.ts, edge.ts), in this order.
  problems.push(...redisProblems(v, raw, given));
  problems.push(...modelProblems(v, raw, given));
  problems.push(...imageStoreProblems(v, raw, given));
  problems.push(...loadBalancingProblems(v, raw, given));
  problems.push(...edgeProblems(environment, v, raw, given));

  if (problems.length > 0) throw new ConfigError(problems);

  const previewId = environment === 'preview' ? v.previewId : undefined;
  const tracing = tracingConfig(v);
  const namespace = environment === 'production' ? 'levee' : environment === 'dev' ? 'levee-dev' : `levee-${previewId}`;
  const sizing = (app: 'gateway' | 'media' | 'model' | 'worker' | 'webhooks'): AppSizing => ({
    minReplicas: v[`${app}MinReplicas`],
    maxReplicas: v[`${app}MaxReplicas`],
    cpuTargetPercent: v[`${app}CpuTarget`],
    resources: {
      cpuRequest: v[`${app}CpuRequest`],
      cpuLimit: v[`${app}CpuLimit`],
      memoryRequest: v[`${app}MemoryRequest`],
      memoryLimit: v[`${app}MemoryLimit`],
    },
  });

  return {
    environment,
    ...(previewId !== undefined ? { previewId } : {}),
    namespace,
    labels: { 'levee.dev/environment': environment, ...(previewId !== undefined ? { 'levee.dev/preview-id': previewId } : {}) },
    images: { registry: v.imageRegistry, tag: v.imageTag, digests: v.imageDigests, redis: v.redisImage },
    gateway: sizing('gateway'),
    media: sizing('media'),
    model: sizing('model'),
    worker: {
      ...sizing('worker'),
      // Scale to zero: the workers too, unless a minimum is given (KEDA wakes them with the model).
      ...(v.modelMinReplicas === 0 && !given('workerMinReplicas') ? { minReplicas: 0 } : {}),
      autoscaler: v.workerAutoscaler,
      kedaListLength: v.kedaListLength,
      concurrency: v.workerConcurrency,
      modelTimeoutMs: v.modelTimeoutMs,
      jobDeadlineSeconds: v.jobDeadlineSeconds,
    },
    webhooks: {
      ...sizing('webhooks'),
      secret: v.webhookSecret,
      egressCidrs: v.webhookEgressCidrs.split(','),
      allowedCidrs: v.webhookAllowedCidrs,
      allowHttp: v.webhookAllowHttp,
      allowedPorts: [...new Set([...v.webhookAllowedPorts.split(',').map(Number), ...(v.webhookAllowHttp ? [80] : [])])],
      eventsMaxPerClient: v.eventsMaxPerClient,
      eventsMax: v.eventsMax,
    },
    queueRedis: queueRedisConfig(v),
    cacheRedis: cacheRedisConfig(v),
    edge: edgeConfig(environment, previewId, v, given),
    modelServer: modelServer(v, namespace),
    imageStore: v.imageStore === 's3' ? s3Store(v) : { kind: 'redis' },
    imageDelivery: { mode: v.imageDelivery, urlTtlSeconds: v.imageUrlTtlSeconds, ...(v.imagePublicBaseUrl !== '' ? { publicBaseUrl: v.imagePublicBaseUrl } : {}) },
    loadBalancing: loadBalancingConfig(v, given),
    monitoringNamespace: v.monitoringNamespace,
    ...(v.monitoring === 'prometheus-operator'
      ? {
          monitoring: {
            labels: v.monitoringLabels,
            scrapeIntervalSeconds: v.scrapeIntervalSeconds,
            dashboardLabel: v.grafanaDashboardLabel,
            runbookUrl: v.runbookUrl,
            alerts: {
              breakerOpenMinutes: v.alertBreakerOpenMinutes,
              rateLimitedPercent: v.alertRateLimitedPercent,
              queueRejectedPercent: v.alertQueueRejectedPercent,
              oldestJobMinutes: v.alertOldestJobMinutes,
              jobFailurePercent: v.alertJobFailurePercent,
              webhookFailurePercent: v.alertWebhookFailurePercent,
              stalledJobs: v.alertStalledJobs,
              queueRedisMemoryPercent: v.alertQueueRedisMemoryPercent,
              gatewayMaxedMinutes: v.alertGatewayMaxedMinutes,
            },
          },
        }
      : {}),
    ...(tracing ? { tracing } : {}),
    kedaNamespace: v.kedaNamespace,
    dns: { selector: v.dnsSelector, port: v.dnsPort, cidrs: v.dnsCidrs === '' ? [] : v.dnsCidrs.split(',') },
    app: {
      rateLimitPerSecond: v.rateLimitPerSecond,
      rateLimitIpv6Prefix: v.rateLimitIpv6Prefix,
      trustProxy: v.trustProxy,
      queueName: v.queueName,
      queueMaxWaiting: v.queueMaxWaiting,
      cacheTtlSeconds: v.cacheTtlSeconds,
      breakerOpenSeconds: v.breakerOpenSeconds,
      imageTtlSeconds: v.imageTtlSeconds,
      logLevel: v.logLevel,
    },
    shutdown: { preStopSeconds: v.preStopSeconds, shutdownDelaySeconds: v.shutdownDelaySeconds, drainSeconds: v.drainSeconds },
    podDisruptionBudgets: environment === 'production',
    namespaceGuards: environment !== 'production',
  };
}
