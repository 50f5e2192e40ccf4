/**
 * OpenTelemetry tracing (docs/how-to/tracing.md): off unless `otlpEndpoint` is set; its other
 * settings only with an endpoint, and the resolved {@link TracingConfig}.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Environment, SettingName, SettingValues } from './settings';
import { SETTINGS, TRACING_ONLY_SETTINGS } from './settings';
import { show } from './problems';
import type { TracingConfig } from './types';

/** The OTLP ports of an OpenTelemetry Collector (and of Tempo and Jaeger): gRPC and HTTP. */
export const OTLP_DEFAULT_PORTS = { grpc: 4317, http: 4318 } as const;

/**
 * Without an endpoint, a tracing setting given with another value than its default contradicts
 * it (one given at its default changes nothing, so a Pulumi project default stays harmless).
 */
export function tracingProblems(
  environment: Environment,
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  if (v.otlpEndpoint !== '') return [];
  const problems: string[] = [];
  for (const name of TRACING_ONLY_SETTINGS.filter(given)) {
    const spec = SETTINGS[name] as { parse: (r: string) => { ok: boolean; value?: unknown }; default: (e: Environment, id: string) => string | undefined };
    const fallback = spec.default(environment, '');
    if (fallback !== undefined && isDeepStrictEqual(spec.parse(fallback).value, v[name])) continue;
    problems.push(`${show(name, raw[name])} contradicts ${show('otlpEndpoint', raw.otlpEndpoint)}; allowed: ${name} only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)`);
  }
  return problems;
}

/** The port written in a URL, even the scheme's own (`new URL` drops `:80` from `http://…:80`); undefined when none is. */
function urlPort(raw: string): number | undefined {
  const m = /^https?:\/\/(?:\[[^\]]*\]|[^/:?#]*)(?::(\d+))?/.exec(raw);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** The resolved tracing settings; undefined = tracing off. */
export function tracingConfig(v: SettingValues): TracingConfig | undefined {
  if (v.otlpEndpoint === '') return undefined;
  const port = v.otlpPort ?? urlPort(v.otlpEndpoint) ?? (v.otlpProtocol === 'grpc' ? OTLP_DEFAULT_PORTS.grpc : OTLP_DEFAULT_PORTS.http);
  return {
    endpoint: v.otlpEndpoint,
    protocol: v.otlpProtocol,
    samplingRatio: v.traceSamplingRatio,
    collector: { namespace: v.otlpNamespace, labels: Object.fromEntries(v.otlpPodLabels.map((l) => [l.key, l.value])), port },
  };
}
