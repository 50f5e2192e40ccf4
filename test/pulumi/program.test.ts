/**
 * The Pulumi program under mocks: for each environment it registers exactly what
 * `npm run synth` writes (one typed resource per object, inputs unchanged), plus only
 * what Pulumi owns — the Redis passwords and their Secrets, secret all the way.
 */
import type * as pulumiType from '@pulumi/pulumi';
import { SettingsInput, requiredSecrets, resolveConfig, synthesize } from '../../infra';
import type { LeveeStack } from '../../infra/pulumi/program';
import { referencedSecrets, type RegisteredObject } from '../../infra/pulumi/register';
import {
  MOCK_BYTES_BASE64, MOCK_LB_IP, MOCK_PASSWORD, Recorder, Registration, installMocks, isSecretValue, plainStrings, registered, unwrapSecrets, valueOf,
} from './mocks';

interface Case {
  readonly title: string;
  /** Stack name and stack config, as `pulumi up` would pass them. */
  readonly stack: string;
  readonly config: Record<string, string>;
  /** The same choice as settings for `npm run synth`. */
  readonly settings: SettingsInput;
}

const CASES: readonly Case[] = [
  { title: 'production (no stack config)', stack: 'production', config: {}, settings: {} },
  { title: 'a preview stack named preview-pr-42', stack: 'preview-pr-42', config: {}, settings: { environment: 'preview', previewId: 'pr-42' } },
  {
    title: 'a preview stack configured explicitly',
    stack: 'preview',
    config: { 'levee:environment': 'preview', 'levee:previewId': 'pr-7' },
    settings: { environment: 'preview', previewId: 'pr-7' },
  },
  { title: 'dev', stack: 'dev', config: { 'levee:environment': 'dev' }, settings: { environment: 'dev' } },
  {
    title: 'production with managed Redis (TLS, ACL users, private CAs) and KEDA',
    stack: 'production',
    config: {
      'levee:queueRedis': 'external', 'levee:queueRedisUrl': 'rediss://q.example.com:6380', 'levee:queueRedisUsername': 'levee', 'levee:queueRedisCaSecret': 'q-ca', 'levee:queueRedisCidrs': '10.20.0.0/16',
      'levee:cacheRedis': 'external', 'levee:cacheRedisUrl': 'rediss://c.example.com:6380', 'levee:cacheRedisCidrs': '10.21.0.0/16', 'levee:workerAutoscaler': 'keda',
    },
    settings: {
      queueRedis: 'external', queueRedisUrl: 'rediss://q.example.com:6380', queueRedisUsername: 'levee', queueRedisCaSecret: 'q-ca', queueRedisCidrs: '10.20.0.0/16',
      cacheRedis: 'external', cacheRedisUrl: 'rediss://c.example.com:6380', cacheRedisCidrs: '10.21.0.0/16', workerAutoscaler: 'keda',
    },
  },
  {
    title: 'production with a single-pod queue Redis and a managed cache Redis',
    stack: 'production',
    config: { 'levee:queueRedis': 'statefulset', 'levee:cacheRedis': 'external', 'levee:cacheRedisUrl': 'redis://10.21.0.5:6379', 'levee:cacheRedisCidrs': '10.21.0.5/32' },
    settings: { queueRedis: 'statefulset', cacheRedis: 'external', cacheRedisUrl: 'redis://10.21.0.5:6379', cacheRedisCidrs: '10.21.0.5/32' },
  },
  {
    title: 'production with the images on GCS (HMAC keys from a Secret the operator creates, Workload Identity) and redirect delivery',
    stack: 'production',
    config: {
      'levee:imageS3Endpoint': 'https://storage.googleapis.com', 'levee:imageBucket': 'acme-levee', 'levee:imageS3CredentialsSecret': 'gcs-hmac',
      'levee:imageGcpServiceAccount': 'levee-images@acme.iam.gserviceaccount.com', 'levee:imageDelivery': 'redirect',
    },
    settings: { imageS3Endpoint: 'https://storage.googleapis.com', imageBucket: 'acme-levee', imageS3CredentialsSecret: 'gcs-hmac', imageGcpServiceAccount: 'levee-images@acme.iam.gserviceaccount.com', imageDelivery: 'redirect' },
  },
  { title: 'production with the images in the queue Redis', stack: 'production', config: { 'levee:imageStore': 'redis' }, settings: { imageStore: 'redis' } },
  {
    title: 'production with a GPU model on a Karpenter NodePool (cluster-scoped), scaled from zero by KEDA, behind an API key',
    stack: 'production',
    config: { 'levee:modelGpus': '1', 'levee:nodeProvisioner': 'karpenter', 'levee:modelMinReplicas': '0', 'levee:workerAutoscaler': 'keda', 'levee:modelApi': 'openai-images', 'levee:modelApiKeySecret': 'model-key' },
    settings: { modelGpus: '1', nodeProvisioner: 'karpenter', modelMinReplicas: '0', workerAutoscaler: 'keda', modelApi: 'openai-images', modelApiKeySecret: 'model-key' },
  },
  {
    title: 'production with KEDA, hash by client IP and an image tag',
    stack: 'production',
    config: { 'levee:workerAutoscaler': 'keda', 'levee:loadBalancing': 'hash', 'levee:imageTag': '1.2.3' },
    settings: { workerAutoscaler: 'keda', loadBalancing: 'hash', imageTag: '1.2.3' },
  },
  {
    title: 'production with the legacy ingress-nginx provider',
    stack: 'production',
    config: { 'levee:l7Provider': 'ingress-nginx' },
    settings: { l7Provider: 'ingress-nginx' },
  },
  {
    title: 'production on a shared Gateway with the portable gateway-api provider, L7 only',
    stack: 'production',
    config: { 'levee:l7Provider': 'gateway-api', 'levee:sharedGateway': 'edge-system/public', 'levee:edge': 'l7' },
    settings: { l7Provider: 'gateway-api', sharedGateway: 'edge-system/public', edge: 'l7' },
  },
  {
    title: 'production with tracing (OTLP over gRPC to a collector, every trace, the collector pods by label, a port of their own)',
    stack: 'production',
    config: {
      'levee:otlpEndpoint': 'http://otel-collector.observability:4317', 'levee:otlpProtocol': 'grpc', 'levee:traceSamplingRatio': '1',
      'levee:otlpPodLabels': 'app.kubernetes.io/name=opentelemetry-collector,app.kubernetes.io/component=gateway', 'levee:otlpPort': '14317',
    },
    settings: {
      otlpEndpoint: 'http://otel-collector.observability:4317', otlpProtocol: 'grpc', traceSamplingRatio: '1',
      otlpPodLabels: 'app.kubernetes.io/name=opentelemetry-collector,app.kubernetes.io/component=gateway', otlpPort: '14317',
    },
  },
  {
    title: 'production with monitoring (prometheus-operator), selector labels and a threshold',
    stack: 'production',
    config: { 'levee:monitoring': 'prometheus-operator', 'levee:monitoringLabels': 'release=kube-prometheus-stack', 'levee:alertOldestJobMinutes': '20' },
    settings: { monitoring: 'prometheus-operator', monitoringLabels: 'release=kube-prometheus-stack', alertOldestJobMinutes: '20' },
  },
];

