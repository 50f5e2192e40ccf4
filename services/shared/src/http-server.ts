import type { FastifyInstance } from 'fastify';
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
