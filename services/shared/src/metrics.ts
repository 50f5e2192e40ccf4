import { Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per process (or per app instance in tests), with Node's default metrics. */
export function createRegistry(service: string, withDefaults = true): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return registry;
}
