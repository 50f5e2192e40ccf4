/**
 * `Pulumi.yaml`, written from the settings table so every `levee:<setting>` is declared
 * with its type, description and default, and cannot drift from `npm run synth`.
 * Regenerate after changing a setting: `npx tsx infra/pulumi/project-file.ts`.
 *
 * A project-level `default` is handed to the program as if the stack had set it, and
 * `resolveConfig` reads some settings differently once set (e.g. `kedaListLength` with the
 * CPU autoscaler is a contradiction), and many defaults depend on the environment. So a
 * default is declared only where setting it changes nothing in any environment; the
 * others state their per-environment default in the description.
 */
import { isDeepStrictEqual } from 'node:util';
import { ENVIRONMENTS, Environment, SETTINGS, SETTING_NAMES, SettingName, SettingsInput, resolveConfig } from '../index';
import { PULUMI_ONLY_SETTINGS } from './stack-config';

export interface ConfigDeclaration {
  readonly type: 'string' | 'integer' | 'boolean';
  readonly description: string;
  readonly default?: string | number | boolean;
}

/** Decided by the stack name (`preview-<id>`), so never given a project default. */
const FROM_STACK_NAME: readonly SettingName[] = ['environment', 'previewId'];
const SAMPLE_ID = 'pr-1';

type AnySpec = { env: string; description: string; default: (e: Environment, id: string) => string | undefined; parse: (raw: string) => { ok: boolean; value?: unknown } };
const spec = (name: SettingName) => SETTINGS[name] as unknown as AnySpec;

function baseFor(environment: Environment): SettingsInput {
  return environment === 'preview' ? { environment, previewId: SAMPLE_ID } : { environment };
}

function configType(name: SettingName): ConfigDeclaration['type'] {
  // A setting that "" switches off (e.g. edgeRateLimitMultiplier) must take "" from stack config too.
  if (spec(name).parse('').ok) return 'string';
  const sample = ENVIRONMENTS.map((e) => spec(name).default(e, SAMPLE_ID)).find((d) => d !== undefined);
  const value = sample === undefined ? undefined : spec(name).parse(sample).value;
  // Pulumi config has no fractional number type: a setting that takes fractions (a ratio) is a string.
  if (typeof value === 'number') return spec(name).parse('0.5').ok ? 'string' : 'integer';
  return typeof value === 'boolean' ? 'boolean' : 'string';
}

/** Allowed values of a setting with a closed set (`one of a, b, c`, or true/false), read from its parser. */
function choices(name: SettingName): string[] {
  const refused = spec(name).parse('\u0000') as { ok: boolean; allowed?: string };
  if (refused.allowed === 'true or false') return ['true', 'false'];
  const m = /^one of (.+)$/.exec(refused.allowed ?? '');
  return m ? m[1]!.split(', ') : [];
}

/**
 * Every configuration a default must not disturb: each environment alone, and with each
 * closed-set setting (autoscaler, load balancing, edge, persistence, …) at each value.
 */
function baseInputs(): SettingsInput[] {
  const bases: SettingsInput[] = [];
  for (const environment of ENVIRONMENTS) {
    bases.push(baseFor(environment));
    for (const other of SETTING_NAMES) {
      if (FROM_STACK_NAME.includes(other)) continue;
      for (const value of choices(other)) {
        const input = { ...baseFor(environment), [other]: value };
        if (resolves(input)) bases.push(input);
      }
    }
  }
  return bases;
}

let bases: SettingsInput[] | undefined;

/** The default, when it is the same everywhere and setting it explicitly never changes or breaks the configuration. */
export function harmlessDefault(name: SettingName): string | undefined {
  if (FROM_STACK_NAME.includes(name)) return undefined;
  const values = ENVIRONMENTS.map((e) => spec(name).default(e, SAMPLE_ID));
  const first = values[0];
  if (first === undefined || values.some((v) => v !== first)) return undefined;
  bases ??= baseInputs();
  for (const base of bases) {
    if (base[name] !== undefined) continue;
    if (!isDeepStrictEqual(resolves(base), resolves({ ...base, [name]: first }))) return undefined;
  }
  return first;
}

/** The configuration, or undefined when it is refused (a contradiction once the setting is given). */
function resolves(input: SettingsInput): ReturnType<typeof resolveConfig> | undefined {
  try {
    return resolveConfig(input);
  } catch {
    return undefined;
  }
}

function describeDefault(name: SettingName): string {
  if (name === 'environment') return 'production; preview for a stack named preview-<id>';
  if (name === 'previewId') return '<id> of a stack named preview-<id>';
  const byEnv = ENVIRONMENTS.map((e) => [e, spec(name).default(e, '<id>')] as const);
  const shown = (v: string | undefined) => (v === undefined ? 'unset' : v === '' ? '"" (none)' : v);
  if (byEnv.every(([, v]) => v === byEnv[0]![1])) return shown(byEnv[0]![1]);
  return byEnv.map(([e, v]) => `${shown(v)} (${e})`).join(', ');
}

function typed(type: ConfigDeclaration['type'], raw: string): string | number | boolean {
  return type === 'integer' ? Number(raw) : type === 'boolean' ? raw === 'true' : raw;
}

/** The `config:` block of Pulumi.yaml. */
export function projectConfig(): Record<string, ConfigDeclaration> {
  const out: Record<string, ConfigDeclaration> = {};
  for (const name of SETTING_NAMES) {
    const type = configType(name);
    const d = harmlessDefault(name);
    out[name] = {
      type,
      description: `${spec(name).description}. Default: ${describeDefault(name)}. (${spec(name).env} for npm run synth)`,
      ...(d !== undefined ? { default: typed(type, d) } : {}),
    };
  }
  for (const [name, description] of Object.entries(PULUMI_ONLY_SETTINGS)) {
    out[name] = { type: 'string', description: `${description}. Pulumi only.`, default: '' };
  }
  return out;
}

/** The whole Pulumi.yaml as an object. */
export function projectFile(): Record<string, unknown> {
  return {
    name: 'levee',
    description: 'Levee: the async image-generation API and its defenses, deployed from the same constructs as npm run synth',
    runtime: { name: 'nodejs', options: { typescript: true, packagemanager: 'npm' } },
    // Pulumi runs `main` from its own directory; infra/pulumi/tsconfig.json extends the root one.
    main: 'infra/pulumi/index.ts',
    config: projectConfig(),
  };
}

export const PROJECT_FILE_HEADER =
  '# Written by `npx tsx infra/pulumi/project-file.ts` from infra/config/settings.ts; edit the settings, not this file.\n' +
  '# Stack config `levee:<setting>` takes the same values (and gets the same error messages) as LEVEE_* for npm run synth.\n';

if (require.main === module) {
  // Entry use only: keep the YAML dependency out of the program's import graph.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { stringify } = require('yaml') as typeof import('yaml');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { writeFileSync } = require('node:fs') as typeof import('node:fs');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { join } = require('node:path') as typeof import('node:path');
  writeFileSync(join(__dirname, '..', '..', 'Pulumi.yaml'), PROJECT_FILE_HEADER + stringify(projectFile(), { lineWidth: 0 }));
}