interface Run {
  readonly recorder: Recorder;
  readonly levee: LeveeStack;
  readonly pulumi: typeof pulumiType;
}

const runs = new Map<string, Promise<Run>>();

/**
 * GIVEN a stack and its config, WHEN the program runs under mocks, THEN this is what it
 * registered. One run per (stack, config); the tests only read what it recorded.
 */
function runProgram(stack: string, config: Record<string, string>): Promise<Run> {
  const key = JSON.stringify([stack, config]);
  if (!runs.has(key)) runs.set(key, runOnce(stack, config));
  return runs.get(key)!;
}

async function runOnce(stack: string, config: Record<string, string>): Promise<Run> {
  const recorder = await installMocks(stack, config);
  const pulumi = await import('@pulumi/pulumi');
  const { buildLevee } = await import('../../infra/pulumi/program');
  const levee = buildLevee();
  await registered([levee, levee.provider, ...levee.objects.map((o) => o.resource), ...levee.secrets.flatMap((s) => [s.secret, s.password])]);
  return { recorder, levee, pulumi };
}

/** `["apps/v1","Deployment","levee","levee-gateway"]` — (apiVersion, kind, namespace, name) as a set key. */
const identity = (o: { apiVersion?: unknown; kind?: unknown; metadata?: unknown }): string => {
  const meta = (o.metadata ?? {}) as { namespace?: string; name?: string };
  return JSON.stringify([o.apiVersion, o.kind, meta.namespace ?? '', meta.name]);
};
const kubernetesObjects = (rs: readonly Registration[]) =>
  rs.filter((r) => r.type.startsWith('kubernetes:')).map((r) => ({ ...r, inputs: unwrapSecrets(r.inputs) as Record<string, unknown> }));

