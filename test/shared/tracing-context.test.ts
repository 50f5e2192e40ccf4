/**
 * Batched waiters (the rate limiter's, the producer's adds) resume in their own context: a
 * waiter with no span runs with no span even when the turn that resumes it has one, and one
 * with a span gets it back, while resuming in the context already active switches nothing.
 */
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { activeContext, shutdownTracing, startTracing, withContext } from '../../services/shared/src/tracing';

beforeAll(() => {
  // A real SDK, exporting nowhere reachable (nothing here is exported before shutdown).
  startTracing('test', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_TRACES_SAMPLER: 'always_on' });
});
afterAll(() => shutdownTracing());

test('each waiter resumes in its own context, span or none', () => {
  const unsampled = activeContext();
  expect(unsampled).toBe(ROOT_CONTEXT);
  const span = trace.getTracer('t').startSpan('POST', { kind: SpanKind.SERVER }, ROOT_CONTEXT);
  expect(span.isRecording()).toBe(true);
  const sampled = context.with(trace.setSpan(ROOT_CONTEXT, span), () => activeContext());
  // The turn runs in the sampled request's context: the unsampled waiter must leave it.
  context.with(sampled!, () => {
    expect(withContext(unsampled, () => trace.getActiveSpan())).toBeUndefined();
    expect(withContext(sampled, () => trace.getActiveSpan())).toBe(span);
  });
  // The turn runs with no span: the sampled waiter gets its span back, the unsampled one stays as is.
  expect(withContext(sampled, () => trace.getActiveSpan())).toBe(span);
  expect(withContext(unsampled, () => context.active())).toBe(ROOT_CONTEXT);
  expect(withContext(undefined, () => 42)).toBe(42);
  span.end();
});
