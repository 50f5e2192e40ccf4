import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import type { LoadBalancing } from '../config/resolve';
import { durationMillis } from '../config/settings';
import { objectMeta } from '../constructs/pod';
import type { L7Provider, L7RouteProps } from './provider';

const PREFIX = 'nginx.ingress.kubernetes.io';

/** The load-balancing choice as ingress-nginx annotations. */
export function ingressNginxLoadBalancingAnnotations(lb: LoadBalancing, tls: boolean): Record<string, string> {
  switch (lb.algorithm) {
    case 'round-robin':
      return { [`${PREFIX}/load-balance`]: 'round_robin' };
    case 'least-request':
      // ingress-nginx's request-aware balancer: peak EWMA of upstream latency.
      return { [`${PREFIX}/load-balance`]: 'ewma' };
    case 'hash':
      switch (lb.hashBy) {
        case 'cookie':
          return {
            [`${PREFIX}/affinity`]: 'cookie',
            [`${PREFIX}/affinity-mode`]: 'balanced',
            [`${PREFIX}/session-cookie-name`]: lb.hashCookie ?? 'levee-affinity',
            [`${PREFIX}/session-cookie-samesite`]: 'Lax',
            ...(tls ? { [`${PREFIX}/session-cookie-secure`]: 'true' } : {}),
            ...(lb.hashCookieTtl !== undefined ? { [`${PREFIX}/session-cookie-max-age`]: String(Math.ceil(durationMillis(lb.hashCookieTtl)! / 1000)) } : {}),
          };
        case 'header':
          return { [`${PREFIX}/upstream-hash-by`]: `$http_${(lb.hashHeader ?? 'Authorization').toLowerCase().replace(/-/g, '_')}` };
        case 'client-ip':
        default:
          return { [`${PREFIX}/upstream-hash-by`]: '$remote_addr' };
      }
  }
}

export class IngressNginxRoutes extends Construct {
  public readonly ingress: k8s.KubeIngress;

  constructor(scope: Construct, id: string, props: L7RouteProps) {
    super(scope, id);
    const tls = props.tlsSecret !== undefined;
    this.ingress = new k8s.KubeIngress(this, 'ingress', {
      metadata: objectMeta(props.config, props.name, 'edge', {
        annotations: {
          ...ingressNginxLoadBalancingAnnotations(props.loadBalancing, tls),
          [`${PREFIX}/ssl-redirect`]: tls ? 'true' : 'false',
        },
      }),
      spec: {
        ingressClassName: props.config.edge.ingressClass,
        ...(tls ? { tls: [{ hosts: [props.host], secretName: props.tlsSecret }] } : {}),
        rules: [
          {
            host: props.host,
            http: {
              paths: props.backends.map((b) => ({
                path: b.pathPrefix,
                pathType: 'Prefix',
                backend: { service: { name: b.serviceName, port: { number: b.servicePort } } },
              })),
            },
          },
        ],
      },
    });
  }
}

/** Legacy: ingress-nginx is retired upstream; synthesis warns (configWarnings). */
export const ingressNginxProvider: L7Provider = {
  name: 'ingress-nginx',
  addRoutes: (scope, id, props) => new IngressNginxRoutes(scope, id, props),
};
