import { drainAndClose } from '../../shared/src/http-lifecycle';
import { serve } from '../../shared/src/http-server';
import { createLogger } from '../../shared/src/logger';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildMedia } from './app';
import { mediaSettingsSchema } from './settings';

/** The media process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
const settings = loadSettingsOrExit(mediaSettingsSchema, 'media');
const logger = createLogger('media', settings.LOG_LEVEL);
const app = buildMedia(settings, { logger });
serve({
  service: 'media',
  app,
  port: settings.PORT,
  host: settings.HOST,
  logger,
  metrics: { registry: app.metricsRegistry, port: settings.METRICS_PORT, host: settings.METRICS_HOST },
  drain: () => drainAndClose(app, app.lifecycle, settings.SHUTDOWN_DELAY_SECONDS * 1000, logger, settings.DRAIN_TIMEOUT_SECONDS * 1000),
});
