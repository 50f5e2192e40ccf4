/** Warnings about a valid configuration (nothing is refused here). */
import { settingLabel } from './settings';
import type { LeveeConfig } from './types';

/**
 * Things that are valid but deserve a word, one line each: `npm run synth` prints them on
 * stderr, the Pulumi program as warnings.
 */
export function configWarnings(config: LeveeConfig): string[] {
  return config.edge.l7Provider === 'ingress-nginx'
    ? [`warning: ${settingLabel('l7Provider')} = "ingress-nginx" is deprecated (ingress-nginx is retired: no releases or security fixes since March 2026); move to "envoy-gateway", see "Migrating from ingress-nginx" in infra/l7/README.md`]
    : [];
}
