/**
 * The public surface of the topology, shared by `infra/main.ts` (cdk8s) and the Pulumi
 * program: resolve + validate settings, build the chart, check it.
 */
export * from './names';
export * from './config/settings';
export * from './config/resolve';
export * from './chart';
export * from './synth';
export * from './policy';
export * from './l7';
export { AppWorkload, scalingBehavior, disruptionBudget } from './constructs/app-workload';
export type { AppWorkloadProps } from './constructs/app-workload';
export { Gateway } from './constructs/gateway';
export { Media } from './constructs/media';
export { Model } from './constructs/model';
export { Worker, scaledObject, triggerAuthentication, WORKER_TRIGGER_AUTH_NAME } from './constructs/worker';
export { QueueRedis } from './constructs/queue-redis';
export { QueueSentinel } from './constructs/queue-sentinel';
export { queueRedisClient, cacheRedisClient, sentinelClientAddress, queueRedisPodHost } from './constructs/endpoints';
export { CacheRedis } from './constructs/cache-redis';
export { Edge, CLIENT_IP_AFFINITY_SECONDS } from './constructs/edge';
export { NetworkPolicies, trafficMatrix } from './constructs/network-policies';
export { LeveeNamespace, namespaceQuota } from './constructs/namespace';
export { appImage, appImageTag } from './constructs/pod';
export { httpGracePeriodSeconds, workerGracePeriodSeconds } from './constructs/termination';
export { Monitoring, MONITORING_NAMES, DASHBOARD_FILE } from './constructs/monitoring';
export { alertGroups, ALERT_NAMES, SCRAPED_COMPONENTS } from './monitoring/alerts';
export type { AlertRule, AlertName, RuleGroup, Severity } from './monitoring/alerts';
export { leveeDashboard, dashboardQueries, EXEMPLAR_METRICS } from './monitoring/dashboard';
export { METRICS, SERIES, seriesNames } from './monitoring/metrics';
export type { MetricSpec } from './monitoring/metrics';
export { selectedMetrics, selectors } from './monitoring/promql';
