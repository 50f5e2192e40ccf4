import './instrument-webhooks'; // first: tracing must start before the modules it instruments load
import { once } from 'node:events';
import { shutdownTracing } from '../../shared/src/tracing';
import { createLogger } from '../../shared/src/logger';
import { createRegistry } from '../../shared/src/metrics';
import { createRedis } from '../../shared/src/redis';
import { guardRedisStartup } from '../../shared/src/redis-startup';
import { createHealthServer } from './health';
import { createWebhookSender } from './webhook-sender';
import { loadWebhookSenderSettingsOrExit } from './webhook-settings';

/**
 * The webhook sender process (the worker image, `node build/services/worker/src/webhooks-server.js`;
 * `npm run start:webhooks`): settings, one 'worker'-role queue Redis connection, the sender,
 * `/metrics`, `/healthz` and `/readyz` on METRICS_PORT, and a graceful SIGTERM (the
 * deliveries in flight finish, within WEBHOOK_TIMEOUT_MS; the others wait in the queue).
 * It runs in pods of its own, whose NetworkPolicy lets them reach the internet on 443/8443 and
 * nothing of the cluster but the queue Redis.
 */
async function main(): Promise<void> {
  const settings = loadWebhookSenderSettingsOrExit();
  const logger = createLogger('webhooks', settings.LOG_LEVEL);
  const connection = createRedis('worker', settings.queueRedis);
  connection.on('error', (err) => logger.warn({ err: err.message }, 'queue redis connection error'));
  const registry = createRegistry('webhooks');
  const sender = createWebhookSender({
    connection,
    queueName: settings.QUEUE_NAME,
    secret: settings.WEBHOOK_SECRET,
    policy: settings.policy,
    timeoutMs: settings.WEBHOOK_TIMEOUT_MS,
    concurrency: settings.WEBHOOK_CONCURRENCY,
    registry,
    logger,
  });
  guardRedisStartup({ service: 'webhooks', logger, connections: [{ client: connection, target: settings.queueRedis, what: 'queue Redis', alsoFrom: [sender.worker] }] });

  const health = createHealthServer({ registry, ready: sender.ready });

  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down: finishing the deliveries in flight');
    setTimeout(() => process.exit(1), settings.WEBHOOK_TIMEOUT_MS + 5000).unref();
    try {
      await sender.close();
      health.close();
      await connection.quit().catch(() => connection.disconnect());
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
  logger.info({ queue: settings.QUEUE_NAME, concurrency: settings.WEBHOOK_CONCURRENCY, metricsPort: (health.address() as { port: number }).port }, 'webhook sender started');
}

main().catch((err: unknown) => {
  process.stderr.write(`levee-webhooks: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
