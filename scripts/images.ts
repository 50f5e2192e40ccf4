/**
 * `npm run images`: builds the four app images from the repository root, tagged exactly as
 * the synthesized manifests reference them (LEVEE_IMAGE_REGISTRY, LEVEE_IMAGE_TAG), and
 * prints each image's size and build time against the size budget. Where the Node base image
 * is not present and no registry answers, an equivalent is assembled locally first.
 *
 * Options: --no-cache (a cold build, to measure one).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, resolveConfig, settingsFromEnv } from '../infra';
import { ensureNodeBase, extraCaOf } from './docker/base-images';
import { DockerUnavailableError, docker, formatMB, formatSeconds, imageSize, MB, requireEngine } from './docker/docker';
import { APP_IMAGES, appImageTag } from './docker/app-images';

const ROOT = join(__dirname, '..');
/** Every runtime image stays at or under this many bytes, uncompressed (docker's MB). */
export const IMAGE_BUDGET_BYTES = 250 * MB;

/** The one base every Dockerfile builds on (their FROM lines must agree). */
function nodeBaseRef(): string {
  const bases = new Set<string>();
  for (const app of APP_IMAGES) {
    const text = readFileSync(join(ROOT, app.dockerfile), 'utf8');
    for (const m of text.matchAll(/^FROM\s+(node:\S+)/gm)) bases.add(m[1]!);
  }
  if (bases.size !== 1) throw new Error(`the Dockerfiles must share one Node base; found ${[...bases].join(', ') || 'none'}`);
  return [...bases][0]!;
}

async function main(): Promise<number> {
  const noCache = process.argv.includes('--no-cache');
  const log = (line: string) => console.log(`images: ${line}`);
  try {
    const engine = await requireEngine();
    const config = resolveConfig(settingsFromEnv(process.env));
    const base = nodeBaseRef();
    const started = Date.now();
    const origin = await ensureNodeBase(base, log);
    if (origin !== 'assembled') log(`${base}: ${origin === 'present' ? 'present locally' : 'pulled'}`);
    const ca = await extraCaOf(base);
    log(`building ${APP_IMAGES.length} images with Docker ${engine} (legacy builder, --network host${noCache ? ', --no-cache' : ''})`);

    const rows: { tag: string; bytes: number; ms: number }[] = [];
    for (const app of APP_IMAGES) {
      const tag = appImageTag(config, app.component);
      const t0 = Date.now();
      const r = await docker(
        [
          'build', '--network', 'host', '-f', app.dockerfile, '-t', tag,
          ...(ca ? ['--build-arg', `NODE_EXTRA_CA_CERTS=${ca}`] : []),
          ...(noCache ? ['--no-cache'] : []),
          '.',
        ],
        { cwd: ROOT, env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 20 * 60_000 },
      );
      if (r.code !== 0) {
        console.error(`${(r.stdout + r.stderr).trim().split('\n').slice(-30).join('\n')}`);
        log(`FAILED: docker build -f ${app.dockerfile} -t ${tag} . (exit ${r.code})`);
        return 1;
      }
      const ms = Date.now() - t0;
      const bytes = await imageSize(tag);
      rows.push({ tag, bytes, ms });
      log(`${tag}  ${formatMB(bytes)}  built in ${formatSeconds(ms)}`);
    }

    const over = rows.filter((r) => r.bytes > IMAGE_BUDGET_BYTES);
    console.log('');
    console.log(`| image | size (uncompressed) | build time |`);
    console.log(`| --- | --- | --- |`);
    for (const r of rows) console.log(`| ${r.tag} | ${formatMB(r.bytes)} | ${formatSeconds(r.ms)} |`);
    console.log('');
    log(`${rows.length} images in ${formatSeconds(Date.now() - started)}; budget ${formatMB(IMAGE_BUDGET_BYTES)} each: ${over.length === 0 ? 'all within' : `OVER: ${over.map((r) => r.tag).join(', ')}`}`);
    return over.length === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof DockerUnavailableError || err instanceof ConfigError) {
      console.error(`images: ${err.message}`);
      return 1;
    }
    console.error(`images: ${(err as Error).message}`);
    return 1;
  }
}

void main().then((code) => (process.exitCode = code));
