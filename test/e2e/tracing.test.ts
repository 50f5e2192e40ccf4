/**
 * One trace per image, for real: a gateway, a worker, a model and the webhook sender as
 * processes with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver in this test
 * (JSON protocol), a private redis-server, images in s3rver, a webhook receiver on loopback. The sampler is Levee's `parentbased_traceidratio` at 0, so only what
 * a caller forces (a `traceparent` with flags 01) is kept: that proves the parent-based rule
 * and that sampling at 0 exports nothing, in the same run.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { request } from '../helpers/http';
import { OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { freePort } from '../helpers/ports';
import { ServiceProcess } from '../helpers/processes';
import { RedisServer } from '../helpers/redis-server';
import { S3Server } from '../helpers/s3-server';
import { until } from '../helpers/wait';

jest.setTimeout(90_000);

const ROOT = path.resolve(__dirname, '../..');
let redis: RedisServer;
let receiver: OtlpReceiver;
let s3: S3Server;
/** The webhook receiver: the traceparent header of each delivery it got. */
let hooks: http.Server;
const hookTraceparents: string[] = [];
const SECRET = `whsec_${Buffer.from('levee-e2e-tracing-secret-32-bytes').toString('base64')}`;
const procs: ServiceProcess[] = [];
let gatewayPort: number;
let gatewayMetricsPort: number;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** A W3C traceparent the caller forces sampled (flags 01). */
function traceparent(sampled = true): { traceId: string; parentId: string; header: string } {
  const traceId = hex(16);
  const parentId = hex(8);
  return { traceId, parentId, header: `00-${traceId}-${parentId}-${sampled ? '01' : '00'}` };
}

beforeAll(async () => {
  [redis, receiver, s3] = await Promise.all([RedisServer.start(), OtlpReceiver.start(), S3Server.start(['levee-traces'])]);
  hooks = http.createServer((req, res) => {
    hookTraceparents.push(String(req.headers.traceparent ?? ''));
    req.resume().on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  // The receiver is plain HTTP on loopback and a test port: opened as a private deployment would.
  const webhookPolicy = { WEBHOOK_ALLOWED_CIDRS: '127.0.0.1/32', WEBHOOK_ALLOW_HTTP: 'true', WEBHOOK_ALLOWED_PORTS: String((hooks.address() as AddressInfo).port) };
  const [modelPort, workerPort, senderPort] = await Promise.all([freePort(), freePort(), freePort()]);
  [gatewayPort, gatewayMetricsPort] = await Promise.all([freePort(), freePort()]);
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_TRACES_SAMPLER_ARG: '0', // with Levee's default sampler, parentbased_traceidratio
    OTEL_BSP_SCHEDULE_DELAY: '100', // export within 0.1 s, not 5 s
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e',
  };
  const modelUrl = `http://127.0.0.1:${modelPort}`;
  const model = new ServiceProcess('model', { ...otel, PORT: String(modelPort), HOST: '127.0.0.1' });
  const gateway = new ServiceProcess('gateway', { ...otel, ...webhookPolicy, ...s3.env(), PORT: String(gatewayPort), HOST: '127.0.0.1', METRICS_PORT: String(gatewayMetricsPort), REDIS_URL: redis.url, MODEL_URL: modelUrl, SHUTDOWN_DELAY_SECONDS: '0', RATE_LIMIT_PER_SECOND: '3' });
  const worker = new ServiceProcess('worker', { ...otel, ...s3.env(), REDIS_URL: redis.url, MODEL_URL: modelUrl, METRICS_PORT: String(workerPort) });
  const sender = new ServiceProcess('webhooks', { ...otel, ...webhookPolicy, WEBHOOK_SECRET: SECRET, REDIS_URL: redis.url, METRICS_PORT: String(senderPort) }, 'services/worker/src/webhooks-server.ts');
  procs.push(model, gateway, worker, sender);
  await Promise.all([model.waitHttp(modelPort, '/readyz'), gateway.waitHttp(gatewayPort, '/readyz'), worker.waitHttp(workerPort, '/readyz'), sender.waitHttp(senderPort, '/readyz')]);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  hooks?.close();
  await Promise.all([redis?.stop(), receiver?.stop(), s3?.stop()]);
});

/** Waits until the trace holds spans of every service named, and a moment more for stragglers. */
async function traceOf(traceId: string, services: string[], what: string): Promise<ReceivedSpan[]> {
  await until(() => services.every((s) => receiver.trace(traceId).some((span) => span.service === s)), 15_000, what);
  await new Promise((r) => setTimeout(r, 500));
  return receiver.trace(traceId);
}

/** The chain of ancestors of `span` within `spans`, nearest first. */
function ancestors(span: ReceivedSpan, spans: ReceivedSpan[]): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (let p = spans.find((s) => s.spanId === span.parentSpanId); p; p = spans.find((s) => s.spanId === p!.parentSpanId)) out.push(p);
  return out;
}

