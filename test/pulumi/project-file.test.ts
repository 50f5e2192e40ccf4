/**
 * Pulumi.yaml declares every stack setting with its type, description and (where it is
 * safe) default, generated from the settings table; the example stack files are valid.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { SETTING_NAMES, SettingName, resolveConfig } from '../../infra';
import { harmlessDefault, projectFile } from '../../infra/pulumi/project-file';
import { PULUMI_ONLY_SETTINGS, stackSettings } from '../../infra/pulumi/stack-config';

const root = join(__dirname, '..', '..');
const readYaml = (file: string) => parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>;

describe('Pulumi.yaml', () => {
  const project = readYaml('Pulumi.yaml');
  const config = project.config as Record<string, { type: string; description: string; default?: unknown }>;

  test('is what infra/pulumi/project-file.ts writes (regenerate with `npx tsx infra/pulumi/project-file.ts`)', () => {
    expect(project).toEqual(projectFile());
  });

  test('runs the TypeScript program in infra/pulumi with the nodejs runtime', () => {
    expect(project).toMatchObject({ name: 'levee', runtime: { name: 'nodejs', options: { typescript: true } }, main: 'infra/pulumi/index.ts' });
    expect(readFileSync(join(root, 'infra/pulumi/index.ts'), 'utf8')).toContain('buildLevee()');
    // Pulumi overlays only this file's own compilerOptions on its defaults (module nodenext), so they must be explicit.
    const rootOptions = (parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> }).compilerOptions;
    const local = parse(readFileSync(join(root, 'infra/pulumi/tsconfig.json'), 'utf8')) as { extends: string; compilerOptions: Record<string, unknown> };
    expect(local.extends).toBe('../../tsconfig.json');
    for (const key of ['target', 'module', 'moduleResolution', 'esModuleInterop']) expect(local.compilerOptions[key]).toEqual(rootOptions[key]);
  });

  test('declares every setting of the stack configuration, and the Pulumi-only ones, each with a type and a description that states the default', () => {
    expect(Object.keys(config).sort()).toEqual([...SETTING_NAMES, ...Object.keys(PULUMI_ONLY_SETTINGS)].sort());
    for (const [name, decl] of Object.entries(config)) {
      expect(['string', 'integer', 'boolean']).toContain(decl.type);
      expect(decl.description).toMatch(/Default: |Pulumi only/);
      if (decl.default !== undefined) expect(typeof decl.default).toBe(decl.type === 'integer' ? 'number' : decl.type);
      expect(name).toMatch(/^[a-zA-Z][a-zA-Z0-9]*$/);
    }
  });

  test('declares a default only where giving it changes nothing: never for settings that vary by environment or contradict others', () => {
    expect(config.environment?.default).toBeUndefined();
    expect(config.previewId?.default).toBeUndefined();
    expect(config.gatewayMinReplicas?.default).toBeUndefined();
    expect(config.kedaListLength?.default).toBeUndefined();
    expect(config.workerCpuTarget?.default).toBeUndefined();
    expect(config.hashBy?.default).toBeUndefined();
    expect(config.gatewayCpuTarget?.default).toBe(80);
    for (const name of SETTING_NAMES) {
      const declared = config[name]?.default;
      expect(declared === undefined ? undefined : String(declared)).toBe(harmlessDefault(name as SettingName));
    }
  });

  test('with every declared default applied, each environment resolves exactly as with none', () => {
    const defaults = Object.fromEntries(
      Object.entries(config)
        .filter(([name, d]) => d.default !== undefined && (SETTING_NAMES as string[]).includes(name))
        .map(([name, d]) => [name, String(d.default)]),
    );
    for (const base of [{}, { environment: 'dev' }, { environment: 'preview', previewId: 'pr-1' }, { workerAutoscaler: 'keda' }]) {
      expect(resolveConfig({ ...defaults, ...base })).toEqual(resolveConfig(base));
    }
  });
});

describe('example stack files', () => {
  const stackConfig = (file: string) =>
    Object.fromEntries(Object.entries((readYaml(file).config ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));

  test('Pulumi.production.yaml resolves to the production environment', () => {
    const { settings } = stackSettings(stackConfig('Pulumi.production.yaml'), 'levee', 'production');
    expect(resolveConfig(settings)).toMatchObject({ environment: 'production', namespace: 'levee' });
  });

  test('Pulumi.preview.yaml, copied to a stack preview-pr-5, resolves to namespace levee-pr-5', () => {
    const { settings } = stackSettings(stackConfig('Pulumi.preview.yaml'), 'levee', 'preview-pr-5');
    expect(resolveConfig(settings)).toMatchObject({ environment: 'preview', previewId: 'pr-5', namespace: 'levee-pr-5' });
  });
});
