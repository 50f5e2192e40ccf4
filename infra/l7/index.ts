import type { L7ProviderName } from '../config/settings';
import { envoyGatewayProvider } from './envoy-gateway';
import { gatewayApiProvider } from './gateway-api';
import { ingressNginxProvider } from './ingress-nginx';
import type { L7Provider } from './provider';

export * from './provider';
export * from './versions';
export * from './gateway-api';
export * from './envoy-gateway';
export * from './ingress-nginx';

/**
 * Registered providers: envoy-gateway (the default: Gateway API objects plus Envoy Gateway
 * policies), gateway-api (portable objects only) and ingress-nginx (legacy Ingress). To add
 * one: implement {@link L7Provider}, add its name to `L7_PROVIDERS` in config/settings.ts
 * and register it here.
 */
export const L7_PROVIDER_REGISTRY: Readonly<Record<L7ProviderName, L7Provider>> = {
  'envoy-gateway': envoyGatewayProvider,
  'gateway-api': gatewayApiProvider,
  'ingress-nginx': ingressNginxProvider,
};
