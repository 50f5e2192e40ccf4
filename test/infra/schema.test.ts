/**
 * Every synthesized object, in every environment, L7 provider and load-balancing variant,
 * validates against the Kubernetes OpenAPI schema (kubernetes-models), the KEDA CRD schema,
 * or — Gateway API and Envoy Gateway kinds — the openAPIV3Schema of the CRDs in infra/crds.
 */
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { PodMonitor, PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, LimitRange, Namespace, ResourceQuota, Service, ServiceAccount } from 'kubernetes-models/v1';
import { checkPolicy, resolveConfig } from '../../infra';
import { loadCrdValidators } from './crd-schema';
import { manifestsFor, VARIANTS } from './helpers';

const CRDS = loadCrdValidators();
/** The custom kinds Levee writes and the CRD each is checked against. */
const CRD_KINDS = [
  'gateway.networking.k8s.io/v1/Gateway',
  'gateway.networking.k8s.io/v1/HTTPRoute',
  'gateway.envoyproxy.io/v1alpha1/BackendTrafficPolicy',
  'gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy',
  'karpenter.sh/v1/NodePool',
];

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
    const type = `${manifest.apiVersion}/${manifest.kind}`;
    const crd = CRDS.get(type);
    if (crd) {
      expect(CRD_KINDS).toContain(type);
      expect(crd.validate(manifest)).toEqual([]);
      return;
    }
    const Model = MODELS[type];
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
    // Every Redis container (data pods, Sentinels, cache) gets the password on stdin, from the Secret-backed env var.
    const redis = containers.filter((c: any) => c.command?.[2]?.includes('redis-server'));
    const config = resolveConfig(settings);
    const expected = (config.queueRedis.mode === 'external' ? 0 : 1) + (config.queueRedis.mode === 'sentinel' ? 1 : 0) + (config.cacheRedis.mode === 'deployment' ? 1 : 0);
    expect(redis.map((c: any) => c.command[2].match(/^requirepass .*$/m)?.[0])).toEqual(Array(expected).fill('requirepass $REDIS_PASSWORD'));
    for (const c of redis) expect(c.env.find((e: any) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef.key).toBe('password');
  });
});

test('every custom kind Levee writes has its CRD in infra/crds, and every variant together writes each of them', () => {
  const written = new Set(Object.values(VARIANTS).flatMap((settings) => manifestsFor(settings).map((m) => `${m.apiVersion}/${m.kind}`)));
  for (const type of CRD_KINDS) {
    expect(CRDS.has(type)).toBe(true);
    expect(written.has(type)).toBe(true);
  }
  expect([...written].filter((t) => !MODELS[t] && !CRDS.has(t))).toEqual([]);
});

test.each([
  ['a BackendTrafficPolicy with an unknown load balancer', 'BackendTrafficPolicy', (o: any) => (o.spec.loadBalancer.type = 'Fastest'), '/spec/loadBalancer/type must be equal to one of the allowed values'],
  ['a BackendTrafficPolicy with a misspelt field', 'BackendTrafficPolicy', (o: any) => (o.spec.circuitBreaker.maxConnection = 10), '/spec/circuitBreaker must NOT have additional properties'],
  ['a BackendTrafficPolicy with a duration Envoy Gateway cannot parse', 'BackendTrafficPolicy', (o: any) => (o.spec.timeout.http.requestTimeout = '20 seconds'), '/spec/timeout/http/requestTimeout must match pattern'],
  ['an HTTPRoute with a negative port', 'HTTPRoute', (o: any) => (o.spec.rules[0].backendRefs[0].port = -1), '/spec/rules/0/backendRefs/0/port must be >= 1'],
  ['an HTTPRoute with a path match type outside the enum', 'HTTPRoute', (o: any) => (o.spec.rules[0].matches[0].path.type = 'Prefix'), '/spec/rules/0/matches/0/path/type must be equal to one of the allowed values'],
  ['a NodePool whose consolidation delay Karpenter cannot parse', 'NodePool', (o: any) => (o.spec.disruption.consolidateAfter = '10 minutes'), '/spec/disruption/consolidateAfter must match pattern'],
  ['a NodePool without a NodeClass', 'NodePool', (o: any) => delete o.spec.template.spec.nodeClassRef, "/spec/template/spec must have required property 'nodeClassRef'"],
  ['a Gateway without a class', 'Gateway', (o: any) => delete o.spec.gatewayClassName, "/spec must have required property 'gatewayClassName'"],
  ['a Gateway with two listeners of one name (list-type map)', 'Gateway', (o: any) => (o.spec.listeners[1].name = o.spec.listeners[0].name), '/spec/listeners must pass "listMapKeys" keyword validation'],
  ['a ClientTrafficPolicy with a string hop count', 'ClientTrafficPolicy', (o: any) => (o.spec.clientIPDetection.xForwardedFor.numTrustedHops = '1'), '/spec/clientIPDetection/xForwardedFor/numTrustedHops must be integer'],
  ['an object with an invalid metadata name', 'HTTPRoute', (o: any) => (o.metadata.name = 'Levee_Route'), '/metadata'],
])('the CRD schema check rejects %s', (_what, kind, breakIt, message) => {
  const object = JSON.parse(JSON.stringify(manifestsFor({ modelGpus: '1', nodeProvisioner: 'karpenter' }).find((m) => m.kind === kind)));
  expect(CRDS.get(`${object.apiVersion}/${object.kind}`)!.validate(object)).toEqual([]);
  breakIt(object);
  expect(CRDS.get(`${object.apiVersion}/${object.kind}`)!.validate(object).join('\n')).toContain(message);
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
