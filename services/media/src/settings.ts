import { z } from 'zod';
import { checkImageSettings, imageDeliverySettings, imageStoreSettings } from '../../shared/src/image-settings';
import { checkRedisConnections, redisConnectionSettings } from '../../shared/src/redis-settings';
import { Env, drainTimeoutSetting, intSetting, logLevelSetting, parseSettings, redisUrlSetting, requestTimeoutSetting, metricsHostSetting, metricsPortSetting } from '../../shared/src/settings';

/** The media backend's environment (see services/media/README.md). */
export const mediaSettingsSchema = z
  .object({
    PORT: intSetting(1, 65535, 8082),
    HOST: z.string().min(1).default('0.0.0.0'),
    /** The metrics listener (`GET /metrics`); never the public PORT. */
    METRICS_PORT: metricsPortSetting(9466),
    METRICS_HOST: metricsHostSetting,
    /** The queue Redis: the image store with IMAGE_STORE=redis (unused with s3). */
    REDIS_URL: redisUrlSetting('redis://127.0.0.1:6379'),
    ...redisConnectionSettings('QUEUE'),
    ...imageStoreSettings,
    ...imageDeliverySettings,
    SHUTDOWN_DELAY_SECONDS: intSetting(0, 300, 5),
    REQUEST_TIMEOUT_MS: requestTimeoutSetting,
    DRAIN_TIMEOUT_SECONDS: drainTimeoutSetting,
    LOG_LEVEL: logLevelSetting,
  })
  .superRefine(checkRedisConnections(['QUEUE']))
  .superRefine(checkImageSettings);

export type MediaSettings = z.infer<typeof mediaSettingsSchema>;

export function parseMediaSettings(env: Env = process.env): MediaSettings {
  return parseSettings(mediaSettingsSchema, env);
}
