import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { AppSizing, LeveeConfig } from '../config/resolve';
import { METRICS_PORT_NAME } from '../names';
import {
  TMP_MOUNT, TMP_VOLUME, containerSecurityContext, objectMeta, basePodSpec, resources, selectorLabels, topologySpread,
} from './pod';
import { tracingEnv } from './tracing';

export interface AppWorkloadProps {
  readonly config: LeveeConfig;
  /** Stable Kubernetes name (`levee-gateway`, …). */
  readonly name: string;
  /** `app.kubernetes.io/component` value; also the service name `levee-<component>` of its traces. */
  readonly component: string;
  readonly sizing: AppSizing;
  readonly image: string;
  /** The container's command, when not the image's (the webhook sender runs in the worker image). @default the image's CMD */
  readonly command?: readonly string[];
  /** Container ports the app serves on (the first one is the Service's). */
  readonly ports: readonly { readonly name: string; readonly port: number }[];
  /**
   * The metrics listener (METRICS_PORT), a container port named `metrics`: on the Service
   * too (a port the edge never routes to), scraped by Prometheus from the monitoring namespace.
   * Omit it when it is already one of `ports` (the worker's health server).
   */
  readonly metricsPort?: number;
  readonly env: readonly k8s.EnvVar[];
  readonly livenessProbe: k8s.Probe;
  readonly readinessProbe: k8s.Probe;
  /** preStop sleep, for apps behind a Service. @default - none */
  readonly preStopSeconds?: number;
  readonly terminationGracePeriodSeconds: number;
  /** Create a ClusterIP Service on the first port (and the metrics port). @default true */
  readonly service?: boolean;
  /** Create a CPU HorizontalPodAutoscaler. @default true */
  readonly cpuAutoscaler?: boolean;
  /** More volumes (besides /tmp), e.g. a Redis CA certificate. @default none */
  readonly volumes?: readonly k8s.Volume[];
  /** Where the container mounts them. @default none */
  readonly volumeMounts?: readonly k8s.VolumeMount[];
  /** Annotations of the ServiceAccount: a workload identity (IRSA, GKE). @default none */
  readonly serviceAccountAnnotations?: Readonly<Record<string, string>>;
  /** A startupProbe: liveness and readiness wait until it passes (a model that loads for minutes). @default none */
  readonly startupProbe?: k8s.Probe;
  /** Extended resources per container (e.g. `nvidia.com/gpu: 1`), as requests and limits alike. @default none */
  readonly extendedResources?: Readonly<Record<string, number>>;
  /** Where the pods may run: tolerations, a node selector, a runtime class. @default anywhere */
  readonly scheduling?: { readonly tolerations?: readonly k8s.Toleration[]; readonly nodeSelector?: Readonly<Record<string, string>>; readonly runtimeClassName?: string };
}

/**
 * An autoscaled app: ServiceAccount (no token), Deployment without fixed replicas,
 * ClusterIP Service, CPU HPA (autoscaling/v2, explicit behavior) and a PodDisruptionBudget
 * that can never block a node drain.
 */
