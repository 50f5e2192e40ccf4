/**
 * The webhook sender in-process, against the test Redis and receivers on 127.0.0.1 (allowed
 * by CIDR, as a private deployment would): what it signs, what it records, how it treats a
 * receiver that hangs, and that an address refused at delivery (a name pointing at loopback
 * now: DNS rebinding) fails at once without a retry. Retries with one webhook-id through a
 * real https receiver are in test/e2e/push.test.ts.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Job, Queue } from 'bullmq';
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import { createLogger } from '../../services/shared/src/logger';
import { parseCidrs, WebhookUrlPolicy } from '../../services/shared/src/webhook-url';
import { readWebhookState, WebhookDelivery, webhookQueueName, WEBHOOK_JOB_OPTIONS, WebhookNotifier } from '../../services/shared/src/webhooks';
import { createWebhookSender, WebhookSender } from '../../services/worker/src/webhook-sender';
import { parseWebhookSenderSettings } from '../../services/worker/src/webhook-settings';
import { TEST_REDIS_URL } from '../helpers/redis-url';
import { until } from '../helpers/wait';

const SECRET = `whsec_${Buffer.from('a-test-secret-of-at-least-24-bytes').toString('base64')}`;

describe('webhook sender', () => {
  let connection: Redis;
  let queueName: string;
  let sender: WebhookSender | undefined;
  let registry: Registry;
  const servers: http.Server[] = [];

  beforeEach(() => {
    connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    queueName = `wh-${randomUUID().slice(0, 8)}`;
    registry = new Registry();
  });
  afterEach(async () => {
    await sender?.close();
    sender = undefined;
    for (const s of servers.splice(0)) s.closeAllConnections(), s.close();
    const keys = await connection.keys(`bull:${webhookQueueName(queueName)}:*`);
    if (keys.length) await connection.del(...keys);
    connection.disconnect();
  });

  async function receiver(handle: http.RequestListener): Promise<number> {
    const server = http.createServer(handle);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as { port: number }).port;
  }

  function start(policy: WebhookUrlPolicy, timeoutMs = 10_000) {
    sender = createWebhookSender({ connection, queueName, secret: SECRET, policy, timeoutMs, concurrency: 4, registry, logger: createLogger('webhooks', 'silent') });
    return sender;
  }

  const delivery = (id: string, url: string): WebhookDelivery => ({
    type: 'image.completed',
    timestamp: '2026-12-07T20:00:00.000Z',
    url,
    data: { id, status: 'completed', attempts: 1, createdAt: '2026-12-07T19:59:59.000Z', finishedAt: '2026-12-07T20:00:00.000Z', imageUrl: `https://cdn.example/images/${id}.png` },
  });
  const metric = async (result: string) => (await registry.getSingleMetric('levee_webhook_deliveries_total')!.get()).values.find((v) => v.labels.result === result)?.value;

  it('signs the payload, records delivered, and a slow receiver does not hold the others', async () => {
    const bodies: { path: string; body: string; headers: http.IncomingHttpHeaders; at: number }[] = [];
    const port = await receiver((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        bodies.push({ path: req.url!, body, headers: req.headers, at: Date.now() });
        if (req.url === '/slow') setTimeout(() => res.writeHead(200).end(), 1500);
        else res.writeHead(200).end();
      });
    });
    start({ allowedCidrs: parseCidrs('127.0.0.1/32'), allowHttp: true, allowedPorts: [port] });
    const notifier = new WebhookNotifier(connection, queueName);
    const [slow, fast] = [randomUUID(), randomUUID()];
    const t0 = Date.now();
    await notifier.notify(slow, delivery(slow, `http://127.0.0.1:${port}/slow`));
    await notifier.notify(fast, delivery(fast, `http://127.0.0.1:${port}/fast`));
    // Enqueued twice: one delivery (the id is the job's).
    await notifier.notify(fast, delivery(fast, `http://127.0.0.1:${port}/fast`));
    await until(async () => (await readWebhookState(connection, slow)).state === 'delivered' && (await readWebhookState(connection, fast)).state === 'delivered', 10_000, 'both delivered');
    const fastAt = bodies.find((b) => b.path === '/fast')!.at;
    expect(fastAt - t0).toBeLessThan(1500); // not behind the slow receiver
    expect(bodies.filter((b) => b.path === '/fast')).toHaveLength(1);
    const b = bodies.find((x) => x.path === '/fast')!;
    const payload = new Webhook(SECRET).verify(b.body, b.headers as Record<string, string>) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(payload).toEqual({ type: 'image.completed', timestamp: '2026-12-07T20:00:00.000Z', data: delivery(fast, '').data });
    expect(b.headers['webhook-id']).toBe(`msg_${fast}`);
    expect(b.headers['content-type']).toBe('application/json');
    expect(Math.abs(Number(b.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(30);
    expect(await readWebhookState(connection, fast)).toEqual({ state: 'delivered', attempts: 1 });
    expect(await metric('delivered')).toBe(2);
    await notifier.close();
  });

  it('a receiver that never answers times out and is retried with backoff; the last attempt marks it failed', async () => {
    const port = await receiver(() => undefined); // holds every request
    start({ allowedCidrs: parseCidrs('127.0.0.1/32'), allowHttp: true, allowedPorts: [port] }, 1000);
    const queue = new Queue<WebhookDelivery>(webhookQueueName(queueName), { connection });
    const id = randomUUID();
    // Two attempts, 100 ms apart, to see the end of the sequence quickly.
    await queue.add('deliver', delivery(id, `http://127.0.0.1:${port}/hang`), { ...WEBHOOK_JOB_OPTIONS, jobId: id, attempts: 2, backoff: { type: 'fixed', delay: 100 } });
    await until(async () => (await readWebhookState(connection, id)).attempts === 1, 5000, 'the first attempt to time out');
    expect(await readWebhookState(connection, id)).toEqual({ state: 'pending', attempts: 1, lastError: 'no answer within 1000 ms' });
    await until(async () => (await readWebhookState(connection, id)).state === 'failed', 5000, 'the last attempt');
    expect(await readWebhookState(connection, id)).toEqual({ state: 'failed', attempts: 2, lastError: 'no answer within 1000 ms' });
    expect(await metric('retried')).toBe(1);
    expect(await metric('failed')).toBe(1);
    expect((await Job.fromId(queue, id))!.attemptsMade).toBe(2);
    await queue.close();
  });

  it('an address refused at delivery (a name that now points at loopback) fails at once, never connected, never retried', async () => {
    let reached = 0;
    const port = await receiver((_req, res) => (reached++, res.end()));
    // The URL names a host: the syntax passes; the connection-time lookup finds loopback.
    start({ allowedCidrs: [], allowHttp: true, allowedPorts: [port, 443] });
    const notifier = new WebhookNotifier(connection, queueName);
    const id = randomUUID();
    await notifier.notify(id, delivery(id, `http://localhost:${port}/rebound`));
    await until(async () => (await readWebhookState(connection, id)).state === 'failed', 5000, 'the refusal');
    const state = await readWebhookState(connection, id);
    expect(state.attempts).toBe(1);
    expect(state.lastError).toMatch(/localhost resolves to a non-public address: .* loopback/);
    expect(reached).toBe(0);
    expect(await metric('refused')).toBe(1);
    const job = await Job.fromId(notifier.queue, id);
    expect(job!.attemptsMade).toBe(1);
    expect(job!.finishedOn).toBeDefined(); // failed for good
    // Literal addresses of every class the policy refuses: the same, before any connection
    // (a URL accepted at submit under another policy, or written into the queue by other means).
    const literals: [string, RegExp][] = [
      ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a linkLocal address/],
      ['https://10.0.0.8/x', /10\.0\.0\.8 is a private address/],
      ['https://100.64.0.8/x', /100\.64\.0\.8 is a carrierGradeNat address/],
      ['https://127.0.0.1/x', /127\.0\.0\.1 is a loopback address/],
      ['https://[fd00:ec2::254]/x', /fd00:ec2::254 is a uniqueLocal address/],
      ['https://[fe80::1]/x', /fe80::1 is a linkLocal address/],
      ['https://[::ffff:192.168.0.1]/x', /is a private address/],
      ['https://[64:ff9b::a9fe:a9fe]/x', /is a rfc6052 address/],
    ];
    for (const [url, why] of literals) {
      const id = randomUUID();
      await notifier.notify(id, delivery(id, url));
      await until(async () => (await readWebhookState(connection, id)).state === 'failed', 5000, `the refusal of ${url}`);
      expect([url, (await readWebhookState(connection, id)).lastError]).toEqual([url, expect.stringMatching(why)]);
    }
    expect(await metric('refused')).toBe(1 + literals.length);
    await notifier.close();
  });

  it('settings: WEBHOOK_SECRET is required and must be a whsec_ secret of 24-64 bytes', () => {
    expect(() => parseWebhookSenderSettings({})).toThrow(/WEBHOOK_SECRET="": is required: the whsec_… secret/);
    expect(() => parseWebhookSenderSettings({ WEBHOOK_SECRET: 'hunter2' })).toThrow(/WEBHOOK_SECRET="hunter2": must be whsec_ followed by 24-64 bytes in base64/);
    expect(() => parseWebhookSenderSettings({ WEBHOOK_SECRET: `whsec_${Buffer.alloc(8).toString('base64')}` })).toThrow(/24-64 bytes/);
    expect(() => parseWebhookSenderSettings({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOWED_CIDRS: '10.0.0.0/33' })).toThrow(/WEBHOOK_ALLOWED_CIDRS="10.0.0.0\/33": must be a comma-separated list of IPs or CIDRs/);
    expect(() => parseWebhookSenderSettings({ WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOWED_PORTS: '443,99999' })).toThrow(/WEBHOOK_ALLOWED_PORTS="443,99999": must be a comma-separated list of ports/);
    const s = parseWebhookSenderSettings({ WEBHOOK_SECRET: SECRET });
    expect(s.policy).toEqual({ allowedCidrs: [], allowHttp: false, allowedPorts: [443, 8443] });
    expect([s.WEBHOOK_TIMEOUT_MS, s.WEBHOOK_CONCURRENCY, s.METRICS_PORT]).toEqual([10_000, 50, 9468]);
  });
});
