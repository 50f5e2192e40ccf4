/**
 * Reading the settings: from `LEVEE_*` environment variables ({@link settingsFromEnv}), then
 * each one parsed on its own, with the defaults of the environment ({@link parseSettings}).
 * Cross-setting rules come after, in resolve.ts and the per-area files.
 */
import { Environment, SETTINGS, SETTING_NAMES, SettingName, SettingValues, settingLabel } from './settings';
import { ConfigError, show } from './problems';
import type { SettingsInput } from './types';

/** The settings, each parsed on its own: the text (given or default) and the parsed value. */
export interface ParsedSettings {
  readonly environment: Environment;
  /** The text of each setting, as given or its environment's default (what messages quote). */
  readonly raw: Partial<Record<SettingName, string>>;
  readonly v: SettingValues;
  /** Whether the user gave the setting (not a default). */
  readonly given: (name: SettingName) => boolean;
}

/**
 * Refuses unknown settings, resolves the environment first (it decides every default), then
 * parses each setting; throws {@link ConfigError} listing every problem.
 */
export function parseSettings(input: SettingsInput): ParsedSettings {
  const problems: string[] = [];
  for (const key of Object.keys(input)) {
    if (input[key] !== undefined && !(SETTING_NAMES as string[]).includes(key)) {
      problems.push(`unknown setting "${key}"; allowed: the settings listed in infra/README.md (${SETTING_NAMES.slice(0, 3).join(', ')}, …)`);
    }
  }
  const given = (name: SettingName): boolean => input[name] !== undefined;

  // The environment decides the defaults of everything else, so it is resolved first.
  const envRaw = input.environment ?? 'production';
  const envParsed = SETTINGS.environment.parse(envRaw);
  if (!envParsed.ok) {
    problems.push(`${show('environment', envRaw)} is invalid; allowed: ${envParsed.allowed}`);
    throw new ConfigError(problems);
  }
  const environment = envParsed.value;
  if (environment === 'preview' && !given('previewId')) {
    problems.push(`${settingLabel('previewId')} is required when ${settingLabel('environment')} = "preview"; allowed: a namespace suffix such as pr-123`);
    throw new ConfigError(problems);
  }
  // Defaults derived from the preview id (the host) use a placeholder while the id is invalid,
  // so the one mistake is reported once.
  const previewIdRaw = input.previewId;
  const idForDefaults = previewIdRaw !== undefined && SETTINGS.previewId.parse(previewIdRaw).ok ? previewIdRaw : 'preview';

  const raw: Partial<Record<SettingName, string>> = {};
  const values: Partial<Record<SettingName, unknown>> = {};
  for (const name of SETTING_NAMES) {
    const spec = SETTINGS[name] as { parse: (r: string) => { ok: boolean; value?: unknown; allowed?: string }; default: (e: Environment, id: string) => string | undefined };
    const text = input[name] ?? spec.default(environment, idForDefaults);
    if (text === undefined) continue;
    raw[name] = text;
    const parsed = spec.parse(text);
    if (parsed.ok) values[name] = parsed.value;
    else problems.push(`${show(name, text)} is invalid; allowed: ${parsed.allowed}`);
  }
  // The queue Redis's size follows what it holds: jobs only (s3), or jobs and their PNGs (redis).
  if (raw.queueRedisMemory === undefined) {
    const text = environment !== 'production' ? '256Mi' : values.imageStore === 'redis' ? '1Gi' : '512Mi';
    const parsed = SETTINGS.queueRedisMemory.parse(text);
    if (parsed.ok) values.queueRedisMemory = parsed.value;
    raw.queueRedisMemory = text;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const v = values as SettingValues;
  return { environment, raw, v, given };
}

/**
 * Reads the settings from environment variables (`LEVEE_*`). A `LEVEE_` variable that is
 * not a setting is refused, so a typo cannot silently fall back to a default.
 */
export function settingsFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<Record<SettingName, string>> {
  const byEnv = new Map(SETTING_NAMES.map((name) => [SETTINGS[name].env, name] as const));
  const out: Partial<Record<SettingName, string>> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('LEVEE_') || value === undefined) continue;
    const name = byEnv.get(key);
    if (name) out[name] = value;
    else unknown.push(`unknown environment variable ${key} = ${JSON.stringify(value)}; allowed: the LEVEE_* settings listed in infra/README.md`);
  }
  if (unknown.length > 0) throw new ConfigError(unknown);
  return out;
}
