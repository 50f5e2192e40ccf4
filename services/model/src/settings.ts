import { z } from 'zod';
import { drainTimeoutSetting, Env, intSetting, logLevelSetting, parseSettings, metricsHostSetting, metricsPortSetting } from '../../shared/src/settings';

/** The model API's environment (see services/model/README.md). */
export const modelSettingsSchema = z.object({
  PORT: intSetting(1, 65535, 8081),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** The metrics listener (`GET /metrics`); never the public PORT. */
  METRICS_PORT: metricsPortSetting(9467),
  METRICS_HOST: metricsHostSetting,
  STYLES_DELAY_MS: intSetting(0, 60_000, 200),
  /** Simulated model load: /readyz and the render routes answer 503 until this has passed and one warm-up image is rendered. */
  MODEL_LOAD_SECONDS: intSetting(0, 3600, 0),
  /** When set, the render routes require `Authorization: Bearer <key>`. */
  MODEL_API_KEY: z.string().min(1).optional(),
  SHUTDOWN_DELAY_SECONDS: intSetting(0, 300, 0),
  DRAIN_TIMEOUT_SECONDS: drainTimeoutSetting,
  LOG_LEVEL: logLevelSetting,
});

export type ModelSettings = z.infer<typeof modelSettingsSchema>;

export function parseModelSettings(env: Env = process.env): ModelSettings {
  return parseSettings(modelSettingsSchema, env);
}
