/**
 * OpenTelemetry tracing of the Levee containers (LEVEE_OTLP_*, docs/how-to/tracing.md): the
 * standard `OTEL_*` variables the services' SDK reads. Nothing at all when tracing is off
 * (the services then start no SDK).
 */
import type { k8s } from 'cdk8s-plus-28';
import type { LeveeConfig } from '../config/resolve';

/** The sampler: the caller's decision for traces it started (a traceparent), the ratio for the others. */
export const OTEL_SAMPLER = 'parentbased_traceidratio';

/** The pod's name from the downward API, for `k8s.pod.name` (declared before the variable that expands it). */
export const POD_NAME_ENV: k8s.EnvVar = { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } };

/**
 * The tracing environment of one Levee container (`component`: gateway, media, worker, webhooks,
 * model → service `levee-<component>`). `OTEL_RESOURCE_ATTRIBUTES` ends in `$(POD_NAME)`, which
 * Kubernetes expands only from a variable declared earlier in the list: POD_NAME comes first.
 */
export function tracingEnv(config: LeveeConfig, component: string): k8s.EnvVar[] {
  const t = config.tracing;
  if (!t) return [];
  const attributes = ['service.namespace=levee', `deployment.environment.name=${config.environment}`, `k8s.namespace.name=${config.namespace}`, 'k8s.pod.name=$(POD_NAME)'];
  return [
    POD_NAME_ENV,
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: t.endpoint },
    { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: t.protocol },
    { name: 'OTEL_TRACES_SAMPLER', value: OTEL_SAMPLER },
    { name: 'OTEL_TRACES_SAMPLER_ARG', value: String(t.samplingRatio) },
    { name: 'OTEL_SERVICE_NAME', value: `levee-${component}` },
    { name: 'OTEL_RESOURCE_ATTRIBUTES', value: attributes.join(',') },
  ];
}
