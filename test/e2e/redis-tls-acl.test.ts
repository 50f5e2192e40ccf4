/**
 * A managed Redis as the clouds run it: TLS (rediss://) with a private CA, and an ACL user
 * limited to Levee's key patterns. GIVEN a `redis-server` with TLS only (certificates made
 * here with openssl) and a `levee` user allowed `~bull:* ~levee:*` and no dangerous commands,
 * WHEN gateway, worker and media start as real processes with rediss://, the user name and
 * the CA file for both roles, THEN a job goes all the way through; and a wrong password or a
 * certificate from another CA stops each service at start-up with one line naming the
 * setting to fix. The server's volatile-lru policy (a managed Redis's usual default) is
 * reported at start-up.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { PNG } from 'pngjs';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { until } from '../helpers/wait';
import { FakeModel } from '../worker/support';

jest.setTimeout(120_000);

const USER = 'levee';
const PASSWORD = 'levee-acl-password-0123';
const dir = mkdtempSync(join(tmpdir(), 'levee-tls-'));
const file = (name: string) => join(dir, name);
let server: ChildProcess;
let port: number;
let model: FakeModel;
const procs: ServiceProcess[] = [];
const queueName = `tls-${process.pid}-${Date.now()}`;

/** A CA, a server certificate it signs for 127.0.0.1, and an unrelated CA. */
function makeCertificates(): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=levee-test-ca');
  openssl('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.crt', '-days', '2', '-subj', '/CN=some-other-ca');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
}

/** Connection settings for one role. */
function roleEnv(role: 'QUEUE' | 'CACHE', overrides: Record<string, string> = {}): Record<string, string> {
  return {
    [`${role}_REDIS_URL`]: `rediss://127.0.0.1:${port}`,
    [`${role}_REDIS_USERNAME`]: USER,
    [`${role}_REDIS_PASSWORD`]: PASSWORD,
    [`${role}_REDIS_CA_FILE`]: file('ca.crt'),
    ...overrides,
  };
}

