import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import { LeveeConfig, NOT_THE_INTERNET } from '../config/resolve';
import { COMPONENTS, ComponentKey, PORTS } from '../names';
import { objectMeta, selectorLabels } from './pod';

/** A traffic source or destination of an allow rule. */
export type Peer =
  | { readonly component: ComponentKey }
  /** Pods of another namespace: all of them, or those with `labels`. */
  | { readonly namespace: string; readonly labels?: Readonly<Record<string, string>> }
  /** Addresses outside the cluster (a managed Redis, the object store); `0.0.0.0/0` and `::/0` leave out the private and link-local ranges. */
  | { readonly cidrs: readonly string[] }
  /** Any address: used only for the gateway's public port (see below). */
  | { readonly anywhere: true };

export interface Rule {
  readonly peers: readonly Peer[];
  readonly ports: readonly number[];
}

export interface ComponentTraffic {
  readonly ingress: readonly Rule[];
  readonly egress: readonly Rule[];
  /** Allow DNS lookups (see dnsRule). */
  readonly dns: boolean;
}

/**
 * Who may talk to whom; everything else is denied by `levee-default-deny`.
 * With the L4 edge, the gateway's port is open to every source: the LoadBalancer with
 * `externalTrafficPolicy: Local` delivers packets with the clients' own IPs, which can be
 * any address, so no narrower `from` can be written (the L7 proxy and Prometheus are
 * subsets of "anywhere"). That includes every pod and node of the cluster, not only the
 * L7 proxy: the gateway believes X-Forwarded-For from any peer inside LEVEE_TRUST_PROXY
 * (default 10.0.0.0/8), so such a peer can choose the client IP the per-IP rate limiter
 * sees. Narrow LEVEE_TRUST_PROXY to the L7 proxy's pod CIDR (infra/README.md). Without the
 * L4 edge (`LEVEE_EDGE=l7`, every preview) only the L7 proxy pods (LEVEE_L7_NAMESPACE +
 * LEVEE_L7_PROXY_SELECTOR) reach it. With the PNGs in the queue Redis (imageStore redis)
 * media reaches it too; with object storage (s3) the worker and media reach the store at
 * LEVEE_IMAGE_S3_CIDRS on its port, and media no Redis at all. Every app's metrics listener is open to the monitoring namespace only, on
 * its own port (the public ports serve no metrics). With tracing on (LEVEE_OTLP_ENDPOINT) every Levee
 * app (the model too, which then also gets DNS) may reach the collector pods (LEVEE_OTLP_NAMESPACE +
 * LEVEE_OTLP_POD_LABELS) on their OTLP port (LEVEE_OTLP_PORT, else the URL's, else 4317/4318).
 *
 * The Redis rules follow the modes: with Sentinel the clients reach the Sentinels (26379) and
 * the data pods (6379), which also reach each other (replication) and the Sentinels (a
 * starting pod asks for the primary); a managed Redis is reached at its CIDRs and port only.
 * Components the chart does not run (an external Redis) get no policy.
 */
