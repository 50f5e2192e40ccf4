import './instrument'; // first: tracing must start before the modules it instruments load
import { drainAndClose } from '../../shared/src/http-lifecycle';
import { serve } from '../../shared/src/http-server';
import { createLogger } from '../../shared/src/logger';
import { guardRedisStartup } from '../../shared/src/redis-startup';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildGateway } from './app';
import { gatewaySettingsSchema } from './settings';

/** The gateway process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
const settings = loadSettingsOrExit(gatewaySettingsSchema, 'gateway');
const logger = createLogger('gateway', settings.LOG_LEVEL);
const app = buildGateway(settings, { logger });
// A wrong password or an untrusted certificate stops the process with one line naming the setting.
guardRedisStartup({
  service: 'gateway',
  logger,
  connections: [
    { client: app.levee.queueRedis, target: app.levee.redisTargets.queue, what: 'queue Redis', requireNoEviction: true },
    { client: app.levee.cacheRedis, target: app.levee.redisTargets.cache, what: 'cache Redis' },
  ],
});
serve({
  service: 'gateway',
  app,
  port: settings.PORT,
  host: settings.HOST,
  logger,
  metrics: { registry: app.metricsRegistry, port: settings.METRICS_PORT, host: settings.METRICS_HOST },
  drain: () => drainAndClose(app, app.lifecycle, settings.SHUTDOWN_DELAY_SECONDS * 1000, logger, settings.DRAIN_TIMEOUT_SECONDS * 1000),
});