describe.each(CASES)('pulumi up for $title', ({ stack, config, settings }) => {
  const expectedConfig = resolveConfig(settings);
  const synthesized = synthesize(expectedConfig).manifests;
  // Pulumi creates the Secrets of a Redis in the cluster; a managed Redis's are the operator's.
  const generated = requiredSecrets(expectedConfig).filter((s) => s.generated);
  const managedSecrets = generated.map((s) => identity({ apiVersion: 'v1', kind: 'Secret', metadata: { namespace: expectedConfig.namespace, name: s.name } }));
  let run: Run;

  beforeAll(async () => {
    run = await runProgram(stack, config);
  });

  test('resolves the same configuration as npm run synth', () => {
    expect(run.levee.config).toEqual(expectedConfig);
  });

  test('registers exactly the synthesized objects (apiVersion, kind, namespace, name), plus the Secrets Pulumi owns', () => {
    const registeredIds = kubernetesObjects(run.recorder.registrations).map((r) => identity(r.inputs));
    expect(new Set(registeredIds).size).toBe(registeredIds.length);
    expect(new Set(registeredIds)).toEqual(new Set([...synthesized.map(identity), ...managedSecrets]));
  });

  test('registers each object as its own typed resource whose inputs equal the synthesized object', () => {
    const byId = new Map(kubernetesObjects(run.recorder.registrations).map((r) => [identity(r.inputs), r]));
    for (const m of synthesized) {
      const r = byId.get(identity(m));
      expect(r?.type).toBe(`kubernetes:${m.apiVersion.includes('/') ? m.apiVersion : `core/${m.apiVersion}`}:${m.kind}`);
      expect(r?.inputs).toEqual(m);
    }
  });

  test('deploys through the explicit provider only', async () => {
    const providerUrn = await valueOf(run.levee.provider.urn);
    for (const r of kubernetesObjects(run.recorder.registrations)) expect(r.provider.startsWith(`${providerUrn}::`)).toBe(true);
  });

  test('never puts a password in plain text into any resource input', () => {
    const encoded = Buffer.from(MOCK_PASSWORD).toString('base64');
    const leaks = run.recorder.registrations.flatMap((r) =>
      plainStrings(r.inputs)
        .filter((s) => s.value.includes(MOCK_PASSWORD) || s.value.includes(encoded))
        .map((s) => `${r.type} ${r.name}${s.path}`),
    );
    expect(leaks).toEqual([]);
  });

  test('stores a random password in each Secret of a Redis in the cluster (and a whsec_ key in the webhook one), as secret data, and creates none of a managed one', async () => {
    expect(run.levee.secrets.map((x) => x.ref.name)).toEqual(generated.map((x) => x.name));
    const operatorOwned = requiredSecrets(expectedConfig).filter((x) => !x.generated).map((x) => `${expectedConfig.namespace}/${x.name}`);
    expect(run.recorder.registrations.filter((r) => r.type === 'kubernetes:core/v1:Secret' && operatorOwned.includes(r.name))).toEqual([]);
    for (const ref of generated) {
      const reg = run.recorder.registrations.find((r) => r.type === 'kubernetes:core/v1:Secret' && r.name === `${expectedConfig.namespace}/${ref.name}`);
      expect(isSecretValue(reg?.inputs.data)).toBe(true);
      const data = unwrapSecrets(reg?.inputs.data) as Record<string, string>;
      const managed = run.levee.secrets.find((s) => s.ref.name === ref.name)!;
      expect(await run.pulumi.isSecret(managed.secret.data)).toBe(true);
      if (ref.format === 'whsec') {
        // Standard Webhooks: whsec_ and 32 random bytes in base64, which the sender's settings accept.
        expect(Buffer.from(data[ref.key]!, 'base64').toString('utf8')).toBe(`whsec_${MOCK_BYTES_BASE64}`);
        const bytes = run.recorder.registrations.find((r) => r.type === 'random:index/randomBytes:RandomBytes' && r.name === `${ref.name}-${ref.key}`);
        expect(bytes?.inputs).toMatchObject({ length: 32 });
        continue;
      }
      expect(Buffer.from(data[ref.key]!, 'base64').toString('utf8')).toBe(MOCK_PASSWORD);
      const password = run.recorder.registrations.find((r) => r.type === 'random:index/randomPassword:RandomPassword' && r.name === `${ref.name}-${ref.key}`);
      expect(password?.inputs).toMatchObject({ length: 32, special: false });
    }
  });

  test('creates the namespace before everything in it, and the Secrets before the workloads that read them', () => {
    const ns = run.levee.namespace;
    const secretByName = new Map(run.levee.secrets.map((s) => [s.ref.name, s.secret]));
    for (const s of run.levee.secrets) expect(s.secret).toBeDefined();
    let workloads = 0;
    for (const o of run.levee.objects) {
      if (o.manifest.kind === 'Namespace') continue;
      // Cluster-scoped objects (a Karpenter NodePool) live outside the namespace and need it not.
      if (o.manifest.metadata.namespace === undefined) {
        expect(o.dependsOn).not.toContain(ns);
        continue;
      }
      expect(o.dependsOn).toContain(ns);
      const reads = [...referencedSecrets(o.manifest)].filter((n) => secretByName.has(n));
      for (const name of reads) expect(o.dependsOn).toContain(secretByName.get(name));
      if (['Deployment', 'StatefulSet'].includes(o.manifest.kind)) workloads += 1;
    }
    expect(workloads).toBeGreaterThanOrEqual(4);
    // The Redis servers and their clients each wait for the password they use (when Pulumi makes it).
    const dependsOnSecret = (kind: string, name: string, secret: string) =>
      run.levee.objects.find((o) => o.manifest.kind === kind && o.manifest.metadata.name === name)!.dependsOn.includes(secretByName.get(secret)!);
    if (expectedConfig.queueRedis.mode !== 'external') {
      expect(dependsOnSecret('StatefulSet', 'levee-queue-redis', 'levee-queue-redis')).toBe(true);
      expect(dependsOnSecret('Deployment', 'levee-gateway', 'levee-queue-redis')).toBe(true);
      expect(dependsOnSecret('Deployment', 'levee-worker', 'levee-queue-redis')).toBe(true);
    }
    if (expectedConfig.queueRedis.mode === 'sentinel') expect(dependsOnSecret('StatefulSet', 'levee-queue-sentinel', 'levee-queue-redis')).toBe(true);
    if (expectedConfig.cacheRedis.mode === 'deployment') {
      expect(dependsOnSecret('Deployment', 'levee-cache-redis', 'levee-cache-redis')).toBe(true);
      expect(dependsOnSecret('Deployment', 'levee-gateway', 'levee-cache-redis')).toBe(true);
    }
  });

  test('leaves spec.replicas of every autoscaled Deployment to its autoscaler', () => {
    const scaled = new Set(
      synthesized
        .filter((m) => m.kind === 'HorizontalPodAutoscaler' || m.kind === 'ScaledObject')
        .map((m) => (m.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name),
    );
    expect(scaled).toEqual(new Set(['levee-gateway', 'levee-media', 'levee-model', 'levee-worker', 'levee-webhooks']));
    for (const o of run.levee.objects.filter((x) => x.manifest.kind === 'Deployment')) {
      expect(o.ignoreChanges).toEqual(scaled.has(o.manifest.metadata.name) ? ['spec.replicas'] : []);
    }
  });

  test('protects the namespace (whose deletion takes the queue PVC) in production, nothing in previews', () => {
    const expected = expectedConfig.environment === 'production' ? [`Namespace/${expectedConfig.namespace}`] : [];
    // the queue Redis keeps its PVC when the StatefulSet itself is deleted
    const queueRedis = synthesized.find((m) => m.kind === 'StatefulSet' && m.metadata.name === 'levee-queue-redis') as { spec?: { persistentVolumeClaimRetentionPolicy?: unknown } } | undefined;
    if (expectedConfig.environment === 'production' && expectedConfig.queueRedis.mode !== 'external') expect(queueRedis?.spec?.persistentVolumeClaimRetentionPolicy).toMatchObject({ whenDeleted: 'Retain' });
    const named = (o: RegisteredObject) => `${o.manifest.kind}/${o.manifest.metadata.name}`;
    expect(run.levee.objects.filter((o) => o.protect).map(named).sort()).toEqual(expected.sort());
    // …and the option reaches Pulumi's resource
    for (const o of run.levee.objects) expect([named(o), Boolean((o.resource as unknown as { __protect?: boolean }).__protect)]).toEqual([named(o), o.protect]);
  });

  test('registers the KEDA ScaledObject only when KEDA is enabled, and then no worker HPA', () => {
    const types = run.recorder.registrations.map((r) => `${r.type} ${r.name}`);
    const ns = expectedConfig.namespace;
    if (expectedConfig.worker.autoscaler === 'keda') {
      expect(types).toContain(`kubernetes:keda.sh/v1alpha1:ScaledObject ${ns}/levee-worker`);
      expect(types).not.toContain(`kubernetes:autoscaling/v2:HorizontalPodAutoscaler ${ns}/levee-worker`);
    } else {
      expect(types.filter((t) => t.includes('keda.sh'))).toEqual([]);
      expect(types).toContain(`kubernetes:autoscaling/v2:HorizontalPodAutoscaler ${ns}/levee-worker`);
    }
  });

  test('registers the monitors, the PrometheusRule and the dashboard ConfigMap only with monitoring on, each in the namespace', () => {
    const types = run.recorder.registrations.map((r) => `${r.type} ${r.name}`);
    const ns = expectedConfig.namespace;
    const monitoringTypes = types.filter((t) => t.includes('monitoring.coreos.com') || t.includes(':ConfigMap '));
    if (expectedConfig.monitoring) {
      expect(monitoringTypes.sort()).toEqual([
        `kubernetes:core/v1:ConfigMap ${ns}/levee-dashboard`,
        `kubernetes:monitoring.coreos.com/v1:PodMonitor ${ns}/levee-webhooks`,
        `kubernetes:monitoring.coreos.com/v1:PodMonitor ${ns}/levee-worker`,
        `kubernetes:monitoring.coreos.com/v1:PrometheusRule ${ns}/levee`,
        `kubernetes:monitoring.coreos.com/v1:ServiceMonitor ${ns}/levee-gateway`,
        `kubernetes:monitoring.coreos.com/v1:ServiceMonitor ${ns}/levee-media`,
        `kubernetes:monitoring.coreos.com/v1:ServiceMonitor ${ns}/levee-model`,
      ]);
      const nsResource = run.levee.namespace;
      for (const o of run.levee.objects.filter((x) => ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'ConfigMap'].includes(x.manifest.kind))) {
        expect(o.dependsOn).toContain(nsResource);
      }
    } else {
      expect(monitoringTypes).toEqual([]);
    }
  });

  test('exports the namespace, the gateway address from the LoadBalancer status (when there is one) and the public URLs', async () => {
    const scheme = expectedConfig.edge.https ? 'https' : 'http';
    expect(await valueOf(run.levee.outputs.namespace)).toBe(expectedConfig.namespace);
    // Only a LoadBalancer Service reports an address Pulumi can read; a Gateway's is in its status.
    expect(await valueOf(run.levee.outputs.gatewayAddress)).toBe(expectedConfig.edge.l4 ? MOCK_LB_IP : undefined);
    expect(await valueOf(run.levee.outputs.url)).toBe(`${scheme}://${expectedConfig.edge.host}`);
    expect(await valueOf(run.levee.outputs.apiUrl)).toBe(`${scheme}://${expectedConfig.edge.host}/api`);
    expect(await valueOf(run.levee.outputs.imagesUrl)).toBe(`${scheme}://${expectedConfig.edge.host}/images`);
  });

  test('registers the L7 edge of its provider; Gateway API kinds and Envoy Gateway policies as custom resources, each after what it attaches to', () => {
    const kinds = (kind: string) => run.levee.objects.filter((o) => o.manifest.kind === kind);
    const provider = expectedConfig.edge.l7Provider;
    expect(kinds('Ingress')).toHaveLength(provider === 'ingress-nginx' ? 1 : 0);
    expect(kinds('HTTPRoute').length > 0).toBe(provider !== 'ingress-nginx');
    expect(kinds('Gateway')).toHaveLength(provider !== 'ingress-nginx' && !expectedConfig.edge.gateway?.shared ? 1 : 0);
    expect(kinds('BackendTrafficPolicy').length > 0).toBe(provider === 'envoy-gateway');
    const types = run.recorder.registrations.map((r) => r.type);
    for (const o of [...kinds('Gateway'), ...kinds('HTTPRoute'), ...kinds('BackendTrafficPolicy'), ...kinds('ClientTrafficPolicy')]) {
      expect(types).toContain(`kubernetes:${o.manifest.apiVersion}:${o.manifest.kind}`);
    }
    const resource = (kind: string, name: string) => run.levee.object(kind, name)!;
    for (const route of kinds('HTTPRoute')) {
      if (kinds('Gateway').length > 0) expect(route.dependsOn).toContain(resource('Gateway', 'levee'));
      else expect(route.dependsOn).toEqual([run.levee.namespace]);
    }
    for (const policy of [...kinds('BackendTrafficPolicy'), ...kinds('ClientTrafficPolicy')]) {
      const target = policy.manifest.kind === 'ClientTrafficPolicy' ? resource('Gateway', 'levee') : resource('HTTPRoute', 'levee');
      expect(policy.dependsOn).toContain(target);
    }
  });
});

