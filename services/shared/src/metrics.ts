import { Registry, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client';
import { tracingEnabled } from './tracing';

/** One registry per process (or per app instance in tests), with Node's default metrics. */
export function createRegistry(service: string, withDefaults = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // With tracing on, the request-duration histogram carries exemplars (a sampled request's
  // trace_id), which only the OpenMetrics format can hold.
  if (tracingEnabled()) (registry as unknown as Registry<OpenMetricsContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}
