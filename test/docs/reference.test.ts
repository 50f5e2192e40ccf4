/**
 * The reference (docs/reference/) is written from the code by `npm run docs`; a change to a
 * setting, a metric or an alert without regenerating it fails here. And what it is written
 * from covers everything: every setting with a description, every metric, every alert.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALERT_NAMES, METRICS, SETTING_NAMES, SETTINGS } from '../../infra';
import { references, SERVICES } from '../../scripts/docs';
import { settingComments, settingRows, settingSources } from '../../scripts/docs/settings-docs';

const ROOT = join(__dirname, '../..');
const generated = references();

test.each(Object.keys(generated))('%s is current (else: run `npm run docs`)', (file) => {
  const onDisk = readFileSync(join(ROOT, file), 'utf8');
  expect([file, onDisk === generated[file]]).toEqual([file, true]);
});

test('every chart setting is in the settings reference, with its Pulumi key and a meaning', () => {
  const text = generated['docs/reference/settings.md']!;
  for (const name of SETTING_NAMES) expect(text).toContain(`| \`${SETTINGS[name].env}\` | \`${name}\` |`);
});

test.each(SERVICES.map((s) => [s.name, s] as const))('every variable of the %s schema has a description in its JSDoc', (_name, service) => {
  const rows = settingRows(service.schema, settingComments(settingSources(service.file)));
  expect(rows.length).toBeGreaterThan(5);
  expect(rows.filter((r) => !r.description).map((r) => r.name)).toEqual([]);
  for (const r of rows) expect(generated['docs/reference/settings.md']).toContain(`| \`${r.name}\` |`);
});

test('a default, and what a refused value is told, come from the schema itself', () => {
  const gateway = SERVICES.find((s) => s.name === 'gateway')!;
  const rows = new Map(settingRows(gateway.schema, new Map()).map((r) => [r.name, r]));
  expect(rows.get('RATE_LIMIT_PER_SECOND')).toMatchObject({ default: '10', accepts: 'must be an integer from 1 to 10000000' });
  expect(rows.get('WEBHOOK_ALLOWED_PORTS')).toMatchObject({ default: '443,8443' });
  expect(rows.get('TRUST_PROXY')!.default).toBe('(empty)');
});

test('every metric and every alert is in its reference', () => {
  for (const m of METRICS) expect(generated['docs/reference/metrics.md']).toContain(`| \`${m.name}\` | ${m.type} |`);
  for (const a of ALERT_NAMES) expect(generated['docs/reference/alerts.md']).toContain(`[\`${a}\`](../runbooks.md#${a.toLowerCase()})`);
});

/** Every Markdown file of the repository, outside node_modules, dist, build and the generated reference. */
function markdownFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!['node_modules', 'dist', 'build', '.git', 'imports'].includes(e.name) && rel !== 'docs/reference') walk(rel);
      } else if (e.name.endsWith('.md')) out.push(rel);
    }
  };
  walk('');
  return out;
}

test('no Markdown file outside docs/reference keeps a table row of a setting (the reference is the one copy)', () => {
  const names = new Set<string>([...SETTING_NAMES.map((n) => SETTINGS[n].env)]);
  for (const s of SERVICES) for (const r of settingRows(s.schema, new Map())) names.add(r.name);
  expect(names.size).toBeGreaterThan(100);
  const copies: string[] = [];
  for (const file of markdownFiles()) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    for (const [i, line] of lines.entries()) {
      if (/^\|\s*:?-{3,}/.test(lines[i + 1] ?? '')) continue; // a header row: columns, not a setting
      const first = /^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|/.exec(line)?.[1];
      if (first && names.has(first)) copies.push(`${file}: ${first}`);
    }
  }
  expect(copies).toEqual([]);
});

test('the README stays a five-minute read: at most 150 lines, linking the generated reference', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(150);
  for (const ref of ['settings', 'metrics', 'alerts']) expect(readme).toContain(`(docs/reference/${ref}.md)`);
});