export function trafficMatrix(config: LeveeConfig): Partial<Record<ComponentKey, ComponentTraffic>> {
  const monitoring: Peer = { namespace: config.monitoringNamespace };
  const l7Proxy: Peer = { namespace: config.edge.l7Namespace, labels: config.edge.l7ProxyLabels };
  const keda = config.worker.autoscaler === 'keda';
  const q = config.queueRedis;
  const c = config.cacheRedis;
  const sentinel = q.mode === 'sentinel';
  // The model: its pods, or an endpoint outside the chart (LEVEE_MODEL_URL).
  const ext = config.modelServer.external;
  const toModel: Rule = ext ? { peers: [{ cidrs: ext.cidrs }], ports: [ext.port] } : { peers: [{ component: 'model' }], ports: [PORTS.model] };
  const toQueue: Rule[] = q.external
    ? [{ peers: [{ cidrs: q.external.cidrs }], ports: [q.external.port] }]
    : [{ peers: [{ component: 'queueRedis' }], ports: [PORTS.redis] }, ...(sentinel ? [{ peers: [{ component: 'queueSentinel' as const }], ports: [PORTS.sentinel] }] : [])];
  const toCache: Rule[] = c.external ? [{ peers: [{ cidrs: c.external.cidrs }], ports: [c.external.port] }] : [{ peers: [{ component: 'cacheRedis' }], ports: [PORTS.redis] }];
  // With the images in object storage, media reads them there and never the queue Redis.
  const s3 = config.imageStore.kind === 's3' ? config.imageStore : undefined;
  const toStore: Rule[] = s3 ? [{ peers: [{ cidrs: s3.egress.cidrs }], ports: [s3.egress.port] }] : [];
  const queueClients: Peer[] = [{ component: 'gateway' }, { component: 'worker' }, { component: 'webhooks' }, ...(s3 ? [] : [{ component: 'media' as const }]), ...(keda ? [{ namespace: config.kedaNamespace }] : [])];
  // Webhook receivers: the internet (LEVEE_WEBHOOK_EGRESS_CIDRS, never the cluster's ranges or the
  // metadata address) and any private receivers allowed by LEVEE_WEBHOOK_ALLOWED_CIDRS, on the allowed ports.
  const w = config.webhooks;
  const toReceivers: Rule[] = [
    { peers: [{ cidrs: w.egressCidrs }], ports: w.allowedPorts },
    ...(w.allowedCidrs !== '' ? [{ peers: [{ cidrs: w.allowedCidrs.split(',') }], ports: w.allowedPorts }] : []),
  ];
  // Tracing (LEVEE_OTLP_ENDPOINT): every Levee app exports its spans to the collector pods.
  const toCollector: Rule[] = config.tracing
    ? [{ peers: [{ namespace: config.tracing.collector.namespace, labels: config.tracing.collector.labels }], ports: [config.tracing.collector.port] }]
    : [];
  const model: ComponentTraffic = {
    ingress: [
      { peers: config.modelServer.api === 'openai-images' ? [{ component: 'worker' }] : [{ component: 'gateway' }, { component: 'worker' }], ports: [PORTS.model] },
      { peers: [monitoring], ports: [PORTS.modelMetrics] },
    ],
    // Only the collector, by its Service name (DNS), with tracing on; nothing otherwise.
    egress: toCollector,
    dns: toCollector.length > 0,
  };
  const matrix: Partial<Record<ComponentKey, ComponentTraffic>> = {
    gateway: {
      ingress: [
        { peers: config.edge.l4 ? [{ anywhere: true }] : [l7Proxy], ports: [PORTS.gateway] },
        { peers: [monitoring], ports: [PORTS.gatewayMetrics] },
      ],
      // openai-images: the gateway never calls the model (the catalog is configured).
      egress: [...toQueue, ...toCache, ...(config.modelServer.api === 'openai-images' ? [] : [toModel]), ...toCollector],
      dns: true,
    },
    media: {
      ingress: [
        { peers: [l7Proxy], ports: [PORTS.media] },
        { peers: [monitoring], ports: [PORTS.mediaMetrics] },
      ],
      egress: [...(s3 ? toStore : toQueue), ...toCollector],
      dns: true,
    },
    ...(ext ? {} : { model }),
    worker: {
      ingress: [{ peers: [monitoring], ports: [PORTS.workerMetrics] }],
      egress: [...toQueue, toModel, ...toStore, ...toCollector],
      dns: true,
    },
    // The only pods that reach the internet: the queue Redis, the receivers, DNS.
    webhooks: {
      ingress: [{ peers: [monitoring], ports: [PORTS.webhooksMetrics] }],
      egress: [...toQueue, ...toReceivers, ...toCollector],
      dns: true,
    },
  };
  if (q.mode === 'statefulset') matrix.queueRedis = { ingress: [{ peers: queueClients, ports: [PORTS.redis] }], egress: [], dns: false };
  if (sentinel) {
    const group: Peer[] = [{ component: 'queueRedis' }, { component: 'queueSentinel' }];
    const toGroup: Rule[] = [
      { peers: [{ component: 'queueRedis' }], ports: [PORTS.redis] },
      { peers: [{ component: 'queueSentinel' }], ports: [PORTS.sentinel] },
    ];
    // DNS: the pods know each other by their stable names.
    matrix.queueRedis = { ingress: [{ peers: [...queueClients, ...group], ports: [PORTS.redis] }], egress: toGroup, dns: true };
    matrix.queueSentinel = { ingress: [{ peers: [...queueClients, ...group], ports: [PORTS.sentinel] }], egress: toGroup, dns: true };
  }
  if (c.mode === 'deployment') matrix.cacheRedis = { ingress: [{ peers: [{ component: 'gateway' }], ports: [PORTS.redis] }], egress: [], dns: false };
  return matrix;
}

