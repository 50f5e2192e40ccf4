/**
 * The gateway's side of push and control, in-process against the test Redis: webhook URLs
 * refused at submit (a 400 problem per SSRF class), the status document's `webhook`, the event
 * stream's limits (per client 429, per process 503), its 404s, and its end when the gateway
 * drains. Delivery, cancel and live updates run end to end in test/e2e/push.test.ts.
 */
import http from 'node:http';
import { Gateway } from '../../services/gateway/src/app';
import { WEBHOOK_LOOKUPS_MAX } from '../../services/gateway/src/routes/images';
import { until } from '../helpers/wait';
import { inject, metricValue, portOf, scrape, Stack, testSettings } from './helpers';

const json = { 'content-type': 'application/json' };

/** Opens an event stream and resolves once its headers and first event have arrived. */
function openStream(app: Gateway, id: string, ip = '10.9.0.1'): Promise<{ status: number; headers: http.IncomingHttpHeaders; first: string; response: http.IncomingMessage; request: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port: portOf(app), path: `/api/images/${id}/events`, headers: { 'x-forwarded-for': ip } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      const done = () => resolve({ status: response.statusCode!, headers: response.headers, first: text, response, request });
      if (response.statusCode !== 200) {
        response.on('data', (c: string) => (text += c));
        response.on('end', done);
        return;
      }
      response.once('data', (c: string) => ((text += c), done()));
    });
    request.on('error', reject);
  });
}

