/**
 * Stack config is read into the same settings record as LEVEE_* variables, and an invalid
 * one fails `pulumi up` with exactly the message that `npm run synth` prints — before any
 * resource is registered.
 */
import { ConfigError, SettingsInput, resolveConfig } from '../../infra';
import { stackSettings } from '../../infra/pulumi/stack-config';
import { installMocks } from './mocks';

/** The message `npm run synth` prints for these settings. */
function synthMessage(settings: SettingsInput): string {
  try {
    resolveConfig(settings);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(settings)} to be refused`);
}

describe('reading stack config', () => {
  test('levee:<setting> becomes setting <setting>; other namespaces are not ours', () => {
    const read = stackSettings({ 'levee:gatewayMinReplicas': '4', 'levee:imageTag': '1.0.0', 'kubernetes:context': 'x', 'random:foo': 'y' }, 'levee', 'production');
    expect(read.settings).toEqual({ gatewayMinReplicas: '4', imageTag: '1.0.0' });
  });

  test('the Pulumi-only keys go to the provider, not to the chart settings', () => {
    const read = stackSettings({ 'levee:kubeContext': 'prod', 'levee:kubeconfig': '/tmp/kc', 'levee:environment': 'production' }, 'levee', 'production');
    expect(read.settings).toEqual({ environment: 'production' });
    expect(read.kubernetes).toEqual({ context: 'prod', kubeconfig: '/tmp/kc' });
  });

  test('empty Pulumi-only keys (their project default) mean the ambient kubeconfig', () => {
    expect(stackSettings({ 'levee:kubeContext': '', 'levee:kubeconfig': '' }, 'levee', 'production').kubernetes).toEqual({});
  });

  test('a stack named preview-<id> is a preview with that id', () => {
    expect(stackSettings({}, 'levee', 'preview-pr-123').settings).toEqual({ environment: 'preview', previewId: 'pr-123' });
  });

  test('explicit config wins over the stack name', () => {
    expect(stackSettings({ 'levee:previewId': 'pr-9' }, 'levee', 'preview-pr-123').settings).toEqual({ environment: 'preview', previewId: 'pr-9' });
    expect(stackSettings({ 'levee:environment': 'dev' }, 'levee', 'preview-pr-123').settings).toEqual({ environment: 'dev' });
  });
});

interface InvalidCase {
  readonly title: string;
  readonly stack: string;
  readonly config: Record<string, string>;
  /** What `npm run synth` is given for the same mistake. */
  readonly settings: SettingsInput;
}

const INVALID: readonly InvalidCase[] = [
  { title: 'an unknown environment', stack: 'staging', config: { 'levee:environment': 'staging' }, settings: { environment: 'staging' } },
  { title: 'a preview without an id', stack: 'preview', config: { 'levee:environment': 'preview' }, settings: { environment: 'preview' } },
  { title: 'a preview stack whose id is not a namespace suffix', stack: 'preview-PR_7', config: {}, settings: { environment: 'preview', previewId: 'PR_7' } },
  { title: 'a preview id outside preview', stack: 'production', config: { 'levee:previewId': 'pr-1' }, settings: { previewId: 'pr-1' } },
  {
    title: 'minReplicas above maxReplicas',
    stack: 'production',
    config: { 'levee:gatewayMinReplicas': '40', 'levee:gatewayMaxReplicas': '30' },
    settings: { gatewayMinReplicas: '40', gatewayMaxReplicas: '30' },
  },
  { title: 'a CPU target outside 1–100', stack: 'production', config: { 'levee:gatewayCpuTarget': '120' }, settings: { gatewayCpuTarget: '120' } },
  {
    title: 'hash by cookie at L4',
    stack: 'production',
    config: { 'levee:loadBalancing': 'hash', 'levee:hashBy': 'cookie' },
    settings: { loadBalancing: 'hash', hashBy: 'cookie' },
  },
  { title: 'an image pinned to latest', stack: 'production', config: { 'levee:imageTag': 'latest' }, settings: { imageTag: 'latest' } },
  { title: 'a tracing protocol without an OTLP endpoint', stack: 'production', config: { 'levee:otlpProtocol': 'grpc' }, settings: { otlpProtocol: 'grpc' } },
  {
    title: 'an OTLP endpoint that is not an http(s) URL',
    stack: 'production',
    config: { 'levee:otlpEndpoint': 'otel-collector.observability:4317' },
    settings: { otlpEndpoint: 'otel-collector.observability:4317' },
  },
  { title: 'a misspelled setting', stack: 'production', config: { 'levee:gatewayReplicas': '3' }, settings: { gatewayReplicas: '3' } },
];

describe('invalid stack config', () => {
  test.each(INVALID)('$title fails with the same message as npm run synth, and registers nothing', async ({ stack, config, settings }) => {
    const recorder = await installMocks(stack, config);
    const pulumi = await import('@pulumi/pulumi');
    const { buildLevee } = await import('../../infra/pulumi/program');
    const expected = synthMessage(settings);
    let thrown: unknown;
    try {
      buildLevee();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(pulumi.RunError);
    expect((thrown as Error).message).toBe(expected);
    expect(expected).toMatch(/^Invalid Levee configuration/);
    expect(recorder.registrations).toEqual([]);
  });
});
