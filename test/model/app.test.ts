import { PNG } from 'pngjs';
import { Registry } from 'prom-client';
import { ModelApp, buildModelApp } from '../../services/model/src/app';
import { parseModelSettings } from '../../services/model/src/settings';
import { renderPng } from '../../services/model/src/renderer';
import { SettingsError } from '../../services/shared/src/settings';

describe('model API', () => {
  // Over real HTTP on 127.0.0.1: fastify's inject() pulls in an ESM-only dependency jest cannot load.
  let app: ModelApp;
  let base: string;
  beforeEach(async () => {
    app = buildModelApp({ stylesDelayMs: 50, registry: new Registry() });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterEach(() => app.close());

  async function get(url: string) {
    const res = await fetch(base + url);
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
  }

  async function render(body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
    const res = await fetch(`${base}/v1/render`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const rawPayload = Buffer.from(await res.arrayBuffer());
    return { statusCode: res.status, headers: Object.fromEntries(res.headers), rawPayload, json: () => JSON.parse(rawPayload.toString()) };
  }

  it('POST /v1/render answers image/png of the requested size, the same bytes for the same input', async () => {
    const body = { prompt: 'a red fox', width: 80, height: 72, style: 'forest', seed: 7 };
    const first = await render(body);
    expect(first.statusCode).toBe(200);
    expect(first.headers['content-type']).toBe('image/png');
    const png = PNG.sync.read(first.rawPayload);
    expect([png.width, png.height]).toEqual([80, 72]);
    const again = await render(body);
    expect(again.rawPayload.equals(first.rawPayload)).toBe(true);
    const other = await render({ ...body, seed: 8 });
    expect(other.rawPayload.equals(first.rawPayload)).toBe(false);
  });

  it('defaults width and height to 512', async () => {
    const res = await render({ prompt: 'defaults' });
    expect(res.statusCode).toBe(200);
    const png = PNG.sync.read(res.rawPayload);
    expect([png.width, png.height]).toEqual([512, 512]);
  });

  it.each([
    ['a missing prompt', { width: 64 }],
    ['an empty prompt', { prompt: '' }],
    ['a too long prompt', { prompt: 'x'.repeat(1001) }],
    ['a too small width', { prompt: 'p', width: 63 }],
    ['a too large height', { prompt: 'p', height: 2049 }],
    ['a fractional width', { prompt: 'p', width: 100.5 }],
    ['a numeric string as width', { prompt: 'p', width: '128' }],
    ['an invalid style', { prompt: 'p', style: 'Bad Style!' }],
    ['a negative seed', { prompt: 'p', seed: -1 }],
    ['an unknown field', { prompt: 'p', steps: 50 }],
    ['a JSON array', [1, 2]],
  ])('rejects %s with 400 problem details', async (_name, body) => {
    const res = await render(body);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ type: 'about:blank', status: 400, title: 'Bad Request' });
  });

  it('rejects malformed JSON (400), a non-JSON body (415) and an oversized body (413)', async () => {
    expect((await render('{"prompt":')).statusCode).toBe(400);
    expect((await render('prompt=x', { 'content-type': 'text/plain' })).statusCode).toBe(415);
    const big = await render({ prompt: 'x'.repeat(20_000) });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ status: 413 });
  });

  it('GET /v1/styles returns the catalog after the configured delay', async () => {
    const started = Date.now();
    const res = await get('/v1/styles');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).styles).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'sunset', name: 'Sunset' })]));
  });

  it('counts requests per route in levee_model_requests_total', async () => {
    await get('/v1/styles');
    await get('/v1/styles');
    await render({ prompt: 'count me', width: 64, height: 64 });
    expect((await get('/metrics')).statusCode).toBe(404); // only on the metrics listener
    const metrics = await app.metricsRegistry.metrics();
    expect(metrics).toContain('levee_model_requests_total{route="/v1/styles"} 2');
    expect(metrics).toContain('levee_model_requests_total{route="/v1/render"} 1');
  });

  it('answers /healthz, and /readyz until draining', async () => {
    expect((await get('/healthz')).statusCode).toBe(200);
    expect((await get('/readyz')).statusCode).toBe(200);
    app.lifecycle.draining = true;
    const res = await get('/readyz');
    expect(res.statusCode).toBe(503);
    expect((await get('/healthz')).statusCode).toBe(200);
  });

  it('answers unknown routes with a 404 problem', async () => {
    const res = await get('/nope');
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ status: 404 });
  });

  it('answers a malformed URL with a 400 problem detail, not Fastify\'s own error shape', async () => {
    const res = await get('/v1/%zz');
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(JSON.parse(res.body)).toEqual({ type: 'about:blank', title: 'Bad Request', status: 400, detail: 'The URL is malformed.' });
  });
});

