/**
 * The portable half of the edge: Gateway API v1 (standard channel) objects that any
 * conformant implementation serves. Levee creates its own Gateway, or attaches its route
 * to an existing shared one (accept or create); nothing here sets `status`.
 */
import { Construct } from 'constructs';
import {
  Gateway, GatewaySpecListeners, GatewaySpecListenersAllowedRoutesNamespacesFrom, GatewaySpecListenersTlsMode,
} from '../../imports/gateway-gateway.networking.k8s.io';
import {
  HttpRoute, HttpRouteSpecParentRefs, HttpRouteSpecRules, HttpRouteSpecRulesFiltersRequestRedirectScheme, HttpRouteSpecRulesFiltersRequestRedirectStatusCode,
  HttpRouteSpecRulesFiltersType, HttpRouteSpecRulesMatchesMethod, HttpRouteSpecRulesMatchesPathType,
} from '../../imports/httproute-gateway.networking.k8s.io';
import type { GatewayEdge } from '../config/resolve';
import { objectMeta } from '../constructs/pod';
import type { L7Backend, L7Provider, L7RouteProps } from './provider';
import { GATEWAY_API_GROUP } from './versions';

/** Listener names of Levee's own Gateway; policies and routes refer to them by `sectionName`. */
export const LISTENERS = { https: 'https', http: 'http' } as const;

/** Rule names of the HTTPRoute (policies target them by `sectionName`). */
export const ROUTE_RULES = { events: 'events', apiReads: 'api-reads', api: 'api', images: 'images' } as const;

/**
 * `GET /api/images/{id}/events`: event streams, which live for minutes. Their rule matches by
 * regular expression (RE2; Gateway API support: implementation-specific, Envoy Gateway has it)
 * and turns the request timeout off (`timeouts.request: 0s`), so an edge-wide request timeout
 * cannot cut a stream; the app's 15 s heartbeats keep the idle timeouts from firing.
 */
export const EVENTS_PATH_REGEX = '^/api/images/[^/]+/events$';

/** Name of the HTTPRoute whose only rule redirects HTTP to HTTPS. */
export const REDIRECT_ROUTE_SUFFIX = '-redirect';

export interface GatewayApiRoutesProps extends L7RouteProps {
  /**
   * Give GETs to `/api` a rule of their own (`api-reads`), so that a policy can retry them
   * and only them. @default false
   */
  readonly separateReads?: boolean;
}

/** Where the route attaches: Levee's own Gateway (by listener) or the shared one. */
export function parentRefs(gateway: GatewayEdge, name: string, tls: boolean): HttpRouteSpecParentRefs[] {
  if (gateway.shared) {
    // No sectionName: every listener of the shared Gateway whose hostname and allowedRoutes admit the route.
    return [{ group: GATEWAY_API_GROUP, kind: 'Gateway', namespace: gateway.shared.namespace, name: gateway.shared.name }];
  }
  const own = (sectionName: string): HttpRouteSpecParentRefs => ({ group: GATEWAY_API_GROUP, kind: 'Gateway', name, sectionName });
  if (!tls) return [own(LISTENERS.http)];
  return gateway.httpRedirect ? [own(LISTENERS.https)] : [own(LISTENERS.https), own(LISTENERS.http)];
}

function rule(name: string, backend: L7Backend, method?: HttpRouteSpecRulesMatchesMethod): HttpRouteSpecRules {
  return {
    name,
    matches: [{ path: { type: HttpRouteSpecRulesMatchesPathType.PATH_PREFIX, value: backend.pathPrefix }, ...(method ? { method } : {}) }],
    backendRefs: [{ group: '', kind: 'Service', name: backend.serviceName, port: backend.servicePort }],
  };
}

/**
 * Gateway (unless shared) + HTTPRoute `/api` → gateway, `/images` → media (+ the HTTP→HTTPS
 * redirect route on Levee's own Gateway with TLS). The children are public so a provider
 * that adds policies can point at them.
 */
