/**
 * The reference edge: the portable Gateway API objects plus Envoy Gateway policies —
 * a BackendTrafficPolicy (load balancing and the defenses in front of the app's own) and,
 * on Levee's own Gateway, a ClientTrafficPolicy (client IP detection, idle timeout).
 */
import { Construct } from 'constructs';
import {
  BackendTrafficPolicy, BackendTrafficPolicySpec, BackendTrafficPolicySpecLoadBalancer, BackendTrafficPolicySpecLoadBalancerConsistentHashType,
  BackendTrafficPolicySpecLoadBalancerType, BackendTrafficPolicySpecRateLimitLocalRulesClientSelectorsSourceCidrType,
  BackendTrafficPolicySpecRateLimitLocalRulesLimitUnit, BackendTrafficPolicySpecRetryRetryOnTriggers, BackendTrafficPolicySpecTargetRefs,
} from '../../imports/backendtrafficpolicy-gateway.envoyproxy.io';
import { ClientTrafficPolicy, ClientTrafficPolicySpec } from '../../imports/clienttrafficpolicy-gateway.envoyproxy.io';
import type { ClientIpDetectionConfig, EnvoyEdge, LoadBalancing } from '../config/resolve';
import { objectMeta } from '../constructs/pod';
import { GatewayApiRoutes, ROUTE_RULES } from './gateway-api';
import type { L7Provider, L7RouteProps } from './provider';
import { GATEWAY_API_GROUP } from './versions';

/** Suffix of the BackendTrafficPolicy for the rules that may be retried (GETs). */
export const READS_POLICY_SUFFIX = '-reads';
/** Suffix of the BackendTrafficPolicy of the event streams (no request timeout, no retries). */
export const EVENTS_POLICY_SUFFIX = '-events';

/**
 * Passive health checking must eject a pod that fails (refuses, resets, times out), never
 * one that answers: the gateway's 503 is backpressure shared by every pod (queue full),
 * and ejecting pods for it would only pile the flood onto fewer of them. Envoy Gateway has
 * no switch for the HTTP 5xx counter, so its threshold is put out of reach (int32 max).
 */
export const OUTLIER_5XX_NEVER = 2_147_483_647;
export const OUTLIER = { interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 } as const;
export const RETRY_BACKOFF = { baseInterval: '100ms', maxInterval: '1s' } as const;

/** `LEVEE_LOAD_BALANCING` / `LEVEE_HASH_BY` as Envoy Gateway's `loadBalancer`. */
export function envoyLoadBalancer(lb: LoadBalancing, https: boolean): BackendTrafficPolicySpecLoadBalancer {
  switch (lb.algorithm) {
    case 'round-robin':
      return { type: BackendTrafficPolicySpecLoadBalancerType.ROUND_ROBIN };
    case 'least-request':
      return { type: BackendTrafficPolicySpecLoadBalancerType.LEAST_REQUEST };
    case 'hash': {
      const type = BackendTrafficPolicySpecLoadBalancerType.CONSISTENT_HASH;
      const by = BackendTrafficPolicySpecLoadBalancerConsistentHashType;
      switch (lb.hashBy) {
        case 'header':
          return { type, consistentHash: { type: by.HEADER, header: { name: lb.hashHeader ?? 'Authorization' } } };
        case 'cookie':
          return {
            type,
            consistentHash: {
              type: by.COOKIE,
              cookie: { name: lb.hashCookie ?? 'levee-affinity', ttl: lb.hashCookieTtl ?? '1h', attributes: { SameSite: 'Lax', ...(https ? { Secure: '' } : {}) } },
            },
          };
        case 'client-ip':
        default:
          return { type, consistentHash: { type: by.SOURCE_IP } };
      }
    }
  }
}

/**
 * Everything but retries, for every rule of the route. A policy aimed at a route rule
 * (sectionName) replaces the one aimed at the whole route for that rule, so the reads
 * policy repeats this and adds its retry.
 */
export function backendDefenses(edge: EnvoyEdge, lb: LoadBalancing, https: boolean, targetRefs: BackendTrafficPolicySpecTargetRefs[]): BackendTrafficPolicySpec {
  const cb = edge.circuitBreaker;
  const limit = (value: string) => ({
    clientSelectors: [{ sourceCidr: { type: BackendTrafficPolicySpecRateLimitLocalRulesClientSelectorsSourceCidrType.DISTINCT, value } }],
    limit: { requests: edge.rateLimitPerSecond!, unit: BackendTrafficPolicySpecRateLimitLocalRulesLimitUnit.SECOND },
  });
  return {
    targetRefs,
    loadBalancer: envoyLoadBalancer(lb, https),
    ...(edge.requestTimeout !== undefined || edge.idleTimeout !== undefined
      ? {
          timeout: {
            http: {
              ...(edge.requestTimeout !== undefined ? { requestTimeout: edge.requestTimeout } : {}),
              ...(edge.idleTimeout !== undefined ? { connectionIdleTimeout: edge.idleTimeout } : {}),
            },
          },
        }
      : {}),
    ...(Object.keys(cb).length > 0 ? { circuitBreaker: { ...cb } } : {}),
    ...(edge.outlierFailures !== undefined
      ? {
          healthCheck: {
            passive: {
              splitExternalLocalOriginErrors: true,
              consecutiveLocalOriginFailures: edge.outlierFailures,
              consecutive5XxErrors: OUTLIER_5XX_NEVER,
              ...OUTLIER,
            },
          },
        }
      : {}),
    // One bucket per client address (Distinct) in each Envoy replica, IPv4 and IPv6 alike.
    ...(edge.rateLimitPerSecond !== undefined ? { rateLimit: { local: { rules: [limit('0.0.0.0/0'), limit('::/0')] } } } : {}),
  };
}