describe('tracing through stack config', () => {
  test('levee:otlp* put the OTEL_* variables on the registered app Deployments and open the collector port, and nothing without them', async () => {
    const config = { 'levee:otlpEndpoint': 'http://otel-collector.observability:4317', 'levee:otlpProtocol': 'grpc', 'levee:traceSamplingRatio': '1', 'levee:otlpPort': '14317' };
    const inputsOf = (rs: readonly Registration[], type: string, name: string) => unwrapSecrets(rs.find((r) => r.type === type && r.name === name)!.inputs) as any;
    const on = (await runProgram('production', config)).recorder.registrations;
    for (const app of ['levee-gateway', 'levee-media', 'levee-model', 'levee-worker', 'levee-webhooks']) {
      const env = inputsOf(on, 'kubernetes:apps/v1:Deployment', `levee/${app}`).spec.template.spec.containers[0].env as { name: string; value?: string }[];
      const value = (n: string) => env.find((e) => e.name === n)?.value;
      expect([value('OTEL_EXPORTER_OTLP_ENDPOINT'), value('OTEL_EXPORTER_OTLP_PROTOCOL'), value('OTEL_TRACES_SAMPLER_ARG'), value('OTEL_SERVICE_NAME')]).toEqual([
        'http://otel-collector.observability:4317', 'grpc', '1', app,
      ]);
      const egress = inputsOf(on, 'kubernetes:networking.k8s.io/v1:NetworkPolicy', `levee/${app}`).spec.egress as { ports?: { port: number }[] }[];
      expect(egress.flatMap((r) => r.ports ?? []).map((p) => p.port)).toContain(14317);
    }
    const off = (await runProgram('production', {})).recorder.registrations;
    expect(JSON.stringify(off.filter((r) => r.type.startsWith('kubernetes:')).map((r) => unwrapSecrets(r.inputs)))).not.toContain('OTEL_');
  });
});

