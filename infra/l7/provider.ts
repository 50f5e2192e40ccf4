/**
 * The seam between the topology and whatever writes L7 routes. ingress-nginx (annotations
 * on an Ingress) is the default; the project is retired, so a Gateway API provider
 * (HTTPRoute + policy attachments) plugs in here without touching the constructs.
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
  /** TLS Secret name; no TLS when undefined. */
  readonly tlsSecret?: string;
  readonly backends: readonly L7Backend[];
  readonly loadBalancing: LoadBalancing;
}

export interface L7Provider {
  readonly name: L7ProviderName;
  /** Adds the objects that route `backends` for `host` under `scope`; returns the construct holding them. */
  addRoutes(scope: Construct, id: string, props: L7RouteProps): Construct;
}
