/**
 * Policy rules over synthesized manifests (plain JSON, whatever produced them).
 * `npm run synth` runs every rule and refuses to write when one fails.
 * One file per family of rules; this one puts them in the order they are checked and reported.
 */
import type { Json, Rule } from '../manifests';
import type { Violation } from '../types';
import { AVAILABILITY_RULES } from './availability';
import { CREDENTIAL_RULES } from './credentials';
import { EDGE_RULES } from './edge';
import { EGRESS_RULES } from './egress';
import { ENVIRONMENT_RULES } from './environment';
import { GPU_RULES } from './gpu';
import { IMAGE_RULES } from './images';
import { MONITORING_RULES } from './monitoring';
import { NETWORK_RULES } from './network';
import { POD_SECURITY_RULES } from './pod-security';
import { REDIS_RULES } from './redis';
import { RESOURCE_RULES } from './resources';

export type { Rule } from '../manifests';

export const RULES: readonly Rule[] = [
  ...POD_SECURITY_RULES, ...RESOURCE_RULES, ...IMAGE_RULES, ...AVAILABILITY_RULES,
  ...NETWORK_RULES, ...REDIS_RULES, ...CREDENTIAL_RULES, ...ENVIRONMENT_RULES, ...MONITORING_RULES,
  ...EDGE_RULES, ...EGRESS_RULES, ...GPU_RULES,
];

/** Runs every rule; an empty list means the manifests are policy-clean. */
export function checkPolicy(manifests: readonly Json[]): Violation[] {
  return RULES.flatMap((r) => r.check(manifests));
}
