/**
 * The OpenTelemetry variables Levee reads itself, validated like every other setting (a bad
 * value stops the service with exit code 78). The others (`OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, the exporter's headers, timeout, compression) go to the SDK as
 * the specification defines them. Only zod here: this module loads before any instrumented one.
 */
import { z } from 'zod';

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export const TRACES_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

const url = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

/** Tracing, in every service (off unless an endpoint is set). */
export const tracingSettingsSchema = z.object({
  /** The OTLP endpoint (the collector's base URL: `/v1/traces` is added for the HTTP protocols). With neither endpoint variable set, tracing is off and nothing of the SDK loads. */
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  /** The full URL of the traces endpoint, used as is; overrides OTEL_EXPORTER_OTLP_ENDPOINT for traces (and turns tracing on by itself). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url.optional(),
  /** `true` turns tracing off whatever the endpoints say. */
  OTEL_SDK_DISABLED: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  /** How spans are sent. */
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(OTLP_PROTOCOLS, { error: `must be one of ${OTLP_PROTOCOLS.join(', ')}` }).default('http/protobuf'),
  /** How spans are sent, for traces only (overrides OTEL_EXPORTER_OTLP_PROTOCOL). */
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(OTLP_PROTOCOLS, { error: `must be one of ${OTLP_PROTOCOLS.join(', ')}` }).optional(),
  /** Which traces are kept: `parentbased_*` follows a caller's sampled flag (`traceparent` flags `01`). */
  OTEL_TRACES_SAMPLER: z.enum(TRACES_SAMPLERS, { error: `must be one of ${TRACES_SAMPLERS.join(', ')}` }).default('parentbased_traceidratio'),
  /** The share of new traces kept by a `*traceidratio` sampler (0.1 when neither sampler variable is set). */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number({ error: 'must be a number from 0 to 1' }).min(0, 'must be a number from 0 to 1').max(1, 'must be a number from 0 to 1').optional(),
  /** The service's name in its spans. Default `levee-<service>`. */
  OTEL_SERVICE_NAME: z.string().optional(),
  /** More resource attributes, `key=value,…` (e.g. `deployment.environment.name=production`). */
  OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
});

export interface TracingSettings {
  readonly protocol: (typeof OTLP_PROTOCOLS)[number];
  readonly sampler: (typeof TRACES_SAMPLERS)[number];
}

/** What Levee acts on, from the parsed variables (see {@link tracingSettingsSchema}). */
export function tracingSettings(v: z.infer<typeof tracingSettingsSchema>): TracingSettings {
  return { protocol: v.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? v.OTEL_EXPORTER_OTLP_PROTOCOL, sampler: v.OTEL_TRACES_SAMPLER };
}
