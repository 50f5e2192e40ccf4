/**
 * OpenTelemetry tracing (LEVEE_OTLP_*, docs/how-to/tracing.md): off by default, with no trace of
 * it in the manifests; with an endpoint, the OTEL_* variables on every Levee container (POD_NAME
 * declared before the variable that expands it) and an egress rule from each app to the
 * collector pods on their OTLP port.
 */
import { checkPolicy } from '../../infra';
import { DEV, find, manifestsFor, PREVIEW } from './helpers';

const ENDPOINT = 'http://otel-collector.observability:4318';
const ON = { otlpEndpoint: ENDPOINT } as const;
/** The Levee apps and the service name of their traces. */
const APPS = [
  ['levee-gateway', 'levee-gateway'],
  ['levee-media', 'levee-media'],
  ['levee-worker', 'levee-worker'],
  ['levee-webhooks', 'levee-webhooks'],
  ['levee-model', 'levee-model'],
] as const;
const OTEL_NAMES = ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES'];

const containerOf = (m: any[], name: string) => {
  const containers = find(m, 'Deployment', name).spec.template.spec.containers;
  expect(containers).toHaveLength(1);
  return containers[0];
};
const envOf = (m: any[], name: string): any[] => containerOf(m, name).env;
const value = (env: any[], name: string) => env.find((e) => e.name === name)?.value;
/** Every container of every pod template (Deployments and StatefulSets). */
const everyContainer = (m: any[]) => m.flatMap((o) => [...(o.spec?.template?.spec?.initContainers ?? []), ...(o.spec?.template?.spec?.containers ?? [])].map((c: any) => ({ owner: `${o.kind}/${o.metadata.name}`, c })));
/** The egress rules of an app's policy that reach the collector's namespace. */
const collectorEgress = (m: any[], name: string, namespace = 'observability') =>
  find(m, 'NetworkPolicy', name).spec.egress.filter((r: any) => (r.to ?? []).some((t: any) => t.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === namespace));

describe('tracing off (the default)', () => {
  test.each([['production', {}], ['preview', PREVIEW], ['dev', DEV]])('%s: no OTEL_* variable, no POD_NAME on any app, no egress to a collector', (_env, settings) => {
    const m = manifestsFor(settings);
    for (const { owner, c } of everyContainer(m)) {
      const names = (c.env ?? []).map((e: any) => e.name);
      expect([owner, names.filter((n: string) => n.startsWith('OTEL_'))]).toEqual([owner, []]);
    }
    for (const [name] of APPS) {
      expect(envOf(m, name).map((e) => e.name)).not.toContain('POD_NAME');
      expect(collectorEgress(m, name)).toEqual([]);
    }
    // The model reaches nothing at all: no egress, not even DNS.
    expect(find(m, 'NetworkPolicy', 'levee-model').spec.egress).toEqual([]);
    expect(JSON.stringify(m)).not.toMatch(/OTEL_|opentelemetry|4318/);
  });
});

