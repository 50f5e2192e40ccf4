import type { L7ProviderName } from '../config/settings';
import { ingressNginxProvider } from './ingress-nginx';
import type { L7Provider } from './provider';

export * from './provider';
export * from './ingress-nginx';

/**
 * Registered providers. To add Gateway API: implement {@link L7Provider} in
 * `gateway-api.ts` (an HTTPRoute per host, load balancing through the implementation's
 * policy CRD), add its name to `L7_PROVIDERS` in config/settings.ts and register it here.
 */
export const L7_PROVIDER_REGISTRY: Readonly<Record<L7ProviderName, L7Provider>> = {
  'ingress-nginx': ingressNginxProvider,
};
