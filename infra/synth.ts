/** In-memory synthesis: build, check, and only then hand back text to write. No side effects. */
import { App, Yaml } from 'cdk8s';
import { LeveeChart } from './chart';
import type { LeveeConfig } from './config/resolve';
import { checkPolicy, PolicyError } from './policy';

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

export interface Synthesized {
  /** Every object of the chart, in order. */
  readonly manifests: readonly Manifest[];
  /** Multi-document YAML of `manifests`. */
  readonly yaml: string;
}

/** Builds the chart for `config` without touching the file system. */
export function buildManifests(config: LeveeConfig): Manifest[] {
  const app = new App({ outdir: 'dist' });
  const chart = new LeveeChart(app, 'levee', { config });
  return chart.toJson() as Manifest[];
}

/** Builds, runs the policy (throws {@link PolicyError}) and serializes. */
export function synthesize(config: LeveeConfig): Synthesized {
  const manifests = buildManifests(config);
  const violations = checkPolicy(manifests);
  if (violations.length > 0) throw new PolicyError(violations);
  // cdk8s writes YAML 1.1, so strings such as "yes" (Redis flags) stay quoted for kubectl.
  const yaml = Yaml.stringify(...manifests);
  return { manifests, yaml };
}
