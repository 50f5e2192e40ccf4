/**
 * The generic half of the Pulumi program: every cdk8s ApiObject becomes its own typed
 * Pulumi resource. Exercised with a small chart of its own, independent of Levee's.
 */
import { ApiObject, App, Chart, Testing } from 'cdk8s';
import { k8s as l1 } from 'cdk8s-plus-28';
import type * as pulumiType from '@pulumi/pulumi';
import type { RegisteredObject } from '../../infra/pulumi/register';
import { installMocks, registered, unwrapSecrets, Recorder } from './mocks';

/** GIVEN a small chart: two Deployments (one autoscaled by an HPA, one by KEDA), a Service, a custom resource. */
function smallChart(extra?: (chart: Chart) => void): Record<string, unknown>[] {
  const app = Testing.app();
  const chart = new Chart(app, 'small', { namespace: 'demo' });
  const podSpec = (name: string) => ({
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: {
        containers: [
          {
            name,
            image: 'example/app:1.0.0',
            env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'demo-secret', key: 'password' } } }],
          },
        ],
      },
    },
  });
  new l1.KubeDeployment(chart, 'web', { metadata: { name: 'web' }, spec: podSpec('web') });
  new l1.KubeDeployment(chart, 'jobs', { metadata: { name: 'jobs' }, spec: podSpec('jobs') });
  new l1.KubeDeployment(chart, 'fixed', { metadata: { name: 'fixed' }, spec: { ...podSpec('fixed'), replicas: 2, template: { metadata: { labels: { app: 'fixed' } }, spec: { containers: [{ name: 'fixed', image: 'example/app:1.0.0' }] } } } });
  new l1.KubeService(chart, 'web-svc', { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } });
  new l1.KubeHorizontalPodAutoscalerV2(chart, 'web-hpa', {
    metadata: { name: 'web' },
    spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 1, maxReplicas: 3 },
  });
  new ApiObject(chart, 'jobs-scaler', {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: 'jobs' },
    spec: { scaleTargetRef: { name: 'jobs' }, triggers: [{ type: 'redis', metadata: { listName: 'q' } }] },
  });
  extra?.(chart);
  return chart.toJson();
}

interface Run {
  readonly recorder: Recorder;
  readonly result: RegisteredObject[];
  readonly ns: pulumiType.Resource;
  readonly secret: pulumiType.Resource;
  readonly provider: pulumiType.ProviderResource;
}

/** WHEN the objects are registered under mocks with a namespace and a Secret created beside them. */
async function run(manifests: Record<string, unknown>[]): Promise<Run> {
  const recorder = await installMocks('test', {});
  const pulumi = await import('@pulumi/pulumi');
  const k8s = await import('@pulumi/kubernetes');
  const { registerManifests } = await import('../../infra/pulumi/register');
  const parent = new pulumi.ComponentResource('test:index:Small', 'small');
  const provider = new k8s.Provider('k8s', { context: 'test' }, { parent });
  const ns = new k8s.core.v1.Namespace('demo', { metadata: { name: 'demo' } }, { provider, parent });
  const secret = new k8s.core.v1.Secret('demo/demo-secret', { metadata: { name: 'demo-secret', namespace: 'demo' }, stringData: { password: pulumi.secret('x') } }, { provider, parent });
  const result = registerManifests(manifests as never, {
    provider,
    parent,
    namespaces: new Map([['demo', ns]]),
    secrets: new Map([['demo/demo-secret', secret]]),
  });
  await registered([ns, secret, ...result.map((r) => r.resource)]);
  return { recorder, result, ns, secret, provider };
}

describe('registering synthesized objects as typed Pulumi resources', () => {
  test('each object becomes its own resource of the class for its apiVersion and kind', async () => {
    const manifests = smallChart();
    const { recorder } = await run(manifests);
    const byType = recorder.registrations.filter((r) => r.type.startsWith('kubernetes:') && r.name !== 'demo' && r.name !== 'demo/demo-secret');
    expect(byType.map((r) => [r.type, r.name]).sort()).toEqual(
      [
        ['kubernetes:apps/v1:Deployment', 'demo/fixed'],
        ['kubernetes:apps/v1:Deployment', 'demo/jobs'],
        ['kubernetes:apps/v1:Deployment', 'demo/web'],
        ['kubernetes:autoscaling/v2:HorizontalPodAutoscaler', 'demo/web'],
        ['kubernetes:core/v1:Service', 'demo/web'],
        ['kubernetes:keda.sh/v1alpha1:ScaledObject', 'demo/jobs'],
      ].sort(),
    );
  });

  test('the inputs of each resource are the synthesized object, unchanged', async () => {
    const manifests = smallChart();
    const { recorder } = await run(manifests);
    for (const m of manifests as { kind: string; metadata: { name: string } }[]) {
      const reg = recorder.registrations.find((r) => r.type.endsWith(`:${m.kind}`) && r.name === `demo/${m.metadata.name}`);
      expect(unwrapSecrets(reg?.inputs)).toEqual(m);
    }
  });

  test('every object uses the explicit provider', async () => {
    const { recorder, provider } = await run(smallChart());
    const urn = await new Promise<string>((resolve) => provider.urn.apply(resolve));
    const objects = recorder.registrations.filter((r) => r.type.startsWith('kubernetes:') && !r.type.startsWith('pulumi:providers'));
    expect(objects.length).toBeGreaterThan(0);
    for (const r of objects) expect(r.provider.startsWith(`${urn}::`)).toBe(true);
  });

  test('a Deployment owned by an HPA or a KEDA ScaledObject ignores spec.replicas; one with fixed replicas does not', async () => {
    const { result } = await run(smallChart());
    const ignore = Object.fromEntries(result.map((r) => [`${r.manifest.kind}/${r.manifest.metadata.name}`, r.ignoreChanges]));
    expect(ignore['Deployment/web']).toEqual(['spec.replicas']);
    expect(ignore['Deployment/jobs']).toEqual(['spec.replicas']);
    expect(ignore['Deployment/fixed']).toEqual([]);
    expect(ignore['HorizontalPodAutoscaler/web']).toEqual([]);
  });

  test('objects wait for their namespace, the Secrets they read, and autoscalers for their target', async () => {
    const { result, ns, secret } = await run(smallChart());
    const get = (kind: string, name: string) => result.find((r) => r.manifest.kind === kind && r.manifest.metadata.name === name)!;
    expect(get('Deployment', 'web').dependsOn).toEqual([ns, secret]);
    expect(get('Deployment', 'fixed').dependsOn).toEqual([ns]);
    expect(get('Service', 'web').dependsOn).toEqual([ns]);
    expect(get('HorizontalPodAutoscaler', 'web').dependsOn).toEqual([ns, get('Deployment', 'web').resource]);
    expect(get('ScaledObject', 'jobs').dependsOn).toEqual([ns, get('Deployment', 'jobs').resource]);
  });

  test('an unknown kind fails loudly, naming the kind and the object, before anything is registered', async () => {
    const manifests = smallChart((chart) => new ApiObject(chart, 'widget', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }));
    await expect(run(manifests)).rejects.toThrow(/No Pulumi resource type for example.com\/v1\/Widget \(Widget demo\/w\)/);
  });

  test('a namespaced object without a namespace is refused', async () => {
    const app = new App();
    const chart = new Chart(app, 'no-ns');
    new l1.KubeServiceAccount(chart, 'sa', { metadata: { name: 'lonely' } });
    await expect(run(chart.toJson())).rejects.toThrow('ServiceAccount lonely has no metadata.namespace');
  });
});
