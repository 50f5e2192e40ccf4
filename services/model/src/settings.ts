import { z } from 'zod';
import { drainTimeoutSetting, Env, intSetting, logLevelSetting, parseSettings, metricsHostSetting, metricsPortSetting } from '../../shared/src/settings';

/** The model API's environment (every variable: docs/reference/settings.md, generated from this schema). */
export const modelSettingsSchema = z.object({
  /** The model API: /v1/render, /v1/images/generations, /v1/styles, /healthz, /readyz. */
  PORT: intSetting(1, 65535, 8081),
  /** Listen address of the public port. */
  HOST: z.string().min(1).default('0.0.0.0'),
  /** The metrics listener (`GET /metrics`); never the public PORT. */
  METRICS_PORT: metricsPortSetting(9467),
  /** Listen address of the metrics listener. */
  METRICS_HOST: metricsHostSetting,
  /** How long GET /v1/styles takes (a deliberately slow read, like a database query). */
  STYLES_DELAY_MS: intSetting(0, 60_000, 200),
  /** Simulated model load: /readyz and the render routes answer 503 until this has passed and one warm-up image is rendered. */
  MODEL_LOAD_SECONDS: intSetting(0, 3600, 0),
  /** When set, the render routes require `Authorization: Bearer <key>`. */
  MODEL_API_KEY: z.string().min(1).optional(),
  /** After SIGTERM: readiness fails at once, serving goes on this long (endpoints and proxies forget the pod), then the server closes. */
  SHUTDOWN_DELAY_SECONDS: intSetting(0, 300, 0),
  /** After close, in-flight requests get this long; connections still open then are cut (the chart sets it from LEVEE_DRAIN_SECONDS). */
  DRAIN_TIMEOUT_SECONDS: drainTimeoutSetting,
  /** pino level (fatal, error, warn, info, debug, trace, silent). */
  LOG_LEVEL: logLevelSetting,
});

export type ModelSettings = z.infer<typeof modelSettingsSchema>;

export function parseModelSettings(env: Env = process.env): ModelSettings {
  return parseSettings(modelSettingsSchema, env);
}
