/**
 * `npm run smoke` as a process, against a real stack (model, worker and a gateway serving
 * /images, against a private redis-server): every check passes against a working
 * deployment, a broken one fails with its check named, and a URL that does not answer is
 * one clear line and exit 1.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';

jest.setTimeout(90_000);
const ROOT = join(__dirname, '../..');

function smoke(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/smoke.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

let redis: RedisServer;
const services: ServiceProcess[] = [];
let gatewayPort: number;
let modelPort: number;

beforeAll(async () => {
  redis = await RedisServer.start();
  modelPort = await freePort();
  gatewayPort = await freePort();
  const metricsPort = await freePort();
  const common = { REDIS_URL: redis.url, MODEL_URL: `http://127.0.0.1:${modelPort}`, QUEUE_NAME: `smoke-${process.pid}` };
  const model = new ServiceProcess('model', { PORT: String(modelPort), STYLES_DELAY_MS: '20' });
  const worker = new ServiceProcess('worker', { ...common, METRICS_PORT: String(metricsPort) });
  const gateway = new ServiceProcess('gateway', { ...common, PORT: String(gatewayPort), RATE_LIMIT_PER_SECOND: '5' });
  services.push(model, worker, gateway);
  await Promise.all([model.waitHttp(modelPort, '/healthz'), worker.waitHttp(metricsPort, '/healthz'), gateway.waitHttp(gatewayPort, '/readyz')]);
});

afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await redis?.stop();
});

test('against a working deployment every check passes, one line each, exit 0', async () => {
  const { code, out } = await smoke('--url', `http://127.0.0.1:${gatewayPort}`);
  expect(out).toMatch(/smoke: 10\/10 checks passed/);
  expect(out.split('\n').filter((l) => /^\s+ok\s+\d+\./.test(l))).toHaveLength(10);
  expect(out).toContain('"default";q=5;w=1'); // the burst is sized from the deployment's own policy
  expect(code).toBe(0);
});

test('images served from the wrong place fail the PNG checks by name, exit 1', async () => {
  await new Promise((r) => setTimeout(r, 1100)); // a fresh rate-limit window
  const { code, out } = await smoke('--url', `http://127.0.0.1:${gatewayPort}`, '--images-url', `http://127.0.0.1:${modelPort}`);
  expect(out).toMatch(/FAIL\s+4\. GET the PNG → 200 image\/png, 128×96, ETag, immutable — got 404/);
  expect(out).toMatch(/FAIL\s+5\. GET the PNG with If-None-Match → 304 — skipped: an earlier check failed/);
  expect(out).toMatch(/smoke: 8\/10 checks passed in .* — FAILED/);
  expect(code).toBe(1);
});

test('a URL that does not answer is one clear line and exit 1', async () => {
  const port = await freePort();
  const { code, out } = await smoke('--url', `http://127.0.0.1:${port}`);
  expect(out).toContain(`smoke: http://127.0.0.1:${port} does not answer (POST http://127.0.0.1:${port}/api/images: ECONNREFUSED)`);
  expect(out).not.toMatch(/FAIL/);
  expect(code).toBe(1);
});

test('a missing --url is a usage error', async () => {
  const { code, out } = await smoke();
  expect(out).toContain('smoke: --url is required');
  expect(code).toBe(2);
});
