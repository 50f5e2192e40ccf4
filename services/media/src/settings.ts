import { z } from 'zod';
import { checkImageSettings, imageDeliverySettings, imageStoreSettings } from '../../shared/src/image-settings';
import { checkRedisConnections, redisConnectionSettings } from '../../shared/src/redis-settings';
import { Env, drainTimeoutSetting, intSetting, logLevelSetting, parseSettings, redisUrlSetting, requestTimeoutSetting, metricsHostSetting, metricsPortSetting } from '../../shared/src/settings';

/** The media backend's environment (every variable: docs/reference/settings.md, generated from this schema). */
export const mediaSettingsSchema = z
  .object({
    /** The public port: /images/{id}.png, /healthz, /readyz. */
    PORT: intSetting(1, 65535, 8082),
    /** Listen address of the public port. */
    HOST: z.string().min(1).default('0.0.0.0'),
    /** The metrics listener (`GET /metrics`); never the public PORT. */
    METRICS_PORT: metricsPortSetting(9466),
    /** Listen address of the metrics listener. */
    METRICS_HOST: metricsHostSetting,
    /** The queue Redis: the image store with IMAGE_STORE=redis (unused with s3). */
    REDIS_URL: redisUrlSetting('redis://127.0.0.1:6379'),
    ...redisConnectionSettings('QUEUE'),
    ...imageStoreSettings,
    ...imageDeliverySettings,
    /** After SIGTERM: readiness fails at once, serving goes on this long (endpoints and proxies forget the pod), then the server closes. */
    SHUTDOWN_DELAY_SECONDS: intSetting(0, 300, 5),
    /** Slow clients: the headers must arrive within 10 s (or this, if less) and the whole request within this, else a 408 problem and the socket is closed. */
    REQUEST_TIMEOUT_MS: requestTimeoutSetting,
    /** After close, in-flight requests get this long; connections still open then are cut (the chart sets it from LEVEE_DRAIN_SECONDS). */
    DRAIN_TIMEOUT_SECONDS: drainTimeoutSetting,
    /** pino level (fatal, error, warn, info, debug, trace, silent). */
    LOG_LEVEL: logLevelSetting,
  })
  .superRefine(checkRedisConnections(['QUEUE']))
  .superRefine(checkImageSettings);

export type MediaSettings = z.infer<typeof mediaSettingsSchema>;

export function parseMediaSettings(env: Env = process.env): MediaSettings {
  return parseSettings(mediaSettingsSchema, env);
}
