import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import type { LeveeConfig } from '../config/resolve';
import { componentLabels } from './pod';

export interface GpuNodePoolProps {
  readonly config: LeveeConfig;
}

/**
 * The model's GPU nodes, when the cluster runs Karpenter (LEVEE_NODE_PROVISIONER=karpenter): a
 * `karpenter.sh/v1` NodePool (cluster-scoped) that provisions nodes of the requirements given,
 * tainted with the key the model pods tolerate, up to LEVEE_GPU_LIMIT GPUs in all. Nodes go only
 * when empty (consolidation `WhenEmpty`, after LEVEE_GPU_CONSOLIDATE_AFTER), a budgeted share at
 * a time: a node busy with renders is never drained to save money (expiry after
 * LEVEE_GPU_EXPIRE_AFTER and drift still replace nodes: renders then finish within the pods'
 * grace period). The cloud-specific NodeClass
 * (instance profile, subnets, AMI) is the cluster's; the pool names it.
 */
export class GpuNodePool extends Construct {
  public readonly nodePool: ApiObject;

  constructor(scope: Construct, id: string, props: GpuNodePoolProps) {
    super(scope, id);
    const { config } = props;
    const m = config.modelServer;
    const k = m.karpenter;
    if (!k) throw new Error('GpuNodePool: LEVEE_NODE_PROVISIONER is not karpenter');
    const labels = componentLabels(config, k.nodePool, 'gpu-nodes');
    this.nodePool = new ApiObject(this, 'node-pool', {
      apiVersion: 'karpenter.sh/v1',
      kind: 'NodePool',
      metadata: { name: k.nodePool, labels },
      spec: {
        template: {
          metadata: { labels: { 'levee.dev/gpu-nodes': config.namespace } },
          spec: {
            nodeClassRef: { group: k.nodeClass.group, kind: k.nodeClass.kind, name: k.nodeClass.name },
            requirements: k.requirements.map((r) => ({ key: r.key, operator: 'In', values: [...r.values] })),
            taints: [{ key: m.gpuTaintKey, effect: 'NoSchedule' }],
            expireAfter: k.expireAfter,
          },
        },
        limits: { [m.gpuResource]: String(k.gpuLimit) },
        disruption: { consolidationPolicy: 'WhenEmpty', consolidateAfter: k.consolidateAfter, budgets: [{ nodes: k.budget }] },
      },
    });
  }
}
