/**
 * Results pushed to the client, and jobs the client controls, through real processes: a
 * gateway, a worker and the webhook sender (`npm run start:webhooks`) on a private
 * redis-server, a model the test plays (it holds the renders it is told to, and sees their
 * connections close), and an https receiver with a test CA that the sender trusts through
 * NODE_EXTRA_CA_CERTS. Nothing leaves 127.0.0.1.
 *
 * - a webhook answered 500, 500, then 204 arrives three times with one `webhook-id`, each
 *   signature verified by the `standardwebhooks` verifier; the status says `delivered`;
 * - an event stream follows a job from queued (with its position) to completed and ends;
 * - DELETE cancels a waiting job (200, never rendered, its webhook `image.failed` /
 *   `cancelled`) and an active one (202, the model sees the abort, then `cancelled`, 200);
 *   a completed job answers 409;
 * - with the workers stopped past JOB_DEADLINE_SECONDS, a job is never rendered: it fails
 *   `expired…`, and its webhook says so.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { Webhook } from 'standardwebhooks';
import { request } from '../helpers/http';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { until } from '../helpers/wait';

jest.setTimeout(90_000);

const SECRET = `whsec_${Buffer.from('levee-e2e-webhook-secret-32-bytes!').toString('base64')}`;

/** The model, played by the test: prompts starting with "hold" wait for release() or the caller's abort. */
class PlayedModel {
  readonly seen: string[] = [];
  readonly aborted: string[] = [];
  private readonly held = new Map<string, () => void>();
  readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url !== '/v1/render') return void res.writeHead(404).end();
      const { prompt, width, height } = JSON.parse(Buffer.concat(chunks).toString()) as { prompt: string; width: number; height: number };
      this.seen.push(prompt);
      const answer = () => {
        const png = new PNG({ width, height });
        png.data.fill(200);
        res.writeHead(200, { 'content-type': 'image/png' }).end(PNG.sync.write(png));
      };
      if (!prompt.startsWith('hold')) return answer();
      res.on('close', () => {
        if (!res.writableEnded) this.aborted.push(prompt);
      });
      this.held.set(prompt, answer);
    });
  });

  release(prompt: string): void {
    this.held.get(prompt)?.();
    this.held.delete(prompt);
  }

  releaseAll(): void {
    for (const prompt of [...this.held.keys()]) this.release(prompt);
  }
}

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  status: number;
}

let dir: string;
let redis: RedisServer;
const model = new PlayedModel();
const received = new Map<string, Received[]>();
/** Statuses the receiver answers per path, in order; then 204. */
const script = new Map<string, number[]>();
let receiver: https.Server;
let receiverPort: number;
let gatewayPort: number;
let senderPort: number;
const procs: ServiceProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'levee-push-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=levee-test-ca');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');

  receiver = https.createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const status = script.get(path)?.shift() ?? 204;
      const list = received.get(path) ?? [];
      list.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), status });
      received.set(path, list);
      res.writeHead(status).end();
    });
  });
  let workerPort: number;
  [receiverPort, gatewayPort, senderPort, workerPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  await new Promise<void>((r) => receiver.listen(receiverPort, '127.0.0.1', r));
  await new Promise<void>((r) => model.server.listen(0, '127.0.0.1', r));
  const modelUrl = `http://127.0.0.1:${(model.server.address() as { port: number }).port}`;

  redis = await RedisServer.start();
  // The receiver is on loopback and a test port: the tests open both, as a private deployment would.
  const webhookPolicy = { WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_ALLOWED_PORTS: String(receiverPort) };
  const common = { REDIS_URL: redis.url, QUEUE_NAME: 'push' };
  procs.push(
    new ServiceProcess('gateway', { ...common, ...webhookPolicy, PORT: String(gatewayPort), HOST: '127.0.0.1', MODEL_URL: modelUrl, SHUTDOWN_DELAY_SECONDS: '0', RATE_LIMIT_PER_SECOND: '10000', IMAGE_PUBLIC_BASE_URL: 'https://images.example' }),
    new ServiceProcess('worker', { ...common, MODEL_URL: modelUrl, METRICS_PORT: String(workerPort), WORKER_CONCURRENCY: '1', IMAGE_PUBLIC_BASE_URL: 'https://images.example' }),
    new ServiceProcess(
      'webhooks',
      { ...common, ...webhookPolicy, WEBHOOK_SECRET: SECRET, METRICS_PORT: String(senderPort), NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') },
      'services/worker/src/webhooks-server.ts',
    ),
  );
  await Promise.all([procs[0]!.waitHttp(gatewayPort, '/readyz'), procs[1]!.waitHttp(workerPort, '/readyz'), procs[2]!.waitHttp(senderPort, '/readyz')]);
});