describe('gateway push and control', () => {
  let stack: Stack;
  beforeEach(() => (stack = new Stack()));
  afterEach(async () => stack.close());

  const gateway = (env: Record<string, string> = {}) => stack.gateway(testSettings({ RATE_LIMIT_PER_SECOND: '1000', TRUST_PROXY: '127.0.0.1/32', SHUTDOWN_DELAY_SECONDS: '0', ...env }));
  const submit = (app: Gateway, body: Record<string, unknown>) => inject(app, { method: 'POST', url: '/api/images', headers: json, payload: { prompt: 'p', width: 64, height: 64, ...body } });

  it.each([
    ['http://hooks.example.com/x', 'webhookUrl must use https (not http).'],
    ['https://user:pw@hooks.example.com/x', 'webhookUrl must not carry credentials.'],
    ['https://hooks.example.com:22/x', 'webhookUrl port 22 is not allowed (allowed: 443, 8443).'],
    ['https://127.0.0.1/x', 'webhookUrl must not target a non-public address: 127.0.0.1 is a loopback address.'],
    ['https://10.0.0.8/x', 'webhookUrl must not target a non-public address: 10.0.0.8 is a private address.'],
    ['https://192.168.0.8/x', 'webhookUrl must not target a non-public address: 192.168.0.8 is a private address.'],
    ['https://169.254.169.254/latest/meta-data/', 'webhookUrl must not target a non-public address: 169.254.169.254 is a linkLocal address.'],
    ['https://100.64.0.8/x', 'webhookUrl must not target a non-public address: 100.64.0.8 is a carrierGradeNat address.'],
    ['https://[fd00::8]/x', 'webhookUrl must not target a non-public address: fd00::8 is a uniqueLocal address.'],
    ['https://[::ffff:10.0.0.8]/x', 'webhookUrl must not target a non-public address: ::ffff:a00:8 is a private address.'],
    ['https://localhost/x', 'webhookUrl host localhost resolves to a non-public address'],
  ])('POST with webhookUrl %s → 400 problem', async (webhookUrl, detail) => {
    const app = await gateway();
    const res = await submit(app, { webhookUrl });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json().detail.startsWith(detail)).toBe(true);
    expect(await app.levee.producer.queue.getJobCounts('waiting')).toEqual({ waiting: 0 });
  });

  it('accepts a public https webhook; the status document says pending until the sender records an attempt; a too-long URL is a 400 from the schema', async () => {
    const app = await gateway();
    const res = await submit(app, { webhookUrl: 'https://93.184.216.34/levee-hook' });
    expect(res.statusCode).toBe(202);
    const status = await inject(app, `/api/images/${res.json().id}`);
    expect(status.json()).toMatchObject({ status: 'queued', webhook: { state: 'pending', attempts: 0 } });
    // Without a webhook, no webhook field.
    const plain = await submit(app, {});
    expect((await inject(app, `/api/images/${plain.json().id}`)).json()).not.toHaveProperty('webhook');
    const long = await submit(app, { webhookUrl: `https://93.184.216.34/${'x'.repeat(2100)}` });
    expect(long.statusCode).toBe(400);
  });

  it('at most WEBHOOK_LOOKUPS_MAX webhook hosts are resolved at once: beyond, a 503 at once (a name server that never answers holds a libuv thread each)', async () => {
    let pending = 0;
    const hanging = () => (pending++, new Promise<never>(() => undefined));
    const app = await stack.gateway(testSettings({ RATE_LIMIT_PER_SECOND: '1000' }), { webhookLookup: hanging });
    const held = Array.from({ length: WEBHOOK_LOOKUPS_MAX }, () => submit(app, { webhookUrl: 'https://slow.example/hook' }));
    await until(() => pending === WEBHOOK_LOOKUPS_MAX, 5000, 'the lookups to start');
    const refused = await submit(app, { webhookUrl: 'https://another.example/hook' });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(pending).toBe(WEBHOOK_LOOKUPS_MAX);
    // The held ones end as 400s at the 2 s lookup timeout, and the slots are free again.
    expect((await Promise.all(held)).map((r) => r.statusCode)).toEqual(Array(WEBHOOK_LOOKUPS_MAX).fill(400));
    expect((await submit(app, {})).statusCode).toBe(202);
    expect((await submit(app, { webhookUrl: 'https://93.184.216.34/hook' })).statusCode).toBe(202);
  });

  it('WEBHOOK_ALLOWED_CIDRS and WEBHOOK_ALLOW_HTTP open up a private receiver', async () => {
    const app = await gateway({ WEBHOOK_ALLOWED_CIDRS: '10.0.0.0/8', WEBHOOK_ALLOW_HTTP: 'true' });
    expect((await submit(app, { webhookUrl: 'http://10.1.2.3/hook' })).statusCode).toBe(202);
    expect((await submit(app, { webhookUrl: 'http://192.168.1.1/hook' })).statusCode).toBe(400);
  });

  it('a queued stream gets its new position when the queue ahead of it moves (one read of the waiting list per tick)', async () => {
    const app = await gateway();
    const first = (await submit(app, { prompt: 'ahead' })).json().id as string;
    await new Promise((r) => setTimeout(r, 5)); // distinct creation times
    const second = (await submit(app, { prompt: 'behind' })).json().id as string;
    const s = await openStream(app, second);
    expect(JSON.parse(/^data: (.*)$/m.exec(s.first)![1]!)).toMatchObject({ status: 'queued', position: 2 });
    let more = '';
    s.response.on('data', (c: string) => (more += c));
    // The job ahead leaves the queue (as a worker would take it): within a tick (2 s), position 1.
    await (await app.levee.producer.queue.getJob(first))!.remove();
    await until(() => /"position":1/.test(more), 5000, 'the new position');
    expect(JSON.parse(/^data: (.*)$/m.exec(more)![1]!)).toMatchObject({ id: second, status: 'queued', position: 1 });
    s.request.destroy();
  });

  it('an event stream whose reader cannot reach the queue Redis is a 503 problem within the ready timeout, and holds no slot', async () => {
    // The producer's client is the live test Redis; the event reader's own connection goes to a closed port.
    const app = await stack.gateway(testSettings({ RATE_LIMIT_PER_SECOND: '1000', QUEUE_REDIS_URL: 'redis://127.0.0.1:1' }), { queueRedis: stack.redis() });
    const id = (await submit(app, {})).json().id as string;
    const t0 = Date.now();
    const res = await inject(app, `/api/images/${id}/events`);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe('1');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(app.levee.events.count()).toBe(0);
  });

  it('event streams: unknown ids 404 before any stream, EVENTS_MAX_PER_CLIENT → 429, EVENTS_MAX → 503, and draining ends them', async () => {
    const app = await gateway({ EVENTS_MAX_PER_CLIENT: '2', EVENTS_MAX: '3' });
    expect((await inject(app, '/api/images/not-a-uuid/events')).statusCode).toBe(404);
    const unknown = await inject(app, '/api/images/00000000-0000-4000-8000-000000000000/events');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(app.levee.events.count()).toBe(0);

    const id = (await submit(app, {})).json().id as string;
    const a = await openStream(app, id, '10.9.0.1');
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(a.headers['cache-control']).toBe('no-store');
    expect(a.first).toMatch(/^event: status$/m);
    expect(JSON.parse(/^data: (.*)$/m.exec(a.first)![1]!)).toMatchObject({ id, status: 'queued', position: 1 });
    const b = await openStream(app, id, '10.9.0.1');
    expect(b.status).toBe(200);
    const c = await openStream(app, id, '10.9.0.1');
    expect(c.status).toBe(429);
    expect(c.headers['retry-after']).toBe('5');
    const d = await openStream(app, id, '10.9.0.2');
    expect(d.status).toBe(200);
    const e = await openStream(app, id, '10.9.0.3');
    expect(e.status).toBe(503);
    expect(app.levee.events.count()).toBe(3);
    const text = await scrape(app);
    expect(metricValue(text, 'levee_event_streams')).toBe(3);
    expect(metricValue(text, 'levee_event_streams_refused_total', { reason: 'client' })).toBe(1);
    expect(metricValue(text, 'levee_event_streams_refused_total', { reason: 'process' })).toBe(1);

    // A client that goes away frees its slot.
    const ended = new Promise((r) => a.response.on('close', r));
    a.request.destroy();
    await ended;
    await new Promise((r) => setTimeout(r, 100));
    expect(app.levee.events.count()).toBe(2);

    // Draining: every stream ends, so the drain is not held.
    const closes = [b, d].map((s) => new Promise((r) => s.response.on('end', r)));
    await app.close();
    await Promise.all(closes);
    expect(app.levee.events.count()).toBe(0);
  });
});
