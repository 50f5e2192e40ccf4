import './instrument'; // first: tracing must start before the modules it instruments load
import { once } from 'node:events';
import { shutdownTracing } from '../../shared/src/tracing';
import { createLogger } from '../../shared/src/logger';
import { createRegistry } from '../../shared/src/metrics';
import { createRedis } from '../../shared/src/redis';
import { guardRedisStartup } from '../../shared/src/redis-startup';
import { createHealthServer } from './health';
import { loadWorkerSettingsOrExit } from './settings';
import { createRenderWorker } from './worker';

/**
 * The worker process: settings, logger, one 'worker'-role Redis connection, the BullMQ
 * worker, the metrics/health server, and a graceful SIGTERM (finish active jobs, take no
 * new ones, exit 0).
 */
async function main(): Promise<void> {
  const settings = loadWorkerSettingsOrExit();
  const logger = createLogger('worker', settings.LOG_LEVEL);
  const connection = createRedis('worker', settings.queueRedis);
  connection.on('error', (err) => logger.warn({ err: err.message }, 'queue redis connection error'));
  const registry = createRegistry('worker');
  const render = createRenderWorker({ settings, connection, registry, logger });
  // A wrong password or an untrusted certificate stops the process with one line naming the
  // setting, whichever connection meets it first (BullMQ's blocking connection reports through the worker).
  guardRedisStartup({
    service: 'worker',
    logger,
    connections: [{ client: connection, target: settings.queueRedis, what: 'queue Redis', requireNoEviction: true, alsoFrom: [render.worker] }],
  });
  const health = createHealthServer({ registry, progress: render.progress, ready: render.ready });

  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal, deadlineMs: settings.WORKER_SHUTDOWN_TIMEOUT_MS }, 'shutting down: no new jobs, finishing active ones');
    // Bounded: with the queue Redis down an active job cannot store its PNG and BullMQ's
    // close cannot finish, so past the deadline the process exits 1 without them. Nothing
    // is lost: their locks expire and the stalled check of any worker re-queues them.
    setTimeout(() => {
      logger.error({ activeJobs: render.activeJobs() }, 'shutdown deadline passed; exiting, the active jobs will be recovered as stalled');
      connection.disconnect();
      process.exit(1);
    }, settings.WORKER_SHUTDOWN_TIMEOUT_MS);
    try {
      await render.close();
      health.close();
      await connection.quit().catch(() => connection.disconnect());
      logger.info('worker closed');
      await shutdownTracing(); // the last spans, when tracing is on
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error while shutting down');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  health.listen(settings.METRICS_PORT, settings.METRICS_HOST);
  await once(health, 'listening');
  logger.info(
    {
      queue: settings.QUEUE_NAME,
      concurrency: settings.WORKER_CONCURRENCY,
      modelUrl: settings.MODEL_URL,
      imageStore: settings.imageStore.kind === 's3' ? `s3://${settings.imageStore.bucket}/${settings.imageStore.prefix}` : 'redis',
      metricsPort: settings.METRICS_PORT,
      lockDurationMs: settings.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: settings.WORKER_STALLED_INTERVAL_MS,
    },
    'worker started',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`levee-worker: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
