import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Redis from 'ioredis';
import { Counter, Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { problemBody } from '../../shared/src/problem';

export interface RateLimitOptions {
  /** The cache Redis, shared by every replica: the counters live there. */
  readonly redis: Redis;
  /** Requests per second per client IP. */
  readonly perSecond: number;
  /** Prefix of the counter keys. */
  readonly keyPrefix: string;
  readonly registry?: Registry;
}

/** True for the routes the limiter guards: everything under /api. */
export function isApiPath(path: string): boolean {
  return path === '/api' || path.startsWith('/api/') || path.startsWith('/api?');
}

/**
 * Per-client-IP rate limiting on every /api route, shared by all replicas through Redis
 * (rate-limiter-flexible: one atomic Lua INCR+PEXPIRE per request, auto-pipelined).
 * - A client that has used up its window is rejected from process memory until the window
 *   ends (`inMemoryBlockOnConsumed`), so a flood of rejected requests costs no Redis trip.
 * - Redis not ready or failing: a per-process in-memory limiter takes over (insurance), so
 *   the gateway keeps limiting and serving.
 * - Headers: draft-ietf-httpapi-ratelimit-headers-11 `RateLimit-Policy` / `RateLimit`, and
 *   `Retry-After` on 429.
 * `request.ip` is the socket peer unless the peer is a trusted proxy (Fastify `trustProxy`).
 */
export function registerRateLimit(app: FastifyInstance, options: RateLimitOptions): RateLimiterRedis {
  const points = options.perSecond;
  const limiter = new RateLimiterRedis({
    storeClient: options.redis,
    keyPrefix: options.keyPrefix,
    points,
    duration: 1,
    // Block in memory as soon as the budget is used up: the next request is a 429 anyway.
    inMemoryBlockOnConsumed: points,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: `${options.keyPrefix}:insurance`, points, duration: 1 }),
  });
  const limited = options.registry
    ? new Counter({ name: 'levee_rate_limited_total', help: 'Requests rejected with 429 by the per-IP rate limiter.', registers: [options.registry] })
    : undefined;

  const policy = `"default";q=${points};w=1`;
  const tooMany = JSON.stringify(problemBody(429, `More than ${points} requests per second from this client; retry after the time in Retry-After.`));

  const admit = (reply: FastifyReply, res: RateLimiterRes) => {
    reply.header('ratelimit-policy', policy);
    reply.header('ratelimit', `"default";r=${res.remainingPoints};t=${Math.ceil(res.msBeforeNext / 1000)}`);
  };
  const reject = (reply: FastifyReply, res: RateLimiterRes) => {
    limited?.inc();
    const seconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
    reply
      .code(429)
      .header('ratelimit-policy', policy)
      .header('ratelimit', `"default";r=0;t=${seconds}`)
      .header('retry-after', String(seconds))
      .header('content-type', 'application/problem+json')
      .send(tooMany);
  };

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (!isApiPath(request.routeOptions.url ?? request.url)) return done();
    limiter.consume(request.ip).then(
      (res) => {
        admit(reply, res);
        done();
      },
      (err: unknown) => {
        if (err instanceof RateLimiterRes) return reject(reply, err);
        // Both Redis and the in-memory insurance failed: an unlimited request beats an outage.
        request.log.warn({ err }, 'rate limiter unavailable; request admitted');
        done();
      },
    );
  });
  return limiter;
}
