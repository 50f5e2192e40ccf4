/**
 * Loaded first by the process entry: starts OpenTelemetry when an OTLP endpoint is set (before
 * the modules it instruments are loaded), and loads nothing of it otherwise. See shared/src/tracing.ts.
 */
import { startTracingOrExit } from '../../shared/src/tracing';

startTracingOrExit('gateway', { ownRequestSpans: true });