afterAll(async () => {
  model.releaseAll();
  await Promise.all(procs.map((p) => p.stop()));
  await redis?.stop();
  receiver?.close();
  model.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (body: Record<string, unknown>) => request(gatewayPort, '/api/images', { body: { width: 64, height: 64, ...body } });
const status = async (id: string) => (await request(gatewayPort, `/api/images/${id}`)).json as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const hook = (name: string) => `https://127.0.0.1:${receiverPort}/hooks/${name}`;

/** Reads an event stream until it ends (or `timeoutMs`): the `status` documents it carried, and the raw text. */
function readEvents(id: string, timeoutMs = 30_000): Promise<{ status: number; headers: http.IncomingHttpHeaders; docs: any[]; raw: string }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: gatewayPort, path: `/api/images/${id}/events`, headers: { accept: 'text/event-stream' } }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (raw += c));
      res.on('end', () => {
        clearTimeout(timer);
        const docs = raw
          .split('\n\n')
          .filter((block) => /^event: status$/m.test(block))
          .map((block) => JSON.parse(/^data: (.*)$/m.exec(block)![1]!));
        resolve({ status: res.statusCode!, headers: res.headers, docs, raw });
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`the event stream of ${id} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', reject);
  });
}

test('a webhook answered 500, 500, 204 is retried with one webhook-id, every signature verifies, and the status says delivered', async () => {
  script.set('/hooks/retried', [500, 500]);
  const accepted = await post({ prompt: 'a signed lighthouse', webhookUrl: hook('retried') });
  expect(accepted.status).toBe(202);
  const id = accepted.json.id as string;
  expect((await status(id)).webhook).toEqual({ state: 'pending', attempts: 0 });

  // Backoff 2 s, then 4 s.
  await until(() => (received.get('/hooks/retried')?.length ?? 0) >= 3, 40_000, 'three delivery attempts');
  const attempts = received.get('/hooks/retried')!;
  expect(attempts.map((a) => a.status)).toEqual([500, 500, 204]);
  const verifier = new Webhook(SECRET);
  for (const a of attempts) {
    const payload = verifier.verify(a.body, a.headers as Record<string, string>) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(payload.type).toBe('image.completed');
    expect(payload.data).toMatchObject({ id, status: 'completed', attempts: 1, imageUrl: `https://images.example/images/${id}.png` });
    expect(Date.parse(payload.timestamp)).toBeGreaterThan(0);
  }
  expect(new Set(attempts.map((a) => a.headers['webhook-id']))).toEqual(new Set([`msg_${id}`]));
  // A tampered body does not verify.
  expect(() => verifier.verify(attempts[2]!.body.replace('completed', 'failed'), attempts[2]!.headers as Record<string, string>)).toThrow();

  await until(async () => (await status(id)).webhook?.state === 'delivered', 10_000, 'the status to say delivered');
  expect((await status(id)).webhook).toEqual({ state: 'delivered', attempts: 3 });
  const metrics = (await request(senderPort, '/metrics')).body.toString();
  expect(metrics).toMatch(/levee_webhook_deliveries_total\{result="retried"[^}]*\} 2/);
  expect(metrics).toMatch(/levee_webhook_deliveries_total\{result="delivered"[^}]*\} 1/);
});

test('an event stream follows a job from queued (with its position) through active to completed, then ends', async () => {
  // The one worker slot is taken, so the followed job waits.
  const blocker = await post({ prompt: 'hold-stream-blocker' });
  await until(() => model.seen.includes('hold-stream-blocker'), 20_000, 'the blocker to reach the model');
  const followed = await post({ prompt: 'a followed job' });
  const id = followed.json.id as string;
  const stream = readEvents(id);
  await new Promise((r) => setTimeout(r, 500)); // the stream is open and has its first document
  model.release('hold-stream-blocker');
  const { status: code, headers, docs, raw } = await stream;
  expect(code).toBe(200);
  expect(headers['content-type']).toMatch(/^text\/event-stream/);
  expect(docs[0]).toMatchObject({ id, status: 'queued', position: 1 });
  expect(raw).toMatch(/^retry: \d+$/m);
  const last = docs[docs.length - 1];
  expect(last).toMatchObject({ id, status: 'completed', imageUrl: `https://images.example/images/${id}.png` });
  expect(docs.map((d) => d.status)).toContain('active');
  // Statuses only move forward.
  const order = ['queued', 'active', 'completed'];
  const seq = docs.map((d) => order.indexOf(d.status));
  expect(seq).toEqual([...seq].sort((a, b) => a - b));
  expect((await status(blocker.json.id)).status).toBe('completed');
  // A finished job's stream is its final document, at once.
  const again = await readEvents(id, 5000);
  expect(again.docs).toEqual([expect.objectContaining({ status: 'completed' })]);
});

