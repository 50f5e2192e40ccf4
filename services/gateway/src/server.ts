import { drainAndClose } from '../../shared/src/http-lifecycle';
import { serve } from '../../shared/src/http-server';
import { createLogger } from '../../shared/src/logger';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildGateway } from './app';
import { gatewaySettingsSchema } from './settings';

/** The gateway process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
const settings = loadSettingsOrExit(gatewaySettingsSchema, 'gateway');
const logger = createLogger('gateway', settings.LOG_LEVEL);
const app = buildGateway(settings, { logger });
serve({
  service: 'gateway',
  app,
  port: settings.PORT,
  host: settings.HOST,
  logger,
  metrics: { registry: app.metricsRegistry, port: settings.METRICS_PORT, host: settings.METRICS_HOST },
  drain: () => drainAndClose(app, app.lifecycle, settings.SHUTDOWN_DELAY_SECONDS * 1000, logger, settings.DRAIN_TIMEOUT_SECONDS * 1000),
});
