import { isBreakerOpen } from '../../services/shared/src/breaker';
import { FakeOrigin, inject, metricValue, sleep, Stack, testSettings, scrape } from './helpers';

describe('circuit breaker around the model API, seen through GET /api/styles', () => {
  let stack: Stack;
  let origin: FakeOrigin;

  beforeEach(async () => {
    stack = new Stack();
    origin = await stack.origin(5);
  });
  afterEach(() => stack.close());

  const circuitState = async (app: Parameters<typeof scrape>[0]) =>
    metricValue(await scrape(app), 'levee_circuit_state', { target: 'model' });

  it('opens after consecutive failures, fails fast while open, lets exactly one trial through, and closes on success', async () => {
    // Open for 3 s: the 20 fast-fail calls below all fall inside it even on a slow machine.
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, BREAKER_OPEN_SECONDS: '3', BREAKER_FAILURES: '5', RATE_LIMIT_PER_SECOND: '100000' }));
    origin.mode = 'fail';
    // GIVEN five consecutive failures (no cached copy to fall back on)
    for (let i = 0; i < 5; i++) {
      const res = await inject(app, '/api/styles');
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('1');
    }
    expect(origin.calls).toBe(5);
    const opened = Date.now();
    expect(await circuitState(app)).toBe(1);

    // WHEN called while open THEN nothing reaches the model and the answer is immediate
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const res = await inject(app, '/api/styles');
      expect(res.statusCode).toBe(503);
      expect(res.json().detail).toBe('The model API is failing (circuit open) and no cached catalog exists.');
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // origin.calls is the proof that nothing reached the model; this bounds the answers (125 ms
    // each on average, generous for a loaded CI machine) and keeps them inside the open period
    expect(Date.now() - started).toBeLessThan(2500);
    expect(origin.calls).toBe(5);
    // the refused calls never reached the origin, so they are not origin loads
    expect(metricValue(await scrape(app), 'levee_cache_origin_loads_total', { cache: 'styles' })).toBe(5);

    // WHEN the open period has passed THEN exactly one trial call reaches the model
    await sleep(opened + 3100 - Date.now());
    origin.mode = 'ok';
    const concurrent = await Promise.allSettled(Array.from({ length: 10 }, () => app.levee.modelClient.styles()));
    expect(origin.calls).toBe(6);
    expect(concurrent.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(concurrent.filter((r) => r.status === 'rejected' && isBreakerOpen(r.reason))).toHaveLength(9);
    // AND its success closes the circuit
    expect(await circuitState(app)).toBe(0);
    const res = await inject(app, '/api/styles');
    expect(res.statusCode).toBe(200);
  });

  it('re-opens when the half-open trial fails', async () => {
    const app = await stack.gateway(testSettings({ MODEL_URL: origin.url, BREAKER_OPEN_SECONDS: '1', BREAKER_FAILURES: '5', RATE_LIMIT_PER_SECOND: '100000' }));
    origin.mode = 'fail';
    for (let i = 0; i < 5; i++) await inject(app, '/api/styles');
    expect(await circuitState(app)).toBe(1);
    await sleep(1100);
    // the trial fails
    expect((await inject(app, '/api/styles')).statusCode).toBe(503);
    expect(origin.calls).toBe(6);
    expect(await circuitState(app)).toBe(1);
    // and it is open again: no more calls
    for (let i = 0; i < 5; i++) expect((await inject(app, '/api/styles')).statusCode).toBe(503);
    expect(origin.calls).toBe(6);
  });

  it('counts a model timeout as a failure (MODEL_TIMEOUT_MS)', async () => {
    const app = await stack.gateway(
      testSettings({ MODEL_URL: origin.url, BREAKER_OPEN_SECONDS: '60', MODEL_TIMEOUT_MS: '50', RATE_LIMIT_PER_SECOND: '100000' }),
    );
    origin.mode = 'hang';
    for (let i = 0; i < 5; i++) expect((await inject(app, '/api/styles')).statusCode).toBe(503);
    expect(await circuitState(app)).toBe(1);
    const res = await inject(app, '/api/styles');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(50); // about the 60 s open period
  });
});
