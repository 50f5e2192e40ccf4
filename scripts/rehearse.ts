/**
 * `npm run rehearse`: a deploy rehearsal of the synthesized manifests on Docker, doing what
 * a kubelet would do with them, then the smoke test through them (scripts/rehearsal/).
 *
 *   npm run rehearse                          the production topology, synthesized from LEVEE_* settings
 *   npm run rehearse -- --manifests f.yaml    any synthesized file (e.g. dist/levee.k8s.yaml)
 *   options: --timeout <s> (readiness, default 180), --keep (leave it running), --no-smoke
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { ConfigError, PolicyError, SETTINGS, resolveConfig, settingsFromEnv, synthesize } from '../infra';
import { DockerUnavailableError } from './docker/docker';
import { STAND_IN_S3_SETTINGS, STAND_IN_WEBHOOK_SETTINGS } from './rehearsal/plan';
import { rehearse } from './rehearsal/run';

const USAGE = 'usage: npm run rehearse -- [--manifests <file.yaml>] [--timeout <seconds>] [--keep] [--no-smoke]';

async function main(): Promise<number> {
  const log = (line: string) => console.log(`rehearse: ${line}`);
  let values: { manifests?: string; timeout?: string; keep?: boolean; 'no-smoke'?: boolean };
  try {
    ({ values } = parseArgs({ options: { manifests: { type: 'string' }, timeout: { type: 'string' }, keep: { type: 'boolean' }, 'no-smoke': { type: 'boolean' } } }));
  } catch (err) {
    console.error(`rehearse: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const timeout = Number(values.timeout ?? 180);
  if (!(timeout > 0)) {
    console.error(`rehearse: --timeout ${values.timeout} is not a positive number of seconds\n${USAGE}`);
    return 2;
  }
  try {
    let manifests: unknown[];
    let source: string;
    if (values.manifests) {
      manifests = parseAllDocuments(readFileSync(values.manifests, 'utf8')).map((d) => d.toJSON()).filter((m) => m);
      source = values.manifests;
    } else {
      const settings = settingsFromEnv(process.env);
      let config = resolveConfig(settings);
      // Images in object storage: the rehearsal's stand-in is the store, unless one was named
      // (a named cloud endpoint is refused by the plan: a rehearsal never reaches one).
      const standIn = config.imageStore.kind === 's3' && settings.imageS3Endpoint === undefined;
      // Webhooks may reach the receiver stand-in (the rehearsal's address pool, plain http), unless the settings say otherwise.
      const webhooks: Record<string, string> = settings.webhookAllowedCidrs === undefined && settings.webhookAllowHttp === undefined ? STAND_IN_WEBHOOK_SETTINGS : {};
      config = resolveConfig({ ...settings, ...(standIn ? STAND_IN_S3_SETTINGS : {}), ...webhooks });
      manifests = [...synthesize(config).manifests];
      const shown = (s: Record<string, string>) => Object.entries(s).map(([k, v]) => `${SETTINGS[k as keyof typeof SETTINGS].env}=${v}`).join(' ');
      source = `${config.environment} manifests (synthesized from LEVEE_* settings${standIn ? `, images to the object store stand-in: ${shown(STAND_IN_S3_SETTINGS)}` : ''}${Object.keys(webhooks).length ? `, webhooks to the receiver stand-in: ${shown(webhooks)}` : ''})`;
    }
    return await rehearse({ manifests, source, readyTimeoutSeconds: timeout, keep: values.keep === true, smoke: values['no-smoke'] !== true, log });
  } catch (err) {
    if (err instanceof DockerUnavailableError || err instanceof ConfigError || err instanceof PolicyError) {
      console.error(`rehearse: ${err.message}`);
      return 1;
    }
    console.error(`rehearse: ${(err as Error).stack ?? err}`);
    return 1;
  }
}

void main().then((code) => (process.exitCode = code));
