import './instrument'; // first: tracing must start before the modules it instruments load
import { drainAndClose } from '../../shared/src/http-lifecycle';
import { serve } from '../../shared/src/http-server';
import { createLogger } from '../../shared/src/logger';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildModelApp } from './app';
import { modelSettingsSchema } from './settings';

/** The model API process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
const settings = loadSettingsOrExit(modelSettingsSchema, 'model');
const logger = createLogger('model', settings.LOG_LEVEL);
const app = buildModelApp({ stylesDelayMs: settings.STYLES_DELAY_MS, loadSeconds: settings.MODEL_LOAD_SECONDS, ...(settings.MODEL_API_KEY ? { apiKey: settings.MODEL_API_KEY } : {}), logger });
serve({
  service: 'model',
  app,
  port: settings.PORT,
  host: settings.HOST,
  logger,
  metrics: { registry: app.metricsRegistry, port: settings.METRICS_PORT, host: settings.METRICS_HOST },
  drain: () => drainAndClose(app, app.lifecycle, settings.SHUTDOWN_DELAY_SECONDS * 1000, logger, settings.DRAIN_TIMEOUT_SECONDS * 1000),
});
