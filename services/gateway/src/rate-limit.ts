import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from '@opentelemetry/api';
import { activeContext, annotate, keyHash, withContext } from '../../shared/src/tracing';
import proxyAddr from '@fastify/proxy-addr';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type Redis from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RawResponseRecorder } from '../../shared/src/http-metrics';
import { problemBody } from '../../shared/src/problem';
import { BlockList } from './block-list';
import { clientKey } from './client-key';


/** On the span of a request the limiter refused (tracing on). */
const RATE_LIMITED = { 'levee.rate_limited': true } as const;

export interface RateLimitOptions {
  /** The cache Redis, shared by every replica: the counters live there. */
  readonly redis: Redis;
  /** Requests per second per client IP. */
  readonly perSecond: number;
  /** Prefix of the counter keys. */
  readonly keyPrefix: string;
  readonly registry?: Registry;
  /** Trusted proxies (CIDRs), as given to Fastify's `trustProxy`: the client IP is found as `request.ip` finds it. */
  readonly trustProxy?: readonly string[];
  /** IPv6 clients are keyed by this prefix of their address (RATE_LIMIT_IPV6_PREFIX). @default 64 */
  readonly ipv6Prefix?: number;
  /** True while the gateway drains: the guard then leaves every request to Fastify. */
  readonly draining?: () => boolean;
  /** Puts the guard's 429s into the HTTP metrics (from `registerHttpMetrics`). */
  readonly recordRaw?: RawResponseRecorder;
}

/** What `registerRateLimit` gives back. */
export interface RateLimit {
  readonly limiter: RateLimiterRedis;
  /** The onRequest hook of every /api route (also usable where no route ran, e.g. router errors). */
  readonly hook: onRequestHookHandler;
  /**
   * Answers a request of a client that is blocked in this process with its 429 before Fastify
   * parses or routes it, and returns true; returns false (leave it to Fastify) otherwise.
   */
  readonly guard: (request: IncomingMessage, response: ServerResponse) => boolean;
  /** The request's client key (see `clientKey`): what its budget and its Idempotency-Keys are kept under. */
  readonly keyOf: (request: IncomingMessage) => string;
}

/** Set by the guard on a request it let through: the client key, found not blocked. */
const CHECKED_KEY = Symbol('levee.rateLimit.checkedKey');
/** The client key, once found for a request. */
const CLIENT_KEY = Symbol('levee.rateLimit.clientKey');
type Checked = { [CHECKED_KEY]?: string; [CLIENT_KEY]?: string };

/** True for the routes the limiter guards: everything under /api. */
export function isApiPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/') || path.startsWith('/api?');
}

/**
 * Per-client-IP rate limiting on every /api route, shared by all replicas through Redis
 * (rate-limiter-flexible: one atomic Lua INCRBY+PEXPIRE per client per event-loop turn; the
 * commands of one turn leave in one socket write).
 * - A client that has used up its window is rejected from process memory until the window
 *   ends (`BlockList`), so a flood of rejected requests costs no Redis trip.
 * - Redis not ready or failing: a per-process in-memory limiter takes over (insurance), so
 *   the gateway keeps limiting and serving.
 * - Headers: draft-ietf-httpapi-ratelimit-headers-11 `RateLimit-Policy` / `RateLimit`, and
 *   `Retry-After` on 429.
 * The client is the socket peer unless the peer is a trusted proxy (Fastify `trustProxy`), whose
 * X-Forwarded-For then names it; a malformed one counts as the proxy itself. IPv4-mapped
 * addresses count as IPv4, and IPv6 clients by their `ipv6Prefix` network (`clientKey`).
 *
 * A flood of rejected requests should cost almost nothing, so `guard` answers a blocked client
 * on the raw request, before Fastify builds its request and reply objects, routes and runs
 * hooks: the same 429 bytes, counted in the same metrics. Whatever it is unsure of (an encoded
 * URL, a client not blocked, the drain) goes through Fastify and the hook as before.
 */
