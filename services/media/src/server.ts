import './instrument'; // first: tracing must start before the modules it instruments load
import { drainAndClose } from '../../shared/src/http-lifecycle';
import { serve } from '../../shared/src/http-server';
import { createLogger } from '../../shared/src/logger';
import { guardRedisStartup } from '../../shared/src/redis-startup';
import { loadSettingsOrExit } from '../../shared/src/settings';
import { buildMedia } from './app';
import { mediaSettingsSchema } from './settings';

/** The media process: settings, logger, listen, graceful close on SIGTERM/SIGINT. */
const settings = loadSettingsOrExit(mediaSettingsSchema, 'media');
const logger = createLogger('media', settings.LOG_LEVEL);
const app = buildMedia(settings, { logger });
// A wrong password or an untrusted certificate stops the process with one line naming the setting.
// (With IMAGE_STORE=s3 there is no Redis: a wrong bucket or credentials keep readiness failing, said in one line.)
const { redis, target } = app.imageStore;
if (redis && target) guardRedisStartup({ service: 'media', logger, connections: [{ client: redis, target, what: 'queue Redis' }] });
serve({
  service: 'media',
  app,
  port: settings.PORT,
  host: settings.HOST,
  logger,
  metrics: { registry: app.metricsRegistry, port: settings.METRICS_PORT, host: settings.METRICS_HOST },
  drain: () => drainAndClose(app, app.lifecycle, settings.SHUTDOWN_DELAY_SECONDS * 1000, logger, settings.DRAIN_TIMEOUT_SECONDS * 1000),
});
