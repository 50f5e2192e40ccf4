import { Registry } from 'prom-client';
import { Breaker, isBreakerOpen } from '../../services/shared/src/breaker';

describe('Breaker (circuit around the model API)', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  const fail = () => Promise.reject(new Error('model down'));

  async function state(registry: Registry): Promise<number | undefined> {
    const metric = await registry.getSingleMetric('levee_circuit_state')!.get();
    return metric.values.find((v) => v.labels.target === 'model')?.value;
  }

  it('opens after consecutive failures, fails fast while open, then lets exactly one trial through', async () => {
    const registry = new Registry();
    const breaker = new Breaker({ target: 'model', openSeconds: 60, timeoutMs: 1000, consecutiveFailures: 3, registry });
    for (let i = 0; i < 3; i++) await expect(breaker.execute(fail)).rejects.toThrow('model down');
    expect(breaker.state).toBe('open');
    expect(await state(registry)).toBe(1);

    // GIVEN an open circuit WHEN called THEN the call never runs
    const calls = jest.fn(() => Promise.resolve('ok'));
    const refused = await breaker.execute(calls).catch((e: unknown) => e);
    expect(isBreakerOpen(refused)).toBe(true);
    expect(calls).not.toHaveBeenCalled();
    expect(breaker.retryAfterMs()).toBe(60_000);

    jest.setSystemTime(1_000_000 + 60_001);
    // one trial call in flight; a concurrent second call is still refused
    let finishTrial!: (v: string) => void;
    const trial = breaker.execute(() => new Promise<string>((r) => (finishTrial = r)));
    expect(breaker.state).toBe('half-open');
    expect(await state(registry)).toBe(2);
    const concurrent = await breaker.execute(calls).catch((e: unknown) => e);
    expect(isBreakerOpen(concurrent)).toBe(true);
    expect(calls).not.toHaveBeenCalled();
    finishTrial('ok');
    await expect(trial).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(await state(registry)).toBe(0);
  });

  it('re-opens when the half-open trial fails', async () => {
    const breaker = new Breaker({ target: 'model', openSeconds: 10, timeoutMs: 1000, consecutiveFailures: 2 });
    await expect(breaker.execute(fail)).rejects.toThrow();
    await expect(breaker.execute(fail)).rejects.toThrow();
    jest.setSystemTime(1_000_000 + 10_001);
    await expect(breaker.execute(fail)).rejects.toThrow('model down');
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs()).toBe(10_000);
  });

  it('counts a timeout as a failure', async () => {
    jest.useRealTimers();
    const breaker = new Breaker({ target: 'model', openSeconds: 10, timeoutMs: 20, consecutiveFailures: 1 });
    await expect(breaker.execute(() => new Promise((r) => setTimeout(r, 200)))).rejects.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('does not count errors that isFailure excludes', async () => {
    const breaker = new Breaker({ target: 'model', openSeconds: 10, timeoutMs: 1000, consecutiveFailures: 1, isFailure: () => false });
    await expect(breaker.execute(fail)).rejects.toThrow();
    expect(breaker.state).toBe('closed');
  });
});
