/**
 * `npm run synth` / `cdk8s synth`: read LEVEE_* settings, resolve, synthesize in memory,
 * check the policy, and only then write `dist/levee.k8s.yaml`. The only file with side effects.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, PolicyError, configWarnings, resolveConfig, settingsFromEnv, synthesize } from './index';

function main(): number {
  try {
    const config = resolveConfig(settingsFromEnv(process.env));
    for (const warning of configWarnings(config)) console.error(warning);
    const { manifests, yaml } = synthesize(config);
    const outdir = process.env.CDK8S_OUTDIR ?? 'dist';
    mkdirSync(outdir, { recursive: true });
    for (const f of readdirSync(outdir)) if (f.endsWith('.k8s.yaml')) rmSync(join(outdir, f));
    const file = join(outdir, 'levee.k8s.yaml');
    writeFileSync(file, yaml);
    console.log(`levee: ${config.environment} → ${file} (${manifests.length} objects, namespace ${config.namespace})`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof PolicyError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}

process.exitCode = main();