describe('model settings', () => {
  it('has the documented defaults', () => {
    expect(parseModelSettings({})).toMatchObject({ PORT: 8081, STYLES_DELAY_MS: 200, LOG_LEVEL: 'info' });
  });
  it('names a bad variable', () => {
    expect(() => parseModelSettings({ PORT: 'http' })).toThrow(SettingsError);
    expect(() => parseModelSettings({ STYLES_DELAY_MS: '-5' })).toThrow(/STYLES_DELAY_MS="-5"/);
  });
});

describe('model API: the OpenAI images route, warm-up and the key', () => {
  const apps: ModelApp[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });
  async function start(options: Parameters<typeof buildModelApp>[0] = {}): Promise<string> {
    const app = buildModelApp({ registry: new Registry(), ...options });
    apps.push(app);
    return app.listen({ port: 0, host: '127.0.0.1' });
  }
  const generate = (base: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/images/generations`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('POST /v1/images/generations answers data[0].b64_json: the same PNG as /v1/render for the same input', async () => {
    const base = await start();
    const res = await generate(base, { model: 'any', prompt: 'a red fox', size: '80x72', n: 1, response_format: 'b64_json', seed: 7, style: 'forest' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { created: number; data: { b64_json: string }[] };
    expect(body.created).toBeGreaterThan(1_700_000_000);
    const png = Buffer.from(body.data[0]!.b64_json, 'base64');
    expect(png.equals(renderPng({ prompt: 'a red fox', width: 80, height: 72, seed: 7, style: 'forest' }))).toBe(true);
  });

  it.each([
    ['no model', { prompt: 'p', size: '64x64' }, 'model'],
    ['a size out of range', { model: 'm', prompt: 'p', size: '4096x64' }, 'size'],
    ['a size that is not WxH', { model: 'm', prompt: 'p', size: 'large' }, 'size'],
    ['n above 1', { model: 'm', prompt: 'p', n: 2 }, 'n'],
    ['response_format url', { model: 'm', prompt: 'p', response_format: 'url' }, 'response_format'],
    ['a bad style', { model: 'm', prompt: 'p', style: 'Bad Style' }, 'style'],
  ])('refuses %s with a 400 in OpenAI\'s error shape', async (_name, body, param) => {
    const res = await generate(await start(), body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', param, code: null } });
  });

  it('with MODEL_LOAD_SECONDS: /readyz and both render routes answer 503 + Retry-After until loaded and warmed up, then 200', async () => {
    const base = await start({ loadSeconds: 1 });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { detail: string }).detail).toMatch(/loading/);
    const early = await generate(base, { model: 'm', prompt: 'p', size: '64x64' });
    expect(early.status).toBe(503);
    expect(early.headers.get('retry-after')).toBe('1');
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('model_loading');
    const render = await fetch(`${base}/v1/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'p', width: 64, height: 64 }) });
    expect(render.status).toBe(503);
    expect((await fetch(`${base}/healthz`)).status).toBe(200); // alive while loading
    await new Promise((r) => setTimeout(r, 1300));
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await generate(base, { model: 'm', prompt: 'p', size: '64x64' })).status).toBe(200);
  });

  it('with MODEL_API_KEY: a render without the Bearer key is a 401', async () => {
    const base = await start({ apiKey: 'sk-local' });
    const denied = await generate(base, { model: 'm', prompt: 'p' });
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    expect((await generate(base, { model: 'm', prompt: 'p', size: '64x64' }, { authorization: 'Bearer sk-local' })).status).toBe(200);
    expect((await fetch(`${base}/v1/render`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"prompt":"p"}' })).status).toBe(401);
  });
});