test('one POST with a sampled traceparent: spans from the gateway, the worker, the model and the webhook sender in that trace, parented through the queue, with the queue wait, the upload and the delivery', async () => {
  const tp = traceparent();
  const webhookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
  const accepted = await request(gatewayPort, '/api/images', { headers: { traceparent: tp.header }, body: { prompt: 'a traced lighthouse', width: 64, height: 64, webhookUrl } });
  expect(accepted.status).toBe(202);
  const id = accepted.json.id as string;
  await until(async () => (await request(gatewayPort, `/api/images/${id}`)).json.status === 'completed', 20_000, 'the job to complete');

  const spans = await traceOf(tp.traceId, ['levee-gateway', 'levee-worker', 'levee-model', 'levee-webhooks'], 'spans of all four services');
  if (process.env.PRINT_TRACE) console.log(spans.map((s) => `${s.service} ${s.kind} ${s.name} ${s.spanId} <- ${s.parentSpanId}`).join('\n'));
  // The gateway continues the caller's trace: its server span's parent is the caller's span.
  const post = spans.find((s) => s.service === 'levee-gateway' && s.kind === 2 && s.attributes['levee.job.id'] === id)!;
  expect(post).toBeDefined();
  expect(post.parentSpanId).toBe(tp.parentId);
  expect([post.name, post.attributes['http.route']]).toEqual(['POST /api/images', '/api/images']);
  expect(post.attributes).toMatchObject({ 'levee.render.width': 64, 'levee.render.height': 64 });
  expect(post.attributes['levee.client.key_hash']).toMatch(/^[0-9a-f]{16}$/);
  // The producer's add (BullMQ telemetry) is inside that request.
  const add = spans.find((s) => s.service === 'levee-gateway' && s.kind === 4 && /^add /.test(s.name))!;
  expect(add).toBeDefined();
  expect(ancestors(add, spans)).toContain(post);
  // The worker's job span is the add's child: the trace crossed the queue.
  const processSpan = spans.find((s) => s.service === 'levee-worker' && s.kind === 5 && /^process /.test(s.name))!;
  expect(processSpan).toBeDefined();
  expect(processSpan.parentSpanId).toBe(add.spanId);
  expect(processSpan.attributes['levee.job.id']).toBe(id);
  expect(processSpan.attributes['levee.queue.wait_ms']).toEqual(expect.any(Number));
  expect(processSpan.attributes['levee.queue.wait_ms'] as number).toBeGreaterThanOrEqual(0);
  expect(processSpan.attributes['levee.breaker.state']).toBe('closed');
  // The model's server span descends from the job's span (the worker's call carried traceparent).
  const render = spans.find((s) => s.service === 'levee-model' && s.kind === 2)!;
  expect(render).toBeDefined();
  const chain = ancestors(render, spans);
  expect(chain).toContain(processSpan);
  expect(chain[0]!.service).toBe('levee-worker'); // the worker's client span of the call
  expect(chain[0]!.kind).toBe(3);
  // Redis calls appear as spans of the job (ioredis instrumentation).
  expect(spans.some((s) => s.service === 'levee-worker' && (s.attributes['db.system'] === 'redis' || s.attributes['db.system.name'] === 'redis'))).toBe(true);
  // The PNG's upload to the store is a span of the job (AWS SDK instrumentation).
  const upload = spans.find((s) => s.service === 'levee-worker' && s.attributes['rpc.service'] === 'S3' && s.attributes['rpc.method'] === 'PutObject')!;
  expect(upload).toBeDefined();
  expect(ancestors(upload, spans)).toContain(processSpan);
  // The webhook: its delivery job descends from the render job, and its POST is a client span
  // whose traceparent the receiver got.
  const delivery = spans.find((s) => s.service === 'levee-webhooks' && s.kind === 5)!;
  expect(delivery).toBeDefined();
  expect(ancestors(delivery, spans)).toContain(processSpan);
  expect(delivery.attributes['levee.job.id']).toBe(id);
  const hookPost = spans.find((s) => s.service === 'levee-webhooks' && s.kind === 3 && s.name === 'POST')!;
  expect(hookPost).toBeDefined();
  expect(ancestors(hookPost, spans)).toContain(delivery);
  // The receiver is a third party: it gets no trace context, and the span keeps its URL's origin only.
  expect(hookTraceparents.length).toBeGreaterThan(0);
  expect(hookTraceparents.filter((h) => h !== '')).toEqual([]);
  expect(hookPost.attributes['url.full']).toBe(new URL(webhookUrl).origin);
  // Resource attributes from OTEL_RESOURCE_ATTRIBUTES, on every service's spans.
  for (const s of [post, processSpan, render, delivery]) expect(s.resource['deployment.environment.name']).toBe('e2e');
  // No prompt anywhere in the trace, and Redis spans name their command only (their arguments
  // would carry the prompt in a job's data and the client's address in a rate-limit key).
  const redisSpans = spans.filter((s) => s.attributes['db.system'] === 'redis' || s.attributes['db.system.name'] === 'redis');
  expect(redisSpans.length).toBeGreaterThan(3);
  for (const r of redisSpans) expect(String(r.attributes['db.statement'] ?? r.attributes['db.query.text'])).toMatch(/^[a-z]+$/);
  for (const s of spans) for (const v of Object.values(s.attributes)) expect(String(v)).not.toContain('a traced lighthouse');
  // Never the client's address in Levee's attributes.
  for (const s of spans.filter((x) => x.service === 'levee-gateway')) {
    for (const [k, v] of Object.entries(s.attributes)) if (k.startsWith('levee.')) expect(String(v)).not.toContain('127.0.0.1');
  }
});

