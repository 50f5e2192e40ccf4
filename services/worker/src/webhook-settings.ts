import { z } from 'zod';
import { RedisTarget } from '../../shared/src/redis';
import { checkRedisConnections, redisConnectionSettings, redisTarget } from '../../shared/src/redis-settings';
import { Env, intSetting, loadSettingsOrExit, logLevelSetting, metricsHostSetting, metricsPortSetting, parseSettings, queueNameSetting, redisUrlSetting } from '../../shared/src/settings';
import { webhookUrlPolicy, webhookUrlSettings, WebhookUrlPolicy } from '../../shared/src/webhook-url';

/** A Standard Webhooks secret: `whsec_` and 24 to 64 random bytes in base64. */
const WEBHOOK_SECRET = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

export const webhookSecretSetting = z
  .string({ error: 'is required: the whsec_… secret receivers verify the signatures with (a Secret; e.g. echo whsec_$(openssl rand -base64 32))' })
  .refine((v) => WEBHOOK_SECRET.test(v) && Buffer.from(v.slice('whsec_'.length), 'base64').length >= 24 && Buffer.from(v.slice('whsec_'.length), 'base64').length <= 64, {
    error: 'must be whsec_ followed by 24-64 bytes in base64 (e.g. whsec_$(openssl rand -base64 32))',
  });

/** The webhook sender's environment (docs/push.md; every variable: docs/reference/settings.md). */
export const webhookSenderEnvSchema = z
  .object({
    /** The default of QUEUE_REDIS_URL: the queue Redis, where the deliveries wait. */
    REDIS_URL: redisUrlSetting('redis://127.0.0.1:6379'),
    ...redisConnectionSettings('QUEUE'),
    /** The render queue's name: the deliveries are in <QUEUE_NAME>-webhooks. */
    QUEUE_NAME: queueNameSetting,
    /** The Standard Webhooks key that signs every delivery (whsec_ + 24-64 bytes in base64; a Secret). */
    WEBHOOK_SECRET: webhookSecretSetting,
    ...webhookUrlSettings,
    /** Per attempt, the whole exchange with the receiver. */
    WEBHOOK_TIMEOUT_MS: intSetting(1000, 60_000, 10_000),
    /** Deliveries in flight at once per process. */
    WEBHOOK_CONCURRENCY: intSetting(1, 1000, 50),
    /** The sender's one port: /metrics, /healthz, /readyz. */
    METRICS_PORT: metricsPortSetting(9468),
    /** Listen address of that port. */
    METRICS_HOST: metricsHostSetting,
    /** pino level (fatal, error, warn, info, debug, trace, silent). */
    LOG_LEVEL: logLevelSetting,
  })
  .superRefine(checkRedisConnections(['QUEUE']));

export type WebhookSenderSettings = z.infer<typeof webhookSenderEnvSchema> & { queueRedis: RedisTarget; policy: WebhookUrlPolicy };

function derive(env: z.infer<typeof webhookSenderEnvSchema>): WebhookSenderSettings {
  return { ...env, queueRedis: redisTarget(env, 'QUEUE'), policy: webhookUrlPolicy(env) };
}

export function parseWebhookSenderSettings(env: Env = process.env): WebhookSenderSettings {
  return derive(parseSettings(webhookSenderEnvSchema, env));
}

export function loadWebhookSenderSettingsOrExit(env: Env = process.env): WebhookSenderSettings {
  return derive(loadSettingsOrExit(webhookSenderEnvSchema, 'webhooks', env));
}
