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
import type { Logger } from 'pino';

export interface ServeOptions {
  /** Service name, for the one line printed if the process cannot start. */
  readonly service: string;
  readonly app: FastifyInstance;
  readonly port: number;
  readonly host: string;
  readonly logger: Logger;
  /** Runs once on the first SIGTERM/SIGINT; the process exits 0 when it resolves, 1 if it fails. */
  readonly drain: () => Promise<void>;
}

/** The process part of an HTTP service: listen, and drain once on SIGTERM/SIGINT, then exit. */
export function serve(options: ServeOptions): void {
  const { app, logger } = options;
  let closing = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutdown requested');
    options.drain().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  app.listen({ port: options.port, host: options.host }).catch((err: unknown) => {
    process.stderr.write(`levee-${options.service}: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
