import { Chart, ChartProps } from 'cdk8s';
import { Construct } from 'constructs';
import type { LeveeConfig } from './config/resolve';
import { CacheRedis } from './constructs/cache-redis';
import { Edge } from './constructs/edge';
import { Gateway } from './constructs/gateway';
import { GpuNodePool } from './constructs/gpu-node-pool';
import { Media } from './constructs/media';
import { Model } from './constructs/model';
import { Monitoring } from './constructs/monitoring';
import { LeveeNamespace } from './constructs/namespace';
import { NetworkPolicies } from './constructs/network-policies';
import { QueueRedis } from './constructs/queue-redis';
import { QueueSentinel } from './constructs/queue-sentinel';
import { Webhooks } from './constructs/webhooks';
import { Worker } from './constructs/worker';

export interface LeveeChartProps extends ChartProps {
  /** The resolved configuration (see `resolveConfig`). */
  readonly config: LeveeConfig;
}

/**
 * The whole Levee topology for one environment. Both delivery paths build exactly this:
 * `infra/main.ts` (cdk8s synth) and the Pulumi program. Construct ids are stable.
 */
export class LeveeChart extends Chart {
  public readonly config: LeveeConfig;
  public readonly leveeNamespace: LeveeNamespace;
  /** Absent with `LEVEE_QUEUE_REDIS=external`. */
  public readonly queueRedis?: QueueRedis;
  /** Only with `LEVEE_QUEUE_REDIS=sentinel`. */
  public readonly queueSentinel?: QueueSentinel;
  /** Absent with `LEVEE_CACHE_REDIS=external`. */
  public readonly cacheRedis?: CacheRedis;
  /** Absent with an external model (LEVEE_MODEL_URL). */
  public readonly model?: Model;
  /** Only with LEVEE_NODE_PROVISIONER=karpenter. */
  public readonly gpuNodePool?: GpuNodePool;
  public readonly gateway: Gateway;
  public readonly media: Media;
  public readonly worker: Worker;
  public readonly webhooks: Webhooks;
  public readonly edge: Edge;
  public readonly networkPolicies: NetworkPolicies;
  /** Present only with `monitoring = prometheus-operator`. */
  public readonly monitoring?: Monitoring;

  constructor(scope: Construct, id: string, props: LeveeChartProps) {
    super(scope, id, { ...props, disableResourceNameHashes: true });
    const { config } = props;
    this.config = config;
    this.leveeNamespace = new LeveeNamespace(this, 'namespace', { config });
    if (config.queueRedis.mode !== 'external') this.queueRedis = new QueueRedis(this, 'queue-redis', { config });
    if (config.queueRedis.mode === 'sentinel') this.queueSentinel = new QueueSentinel(this, 'queue-sentinel', { config });
    if (config.cacheRedis.mode === 'deployment') this.cacheRedis = new CacheRedis(this, 'cache-redis', { config });
    if (!config.modelServer.external) this.model = new Model(this, 'model', { config });
    if (config.modelServer.karpenter) this.gpuNodePool = new GpuNodePool(this, 'gpu-node-pool', { config });
    this.gateway = new Gateway(this, 'gateway', { config });
    this.media = new Media(this, 'media', { config });
    this.worker = new Worker(this, 'worker', { config });
    this.webhooks = new Webhooks(this, 'webhooks', { config });
    this.edge = new Edge(this, 'edge', { config });
    this.networkPolicies = new NetworkPolicies(this, 'network-policies', { config });
    if (config.monitoring) this.monitoring = new Monitoring(this, 'monitoring', { config, monitoring: config.monitoring });
  }
}
