/**
 * The Pulumi program: the same chart that `npm run synth` writes, deployed object by
 * object, plus what YAML must not hold — the Redis passwords (random, secret in state),
 * the Secrets that carry them, and an explicit Kubernetes provider.
 * No side effects at import; `index.ts` calls {@link buildLevee}.
 */
import * as pulumi from '@pulumi/pulumi';
import * as k8s from '@pulumi/kubernetes';
import * as random from '@pulumi/random';
import {
  ConfigError, EDGE_SERVICE_NAME, L7_ROUTE_NAME, LABELS, LeveeConfig, PolicyError, SecretRef, configWarnings, requiredSecrets, resolveConfig, synthesize,
} from '../index';
import type { Manifest } from './api-objects';
import { RegisteredObject, registerManifests } from './register';
import { StackSettings, stackSettings } from './stack-config';

export interface LeveeStackArgs {
  /** The resolved configuration; the chart is built from it. */
  readonly config: LeveeConfig;
  /** How to reach the cluster. @default - the current context of the ambient kubeconfig */
  readonly kubernetes?: StackSettings['kubernetes'];
}

export interface LeveeOutputs {
  /** The namespace everything lives in. */
  readonly namespace: pulumi.Output<string>;
  /**
   * External IP or host name of the gateway's L4 LoadBalancer Service; with edge = l7, the
   * Ingress's (ingress-nginx). Undefined for a Gateway, whose address is in its status
   * (which Pulumi cannot read from a custom resource), and for previews on the shared Gateway.
   */
  readonly gatewayAddress: pulumi.Output<string | undefined>;
  /** Public base URL of the environment, e.g. `https://pr-7.preview.levee.example.com` (a preview's URL). */
  readonly url: pulumi.Output<string>;
  /** Public URL of the API routes (`/api`). */
  readonly apiUrl: pulumi.Output<string>;
  /** Public URL of the rendered images (`/images`). */
  readonly imagesUrl: pulumi.Output<string>;
}

/** A generated value for each Secret the chart expects (a password, or a webhook signing key), and the Secret that holds it. */
export interface ManagedSecret {
  readonly ref: SecretRef;
  readonly password: random.RandomPassword | random.RandomBytes;
  readonly secret: k8s.core.v1.Secret;
}

/**
 * The whole Levee deployment for one stack. Children: the provider, one resource per
 * synthesized object (namespace first), the Redis passwords and their Secrets.
 */
export class LeveeStack extends pulumi.ComponentResource {
  public readonly config: LeveeConfig;
  /** The synthesized objects, exactly as `npm run synth` writes them. */
  public readonly manifests: readonly Manifest[];
  public readonly provider: k8s.Provider;
  public readonly namespace: pulumi.CustomResource;
  public readonly secrets: readonly ManagedSecret[];
  /** Every synthesized object with its resource, in chart order (the namespace included). */
  public readonly objects: readonly RegisteredObject[];
  public readonly outputs: LeveeOutputs;

  constructor(name: string, args: LeveeStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super('levee:index:LeveeStack', name, {}, opts);
    const { config } = args;
    this.config = config;
    this.manifests = synthesize(config).manifests as readonly Manifest[];

    const kube = args.kubernetes ?? {};
    this.provider = new k8s.Provider(
      'kubernetes',
      {
        ...(kube.context !== undefined ? { context: kube.context } : {}),
        ...(kube.kubeconfig !== undefined ? { kubeconfig: pulumi.secret(kube.kubeconfig) } : {}),
        enableServerSideApply: true,
        // A preview's cluster may be gone before its stack is destroyed.
        deleteUnreachable: config.environment !== 'production',
      },
      { parent: this },
    );

    // 1. The namespace (the chart's own Namespace object), before anything that lives in it.
    const isOwnNamespace = (m: Manifest) => m.apiVersion === 'v1' && m.kind === 'Namespace' && m.metadata.name === config.namespace;
    // In production the namespace is protected: deleting it deletes the queue's PVC, and with it
    // every accepted job and stored image, so `pulumi destroy` (or a change that would replace
    // it) stops instead. The queue Redis StatefulSet needs no protection: its PVC is retained
    // when it is deleted (persistentVolumeClaimRetentionPolicy). Previews are meant to be destroyed.
    const protect = (m: Manifest) => config.environment === 'production' && isOwnNamespace(m);
    const nsManifest = this.manifests.find(isOwnNamespace);
    if (!nsManifest) throw new Error(`the chart has no Namespace ${config.namespace}; the Pulumi program deploys the chart's own namespace`);
    const [nsObject] = registerManifests([nsManifest], { provider: this.provider, parent: this, namespaces: new Map(), secrets: new Map(), protect });
    this.namespace = nsObject!.resource;

    // 2. Passwords and the Secrets the chart references by name, before the workloads: those of
    // a Redis in the cluster. A managed Redis's password (and CA) Secret is the operator's to
    // create: its value comes from the provider, not from here.
    this.secrets = requiredSecrets(config)
      .filter((ref) => ref.generated)
      .map((ref) => this.managedSecret(ref));

    // 3. Everything else, each object its own typed resource.
    const rest = registerManifests(
      this.manifests.filter((m) => m !== nsManifest),
      {
        provider: this.provider,
        parent: this,
        namespaces: new Map([[config.namespace, this.namespace]]),
        secrets: new Map(this.secrets.map((s) => [`${config.namespace}/${s.ref.name}`, s.secret])),
        protect,
      },
    );
    this.objects = this.manifests.map((m) => (m === nsManifest ? nsObject! : rest.find((o) => o.manifest === m)!));

    this.outputs = {
      namespace: (this.namespace as k8s.core.v1.Namespace).metadata.apply((m) => m.name),
      gatewayAddress: this.gatewayAddress(),
      url: pulumi.output(publicUrl(config, '')),
      apiUrl: pulumi.output(publicUrl(config, '/api')),
      imagesUrl: pulumi.output(publicUrl(config, '/images')),
    };
    this.registerOutputs({ ...this.outputs });
  }

