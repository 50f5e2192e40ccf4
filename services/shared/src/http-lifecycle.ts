import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { sendProblem } from './problem';
import { DEFAULT_DRAIN_TIMEOUT_SECONDS } from './http-server';

/** Whether the app is draining (readiness fails) — shared by the health routes and the process. */
export interface Lifecycle {
  draining: boolean;
}

export interface HealthOptions {
  readonly lifecycle: Lifecycle;
  /** Extra readiness condition (e.g. Redis reachable); liveness never calls it. */
  readonly ready?: () => boolean;
  /** What readiness says when `ready` is false (read at each probe when a function). */
  readonly notReadyDetail?: string | (() => string);
}

/**
 * `GET /healthz` (liveness: the event loop answers; never touches Redis) and `GET /readyz`
 * (503 while draining, or when `ready()` says so). Metrics are not here: they have their own
 * listener on METRICS_PORT (metrics-server.ts), never the public port.
 */
export function registerHealthRoutes(app: FastifyInstance, options: HealthOptions): void {
  const { lifecycle } = options;
  app.get('/healthz', (_request, reply) => {
    reply.header('cache-control', 'no-store').send({ status: 'ok' });
  });
  app.get('/readyz', (_request, reply) => {
    reply.header('cache-control', 'no-store');
    if (lifecycle.draining) return void sendProblem(reply, 503, 'Shutting down: draining in-flight requests.');
    if (options.ready && !options.ready()) {
      const detail = typeof options.notReadyDetail === 'function' ? options.notReadyDetail() : options.notReadyDetail;
      return void sendProblem(reply, 503, detail ?? 'Not ready.');
    }
    reply.send({ status: 'ready' });
  });
}

/**
 * Graceful shutdown: readiness fails at once; the app keeps serving for `delayMs` (so that
 * endpoints controllers and load balancers take the pod out of rotation), then closes —
 * Fastify lets in-flight requests finish and `onClose` hooks release Redis and queues.
 */
export async function drainAndClose(app: FastifyInstance, lifecycle: Lifecycle, delayMs: number, logger?: Logger, deadlineMs = DEFAULT_DRAIN_TIMEOUT_SECONDS * 1000): Promise<void> {
  lifecycle.draining = true;
  logger?.info({ delayMs }, 'draining: readiness fails, still serving until the delay ends');
  await new Promise((r) => setTimeout(r, delayMs));
  // Fastify closes the connections idle when close() starts; keep-alive connections whose
  // in-flight request ends later would stay open until the client's idle timeout, so close
  // each as soon as it goes idle.
  const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
  // In-flight requests get `deadlineMs` (DRAIN_TIMEOUT_SECONDS, inside the pod's grace period).
  // Node stops checking request timeouts once the server closes, so a request that never
  // finishes arriving (a slow client) would otherwise hold close(), and the pod, until SIGKILL.
  const deadline = setTimeout(() => {
    logger?.warn({ deadlineMs }, 'closing: connections still open at the deadline are cut');
    app.server.closeAllConnections();
  }, deadlineMs);
  try {
    await app.close();
  } finally {
    clearInterval(sweep);
    clearTimeout(deadline);
  }
  logger?.info('closed: in-flight requests finished');
}
