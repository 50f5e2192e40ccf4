import { spawnSync } from 'node:child_process';
import { Manifest, resolveConfig, SettingsInput, synthesize } from '../../infra';

/** Whether a command is on PATH (Debian's `prometheus` package brings promtool and prometheus). */
export function installed(command: string): boolean {
  return spawnSync(command, ['--version'], { encoding: 'utf8' }).status === 0;
}

/**
 * `describe` when `command` is installed; otherwise a skip that says why — except in CI
 * (CI=true), where a missing tool fails the run instead of silently dropping its tests.
 */
export function describeWith(command: string): jest.Describe {
  if (installed(command)) return describe;
  const why = `${command} is not installed (Debian: apt-get install -y prometheus)`;
  if (process.env.CI === 'true') {
    return ((name: string) =>
      describe(name, () => {
        test(`needs ${command}`, () => {
          throw new Error(`${why}; CI must install it`);
        });
      })) as unknown as jest.Describe;
  }
  process.stderr.write(`skipping the tests that need ${command}: ${why}\n`);
  return describe.skip;
}

/** The synthesized (policy-checked) objects of a configuration with monitoring on. */
export function monitoredManifests(settings: SettingsInput = {}): Manifest[] {
  return synthesize(resolveConfig({ monitoring: 'prometheus-operator', ...settings })).manifests as Manifest[];
}

/** The rule groups of the synthesized PrometheusRule: a Prometheus rule file's content. */
export function ruleFile(manifests: readonly Manifest[]): { groups: unknown[] } {
  const rules = manifests.filter((m) => m.kind === 'PrometheusRule');
  if (rules.length !== 1) throw new Error(`expected one PrometheusRule, found ${rules.length}`);
  return { groups: (rules[0] as any).spec.groups };
}
