/**
 * The releases whose CRDs the Gateway API objects and Envoy Gateway policies are written
 * against (the copies in infra/crds/, the classes in imports/). Docs and tests quote these.
 */
export const SUPPORTED_VERSIONS = {
  /** Gateway API, standard channel: Gateway and HTTPRoute `gateway.networking.k8s.io/v1`. */
  gatewayApi: 'v1.6.1',
  /** Envoy Gateway: BackendTrafficPolicy and ClientTrafficPolicy `gateway.envoyproxy.io/v1alpha1`. */
  envoyGateway: 'v1.9.0',
} as const;

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
