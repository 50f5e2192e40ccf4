import { z } from 'zod';
import { Env, drainTimeoutSetting, intSetting, logLevelSetting, optionalRedisUrlSetting, parseSettings, redisUrlSetting, requestTimeoutSetting, metricsHostSetting, metricsPortSetting } from '../../shared/src/settings';

/** The media backend's environment (see services/gateway/README.md, "media"). */
export const mediaSettingsSchema = z.object({
  PORT: intSetting(1, 65535, 8082),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** The metrics listener (`GET /metrics`); never the public PORT. */
  METRICS_PORT: metricsPortSetting(9466),
  METRICS_HOST: metricsHostSetting,
  REDIS_URL: redisUrlSetting('redis://127.0.0.1:6379'),
  QUEUE_REDIS_URL: optionalRedisUrlSetting(),
  QUEUE_REDIS_PASSWORD: z.string().optional(),
  SHUTDOWN_DELAY_SECONDS: intSetting(0, 300, 5),
  REQUEST_TIMEOUT_MS: requestTimeoutSetting,
  DRAIN_TIMEOUT_SECONDS: drainTimeoutSetting,
  LOG_LEVEL: logLevelSetting,
});

export type MediaSettings = z.infer<typeof mediaSettingsSchema>;

export function parseMediaSettings(env: Env = process.env): MediaSettings {
  return parseSettings(mediaSettingsSchema, env);
}
