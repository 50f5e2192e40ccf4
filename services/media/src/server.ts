import { drainAndClose } from '../../shared/src/http-lifecycle';
import { createLogger } from '../../shared/src/logger';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildMedia } from './app';
import { mediaSettingsSchema } from './settings';

/** The media process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const settings = loadSettingsOrExit(mediaSettingsSchema, 'media');
  const logger = createLogger('media', settings.LOG_LEVEL);
  const app = buildMedia(settings, { logger });

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutdown requested');
    drainAndClose(app, app.lifecycle, settings.SHUTDOWN_DELAY_SECONDS * 1000, logger).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await app.listen({ port: settings.PORT, host: settings.HOST });
}

main().catch((err: unknown) => {
  process.stderr.write(`levee-media: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