  /** The resource registered for a synthesized object, if the chart has it. */
  public object(kind: string, name: string): pulumi.CustomResource | undefined {
    return this.objects.find((o) => o.manifest.kind === kind && o.manifest.metadata.name === name)?.resource;
  }

  private managedSecret(ref: SecretRef): ManagedSecret {
    // Alphanumeric: the password also appears in redis:// URLs. A webhook key: whsec_ and 32 random bytes (Standard Webhooks).
    const password = ref.format === 'whsec' ? new random.RandomBytes(`${ref.name}-${ref.key}`, { length: 32 }, { parent: this }) : new random.RandomPassword(`${ref.name}-${ref.key}`, { length: 32, special: false }, { parent: this });
    const value: pulumi.Output<string> = password instanceof random.RandomBytes ? password.base64.apply((b) => `whsec_${b}`) : password.result;
    const secret = new k8s.core.v1.Secret(
      `${this.config.namespace}/${ref.name}`,
      {
        metadata: {
          name: ref.name,
          namespace: this.config.namespace,
          labels: { [LABELS.name]: ref.name, [LABELS.partOf]: 'levee', [LABELS.managedBy]: 'pulumi', ...this.config.labels },
          annotations: { 'levee.dev/description': ref.description },
        },
        type: 'Opaque',
        data: { [ref.key]: pulumi.secret(value.apply((p) => Buffer.from(p, 'utf8').toString('base64'))) },
      },
      { parent: this, provider: this.provider, dependsOn: [this.namespace], additionalSecretOutputs: ['data', 'stringData'] },
    );
    return { ref, password, secret };
  }

  private gatewayAddress(): pulumi.Output<string | undefined> {
    type LbStatus = { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } } | undefined;
    const first = (status: LbStatus) => {
      const ingress = status?.loadBalancer?.ingress?.[0];
      return ingress?.ip ?? ingress?.hostname;
    };
    const edge = this.object('Service', EDGE_SERVICE_NAME);
    if (edge && k8s.core.v1.Service.isInstance(edge)) return edge.status.apply((s) => first(s as LbStatus));
    const route = this.object('Ingress', L7_ROUTE_NAME);
    if (route && k8s.networking.v1.Ingress.isInstance(route)) return route.status.apply((s) => first(s as LbStatus));
    return pulumi.output(undefined);
  }
}

/** `https://levee.example.com/api`; http when the edge has no TLS (no TLS Secret, or a shared Gateway without). */
export function publicUrl(config: LeveeConfig, path: '' | '/api' | '/images'): string {
  return `${config.edge.https ? 'https' : 'http'}://${config.edge.host}${path}`;
}

/**
 * Reads the stack config into the typed configuration. Throws a `RunError` (shown without
 * a stack trace) carrying exactly the message that `npm run synth` prints.
 */
export function loadStackConfig(): { config: LeveeConfig; kubernetes: StackSettings['kubernetes'] } {
  const { settings, kubernetes } = stackSettings(pulumi.runtime.allConfig(), pulumi.getProject(), pulumi.getStack());
  try {
    return { config: resolveConfig(settings), kubernetes };
  } catch (err) {
    throw asRunError(err);
  }
}

function asRunError(err: unknown): unknown {
  return err instanceof ConfigError || err instanceof PolicyError ? new pulumi.RunError(err.message) : err;
}

/** The program: read and validate the stack config, build and register everything. */
export function buildLevee(opts?: pulumi.ComponentResourceOptions): LeveeStack {
  const { config, kubernetes } = loadStackConfig();
  for (const warning of configWarnings(config)) void pulumi.log.warn(warning);
  try {
    return new LeveeStack('levee', { config, kubernetes }, opts);
  } catch (err) {
    throw asRunError(err);
  }
}
