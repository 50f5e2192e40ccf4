import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';
import { L7_PROVIDER_REGISTRY } from '../l7';
import { COMPONENTS, EDGE_SERVICE_NAME, L7_ROUTE_NAME, PORTS } from '../names';
import { objectMeta, selectorLabels } from './pod';

export interface EdgeProps {
  readonly config: LeveeConfig;
}

/** How long kube-proxy keeps a client IP on the same gateway pod (hash by client IP). */
export const CLIENT_IP_AFFINITY_SECONDS = 10800;

/**
 * The two entry points: an L4 LoadBalancer Service straight to the gateway
 * (`externalTrafficPolicy: Local` keeps the client IP the rate limiter keys on), and L7
 * path routing `/api` → gateway, `/images` → media, written by the configured provider.
 */
export class Edge extends Construct {
  public readonly loadBalancer?: k8s.KubeService;
  public readonly routes: Construct;

  constructor(scope: Construct, id: string, props: EdgeProps) {
    super(scope, id);
    const { config } = props;
    const lb = config.loadBalancing;

    if (config.edge.l4) {
      const clientIp = lb.algorithm === 'hash' && lb.hashBy === 'client-ip';
      this.loadBalancer = new k8s.KubeService(this, 'load-balancer', {
        metadata: objectMeta(config, EDGE_SERVICE_NAME, 'edge'),
        spec: {
          type: 'LoadBalancer',
          externalTrafficPolicy: 'Local',
          selector: selectorLabels(COMPONENTS.gateway),
          ports: [{ name: 'http', port: 80, targetPort: k8s.IntOrString.fromString('http'), protocol: 'TCP' }],
          // Config validation guarantees that L4 only sees round-robin or hash by client IP.
          sessionAffinity: clientIp ? 'ClientIP' : 'None',
          ...(clientIp ? { sessionAffinityConfig: { clientIp: { timeoutSeconds: CLIENT_IP_AFFINITY_SECONDS } } } : {}),
        },
      });
    }

    this.routes = L7_PROVIDER_REGISTRY[config.edge.l7Provider].addRoutes(this, 'routes', {
      config,
      name: L7_ROUTE_NAME,
      host: config.edge.host,
      ...(config.edge.tlsSecret !== undefined ? { tlsSecret: config.edge.tlsSecret } : {}),
      loadBalancing: lb,
      backends: [
        { pathPrefix: '/api', serviceName: COMPONENTS.gateway, servicePort: PORTS.gateway },
        { pathPrefix: '/images', serviceName: COMPONENTS.media, servicePort: PORTS.media },
      ],
    });
  }
}
