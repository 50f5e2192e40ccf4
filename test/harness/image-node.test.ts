/**
 * scripts/image-node.ts: the images' Node on this machine, which CI runs the suite on a second
 * time (`npm run test:image-node`). Its fetch is exercised by that CI step itself; here, the
 * runner, and that a run on the images' Node really is on that version.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageNodeVersion, runOn } from '../../scripts/image-node';

describe('the suite under npm run test:image-node', () => {
  const expected = process.env.LEVEE_IMAGE_NODE_VERSION;
  // Set only by scripts/image-node.ts: under npm test this machine's Node is the one wanted.
  (expected ? test : test.skip)("runs on the images' Node, not this machine's", () => {
    expect(process.version).toBe(expected);
    expect(process.version).toBe(`v${imageNodeVersion()}`);
  });
});

test('--version prints the images\' Node version without fetching it (what .ci/run compares)', () => {
  const tsx = join(__dirname, '../../node_modules/tsx/dist/cli.mjs');
  const r = spawnSync(process.execPath, [tsx, join(__dirname, '../../scripts/image-node.ts'), '--version'], { encoding: 'utf8', timeout: 30_000 });
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(`v${imageNodeVersion()}\n`);
  expect(r.stderr).not.toContain('fetching');
});

describe('runOn', () => {
  const dir = mkdtempSync(join(tmpdir(), 'levee-image-node-'));
  const script = join(dir, 'child.js');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(script, "require('node:fs').writeFileSync(process.argv[2], JSON.stringify({ mark: process.env.MARK, args: process.argv.slice(3) })); process.exit(Number(process.env.CODE));\n");

  test('runs the binary with the arguments and the environment added, and resolves with its exit status', async () => {
    const out = join(dir, 'out.json');
    const code = await runOn(process.execPath, [script, out, 'a', 'b c'], { env: { MARK: 'seen', CODE: '3' }, who: 'test' });
    expect(code).toBe(3);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ mark: 'seen', args: ['a', 'b c'] });
  });

  test('a binary that does not exist: status 1 and a message that names it', async () => {
    const errors: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
    try {
      expect(await runOn('/nonexistent/node', [script], { who: 'test' })).toBe(1);
    } finally {
      write.mockRestore();
    }
    expect(errors.join('')).toContain('test: cannot run /nonexistent/node: spawn /nonexistent/node ENOENT');
  });

  test('a child killed by a signal counts as a failure', async () => {
    const killer = join(dir, 'killer.js');
    writeFileSync(killer, "process.kill(process.pid, 'SIGKILL');\n");
    const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runOn(process.execPath, [killer], { who: 'test' })).toBe(1);
    } finally {
      write.mockRestore();
    }
  });
});
