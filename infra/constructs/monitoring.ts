import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { IPodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import type { LeveeConfig, MonitoringConfig } from '../config/resolve';
import { alertGroups } from '../monitoring/alerts';
import { leveeDashboard } from '../monitoring/dashboard';
import { COMPONENTS, LABELS, METRICS_PORT_NAME } from '../names';
import { objectMeta, selectorLabels } from './pod';

export interface MonitoringProps {
  readonly config: LeveeConfig;
}

/** Names of the monitoring objects (stable, never from configuration values). */
export const MONITORING_NAMES = { rule: 'levee', dashboard: 'levee-dashboard' } as const;
/** The key of the dashboard JSON in its ConfigMap (the sidecar writes it out under this file name). */
export const DASHBOARD_FILE = 'levee.json';

/**
 * With `monitoring = prometheus-operator`: a ServiceMonitor for each app with a Service
 * (gateway, media, model: their `metrics` Service port), a PodMonitor for the worker (no
 * Service; its `metrics` container port), a PrometheusRule with the alerts, and the Grafana
 * dashboard as a ConfigMap labelled for Grafana's dashboard sidecar. Prometheus's `job` is
 * the component's name (`jobLabel: app.kubernetes.io/name`), which the alerts rely on.
 */
export class Monitoring extends Construct {
  /** The model's only when it runs in the chart. */
  public readonly serviceMonitors: Readonly<Record<'gateway' | 'media', ApiObject> & { model?: ApiObject }>;
  public readonly podMonitor: ApiObject;
  public readonly webhooksPodMonitor: ApiObject;
  public readonly rule: ApiObject;
  public readonly dashboard: k8s.KubeConfigMap;

  constructor(scope: Construct, id: string, props: MonitoringProps & { readonly monitoring: MonitoringConfig }) {
    super(scope, id);
    const { config, monitoring } = props;
    const meta = (name: string, component: string) => {
      const m = objectMeta(config, name, component);
      return { name, namespace: m.namespace, labels: { ...m.labels, ...Object.fromEntries(monitoring.labels.map((l) => [l.key, l.value])) } };
    };
    const endpoint = { port: METRICS_PORT_NAME, path: '/metrics', interval: `${monitoring.scrapeIntervalSeconds}s`, scrapeTimeout: `${Math.min(10, monitoring.scrapeIntervalSeconds)}s` };

    const serviceMonitor = (key: 'gateway' | 'media' | 'model'): ApiObject => {
      const name = COMPONENTS[key];
      const body: IServiceMonitor = {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata: meta(name, key),
        spec: { jobLabel: LABELS.name, selector: { matchLabels: selectorLabels(name) }, endpoints: [endpoint] },
      };
      return new ApiObject(this, `${key}-service-monitor`, body);
    };
    this.serviceMonitors = { gateway: serviceMonitor('gateway'), media: serviceMonitor('media'), ...(config.modelServer.external ? {} : { model: serviceMonitor('model') }) };

    // The apps without a Service (worker, webhook sender): their pods' `metrics` container port.
    const podMonitor = (key: 'worker' | 'webhooks'): ApiObject => {
      const body: IPodMonitor = {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PodMonitor',
        metadata: meta(COMPONENTS[key], key),
        spec: { jobLabel: LABELS.name, selector: { matchLabels: selectorLabels(COMPONENTS[key]) }, podMetricsEndpoints: [endpoint] },
      };
      return new ApiObject(this, `${key}-pod-monitor`, body);
    };
    this.podMonitor = podMonitor('worker');
    this.webhooksPodMonitor = podMonitor('webhooks');

    const rule: IPrometheusRule = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta(MONITORING_NAMES.rule, 'monitoring'),
      spec: { groups: alertGroups(config, monitoring).map((g) => ({ name: g.name, rules: g.rules.map((r) => ({ ...r, labels: { ...r.labels }, annotations: { ...r.annotations } })) })) },
    };
    this.rule = new ApiObject(this, 'rule', rule);

    const dashboardMeta = objectMeta(config, MONITORING_NAMES.dashboard, 'monitoring');
    this.dashboard = new k8s.KubeConfigMap(this, 'dashboard', {
      metadata: { ...dashboardMeta, labels: { ...dashboardMeta.labels, [monitoring.dashboardLabel.key]: monitoring.dashboardLabel.value } },
      data: { [DASHBOARD_FILE]: JSON.stringify(leveeDashboard(config, monitoring), null, 2) },
    });
  }
}
