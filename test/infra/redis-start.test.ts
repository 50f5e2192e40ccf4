/**
 * The Redis start script, run for real: GIVEN the synthesized cache Redis container
 * (command + args), WHEN it is started with a local `redis-server` and `/bin/sh`,
 * THEN the password is enforced but appears in no process's arguments, redis-server stays
 * the exec'd process (it gets SIGTERM), the flags from args still apply, and a bad
 * password stops it before Redis starts. Skipped when no redis-server is installed.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports';
import { find, manifestsFor } from './helpers';

const hasRedis = process.platform === 'linux' && spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;
const maybe = hasRedis ? describe : describe.skip;

const PASSWORD = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';

maybe('Redis start script (real redis-server)', () => {
  const c = find(manifestsFor({}), 'Deployment', 'levee-cache-redis').spec.template.spec.containers[0];
  const dir = mkdtempSync(join(tmpdir(), 'levee-redis-'));
  let PORT = '';
  let args: string[] = [];
  const cli = (...cmd: string[]) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', PORT, ...cmd], { env: { ...process.env, REDISCLI_AUTH: PASSWORD }, encoding: 'utf8' }).stdout.trim();
  let child: ChildProcess;

  beforeAll(async () => {
    PORT = String(await freePort());
    args = (c.args as string[]).map((a, i, all) => (all[i - 1] === '--port' ? PORT : all[i - 1] === '--dir' ? dir : a));
    child = spawn(c.command[0], [...c.command.slice(1), ...args], { env: { ...process.env, REDIS_PASSWORD: PASSWORD }, stdio: 'ignore' });
    for (let i = 0; i < 50 && cli('ping') !== 'PONG'; i++) await new Promise((r) => setTimeout(r, 100));
  });

  afterAll(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('requires the password, which no process argument holds', () => {
    expect(cli('ping')).toBe('PONG');
    expect(spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', PORT, 'ping'], { encoding: 'utf8' }).stdout).toMatch(/NOAUTH/);
    expect(cli('config', 'get', 'requirepass')).toContain(PASSWORD);
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8');
    expect(cmdline).toMatch(/^redis-server/); // sh exec'd redis-server: same pid, gets SIGTERM
    expect(cmdline).not.toContain(PASSWORD);
  });

  test('applies the flags from args after the stdin config', () => {
    expect(cli('config', 'get', 'maxmemory-policy')).toContain('allkeys-lru');
    expect(cli('config', 'get', 'maxmemory')).toContain(String(192 * 1024 * 1024));
    expect(cli('config', 'get', 'dir')).toContain(dir);
  });

  test.each([
    ['empty', ''],
    ['with a space', 'a b'],
    ['with a newline that would add a config line', 'x\nport 1'],
  ])('refuses a password %s before starting Redis', (_what, password) => {
    const run = spawnSync(c.command[0], [...c.command.slice(1), ...args], { env: { ...process.env, REDIS_PASSWORD: password }, encoding: 'utf8', timeout: 5000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('REDIS_PASSWORD must be non-empty');
  });

  test('exits cleanly on SIGTERM', async () => {
    expect(existsSync(`/proc/${child.pid}`)).toBe(true);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
