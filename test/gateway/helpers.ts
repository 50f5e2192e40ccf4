import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { FastifyInstance } from 'fastify';
import Redis, { RedisOptions } from 'ioredis';
import { createRedis } from '../../services/shared/src/redis';
import { Env } from '../../services/shared/src/settings';
import { buildGateway, CACHE_REDIS_OPTIONS, Gateway, GatewayDeps } from '../../services/gateway/src/app';
import { GatewaySettings, parseGatewaySettings } from '../../services/gateway/src/settings';
import { request } from '../helpers/http';
import { TEST_REDIS_URL } from '../helpers/redis-url';

export type OriginMode = 'ok' | 'fail' | 'hang' | 'notfound';

/**
 * A stand-in for the model API on a free port: GET /v1/styles is slow (like the real one)
 * and counts every call, so tests can assert how many loads reached the origin.
 */
export class FakeOrigin {
  calls = 0;
  mode: OriginMode = 'ok';
  version = 1;
  private constructor(
    readonly app: FastifyInstance,
    readonly url: string,
  ) {}

  static async start(delayMs = 200): Promise<FakeOrigin> {
    const app = Fastify({ logger: false, forceCloseConnections: true });
    let origin!: FakeOrigin;
    app.get('/v1/styles', async (_request, reply) => {
      origin.calls++;
      if (origin.mode === 'hang') return new Promise(() => undefined);
      await new Promise((r) => setTimeout(r, delayMs));
      if (origin.mode === 'fail') return reply.code(500).send({ error: 'boom' });
      if (origin.mode === 'notfound') return reply.code(404).send({ error: 'no catalog' });
      return { styles: [{ id: 'sunset', name: 'Sunset' }], version: origin.version };
    });
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    origin = new FakeOrigin(app, address);
    return origin;
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}

/** Settings as the environment would give them, with a queue name of its own. */
export function testSettings(env: Env = {}): GatewaySettings {
  return parseGatewaySettings({ REDIS_URL: TEST_REDIS_URL, QUEUE_NAME: `t-${randomUUID().slice(0, 8)}`, ...env });
}

/**
 * Builds gateways against the shared test Redis (one key prefix for all of them, so they
 * act as replicas of one deployment) and closes everything in `close()`.
 */
export class Stack {
  readonly prefix = `test:${randomUUID().slice(0, 8)}`;
  readonly gateways: Gateway[] = [];
  readonly clients: Redis[] = [];
  readonly origins: FakeOrigin[] = [];

  redis(url = TEST_REDIS_URL, extra: RedisOptions = {}): Redis {
    const client = createRedis('request', { url }, extra);
    this.clients.push(client);
    return client;
  }

  async origin(delayMs = 200): Promise<FakeOrigin> {
    const o = await FakeOrigin.start(delayMs);
    this.origins.push(o);
    return o;
  }

  /** A listening gateway; `beforeListen` may add hooks (Fastify takes none once it listens). */
  async gateway(settings: GatewaySettings, deps: GatewayDeps = {}, beforeListen?: (app: Gateway) => void): Promise<Gateway> {
    const app = buildGateway(settings, { keyPrefix: this.prefix, queueRedis: this.redis(), cacheRedis: this.redis(TEST_REDIS_URL, CACHE_REDIS_OPTIONS), registry: undefined, ...deps });
    this.gateways.push(app);
    beforeListen?.(app);
    await app.listen({ port: 0, host: '127.0.0.1' });
    await Promise.all([waitReady(app.levee.queueRedis), waitReady(app.levee.cacheRedis)]);
    return app;
  }

  async close(): Promise<void> {
    await Promise.all(this.gateways.map((g) => g.close()));
    const admin = new Redis(TEST_REDIS_URL);
    try {
      const keys = await admin.keys(`${this.prefix}:*`);
      if (keys.length) await admin.del(...keys);
      for (const g of this.gateways) {
        const queueKeys = await admin.keys(`bull:${g.levee.producer.queue.name}:*`);
        if (queueKeys.length) await admin.del(...queueKeys);
      }
    } finally {
      admin.disconnect();
    }
    for (const c of this.clients) c.disconnect();
    await Promise.all(this.origins.map((o) => o.close()));
  }
}

export async function waitReady(client: Redis, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (client.status !== 'ready') {
    if (Date.now() > deadline) throw new Error(`Redis client not ready within ${timeoutMs} ms (status ${client.status})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls `attempt` until `done` holds for its result or `retries` more calls were made, `everyMs` apart; returns the last result. */
export async function pollFor<T>(attempt: () => Promise<T>, done: (result: T) => boolean, retries: number, everyMs: number): Promise<T> {
  let result = await attempt();
  for (let i = 0; !done(result) && i < retries; i++) {
    await sleep(everyMs);
    result = await attempt();
  }
  return result;
}

/** The value of one series of a metric in Prometheus text. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** What the gateway's metrics listener would serve (the public port has no /metrics). */
export async function scrape(app: { metricsRegistry: { metrics(): Promise<string> } }): Promise<string> {
  return app.metricsRegistry.metrics();
}

export function portOf(app: { server: { address(): unknown } }): number {
  return (app.server.address() as AddressInfo).port;
}

export interface InjectOptions {
  method?: string;
  url?: string;
  headers?: Record<string, string>;
  payload?: string | object;
}

export interface InjectResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  rawPayload: Buffer;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Like fastify's inject(), but over real HTTP on 127.0.0.1 (inject pulls in an ESM-only
 * dependency that jest cannot load). The app must be listening (Stack.gateway does that).
 */
export async function inject(app: { server: { address(): unknown } }, opts: InjectOptions | string): Promise<InjectResponse> {
  const o = typeof opts === 'string' ? { url: opts } : opts;
  const res = await request(portOf(app), o.url ?? '/', { method: o.method ?? 'GET', headers: o.headers, body: o.payload });
  return {
    statusCode: res.status,
    headers: res.headers,
    body: res.body.toString('utf8'),
    rawPayload: res.body,
    json: () => JSON.parse(res.body.toString('utf8')),
  };
}