export class GatewayApiRoutes extends Construct {
  /** Levee's own Gateway; undefined when the route attaches to a shared one. */
  public readonly gateway?: Gateway;
  public readonly route: HttpRoute;
  public readonly redirectRoute?: HttpRoute;
  /** Names of the route's rules, in order. */
  public readonly ruleNames: readonly string[];

  constructor(scope: Construct, id: string, props: GatewayApiRoutesProps) {
    super(scope, id);
    const { config, name, host } = props;
    const gw = config.edge.gateway;
    if (!gw) throw new Error(`the Gateway API objects need a Gateway API provider (got ${config.edge.l7Provider})`);
    const tls = props.tlsSecret !== undefined;

    if (!gw.shared) {
      const sameNamespace = { namespaces: { from: GatewaySpecListenersAllowedRoutesNamespacesFrom.SAME }, kinds: [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute' }] };
      const listeners: GatewaySpecListeners[] = [
        ...(tls
          ? [{
              name: LISTENERS.https,
              protocol: 'HTTPS',
              port: 443,
              hostname: host,
              tls: { mode: GatewaySpecListenersTlsMode.TERMINATE, certificateRefs: [{ group: '', kind: 'Secret', name: props.tlsSecret! }] },
              allowedRoutes: sameNamespace,
            }]
          : []),
        { name: LISTENERS.http, protocol: 'HTTP', port: 80, hostname: host, allowedRoutes: sameNamespace },
      ];
      this.gateway = new Gateway(this, 'gateway', {
        metadata: objectMeta(config, name, 'edge'),
        spec: { gatewayClassName: gw.className, listeners },
      });
    }

    const [api, images] = props.backends;
    if (!api || !images || props.backends.length !== 2) throw new Error('the Gateway API route expects exactly the /api and /images backends');
    const events: HttpRouteSpecRules = {
      name: ROUTE_RULES.events,
      matches: [{ path: { type: HttpRouteSpecRulesMatchesPathType.REGULAR_EXPRESSION, value: EVENTS_PATH_REGEX }, method: HttpRouteSpecRulesMatchesMethod.GET }],
      backendRefs: [{ group: '', kind: 'Service', name: api.serviceName, port: api.servicePort }],
      timeouts: { request: '0s' },
    };
    const rules = [
      events,
      ...(props.separateReads ? [rule(ROUTE_RULES.apiReads, api, HttpRouteSpecRulesMatchesMethod.GET)] : []),
      rule(ROUTE_RULES.api, api),
      rule(ROUTE_RULES.images, images),
    ];
    this.ruleNames = rules.map((r) => r.name!);
    this.route = new HttpRoute(this, 'route', {
      metadata: objectMeta(config, name, 'edge'),
      spec: { parentRefs: parentRefs(gw, name, tls), hostnames: [host], rules },
    });

    if (gw.httpRedirect) {
      this.redirectRoute = new HttpRoute(this, 'redirect', {
        metadata: objectMeta(config, `${name}${REDIRECT_ROUTE_SUFFIX}`, 'edge'),
        spec: {
          parentRefs: [{ group: GATEWAY_API_GROUP, kind: 'Gateway', name, sectionName: LISTENERS.http }],
          hostnames: [host],
          rules: [
            {
              name: 'https-redirect',
              filters: [
                {
                  type: HttpRouteSpecRulesFiltersType.REQUEST_REDIRECT,
                  requestRedirect: { scheme: HttpRouteSpecRulesFiltersRequestRedirectScheme.HTTPS, statusCode: HttpRouteSpecRulesFiltersRequestRedirectStatusCode.VALUE_301 },
                },
              ],
            },
          ],
        },
      });
    }
  }
}

/** Portable Gateway API objects only: the implementation's own defaults balance the load. */
export const gatewayApiProvider: L7Provider = {
  name: 'gateway-api',
  addRoutes: (scope, id, props) => new GatewayApiRoutes(scope, id, props),
};
