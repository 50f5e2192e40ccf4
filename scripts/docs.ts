/**
 * `npm run docs`: the reference, written from the code (docs/reference/):
 *   settings.md  the chart's LEVEE_* settings (infra/config/settings.ts) and each service's
 *                environment (its zod schema; descriptions from the schema's JSDoc)
 *   metrics.md   every metric (infra/monitoring/metrics.ts, checked against the services' registries)
 *   alerts.md    every alert of the PrometheusRule (infra/monitoring/alerts.ts)
 * `npm run docs -- --check` writes nothing and fails when a file is not current (the tests do too).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ALERT_NAMES, alertGroups, ENVIRONMENTS, METRICS, resolveConfig, SETTING_NAMES, SETTINGS } from '../infra';
import { gatewaySettingsSchema } from '../services/gateway/src/settings';
import { mediaSettingsSchema } from '../services/media/src/settings';
import { modelSettingsSchema } from '../services/model/src/settings';
import { workerEnvSchema } from '../services/worker/src/settings';
import { tracingSettingsSchema } from '../services/shared/src/tracing-settings';
import { webhookSenderEnvSchema } from '../services/worker/src/webhook-settings';
import { settingComments, settingRows, settingSources } from './docs/settings-docs';

const ROOT = join(__dirname, '..');
const HEADER = '<!-- Written by `npm run docs` from the code; do not edit by hand. -->\n';

/** A Markdown table cell: pipes escaped, one line. */
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const code = (text: string) => (text === '' ? '(empty)' : `\`${text.replace(/`/g, "'")}\``);

/** What a chart setting accepts: what its parser says of a value it refuses. */
function accepts(name: (typeof SETTING_NAMES)[number]): string {
  const parsed = SETTINGS[name].parse('\u0000not a value') as { ok: boolean; allowed?: string };
  return parsed.ok ? 'any text' : (parsed.allowed ?? '');
}

export const SERVICES = [
  { name: 'gateway', title: 'Gateway', start: 'npm run start:gateway', schema: gatewaySettingsSchema, file: 'services/gateway/src/settings.ts' },
  { name: 'media', title: 'Media', start: 'npm run start:media', schema: mediaSettingsSchema, file: 'services/media/src/settings.ts' },
  { name: 'worker', title: 'Worker', start: 'npm run start:worker', schema: workerEnvSchema, file: 'services/worker/src/settings.ts' },
  { name: 'webhooks', title: 'Webhook sender', start: 'npm run start:webhooks', schema: webhookSenderEnvSchema, file: 'services/worker/src/webhook-settings.ts' },
  { name: 'model', title: 'Model (the stand-in)', start: 'npm run start:model', schema: modelSettingsSchema, file: 'services/model/src/settings.ts' },
  { name: 'tracing', title: 'Tracing (every service)', start: 'npm run start:gateway' + '`, `start:media`, `start:worker`, `start:webhooks`, `start:model', schema: tracingSettingsSchema, file: 'services/shared/src/tracing-settings.ts' },
] as const;

