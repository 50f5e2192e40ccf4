import { createLogger } from '../../shared/src/logger';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildModelApp } from './app';
import { modelSettingsSchema } from './settings';

/** The model API process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const settings = loadSettingsOrExit(modelSettingsSchema, 'model');
  const logger = createLogger('model', settings.LOG_LEVEL);
  const app = buildModelApp({ stylesDelayMs: settings.STYLES_DELAY_MS, logger });

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.draining = true;
    logger.info({ signal }, 'draining: readiness fails, in-flight requests complete');
    // Give endpoints controllers time to take this pod out of rotation before closing.
    await new Promise((r) => setTimeout(r, settings.SHUTDOWN_DELAY_SECONDS * 1000));
    await app.close();
    logger.info('closed');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  await app.listen({ port: settings.PORT, host: settings.HOST });
}

main().catch((err: unknown) => {
  process.stderr.write(`levee-model: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