function adminClient(): Redis {
  const r = new Redis({ host: '127.0.0.1', port, username: USER, password: PASSWORD, tls: { ca: readFileSync(file('ca.crt'), 'utf8') }, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  return r;
}

beforeAll(async () => {
  makeCertificates();
  port = await freePort();
  // TLS only (no plain port); the default user has another password; the levee user may
  // touch Levee's keys only and run no dangerous command but INFO (BullMQ reads the version).
  server = spawn(
    'redis-server',
    [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
      '--tls-cert-file', file('server.crt'), '--tls-key-file', file('server.key'), '--tls-ca-cert-file', file('ca.crt'), '--tls-auth-clients', 'no',
      '--save', '', '--appendonly', 'no', '--maxmemory', '256mb', '--maxmemory-policy', 'volatile-lru',
      '--requirepass', 'the-default-users-password',
      '--user', USER, 'on', `>${PASSWORD}`, '~bull:*', '~levee:*', '&*', '+@all', '-@dangerous', '+info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  server.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await until(() => /Ready to accept connections/.test(log) || server.exitCode !== null, 10_000, 'the TLS redis-server to start');
  if (server.exitCode !== null) throw new Error(`redis-server with TLS did not start (is it built with TLS?):\n${log}`);
  model = await FakeModel.start();
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  const admin = adminClient();
  try {
    // SCAN, not KEYS: the levee user may run no dangerous command.
    for (const match of [`bull:${queueName}:*`, 'levee:*']) {
      let cursor = '0';
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        if (keys.length) await admin.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } finally {
    admin.disconnect();
  }
  await model?.close();
  server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function start(name: 'gateway' | 'worker' | 'media', env: Record<string, string>): Promise<{ proc: ServiceProcess; port: number }> {
  const p = await freePort();
  const portEnv: Record<string, string> = name === 'worker' ? { METRICS_PORT: String(p), METRICS_HOST: '127.0.0.1' } : { PORT: String(p), HOST: '127.0.0.1' };
  // No REDIS_URL fallback to the shared test Redis: every connection is configured here.
  const proc = new ServiceProcess(name, { REDIS_URL: 'redis://127.0.0.1:1', QUEUE_NAME: queueName, MODEL_URL: model.url, ...portEnv, ...env });
  procs.push(proc);
  return { proc, port: p };
}

test('GIVEN rediss://, an ACL user and the CA file THEN gateway, worker and media connect and a job goes all the way through; the user can touch nothing else', async () => {
  const gateway = await start('gateway', { ...roleEnv('QUEUE'), ...roleEnv('CACHE'), SERVE_MEDIA: 'false' });
  const worker = await start('worker', roleEnv('QUEUE'));
  const media = await start('media', roleEnv('QUEUE'));
  await Promise.all([gateway.proc.waitHttp(gateway.port, '/readyz'), worker.proc.waitHttp(worker.port, '/readyz'), media.proc.waitHttp(media.port, '/readyz')]);

  const posted = await request(gateway.port, '/api/images', { body: { prompt: 'a lighthouse over TLS', width: 96, height: 64 }, headers: { 'idempotency-key': 'tls-1' } });
  expect(posted.status).toBe(202);
  const id = posted.json.id as string;
  await until(async () => (await request(gateway.port, `/api/images/${id}`)).json?.status === 'completed', 30_000, 'the job to complete');
  const png = await request(media.port, `/images/${id}.png`);
  expect(png.status).toBe(200);
  expect([PNG.sync.read(png.body).width, PNG.sync.read(png.body).height]).toEqual([96, 64]);
  // The cache and the rate limiter work through the same user.
  const styles = await request(gateway.port, '/api/styles');
  expect(styles.status).toBe(200);
  expect(styles.headers['ratelimit']).toBeDefined();

  // The ACL is real: Levee's keys are there, anything else is refused.
  const admin = adminClient();
  try {
    expect(await admin.exists(`levee:image:${id}`)).toBe(1);
    await expect(admin.set('not-levee:key', 'x')).rejects.toThrow(/NOPERM/);
    await expect(admin.call('CONFIG', 'GET', 'maxmemory-policy')).rejects.toThrow(/NOPERM/);
  } finally {
    admin.disconnect();
  }
  // Start-up said clearly that this Redis may evict (volatile-lru): gateway and worker check the queue Redis.
  for (const p of [gateway.proc, worker.proc]) expect(p.output.join('')).toContain('has maxmemory-policy volatile-lru: BullMQ requires noeviction');
});

/** Starts a service that must refuse to run; resolves to its exit code and its output lines. */
async function refused(name: 'gateway' | 'worker' | 'media', env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const { proc } = await start(name, env);
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([proc.exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 20_000)))]);
  clearTimeout(timer);
  if (!exit) {
    await proc.kill();
    throw new Error(`${name} did not stop at start-up:\n${proc.output.join('')}`);
  }
  return { code: exit.code, lines: proc.output.join('').trim().split('\n') };
}

const SERVICES = ['gateway', 'worker', 'media'] as const;

test.each(SERVICES)('GIVEN a wrong password THEN %s stops at start-up (exit 78) with one line naming QUEUE_REDIS_PASSWORD', async (name) => {
  const env = { ...roleEnv('QUEUE', { QUEUE_REDIS_PASSWORD: 'not-the-password' }), ...(name === 'gateway' ? roleEnv('CACHE') : {}) };
  const { code, lines } = await refused(name, env);
  expect(code).toBe(78);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^levee-${name}: the queue Redis \\(rediss://127\\.0\\.0\\.1:${port}\\) refused ACL user "levee" \\(QUEUE_REDIS_USERNAME\\) with QUEUE_REDIS_PASSWORD: WRONGPASS`));
});

test.each(SERVICES)('GIVEN a certificate that the CA in QUEUE_REDIS_CA_FILE did not sign THEN %s stops at start-up with one line naming it', async (name) => {
  const env = { ...roleEnv('QUEUE', { QUEUE_REDIS_CA_FILE: file('other-ca.crt') }), ...(name === 'gateway' ? roleEnv('CACHE') : {}) };
  const { code, lines } = await refused(name, env);
  expect(code).toBe(78);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^levee-${name}: the queue Redis \\(rediss://127\\.0\\.0\\.1:${port}\\) presented a certificate that the CA in QUEUE_REDIS_CA_FILE did not sign: `));
});

test('GIVEN no CA file for a private CA THEN the line says to set it; GIVEN a wrong cache password THEN the gateway names CACHE_REDIS_PASSWORD', async () => {
  const noCa = await refused('worker', { ...roleEnv('QUEUE'), QUEUE_REDIS_CA_FILE: '' });
  expect(noCa.code).toBe(78);
  expect(noCa.lines).toHaveLength(1);
  expect(noCa.lines[0]).toMatch(/presented a certificate that no trusted CA signed; set QUEUE_REDIS_CA_FILE to the CA that signed it: /);

  const cache = await refused('gateway', { ...roleEnv('QUEUE'), ...roleEnv('CACHE', { CACHE_REDIS_PASSWORD: 'wrong' }) });
  expect(cache.code).toBe(78);
  expect(cache.lines).toHaveLength(1);
  expect(cache.lines[0]).toMatch(/^levee-gateway: the cache Redis \(.*\) refused ACL user "levee" \(CACHE_REDIS_USERNAME\) with CACHE_REDIS_PASSWORD: WRONGPASS/);
});
