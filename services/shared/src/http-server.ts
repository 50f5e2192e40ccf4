import type { FastifyInstance } from 'fastify';

/** Default REQUEST_TIMEOUT_MS of the HTTP services. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Default DRAIN_TIMEOUT_SECONDS of the HTTP services (the chart's LEVEE_DRAIN_SECONDS default). */
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 20;

/**
 * Fastify options against slow clients. Fastify turns Node's request timeout off (0) by
 * default, so a client that sends its headers and then a byte of its body now and then holds
 * its socket for ever — and, at SIGTERM, holds the drain until the pod is killed. With these
 * the headers must arrive within 10 s and the whole request within `requestTimeoutMs`
 * (checked every 1 s); the client then gets a `408` problem and the socket is closed. Node
 * stops these checks once the server closes: the drain's own deadline (drainAndClose) bounds
 * what is left then.
 */
export function slowClientOptions(requestTimeoutMs: number) {
  const headersTimeout = Math.min(10_000, requestTimeoutMs);
  return {
    requestTimeout: requestTimeoutMs,
    http: { requestTimeout: requestTimeoutMs, headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) },
  };
}
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createMetricsServer } from './metrics-server';
import { shutdownTracing } from './tracing';

export interface ServeOptions {
  /** Service name, for the one line printed if the process cannot start. */
  readonly service: string;
  readonly app: FastifyInstance;
  readonly port: number;
  readonly host: string;
  readonly logger: Logger;
  /** Runs once on the first SIGTERM/SIGINT; the process exits 0 when it resolves, 1 if it fails. */
  readonly drain: () => Promise<void>;
  /** The metrics listener (METRICS_PORT): its own server, never the app's port. */
  readonly metrics: { readonly registry: Registry; readonly port: number; readonly host: string };
}

/**
 * The process part of an HTTP service: listen on PORT and the metrics listener on
 * METRICS_PORT, and drain once on SIGTERM/SIGINT, then exit. The metrics listener stays up
 * through the drain (Prometheus sees the last requests) and closes just before the exit.
 */
export function serve(options: ServeOptions): void {
  const { app, logger } = options;
  const fail = (err: unknown) => {
    process.stderr.write(`levee-${options.service}: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  };
  if (options.metrics.port !== 0 && options.metrics.port === options.port) {
    process.stderr.write(`levee-${options.service}: Invalid settings:\n  - METRICS_PORT=${JSON.stringify(String(options.metrics.port))}: must differ from PORT (${options.port}); metrics are never served on the public port\n`);
    process.exit(78); // EX_CONFIG, like every other invalid setting
  }
  const metrics: Server = createMetricsServer(options.metrics.registry);
  metrics.on('error', fail);
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutdown requested');
    options.drain().then(
      async () => {
        metrics.closeAllConnections();
        metrics.close();
        await shutdownTracing(); // the last spans, when tracing is on
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  app.listen({ port: options.port, host: options.host }).catch(fail);
  metrics.listen(options.metrics.port, options.metrics.host, () => {
    const { port } = metrics.address() as AddressInfo;
    logger.info({ port, host: options.metrics.host }, 'metrics listener: GET /metrics');
  });
}
