/**
 * Every environment the chart writes into an app container must be accepted by that app's own
 * settings schema, or the pod crash-loops at start-up (exit 78) although synthesis succeeded.
 * Checked for every chart variant, and for every integer setting at both ends of the range
 * synthesis accepts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { z } from 'zod';
import { Manifest, SETTINGS } from '../../infra';
import { gatewaySettingsSchema } from '../../services/gateway/src/settings';
import { mediaSettingsSchema } from '../../services/media/src/settings';
import { modelSettingsSchema } from '../../services/model/src/settings';
import { parseSettings } from '../../services/shared/src/settings';
import { workerEnvSchema } from '../../services/worker/src/settings';
import { webhookSenderEnvSchema } from '../../services/worker/src/webhook-settings';
import { manifestsFor, VARIANTS } from './helpers';

const SCHEMAS: Record<string, z.ZodObject> = {
  'levee-gateway': gatewaySettingsSchema,
  'levee-media': mediaSettingsSchema,
  'levee-model': modelSettingsSchema,
  'levee-worker': workerEnvSchema,
  // The webhook sender: the worker image with its own command.
  'levee-webhooks': webhookSenderEnvSchema,
};

/** What a Secret holds for a variable: a whsec_ key for the webhook secret, a password otherwise. */
const fromSecret = (name: string) => (name === 'WEBHOOK_SECRET' ? `whsec_${Buffer.alloc(32, 1).toString('base64')}` : 'a-password-from-a-secret');

/** Stands in for a CA certificate the pod would have mounted from a Secret. */
const CA_FILE = join(mkdtempSync(join(tmpdir(), 'levee-env-')), 'ca.crt');
writeFileSync(CA_FILE, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');

/** Each app container's image name and environment (Secret references stand for a password, mounted CA files for a local one). */
function appEnvironments(manifests: readonly Manifest[]): { app: string; env: Record<string, string> }[] {
  const found: { app: string; env: Record<string, string> }[] = [];
  for (const m of manifests) {
    // Manifests are plain JSON.
    const pod = (m as any).spec?.template?.spec;
    for (const c of pod?.containers ?? []) {
      const image = /\/(levee-[a-z]+):/.exec(c.image)?.[1];
      if (!image) continue;
      const app = (c.command ?? []).some((arg: string) => arg.includes('webhooks-server')) ? 'levee-webhooks' : image;
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) env[e.name] = e.value ?? (e.valueFrom ? fromSecret(e.name) : '');
      for (const name of Object.keys(env).filter((n) => n.endsWith('_REDIS_CA_FILE'))) {
        // The file comes from a Secret volume the container mounts.
        const mounted = (c.volumeMounts ?? []).some((m: { mountPath: string }) => env[name]!.startsWith(`${m.mountPath}/`));
        if (!mounted) throw new Error(`${app}: ${name}=${env[name]} is not in a mounted volume`);
        env[name] = CA_FILE;
      }
      found.push({ app, env });
    }
  }
  return found;
}

/** Parses every app container's environment with its app's schema; returns the apps checked. */
function expectAccepted(manifests: readonly Manifest[]): string[] {
  const apps = appEnvironments(manifests);
  for (const { app, env } of apps) {
    const schema = SCHEMAS[app];
    if (!schema) throw new Error(`no settings schema known for the app image ${app}`);
    expect(() => parseSettings(schema, env)).not.toThrow();
  }
  return apps.map((a) => a.app).sort();
}

const INTEGER_SETTINGS = Object.entries(SETTINGS).flatMap(([name, spec]) => {
  const parse = spec.parse as { min?: number; max?: number };
  return typeof parse.min === 'number' && typeof parse.max === 'number' ? [{ name, min: parse.min, max: parse.max }] : [];
});

describe('the environment the chart writes is accepted by the apps it configures', () => {
  it.each(Object.entries(VARIANTS))('%s', (_name, settings) => {
    // No model of Levee's to configure with an external one.
    const apps = settings.modelUrl ? ['levee-gateway', 'levee-media', 'levee-webhooks', 'levee-worker'] : ['levee-gateway', 'levee-media', 'levee-model', 'levee-webhooks', 'levee-worker'];
    expect(expectAccepted(manifestsFor(settings))).toEqual(apps);
  });

  it('finds the integer settings to try at both ends', () => {
    expect(INTEGER_SETTINGS.map((s) => s.name)).toEqual(expect.arrayContaining(['imageTtlSeconds', 'modelTimeoutMs', 'workerConcurrency', 'rateLimitPerSecond', 'queueMaxWaiting', 'cacheTtlSeconds', 'breakerOpenSeconds', 'shutdownDelaySeconds']));
  });

  const ends = INTEGER_SETTINGS.flatMap(({ name, min, max }) => [
    { name, value: min },
    { name, value: max },
  ]);
  it.each(ends)('$name = $value', ({ name, value }) => {
    let manifests: Manifest[];
    try {
      manifests = manifestsFor({ [name]: String(value) });
    } catch (err) {
      // The value alone contradicts another default (e.g. a minimum above the maximum):
      // synthesis refuses it, naming the setting, and nothing reaches a pod.
      expect((err as Error).message).toContain(name);
      return;
    }
    expect(expectAccepted(manifests).length).toBeGreaterThan(0);
  });
});