test('a cache hit and a 429 each make a trace with the right attributes', async () => {
  await request(gatewayPort, '/api/styles'); // fills the cache (not traced: sampling 0)
  const hit = traceparent();
  const res = await request(gatewayPort, '/api/styles', { headers: { traceparent: hit.header } });
  expect(res.headers['cache-status']).toBe('levee; hit');
  const [hitSpan] = (await traceOf(hit.traceId, ['levee-gateway'], 'the cache hit trace')).filter((s) => s.kind === 2);
  expect(hitSpan!.attributes).toMatchObject({ 'levee.cache.result': 'hit', 'levee.breaker.state': 'closed' });
  expect(hitSpan!.attributes['levee.client.key_hash']).toMatch(/^[0-9a-f]{16}$/);

  // RATE_LIMIT_PER_SECOND=3: the fifth request in a burst is refused.
  await new Promise((r) => setTimeout(r, 1100));
  const limited = Array.from({ length: 6 }, () => traceparent());
  const answers = await Promise.all(limited.map((t) => request(gatewayPort, '/api/styles', { headers: { traceparent: t.header } })));
  const refused = limited.filter((_, i) => answers[i]!.status === 429);
  expect(refused.length).toBeGreaterThan(0);
  const [span429] = (await traceOf(refused[0]!.traceId, ['levee-gateway'], 'the 429 trace')).filter((s) => s.kind === 2);
  expect(span429!.attributes).toMatchObject({ 'levee.rate_limited': true, 'http.response.status_code': 429 });
  expect(span429!.attributes['levee.client.key_hash']).toBe(hitSpan!.attributes['levee.client.key_hash']);
});

test('sampling at 0 exports nothing for a request without traceparent, nor for one not sampled (flags 00)', async () => {
  await new Promise((r) => setTimeout(r, 1100)); // a fresh rate-limit window
  const unsampled = traceparent(false);
  const before = receiver.spans.length;
  const a = await request(gatewayPort, '/api/images', { body: { prompt: 'untraced', width: 64, height: 64 } });
  const b = await request(gatewayPort, '/api/images', { headers: { traceparent: unsampled.header }, body: { prompt: 'untraced too', width: 64, height: 64 } });
  expect([a.status, b.status]).toEqual([202, 202]);
  const ids = [a.json.id as string, b.json.id as string];
  await until(async () => (await Promise.all(ids.map((id) => request(gatewayPort, `/api/images/${id}`)))).every((r) => r.json.status === 'completed'), 20_000, 'both jobs to complete');
  await new Promise((r) => setTimeout(r, 800)); // more than the export delay
  const after = receiver.spans.slice(before);
  expect(after.filter((s) => ids.includes(String(s.attributes['levee.job.id'])))).toEqual([]);
  expect(receiver.trace(unsampled.traceId)).toEqual([]);
});

test('with tracing on, the request-duration histogram carries a sampled request\'s trace_id as an exemplar (OpenMetrics)', async () => {
  const tp = traceparent();
  await request(gatewayPort, '/api/images/00000000-0000-4000-8000-000000000000', { headers: { traceparent: tp.header } });
  const metrics = await request(gatewayMetricsPort, '/metrics');
  expect(String(metrics.headers['content-type'])).toMatch(/^application\/openmetrics-text/);
  expect(metrics.body.toString()).toMatch(new RegExp(`levee_http_request_duration_seconds_bucket\\{[^}]*route="/api/images/:id"[^}]*\\} \\d+ # \\{trace_id="${tp.traceId}"\\}`));
});

/** Which OpenTelemetry SDK modules a service's entry loads, in a fresh process. */
function sdkModulesLoaded(env: Record<string, string>): number {
  const script = [
    "require('./services/gateway/src/instrument');",
    "require('./services/gateway/src/app');",
    "console.log(JSON.stringify(Object.keys(require.cache).filter((k) => /@opentelemetry\\/(sdk-|exporter-|instrumentation)|bullmq-otel/.test(k)).length));",
  ].join('');
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_'))) as Record<string, string>;
  const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, env: { ...clean, ...env }, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as number;
}

test('with no endpoint set, no SDK, exporter or instrumentation module is even loaded; with one, they are', () => {
  expect(sdkModulesLoaded({})).toBe(0);
  expect(sdkModulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })).toBeGreaterThan(10);
});

test('a bad OTEL_* value stops a service at start-up (exit 78) naming the variable and what is allowed', async () => {
  const gateway = new ServiceProcess('gateway', { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'thrift', PORT: '0', REDIS_URL: redis.url });
  procs.push(gateway);
  const exit = await gateway.exited;
  expect(exit.code).toBe(78);
  expect(gateway.output.join('')).toContain('OTEL_EXPORTER_OTLP_PROTOCOL="thrift": must be one of http/protobuf, http/json, grpc');
});