describe('tracing on (LEVEE_OTLP_ENDPOINT)', () => {
  const m = manifestsFor(ON);

  test.each(APPS)('%s exports its spans: the OTEL_* variables with the defaults, service %s', (name, service) => {
    const env = envOf(m, name);
    const byName = Object.fromEntries(env.filter((e) => OTEL_NAMES.includes(e.name)).map((e) => [e.name, e.value]));
    expect(byName).toEqual({
      OTEL_EXPORTER_OTLP_ENDPOINT: ENDPOINT,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.1',
      OTEL_SERVICE_NAME: service,
      OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=levee,deployment.environment.name=production,k8s.namespace.name=levee,k8s.pod.name=$(POD_NAME)',
    });
    // Each variable once.
    for (const n of [...OTEL_NAMES, 'POD_NAME']) expect(env.filter((e) => e.name === n)).toHaveLength(1);
  });

  test.each(APPS)('%s declares POD_NAME (downward API) before OTEL_RESOURCE_ATTRIBUTES, so $(POD_NAME) expands', (name) => {
    const env = envOf(m, name);
    const pod = env.findIndex((e) => e.name === 'POD_NAME');
    const attributes = env.findIndex((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES');
    expect(pod).toBeGreaterThanOrEqual(0);
    expect(pod).toBeLessThan(attributes);
    expect(env[pod]).toEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  });

  test('only the Levee apps get it: no Redis or Sentinel container exports spans', () => {
    const exporting = everyContainer(m).filter(({ c }) => (c.env ?? []).some((e: any) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT')).map(({ owner }) => owner);
    expect(exporting.sort()).toEqual(APPS.map(([name]) => `Deployment/${name}`).sort());
  });

  test.each(APPS)('%s may reach the collector pods (namespace observability, opentelemetry-collector pods) on TCP 4318', (name) => {
    expect(collectorEgress(m, name)).toEqual([
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'opentelemetry-collector' } } }],
        ports: [{ protocol: 'TCP', port: 4318 }],
      },
    ]);
  });

  test('the model, which reaches nothing else, gets DNS to resolve the collector', () => {
    const egress = find(m, 'NetworkPolicy', 'levee-model').spec.egress;
    expect(egress).toHaveLength(2);
    expect(egress[1].ports).toEqual([{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
  });

  test('the other egress rules are those of tracing off, plus the collector', () => {
    const off = manifestsFor({});
    for (const [name] of APPS) {
      const egress = find(m, 'NetworkPolicy', name).spec.egress;
      const before = find(off, 'NetworkPolicy', name).spec.egress;
      const added = egress.filter((r: any) => !before.some((b: any) => JSON.stringify(b) === JSON.stringify(r)));
      // The model also gets the DNS rule every other app already has.
      const dns = name === 'levee-model' ? [find(off, 'NetworkPolicy', 'levee-gateway').spec.egress.at(-1)] : [];
      expect(added).toEqual([...collectorEgress(m, name), ...dns]);
      expect(egress.length).toBe(before.length + added.length);
    }
  });

  test('the manifests are policy-clean', () => {
    expect(checkPolicy(m)).toEqual([]);
  });
});

describe('tracing settings', () => {
  test('protocol, sampling ratio, namespace, labels and port follow the settings; the resource names the environment and namespace', () => {
    const m = manifestsFor({
      ...PREVIEW, otlpEndpoint: 'http://tempo-distributor.tempo:4317', otlpProtocol: 'grpc', traceSamplingRatio: '1', otlpNamespace: 'tempo',
      otlpPodLabels: 'app.kubernetes.io/name=tempo,app.kubernetes.io/component=distributor',
    });
    for (const [name, service] of APPS) {
      const env = envOf(m, name);
      expect([value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT'), value(env, 'OTEL_EXPORTER_OTLP_PROTOCOL'), value(env, 'OTEL_TRACES_SAMPLER_ARG'), value(env, 'OTEL_SERVICE_NAME')]).toEqual([
        'http://tempo-distributor.tempo:4317', 'grpc', '1', service,
      ]);
      expect(value(env, 'OTEL_RESOURCE_ATTRIBUTES')).toBe('service.namespace=levee,deployment.environment.name=preview,k8s.namespace.name=levee-pr-7,k8s.pod.name=$(POD_NAME)');
      expect(collectorEgress(m, name, 'tempo')).toEqual([
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'tempo' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'tempo', 'app.kubernetes.io/component': 'distributor' } } }],
          ports: [{ protocol: 'TCP', port: 4317 }],
        },
      ]);
    }
    expect(checkPolicy(m)).toEqual([]);
  });

  test.each([
    ["the endpoint URL's port", { otlpEndpoint: 'http://jaeger-collector.tracing:14318' }, 14318],
    ['the grpc default when the URL has no port', { otlpEndpoint: 'http://otel-collector.observability', otlpProtocol: 'grpc' }, 4317],
    ['the http default when the URL has no port', { otlpEndpoint: 'https://otel-collector.observability', otlpProtocol: 'http/json' }, 4318],
    ['LEVEE_OTLP_PORT over the URL (a Service port 80 in front of pods on 4318)', { otlpEndpoint: 'http://otel-collector.observability:80', otlpPort: '4318' }, 4318],
  ])('the egress port is %s', (_what, settings, port) => {
    const m = manifestsFor(settings);
    for (const [name] of APPS) expect(collectorEgress(m, name).flatMap((r: any) => r.ports)).toEqual([{ protocol: 'TCP', port }]);
  });

  test('empty pod labels: every pod of the collector namespace', () => {
    const m = manifestsFor({ ...ON, otlpPodLabels: '' });
    expect(collectorEgress(m, 'levee-worker')[0].to).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }]);
  });

  test('a model image run in the cluster is configured like the stand-in', () => {
    const m = manifestsFor({ ...ON, modelImage: 'ghcr.io/acme/sdxl-server:1.4.2', modelApi: 'openai-images' });
    expect(value(envOf(m, 'levee-model'), 'OTEL_SERVICE_NAME')).toBe('levee-model');
    expect(value(envOf(m, 'levee-model'), 'OTEL_EXPORTER_OTLP_ENDPOINT')).toBe(ENDPOINT);
    expect(collectorEgress(m, 'levee-model')).toHaveLength(1);
  });

  test('an external model (LEVEE_MODEL_URL) is not Levee\'s to configure: no model pod, no levee-model service anywhere; the apps still trace', () => {
    const m = manifestsFor({ ...ON, modelUrl: 'https://images.example.com', modelApi: 'openai-images' });
    expect(m.filter((o) => o.metadata.name === 'levee-model')).toEqual([]);
    const services = everyContainer(m).flatMap(({ c }) => (c.env ?? []).filter((e: any) => e.name === 'OTEL_SERVICE_NAME').map((e: any) => e.value));
    expect(services.sort()).toEqual(['levee-gateway', 'levee-media', 'levee-webhooks', 'levee-worker']);
    // The endpoint is never treated as a collector: its egress stays the model CIDRs'.
    for (const name of ['levee-gateway', 'levee-worker']) expect(collectorEgress(m, name)).toHaveLength(1);
    expect(checkPolicy(m)).toEqual([]);
  });
});
