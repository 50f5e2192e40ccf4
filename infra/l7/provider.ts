/**
 * The seam between the topology and whatever writes L7 routes: Envoy Gateway (Gateway API
 * objects plus policy attachments, the default), portable Gateway API objects, or the
 * legacy ingress-nginx Ingress. The Edge construct only calls `addRoutes`.
 */
import type { Construct } from 'constructs';
import type { LeveeConfig, LoadBalancing } from '../config/resolve';
import type { L7ProviderName } from '../config/settings';

export interface L7Backend {
  /** Path prefix, e.g. `/api`. */
  readonly pathPrefix: string;
  readonly serviceName: string;
  readonly servicePort: number;
}

export interface L7RouteProps {
  readonly config: LeveeConfig;
  readonly name: string;
  readonly host: string;
  /** TLS Secret name in the chart's namespace; no TLS of Levee's own when undefined. */
  readonly tlsSecret?: string;
  readonly backends: readonly L7Backend[];
  readonly loadBalancing: LoadBalancing;
}

export interface L7Provider {
  readonly name: L7ProviderName;
  /** Adds the objects that route `backends` for `host` under `scope`; returns the construct holding them. */
  addRoutes(scope: Construct, id: string, props: L7RouteProps): Construct;
}
