import { randomUUID } from 'node:crypto';
import http from 'node:http';
import Fastify from 'fastify';
import { Gateway, guardedServer } from '../../services/gateway/src/app';
import { request } from '../helpers/http';
import { FakeOrigin, inject, InjectResponse, metricValue, portOf, Stack, testSettings, scrape } from './helpers';

/**
 * The rate limiter's guard: a client blocked in this process is answered before Fastify sees
 * the request. Each gateway here counts the requests that reached Fastify, so the tests can
 * tell which 429s the guard wrote and check they are the same 429s the Fastify hook writes.
 */
describe('rate limiter guard (429s answered before Fastify)', () => {
  let stack: Stack;
  let origin: FakeOrigin;
  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(1);
  });
  afterEach(() => stack.close());

  /** A listening gateway that counts the requests Fastify handled. */
  async function countingGateway(env: Record<string, string>): Promise<{ app: Gateway; reachedFastify: () => number }> {
    let n = 0;
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, ...env }), { keyPrefix: `${stack.prefix}:${randomUUID().slice(0, 8)}` }, (g) =>
      g.addHook('onRequest', (_request, _reply, done) => {
        n++;
        done();
      }),
    );
    return { app, reachedFastify: () => n };
  }

  const sequential = async (app: Gateway, n: number, opts: { url?: string; headers?: Record<string, string> } = {}) => {
    const out: InjectResponse[] = [];
    for (let i = 0; i < n; i++) out.push(await inject(app, { url: opts.url ?? '/api/styles', headers: opts.headers }));
    return out;
  };
  const withoutDate = (r: InjectResponse) => {
    const { date, ...headers } = r.headers;
    expect(date).toBeDefined();
    return { status: r.statusCode, headers, body: r.body };
  };

  it('answers a blocked client without Fastify: the same 429 bytes, counted in the same metrics', async () => {
    const { app, reachedFastify } = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    expect((await sequential(app, 2)).map((r) => r.statusCode)).toEqual([200, 200]);
    // The budget is used up: the client is blocked in this process until its window ends.
    // Everything below is sent at once, well within that one-second window.
    const id = randomUUID();
    const [styles, others, viaHook] = await Promise.all([
      Promise.all(Array.from({ length: 10 }, () => inject(app, '/api/styles'))),
      Promise.all([
        inject(app, `/api/images/${id}`),
        inject(app, '/api/styles?page=2&q=%41'), // a '%' in the query string is no reason to skip the guard
        inject(app, '/api/nope'),
        inject(app, { method: 'HEAD', url: '/api/styles' }),
        inject(app, { method: 'POST', url: '/api/images', headers: { 'content-type': 'application/json' }, payload: { prompt: 'x', width: 64, height: 64 } }),
      ]),
      inject(app, '/%61pi/styles'), // a '%' in the path: Fastify routes it, and its hook answers
    ]);
    expect([...styles, ...others, viaHook].map((r) => r.statusCode)).toEqual(Array(16).fill(429));
    // Only the two admitted requests and the encoded one reached Fastify.
    expect(reachedFastify()).toBe(3);
    // The guard's 429 is byte for byte the hook's.
    const hook = withoutDate(viaHook);
    expect(hook.headers).toMatchObject({
      'ratelimit-policy': '"default";q=2;w=1',
      ratelimit: '"default";r=0;t=1',
      'retry-after': '1',
      'content-type': 'application/problem+json; charset=utf-8',
    });
    expect(JSON.parse(hook.body)).toMatchObject({ status: 429, title: 'Too Many Requests' });
    for (const r of styles) expect(withoutDate(r)).toEqual(hook);
    // Outside /api nothing is limited.
    expect((await inject(app, '/healthz')).statusCode).toBe(200);

    const metrics = await scrape(app);
    const requests = (labels: Record<string, string>) => metricValue(metrics, 'levee_http_requests_total', labels);
    expect(requests({ route: '/api/styles', method: 'GET', status: '429' })).toBe(12);
    expect(requests({ route: '/api/styles', method: 'HEAD', status: '429' })).toBe(1);
    expect(requests({ route: '/api/images/:id', method: 'GET', status: '429' })).toBe(1);
    expect(requests({ route: '/api/images', method: 'POST', status: '429' })).toBe(1);
    expect(requests({ route: 'unmatched', method: 'GET', status: '429' })).toBe(1);
    expect(metricValue(metrics, 'levee_rate_limited_total')).toBe(16);
    expect(metricValue(metrics, 'levee_http_request_duration_seconds_count', { route: '/api/styles', method: 'GET' })).toBe(14);
  });

  it('sends each 429 as one piece (head and body together), not a head and a body', async () => {
    const { app } = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    await sequential(app, 2); // the client is blocked now
    type Chunk = { chunk: { length: number } };
    const pieces: number[] = []; // non-empty chunks handed to each socket, one response per socket
    app.server.on('connection', (socket: { _write: (c: Chunk['chunk'], ...a: unknown[]) => void; _writev: (c: Chunk[], ...a: unknown[]) => void }) => {
      const i = pieces.push(0) - 1;
      const [write, writev] = [socket._write, socket._writev];
      socket._write = function (chunk, ...a) {
        if (chunk.length > 0) pieces[i]++;
        return write.call(this, chunk, ...a);
      };
      socket._writev = function (chunks, ...a) {
        pieces[i] += chunks.filter((c) => c.chunk.length > 0).length;
        return writev.call(this, chunks, ...a);
      };
    });
    const agent = new http.Agent({ keepAlive: false }); // a new connection per request
    const answers = await Promise.all(Array.from({ length: 5 }, () => request(portOf(app), '/api/styles', { agent })));
    expect(answers.map((r) => r.status)).toEqual([429, 429, 429, 429, 429]);
    // A Buffer body would go as a head string plus the body: two pieces each.
    expect(pieces).toEqual([1, 1, 1, 1, 1]);
  });

  it('finds the client IP as Fastify does: X-Forwarded-For only from a trusted proxy', async () => {
    const proxied = await countingGateway({ RATE_LIMIT_PER_SECOND: '2', TRUST_PROXY: '127.0.0.1/32' });
    const a = { 'x-forwarded-for': '198.51.100.1' };
    expect((await sequential(proxied.app, 6, { headers: a })).map((r) => r.statusCode)).toEqual([200, 200, 429, 429, 429, 429]);
    const before = proxied.reachedFastify();
    // another client behind the same proxy is not blocked
    expect((await inject(proxied.app, { url: '/api/styles', headers: { 'x-forwarded-for': '198.51.100.2' } })).statusCode).toBe(200);
    expect(proxied.reachedFastify()).toBe(before + 1);
    // the rightmost untrusted hop is the client
    expect((await inject(proxied.app, { url: '/api/styles', headers: { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' } })).statusCode).toBe(429);
    expect(proxied.reachedFastify()).toBe(before + 1);

    // No trusted proxy: a forged header does not get a blocked peer out of its block.
    const direct = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    await sequential(direct.app, 3);
    const n = direct.reachedFastify();
    const forged = await sequential(direct.app, 3, { headers: { 'x-forwarded-for': '203.0.113.50' } });
    expect(forged.map((r) => r.statusCode)).toEqual([429, 429, 429]);
    expect(direct.reachedFastify()).toBe(n);
  });

  it('leaves encoded URLs and the drain to Fastify, which still answers 429', async () => {
    const { app, reachedFastify } = await countingGateway({ RATE_LIMIT_PER_SECOND: '2' });
    await sequential(app, 3);
    const n = reachedFastify();
    // /%61pi/styles is /api/styles once decoded: the router's business, not the guard's
    const encoded = await inject(app, '/%61pi/styles');
    expect(encoded.statusCode).toBe(429);
    expect(reachedFastify()).toBe(n + 1);
    // while draining, answers go through Fastify (which adds Connection: close once closing)
    app.lifecycle.draining = true;
    const draining = await inject(app, '/api/styles');
    expect(draining.statusCode).toBe(429);
    expect(draining.headers['retry-after']).toBe('1');
    expect(reachedFastify()).toBe(n + 2);
  });

  it('runs on a server with the timeouts Fastify would give its own', async () => {
    const options = { logger: false, keepAliveTimeout: 4321, requestTimeout: 9876, connectionTimeout: 1234, maxRequestsPerSocket: 7 } as const;
    const guarded = Fastify({ ...options, serverFactory: guardedServer(() => false) });
    const plain = Fastify(options);
    for (const field of ['keepAliveTimeout', 'requestTimeout', 'timeout', 'maxRequestsPerSocket', 'headersTimeout'] as const) {
      expect([field, guarded.server[field]]).toEqual([field, plain.server[field]]);
    }
    expect(guarded.server.keepAliveTimeout).toBe(4321);
    expect(guarded.server.timeout).toBe(1234);
    // (typed as an HTTP/1.1 factory, so the http2 case needs a cast to be written at all)
    const http2Options = { http2: true, serverFactory: guardedServer(() => false) } as unknown as Parameters<typeof Fastify>[0];
    expect(() => Fastify(http2Options)).toThrow(/https and http2 are not supported/);
    await Promise.all([guarded.close(), plain.close()]);
  });

  it('counts as draining however the app is closed (the guard then leaves requests to Fastify)', async () => {
    const { app } = await countingGateway({});
    expect(app.lifecycle.draining).toBe(false);
    await app.close();
    expect(app.lifecycle.draining).toBe(true);
  });
});