test('DELETE: a waiting job is cancelled (200, never rendered, webhook image.failed), an active one is aborted (202, the model sees it), a completed one is 409', async () => {
  const blocker = await post({ prompt: 'hold-cancel-blocker' });
  await until(() => model.seen.includes('hold-cancel-blocker'), 20_000, 'the blocker to reach the model');
  const waiting = await post({ prompt: 'never rendered', webhookUrl: hook('cancelled') });
  const waitingId = waiting.json.id as string;
  // A stream follows it: the cancel ends it with the cancelled document.
  const following = readEvents(waitingId, 15_000);
  await new Promise((r) => setTimeout(r, 300));
  const cancelled = await request(gatewayPort, `/api/images/${waitingId}`, { method: 'DELETE' });
  expect(cancelled.status).toBe(200);
  expect(cancelled.json).toMatchObject({ id: waitingId, status: 'cancelled', error: 'cancelled' });
  expect((await status(waitingId)).status).toBe('cancelled');
  const streamed = await following;
  expect(streamed.docs.map((d) => d.status)).toEqual(['queued', 'cancelled']);
  // Idempotent: cancelled again is still 200.
  expect((await request(gatewayPort, `/api/images/${waitingId}`, { method: 'DELETE' })).status).toBe(200);

  // The active blocker: its model call is aborted.
  const blockerId = blocker.json.id as string;
  const aborting = await request(gatewayPort, `/api/images/${blockerId}`, { method: 'DELETE' });
  expect(aborting.status).toBe(202);
  expect(aborting.json.status).toBe('active');
  await until(() => model.aborted.includes('hold-cancel-blocker'), 10_000, 'the model to see the abort');
  await until(async () => (await status(blockerId)).status === 'cancelled', 10_000, 'the active job to end cancelled');
  expect((await request(gatewayPort, `/api/images/${blockerId}`, { method: 'DELETE' })).status).toBe(200);

  // The waiting job's webhook: image.failed, cancelled; it never reached the model.
  await until(() => (received.get('/hooks/cancelled')?.length ?? 0) >= 1, 20_000, "the cancelled job's webhook");
  const payload = new Webhook(SECRET).verify(received.get('/hooks/cancelled')![0]!.body, received.get('/hooks/cancelled')![0]!.headers as Record<string, string>) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(payload).toMatchObject({ type: 'image.failed', data: { id: waitingId, status: 'cancelled', error: 'cancelled' } });
  // Later jobs still render, and a completed one cannot be cancelled.
  const done = await post({ prompt: 'after the cancels' });
  await until(async () => (await status(done.json.id)).status === 'completed', 20_000, 'a later job to complete');
  expect(model.seen).not.toContain('never rendered');
  const conflict = await request(gatewayPort, `/api/images/${done.json.id}`, { method: 'DELETE' });
  expect(conflict.status).toBe(409);
  expect(conflict.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect((await request(gatewayPort, '/api/images/00000000-0000-4000-8000-000000000000', { method: 'DELETE' })).status).toBe(404);
});

test('a job whose workers were stopped past JOB_DEADLINE_SECONDS is never rendered: failed expired…, and its webhook says so', async () => {
  const [port, workerPort] = await Promise.all([freePort(), freePort()]);
  const modelUrl = `http://127.0.0.1:${(model.server.address() as { port: number }).port}`;
  const common = { REDIS_URL: redis.url, QUEUE_NAME: 'push-deadline' };
  const gateway = new ServiceProcess('gateway', { ...common, WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_ALLOWED_PORTS: String(receiverPort), PORT: String(port), HOST: '127.0.0.1', MODEL_URL: modelUrl, SHUTDOWN_DELAY_SECONDS: '0', RATE_LIMIT_PER_SECOND: '10000' });
  procs.push(gateway);
  await gateway.waitHttp(port, '/readyz');
  const accepted = await request(port, '/api/images', { body: { prompt: 'too late', width: 64, height: 64, webhookUrl: hook('expired') } });
  expect(accepted.status).toBe(202);
  const id = accepted.json.id as string;
  await new Promise((r) => setTimeout(r, 2500)); // no worker on this queue yet
  const worker = new ServiceProcess('worker', { ...common, MODEL_URL: modelUrl, METRICS_PORT: String(workerPort), JOB_DEADLINE_SECONDS: '2' });
  const sender = new ServiceProcess('webhooks', { ...common, WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_ALLOWED_PORTS: String(receiverPort), WEBHOOK_SECRET: SECRET, METRICS_PORT: '0', NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') }, 'services/worker/src/webhooks-server.ts');
  procs.push(worker, sender);
  let doc: Record<string, unknown> = {};
  await until(async () => {
    doc = (await request(port, `/api/images/${id}`)).json;
    return doc.status === 'failed';
  }, 20_000, 'the expired job to fail');
  expect(doc.error).toMatch(/^expired: waited \d+ s, past JOB_DEADLINE_SECONDS \(2 s\)/);
  expect(model.seen).not.toContain('too late');
  await until(() => (received.get('/hooks/expired')?.length ?? 0) >= 1, 20_000, "the expired job's webhook");
  const payload = new Webhook(SECRET).verify(received.get('/hooks/expired')![0]!.body, received.get('/hooks/expired')![0]!.headers as Record<string, string>) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(payload).toMatchObject({ type: 'image.failed', data: { id, status: 'failed' } });
  expect(payload.data.error).toMatch(/^expired/);
});