/** The ClientTrafficPolicy body: where the client IP comes from, and the client idle timeout. */
export function clientTraffic(clientIp: ClientIpDetectionConfig, idleTimeout: string | undefined, gatewayName: string): ClientTrafficPolicySpec {
  return {
    targetRefs: [{ group: GATEWAY_API_GROUP, kind: 'Gateway', name: gatewayName }],
    ...(clientIp.mode === 'xff' ? { clientIpDetection: { xForwardedFor: { numTrustedHops: clientIp.trustedHops } } } : { proxyProtocol: {} }),
    ...(idleTimeout !== undefined ? { timeout: { http: { idleTimeout } } } : {}),
  };
}

export class EnvoyGatewayRoutes extends Construct {
  public readonly routes: GatewayApiRoutes;
  /** Load balancing and defenses for the whole route. */
  public readonly backendPolicy: BackendTrafficPolicy;
  /** The same plus retries, for the GET rules; only when retries are on. */
  public readonly readsPolicy?: BackendTrafficPolicy;
  /** The event streams' rule: the same defenses without the request timeout (their HTTPRoute rule turns it off). */
  public readonly eventsPolicy: BackendTrafficPolicy;
  /** Client IP detection on Levee's own Gateway; none with a shared Gateway. */
  public readonly clientPolicy?: ClientTrafficPolicy;

  constructor(scope: Construct, id: string, props: L7RouteProps) {
    super(scope, id);
    const { config, name } = props;
    const edge = config.edge.envoy;
    if (!edge) throw new Error(`Envoy Gateway policies need l7Provider envoy-gateway (got ${config.edge.l7Provider})`);
    const https = config.edge.https;
    const retries = edge.retries > 0;
    this.routes = new GatewayApiRoutes(this, 'gateway-api', { ...props, separateReads: retries });

    const route = (sectionName?: string): BackendTrafficPolicySpecTargetRefs => ({ group: GATEWAY_API_GROUP, kind: 'HTTPRoute', name, ...(sectionName ? { sectionName } : {}) });
    this.backendPolicy = new BackendTrafficPolicy(this, 'backend', {
      metadata: objectMeta(config, name, 'edge'),
      spec: backendDefenses(edge, props.loadBalancing, https, [route()]),
    });
    // A policy aimed at a rule replaces the route's for that rule: without a requestTimeout here,
    // the rule's own `timeouts.request: 0s` holds, and a stream outlives LEVEE_EDGE_REQUEST_TIMEOUT.
    this.eventsPolicy = new BackendTrafficPolicy(this, 'events', {
      metadata: objectMeta(config, `${name}${EVENTS_POLICY_SUFFIX}`, 'edge'),
      spec: backendDefenses({ ...edge, requestTimeout: undefined }, props.loadBalancing, https, [route(ROUTE_RULES.events)]),
    });
    if (retries) {
      this.readsPolicy = new BackendTrafficPolicy(this, 'reads', {
        metadata: objectMeta(config, `${name}${READS_POLICY_SUFFIX}`, 'edge'),
        spec: {
          ...backendDefenses(edge, props.loadBalancing, https, [route(ROUTE_RULES.apiReads), route(ROUTE_RULES.images)]),
          // GETs are idempotent: a connect failure never reached a pod, and a 503 did nothing.
          retry: {
            numRetries: edge.retries,
            retryOn: {
              triggers: [BackendTrafficPolicySpecRetryRetryOnTriggers.CONNECT_HYPHEN_FAILURE, BackendTrafficPolicySpecRetryRetryOnTriggers.RETRIABLE_HYPHEN_STATUS_HYPHEN_CODES],
              httpStatusCodes: [503],
            },
            perRetry: { backOff: { ...RETRY_BACKOFF } },
          },
        },
      });
    }
    if (edge.clientIp && this.routes.gateway) {
      this.clientPolicy = new ClientTrafficPolicy(this, 'client', {
        metadata: objectMeta(config, name, 'edge'),
        spec: clientTraffic(edge.clientIp, edge.idleTimeout, name),
      });
    }
  }
}

export const envoyGatewayProvider: L7Provider = {
  name: 'envoy-gateway',
  addRoutes: (scope, id, props) => new EnvoyGatewayRoutes(scope, id, props),
};