function peers(p: Peer): (k8s.NetworkPolicyPeer | undefined)[] {
  if ('cidrs' in p) return p.cidrs.map(ipBlock);
  return [peer(p)];
}

/** "Anywhere" on the internet never includes the cluster's own networks or the cloud metadata address. */
function ipBlock(cidr: string): k8s.NetworkPolicyPeer {
  if (cidr === '0.0.0.0/0') return { ipBlock: { cidr, except: [...NOT_THE_INTERNET.v4] } };
  if (cidr === '::/0') return { ipBlock: { cidr, except: [...NOT_THE_INTERNET.v6] } };
  return { ipBlock: { cidr } };
}

function peer(p: Peer): k8s.NetworkPolicyPeer | undefined {
  if ('anywhere' in p) return undefined;
  if ('cidrs' in p) throw new Error('peer: use peers() for CIDRs');
  if ('namespace' in p) {
    const namespaceSelector = { matchLabels: { 'kubernetes.io/metadata.name': p.namespace } };
    return p.labels && Object.keys(p.labels).length > 0 ? { namespaceSelector, podSelector: { matchLabels: { ...p.labels } } } : { namespaceSelector };
  }
  return { podSelector: { matchLabels: selectorLabels(COMPONENTS[p.component]) } };
}

function ports(list: readonly number[]): k8s.NetworkPolicyPort[] {
  return list.map((port) => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) }));
}

/** DNS lookups: the cluster DNS pods (LEVEE_DNS_SELECTOR) and any LEVEE_DNS_CIDRS, on LEVEE_DNS_PORT. */
function dnsRule(config: LeveeConfig): k8s.NetworkPolicyEgressRule {
  const { selector, port, cidrs } = config.dns;
  return {
    to: [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': selector.namespace } }, podSelector: { matchLabels: { [selector.labelKey]: selector.labelValue } } },
      ...cidrs.map((cidr) => ({ ipBlock: { cidr } })),
    ],
    ports: [
      { protocol: 'UDP', port: k8s.IntOrString.fromNumber(port) },
      { protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) },
    ],
  };
}

export interface NetworkPoliciesProps {
  readonly config: LeveeConfig;
}

/** Default deny for ingress and egress, then one allow policy per component. */
export class NetworkPolicies extends Construct {
  public readonly defaultDeny: k8s.KubeNetworkPolicy;
  /** One per component the chart runs. */
  public readonly allow: Readonly<Partial<Record<ComponentKey, k8s.KubeNetworkPolicy>>>;

  constructor(scope: Construct, id: string, props: NetworkPoliciesProps) {
    super(scope, id);
    const { config } = props;
    this.defaultDeny = new k8s.KubeNetworkPolicy(this, 'default-deny', {
      metadata: objectMeta(config, 'levee-default-deny', 'network'),
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    });

    const matrix = trafficMatrix(config);
    const allow: Partial<Record<ComponentKey, k8s.KubeNetworkPolicy>> = {};
    for (const key of Object.keys(matrix) as ComponentKey[]) {
      const t = matrix[key]!;
      const name = COMPONENTS[key];
      allow[key] = new k8s.KubeNetworkPolicy(this, key, {
        metadata: objectMeta(config, name, 'network'),
        spec: {
          podSelector: { matchLabels: selectorLabels(name) },
          policyTypes: ['Ingress', 'Egress'],
          ingress: t.ingress.map((r) => {
            const from = r.peers.flatMap(peers);
            // A rule with an "anywhere" peer has no `from`: every source is allowed.
            return from.includes(undefined) ? { ports: ports(r.ports) } : { from: from as k8s.NetworkPolicyPeer[], ports: ports(r.ports) };
          }),
          egress: [
            ...t.egress.map((r) => ({ to: r.peers.flatMap(peers).filter((p): p is k8s.NetworkPolicyPeer => p !== undefined), ports: ports(r.ports) })),
            ...(t.dns ? [dnsRule(config)] : []),
          ],
        },
      });
    }
    this.allow = allow;
  }
}