export function registerRateLimit(app: FastifyInstance, options: RateLimitOptions): RateLimit {
  const points = options.perSecond;
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: options.keyPrefix,
    points,
    duration: 1,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: `${options.keyPrefix}:insurance`, points, duration: 1 }),
  });
  const limited = options.registry
    ? new Counter({ name: 'levee_rate_limited_total', help: 'Requests rejected with 429 by the per-IP rate limiter.', registers: [options.registry] })
    : undefined;

  const policy = `"default";q=${points};w=1`;
  // The 429 is the flood's answer: body and header values built once, written straight to the
  // socket (Fastify's send pipeline has nothing to add to it; onResponse hooks still run).
  // A string, not a Buffer: Node prepends the head to a string body and hands the socket one
  // piece, instead of a head string plus a Buffer (A/B here, median of 5 rounds: 62 vs 69 µs
  // of gateway CPU per rejected request).
  const tooMany = JSON.stringify(problemBody(429, `More than ${points} requests per second from this client; retry after the time in Retry-After.`));
  const tooManyLength = String(Buffer.byteLength(tooMany));
  const limitHeaders = new Map<number, string[]>();
  const rejectHeaders = (seconds: number): string[] => {
    let h = limitHeaders.get(seconds);
    if (!h) {
      h = ['ratelimit-policy', policy, 'ratelimit', `"default";r=0;t=${seconds}`, 'retry-after', String(seconds), 'content-type', 'application/problem+json; charset=utf-8', 'content-length', tooManyLength];
      if (limitHeaders.size < 100) limitHeaders.set(seconds, h);
    }
    return h;
  };

  const writeReject = (response: ServerResponse, msBeforeNext: number) => {
    limited?.inc();
    response.writeHead(429, rejectHeaders(Math.max(1, Math.ceil(msBeforeNext / 1000))));
    response.end(tooMany);
  };
  const reject = (reply: FastifyReply, msBeforeNext: number) => {
    annotate(RATE_LIMITED);
    reply.hijack();
    writeReject(reply.raw, msBeforeNext);
  };

  // Clients blocked in this process until their window ends: blocked as soon as the budget is
  // used up (the next request is a 429 anyway). Not the library's `inMemoryBlockOnConsumed`,
  // which gets quadratically slow with many blocked clients (see BlockList).
  const blocked = new BlockList(1000);
  const blockedMs = (ip: string): number => blocked.msLeft(ip);

  // Requests from one client that arrive in the same event-loop turn share one atomic
  // INCRBY of n: exact like n INCRs (the post-increment count says which of the n fit), at
  // one Redis round trip instead of n.
  // `context`: the request's trace context (tracing on), in which its answer resumes.
  type Waiter = { request: FastifyRequest; reply: FastifyReply; done: (err?: Error) => void; context: Context | undefined };
  let pending = new Map<string, Waiter[]>();
  // One flush sends one command per client IP. The socket is corked around them, so they
  // leave in one write (as a pipeline would) without a pipeline object per event-loop turn:
  // the cache client has no auto-pipelining (see app.ts).
  const flush = () => {
    const batches = pending;
    pending = new Map();
    const stream = options.redis.stream as Redis['stream'] | undefined; // undefined before the first connect
    stream?.cork();
    try {
      send(batches);
    } finally {
      stream?.uncork();
    }
  };
  const send = (batches: Map<string, Waiter[]>) => {
    for (const [ip, waiters] of batches) {
      const n = waiters.length;
      const settle = (res: RateLimiterRes) => {
        if (res.consumedPoints >= points) blocked.add(ip, res.msBeforeNext);
        const before = res.consumedPoints - n;
        for (let i = 0; i < n; i++) {
          const used = before + i + 1;
          const w = waiters[i];
          if (used <= points) {
            w.reply.header('ratelimit-policy', policy);
            w.reply.header('ratelimit', `"default";r=${points - used};t=${Math.ceil(res.msBeforeNext / 1000)}`);
            withContext(w.context, w.done);
          } else {
            withContext(w.context, () => reject(w.reply, res.msBeforeNext));
          }
        }
      };
      limiter.consume(ip, n).then(settle, (err: unknown) => {
        if (err instanceof RateLimiterRes) return settle(err);
        // Both Redis and the in-memory insurance failed: an unlimited request beats an outage.
        waiters[0].request.log.warn({ err }, 'rate limiter unavailable; requests admitted');
        for (const w of waiters) withContext(w.context, w.done);
      });
    }
  };

  const hook: onRequestHookHandler = (request, reply, done) => {
    // The guard already found this request's client key and saw it not blocked (in the same
    // synchronous dispatch): use that instead of computing both again.
    const checked = (request.raw as Checked)[CHECKED_KEY];
    const ip = checked ?? keyOf(request.raw);
    annotate(() => ({ 'levee.client.key_hash': keyHash(ip) }));
    if (checked === undefined) {
      // A client over its budget is answered from memory: no Redis, no promise.
      const ms = blockedMs(ip);
      if (ms > 0) return reject(reply, ms);
    }
    const batch = pending.get(ip);
    const context = activeContext();
    if (batch) batch.push({ request, reply, done, context });
    else {
      if (pending.size === 0) setImmediate(flush);
      pending.set(ip, [{ request, reply, done, context }]);
    }
  };
  // Decided once per route, not per request: the limiter is a route hook of every /api route
  // (by pattern, so /%61pi/... is limited too) and, for paths no route matches, a global hook.
  app.addHook('onRoute', (routeOptions) => {
    if (!isApiPath(routeOptions.url ?? '')) return;
    const existing = routeOptions.onRequest;
    routeOptions.onRequest = existing ? [hook, ...(Array.isArray(existing) ? existing : [existing])] : [hook];
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (request.is404 && isApiPath(request.url)) return hook.call(app, request, reply, done);
    done();
  });

  // The client IP as Fastify's `request.ip` finds it (same library, same trust list), then its key.
  const trust = options.trustProxy?.length ? proxyAddr.compile([...options.trustProxy]) : undefined;
  const ipv6Prefix = options.ipv6Prefix ?? 64;
  const peerKey = (request: IncomingMessage) => {
    const peer = request.socket.remoteAddress;
    return (peer !== undefined ? clientKey(peer, ipv6Prefix) : undefined) ?? peer ?? 'unknown';
  };
  const keyOf = (request: IncomingMessage): string => {
    const raw = request as Checked;
    if (raw[CLIENT_KEY] !== undefined) return raw[CLIENT_KEY];
    let key: string;
    if (!trust) key = peerKey(request);
    else {
      const addresses = proxyAddr.all(request, trust);
      // A trusted proxy that forwarded something that is not an IP address: the proxy is the client.
      key = clientKey(addresses[addresses.length - 1]!, ipv6Prefix) ?? peerKey(request);
    }
    raw[CLIENT_KEY] = key;
    return key;
  };
  const guard = (request: IncomingMessage, response: ServerResponse): boolean => {
    const url = request.url ?? '';
    // A '%' in the path: the router decodes it (/%61pi is /api, /api/%zz is a 400); leave
    // that to Fastify. The query string is never decoded for routing, so it does not count.
    const percent = url.indexOf('%');
    if (percent !== -1) {
      const query = url.indexOf('?');
      if (query === -1 || percent < query) return false;
    }
    if (!isApiPath(url) || options.draining?.()) return false;
    const key = keyOf(request);
    const ms = blockedMs(key);
    if (ms <= 0) {
      (request as Checked)[CHECKED_KEY] = key; // for the hook, which Fastify runs next
      return false;
    }
    const started = performance.now();
    annotate(() => ({ 'levee.client.key_hash': keyHash(key), ...RATE_LIMITED }));
    writeReject(response, ms);
    options.recordRaw?.(request, 429, (performance.now() - started) / 1000);
    return true;
  };
  return { limiter, hook, guard, keyOf };
}