export function settingsReference(): string {
  const lines = [
    HEADER,
    '# Settings reference',
    '',
    'Two kinds of settings:',
    '',
    '- [The chart\'s settings](#the-charts-settings-levee_): `LEVEE_*` environment variables for',
    '  `npm run synth`, or `levee:<name>` keys of a Pulumi stack. They choose the topology and',
    '  write the services\' environment. An invalid one fails synthesis, naming the setting and',
    '  what it accepts.',
    `- The services' environment: ${SERVICES.map((s) => `[${s.title.toLowerCase()}](#${s.title.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')})`).join(', ')}.`,
    '  Each service validates it at start and exits 78 with a message naming the variable,',
    '  the value and what is allowed.',
    '',
    "## The chart's settings (`LEVEE_*`)",
    '',
    `Defaults per environment: ${ENVIRONMENTS.join(' / ')} (one value when they agree).`,
    '',
    '| variable | Pulumi key | default | accepts | meaning |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const name of SETTING_NAMES) {
    const spec = SETTINGS[name];
    const values = ENVIRONMENTS.map((e) => spec.default(e, '<id>'));
    const shown = (v: string | undefined) => (v === undefined ? '—' : code(v));
    const defaults = values.every((v) => v === values[0]) ? shown(values[0]) : values.map(shown).join(' / ');
    lines.push(`| \`${spec.env}\` | \`${name}\` | ${defaults} | ${cell(accepts(name))} | ${cell(spec.description)} |`);
  }
  for (const s of SERVICES) {
    lines.push('', `## ${s.title}`, '', `\`${s.start}\`; the schema: [\`${s.file}\`](../../${s.file}).`, '', '| variable | default | accepts | meaning |', '| --- | --- | --- | --- |');
    for (const r of settingRows(s.schema, settingComments(settingSources(s.file)))) {
      lines.push(`| \`${r.name}\` | ${r.default === '—' || r.default === 'required' ? r.default : code(r.default)} | ${cell(r.accepts ?? '')} | ${cell(r.description ?? '')} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export function metricsReference(): string {
  const lines = [
    HEADER,
    '# Metrics reference',
    '',
    'Every metric the services export on their metrics port (never the public one), and `up`,',
    "which Prometheus records. The list is `infra/monitoring/metrics.ts`; a test reads each",
    "service's real registry and checks it is exactly this, both ways. Prometheus adds",
    '`namespace`, `job` (the component) and `pod`; alerts and the dashboard select by those.',
    '',
    '| metric | type | labels | from | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...METRICS.map((m) => `| \`${m.name}\` | ${m.type} | ${m.labels.length ? m.labels.map((l) => `\`${l}\``).join(', ') : '—'} | ${m.sources.join(', ')} | ${cell(m.help)} |`),
  ];
  return `${lines.join('\n')}\n`;
}

export function alertsReference(): string {
  const config = resolveConfig({ monitoring: 'prometheus-operator' });
  const rules = alertGroups(config, config.monitoring!).flatMap((g) => g.rules);
  const lines = [
    HEADER,
    '# Alerts reference',
    '',
    'The alerts of the `PrometheusRule levee` (`LEVEE_MONITORING=prometheus-operator`), as the',
    'production chart writes them with the default thresholds (each threshold is a',
    '`LEVEE_ALERT_*` setting: [settings](settings.md)). What to do for each: [runbooks](../runbooks.md).',
    '`LeveeTargetMissing` has one rule per component that must always have a pod.',
    '',
    '| alert | severity | for | summary | threshold setting (default) | expression |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const name of ALERT_NAMES) {
    const mine = rules.filter((r) => r.alert === name);
    const first = mine[0]!;
    const expr = mine.map((r) => code(r.expr.replace(/\s*\n\s*/g, ' '))).join('<br>');
    // The settings whose description names the alert ("alert LeveeQueueFull: …").
    const settings = SETTING_NAMES.filter((n) => SETTINGS[n].description.startsWith(`alert ${name}:`)).map((n) => `\`${SETTINGS[n].env}\` (${SETTINGS[n].default('production', '')})`);
    lines.push(`| [\`${name}\`](../runbooks.md#${name.toLowerCase()}) | ${first.labels.severity} | ${first.for ?? '—'} | ${cell(first.annotations.summary)} | ${settings.join(', ') || '—'} | ${cell(expr)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** Every generated file and its content now. */
export function references(): Record<string, string> {
  return {
    'docs/reference/settings.md': settingsReference(),
    'docs/reference/metrics.md': metricsReference(),
    'docs/reference/alerts.md': alertsReference(),
  };
}

function main(): number {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const [file, content] of Object.entries(references())) {
    const path = join(ROOT, file);
    let current: string | undefined;
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current === content) continue;
    if (check) stale.push(file);
    else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, content);
      console.log(`docs: wrote ${file}`);
    }
  }
  if (stale.length > 0) {
    console.error(`docs: not current: ${stale.join(', ')}; run \`npm run docs\``);
    return 1;
  }
  if (check) console.log('docs: the reference is current');
  return 0;
}

if (require.main === module) process.exitCode = main();
