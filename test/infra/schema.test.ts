/**
 * Every synthesized object, in every environment and load-balancing variant, validates
 * against the Kubernetes OpenAPI schema (kubernetes-models) or the KEDA CRD schema.
 */
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PodMonitor, PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount } from 'kubernetes-models/v1';
import { checkPolicy } from '../../infra';
import { manifestsFor, VARIANTS } from './helpers';

type Validatable = { validate(): void };
const MODELS: Record<string, new (data: any) => Validatable> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ResourceQuota': ResourceQuota,
  'v1/LimitRange': LimitRange,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'networking.k8s.io/v1/Ingress': Ingress,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
  'v1/ConfigMap': ConfigMap,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

describe.each(Object.entries(VARIANTS))('%s', (_name, settings) => {
  const manifests = manifestsFor(settings);

  test.each(manifests.map((m) => [`${m.kind}/${m.metadata.name}`, m] as const))('%s validates against its schema', (_id, manifest) => {
    const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
    expect(Model).toBeDefined();
    expect(() => new Model!(manifest).validate()).not.toThrow();
  });

  test('is policy-clean', () => {
    expect(checkPolicy(manifests)).toEqual([]);
  });

  test('holds no password and no Secret, and no password in any process argument', () => {
    expect(manifests.filter((m) => m.kind === 'Secret')).toEqual([]);
    const containers = manifests.flatMap((m: any) => [...(m.spec?.template?.spec?.initContainers ?? []), ...(m.spec?.template?.spec?.containers ?? [])]);
    // Nothing Kubernetes would expand into argv: no --requirepass, no $(…PASSWORD…) / $(…AUTH…).
    for (const c of containers) {
      const argv: string[] = [...(c.command ?? []), ...(c.args ?? [])].map(String);
      expect(argv.filter((a) => /--requirepass|\$\([A-Z_]*(PASSWORD|AUTH)[A-Z_]*\)/.test(a))).toEqual([]);
    }
    // The two Redis containers get the password on stdin, from the Secret-backed env var.
    const redis = containers.filter((c: any) => c.command?.[2]?.includes('redis-server'));
    expect(redis.map((c: any) => c.command[2].match(/^requirepass .*$/m)?.[0])).toEqual(['requirepass $REDIS_PASSWORD', 'requirepass $REDIS_PASSWORD']);
    for (const c of redis) expect(c.env.find((e: any) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef.key).toBe('password');
  });
});

test('the prometheus-operator schemas reject a broken monitor and a broken rule', () => {
  const m = manifestsFor({ monitoring: 'prometheus-operator' }) as any[];
  const monitor = JSON.parse(JSON.stringify(m.find((o) => o.kind === 'ServiceMonitor')));
  monitor.spec.endpoints[0].port = 9465; // must be a port name
  expect(() => new ServiceMonitor(monitor).validate()).toThrow();
  const rule = JSON.parse(JSON.stringify(m.find((o) => o.kind === 'PrometheusRule')));
  delete rule.spec.groups[0].name;
  expect(() => new PrometheusRule(rule).validate()).toThrow();
});

test('the schema check itself rejects a broken object', () => {
  const [deployment] = manifestsFor({}).filter((m) => m.kind === 'Deployment');
  const broken = JSON.parse(JSON.stringify(deployment));
  broken.spec.template.spec.containers[0].ports[0].containerPort = 'http';
  expect(() => new Deployment(broken).validate()).toThrow();
});