export class AppWorkload extends Construct {
  public readonly serviceAccount: k8s.KubeServiceAccount;
  public readonly deployment: k8s.KubeDeployment;
  public readonly service?: k8s.KubeService;
  public readonly autoscaler?: k8s.KubeHorizontalPodAutoscalerV2;
  public readonly disruptionBudget?: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: AppWorkloadProps) {
    super(scope, id);
    const { config, name, component, sizing } = props;
    const ports = [...props.ports, ...(props.metricsPort !== undefined ? [{ name: METRICS_PORT_NAME, port: props.metricsPort }] : [])];
    const metrics = ports.find((p) => p.name === METRICS_PORT_NAME);
    if (!metrics) throw new Error(`AppWorkload ${name}: no port named "${METRICS_PORT_NAME}" (set metricsPort, or name one of the ports so)`);

    const annotations = props.serviceAccountAnnotations ?? {};
    this.serviceAccount = new k8s.KubeServiceAccount(this, 'service-account', {
      metadata: objectMeta(config, name, component, Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
      automountServiceAccountToken: false,
    });

    const base = resources(sizing.resources);
    const extended = Object.fromEntries(Object.entries(props.extendedResources ?? {}).map(([name, n]) => [name, k8s.Quantity.fromNumber(n)]));
    const container: k8s.Container = {
      name: component,
      image: props.image,
      ...(props.command ? { command: [...props.command] } : {}),
      imagePullPolicy: 'IfNotPresent',
      ports: ports.map((p) => ({ name: p.name, containerPort: p.port, protocol: 'TCP' })),
      // With LEVEE_OTLP_ENDPOINT, the OTEL_* variables of every Levee container (none otherwise).
      env: [...props.env, ...tracingEnv(config, component)],
      // Extended resources cannot be overcommitted: requests equal limits.
      resources: { requests: { ...base.requests, ...extended }, limits: { ...base.limits, ...extended } },
      securityContext: containerSecurityContext(),
      ...(props.startupProbe ? { startupProbe: props.startupProbe } : {}),
      livenessProbe: props.livenessProbe,
      readinessProbe: props.readinessProbe,
      volumeMounts: [TMP_MOUNT, ...(props.volumeMounts ?? [])],
      ...(props.preStopSeconds !== undefined && props.preStopSeconds > 0
        ? { lifecycle: { preStop: { exec: { command: ['sleep', String(props.preStopSeconds)] } } } }
        : {}),
    };

    this.deployment = new k8s.KubeDeployment(this, 'deployment', {
      metadata: objectMeta(config, name, component),
      spec: {
        // No `replicas`: the autoscaler owns the replica count.
        selector: { matchLabels: selectorLabels(name) },
        revisionHistoryLimit: 5,
        strategy: {
          type: 'RollingUpdate',
          // Never lose capacity during a rollout: surge first, then retire.
          rollingUpdate: { maxSurge: k8s.IntOrString.fromString('25%'), maxUnavailable: k8s.IntOrString.fromNumber(0) },
        },
        template: {
          metadata: {
            labels: objectMeta(config, name, component).labels,
            annotations: {
              'prometheus.io/scrape': 'true',
              'prometheus.io/port': String(metrics.port),
              'prometheus.io/path': '/metrics',
            },
          },
          spec: {
            ...basePodSpec(name, props.terminationGracePeriodSeconds),
            topologySpreadConstraints: topologySpread(name, true),
            ...(props.scheduling?.tolerations?.length ? { tolerations: [...props.scheduling.tolerations] } : {}),
            ...(props.scheduling?.nodeSelector && Object.keys(props.scheduling.nodeSelector).length > 0 ? { nodeSelector: { ...props.scheduling.nodeSelector } } : {}),
            ...(props.scheduling?.runtimeClassName ? { runtimeClassName: props.scheduling.runtimeClassName } : {}),
            containers: [container],
            volumes: [TMP_VOLUME, ...(props.volumes ?? [])],
          },
        },
      },
    });

    if (props.service ?? true) {
      const servicePorts = [props.ports[0]!, ...(metrics !== props.ports[0] ? [metrics] : [])];
      this.service = new k8s.KubeService(this, 'service', {
        metadata: objectMeta(config, name, component),
        spec: {
          type: 'ClusterIP',
          selector: selectorLabels(name),
          ports: servicePorts.map((port) => ({ name: port.name, port: port.port, targetPort: k8s.IntOrString.fromString(port.name), protocol: 'TCP' })),
        },
      });
    }

    if (props.cpuAutoscaler ?? true) {
      this.autoscaler = new k8s.KubeHorizontalPodAutoscalerV2(this, 'autoscaler', {
        metadata: objectMeta(config, name, component),
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
          minReplicas: sizing.minReplicas,
          maxReplicas: sizing.maxReplicas,
          metrics: [
            { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: sizing.cpuTargetPercent } } },
          ],
          behavior: scalingBehavior(),
        },
      });
    }

    const budget = disruptionBudget(config, sizing.minReplicas);
    if (budget) {
      this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, 'disruption-budget', {
        metadata: objectMeta(config, name, component),
        spec: { ...budget, selector: { matchLabels: selectorLabels(name) } },
      });
    }
  }
}

/**
 * Floods need a fast scale-up (double, or +4 pods, every 15 s, no stabilization) and a
 * slow scale-down (10% a minute after 5 minutes of lower load) so a pulsing flood does
 * not make the fleet flap.
 */
export function scalingBehavior(): k8s.HorizontalPodAutoscalerBehaviorV2 {
  return {
    scaleUp: {
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Max',
      policies: [
        { type: 'Percent', value: 100, periodSeconds: 15 },
        { type: 'Pods', value: 4, periodSeconds: 15 },
      ],
    },
    scaleDown: {
      stabilizationWindowSeconds: 300,
      selectPolicy: 'Min',
      policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }],
    },
  };
}

/**
 * A budget only where one cannot block a drain: production, at least 2 replicas,
 * `maxUnavailable: 1`, and unhealthy pods always evictable.
 */
export function disruptionBudget(config: LeveeConfig, minReplicas: number): Omit<k8s.PodDisruptionBudgetSpec, 'selector'> | undefined {
  if (!config.podDisruptionBudgets || minReplicas < 2) return undefined;
  return { maxUnavailable: k8s.IntOrString.fromNumber(1), unhealthyPodEvictionPolicy: 'AlwaysAllow' };
}