describe('preview environments', () => {
  test('a preview stack exports its URL, <previewId>.<previewDomain> on the shared Gateway, and registers no LoadBalancer', async () => {
    const { levee, recorder } = await runProgram('preview-pr-42', {});
    expect(await valueOf(levee.outputs.url)).toBe('https://pr-42.preview.levee.example.com');
    const lbs = recorder.registrations.filter((r) => r.type === 'kubernetes:core/v1:Service' && (unwrapSecrets(r.inputs.spec) as { type?: string }).type === 'LoadBalancer');
    expect(lbs).toEqual([]);
    expect(recorder.registrations.filter((r) => r.type === 'kubernetes:gateway.networking.k8s.io/v1:Gateway')).toEqual([]);
    const route = recorder.registrations.find((r) => r.type === 'kubernetes:gateway.networking.k8s.io/v1:HTTPRoute')!;
    expect((unwrapSecrets(route.inputs.spec) as { hostnames: string[] }).hostnames).toEqual(['pr-42.preview.levee.example.com']);
  });

  test('a stack preview-<id> deploys into namespace levee-<id>, labelled with the preview id, with the small footprint', async () => {
    const { levee, recorder } = await runProgram('preview-pr-42', {});
    expect(levee.config.namespace).toBe('levee-pr-42');
    const ns = recorder.registrations.find((r) => r.type === 'kubernetes:core/v1:Namespace');
    expect(ns?.inputs.metadata).toMatchObject({ name: 'levee-pr-42', labels: { 'levee.dev/environment': 'preview', 'levee.dev/preview-id': 'pr-42' } });
    const kinds = recorder.registrations.map((r) => r.type);
    expect(kinds).toContain('kubernetes:core/v1:ResourceQuota');
    expect(kinds).not.toContain('kubernetes:policy/v1:PodDisruptionBudget');
    expect(kinds).not.toContain('kubernetes:core/v1:PersistentVolumeClaim');
    for (const s of recorder.registrations.filter((r) => r.type === 'kubernetes:core/v1:Secret')) {
      expect(s.inputs.metadata).toMatchObject({ namespace: 'levee-pr-42', labels: { 'levee.dev/preview-id': 'pr-42' } });
    }
  });
});

describe('the Kubernetes provider', () => {
  test('uses the context and kubeconfig from stack config, the kubeconfig as a secret', async () => {
    const { recorder } = await runProgram('production', { 'levee:kubeContext': 'prod-eu', 'levee:kubeconfig': 'apiVersion: v1\nkind: Config' });
    const provider = recorder.registrations.find((r) => r.type === 'pulumi:providers:kubernetes')!;
    expect(provider.inputs.context).toBe('prod-eu');
    expect(isSecretValue(provider.inputs.kubeconfig)).toBe(true);
    expect(provider.inputs.enableServerSideApply).toBe('true');
    expect(provider.inputs.deleteUnreachable).toBe('false');
  });

  test('without them, uses the ambient kubeconfig and its current context', async () => {
    const { recorder } = await runProgram('dev', { 'levee:environment': 'dev' });
    const provider = recorder.registrations.find((r) => r.type === 'pulumi:providers:kubernetes')!;
    expect(provider.inputs.context).toBeUndefined();
    expect(provider.inputs.kubeconfig).toBeUndefined();
    expect(provider.inputs.deleteUnreachable).toBe('true');
  });
});
