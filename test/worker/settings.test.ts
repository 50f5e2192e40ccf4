import { parseWorkerSettings } from '../../services/worker/src/settings';
import { SettingsError } from '../../services/shared/src/settings';

describe('worker settings', () => {
  it('has the documented defaults', () => {
    expect(parseWorkerSettings({})).toMatchObject({
      QUEUE_REDIS_URL: 'redis://127.0.0.1:6379',
      MODEL_URL: 'http://127.0.0.1:8081',
      QUEUE_NAME: 'images',
      WORKER_CONCURRENCY: 2,
      MODEL_TIMEOUT_MS: 30_000,
      BREAKER_OPEN_SECONDS: 60,
      IMAGE_TTL_SECONDS: 86_400,
      METRICS_PORT: 9464,
      WORKER_LOCK_DURATION_MS: 10_000,
      WORKER_STALLED_INTERVAL_MS: 5_000,
      WORKER_MAX_STALLED_COUNT: 2,
    });
  });

  it('takes QUEUE_REDIS_URL from REDIS_URL unless set itself', () => {
    expect(parseWorkerSettings({ REDIS_URL: 'redis://a:6379' }).QUEUE_REDIS_URL).toBe('redis://a:6379');
    expect(parseWorkerSettings({ REDIS_URL: 'redis://a:6379', QUEUE_REDIS_URL: 'redis://q:6380' }).QUEUE_REDIS_URL).toBe('redis://q:6380');
    expect(parseWorkerSettings({ QUEUE_REDIS_PASSWORD: 's3cret' }).QUEUE_REDIS_PASSWORD).toBe('s3cret');
  });

  it('bounds the SIGTERM wait: 2 × MODEL_TIMEOUT_MS + 10 s unless WORKER_SHUTDOWN_TIMEOUT_MS is set', () => {
    expect(parseWorkerSettings({}).WORKER_SHUTDOWN_TIMEOUT_MS).toBe(70_000);
    expect(parseWorkerSettings({ MODEL_TIMEOUT_MS: '1000' }).WORKER_SHUTDOWN_TIMEOUT_MS).toBe(12_000);
    expect(parseWorkerSettings({ MODEL_TIMEOUT_MS: '1000', WORKER_SHUTDOWN_TIMEOUT_MS: '2500' }).WORKER_SHUTDOWN_TIMEOUT_MS).toBe(2500);
    expect(() => parseWorkerSettings({ WORKER_SHUTDOWN_TIMEOUT_MS: '50' })).toThrow(/WORKER_SHUTDOWN_TIMEOUT_MS.*must be an integer from 100 to 3600000/s);
  });

  it('allows no WORKER_MAX_STALLED_COUNT of 0: the first worker killed mid-job would fail its job for good', () => {
    expect(() => parseWorkerSettings({ WORKER_MAX_STALLED_COUNT: '0' })).toThrow(/WORKER_MAX_STALLED_COUNT.*must be an integer from 1 to 100/s);
    expect(parseWorkerSettings({ WORKER_MAX_STALLED_COUNT: '1' }).WORKER_MAX_STALLED_COUNT).toBe(1);
  });

  it('names every bad variable, its value and what is allowed', () => {
    try {
      parseWorkerSettings({ WORKER_CONCURRENCY: '0', MODEL_URL: 'ftp://x', QUEUE_NAME: 'a b' });
      throw new Error('expected a SettingsError');
    } catch (err) {
      expect(err).toBeInstanceOf(SettingsError);
      expect((err as SettingsError).problems).toEqual([
        'MODEL_URL="ftp://x": must be an http:// or https:// URL',
        'QUEUE_NAME="a b": must be 1-64 characters of A-Z, a-z, 0-9, _ or -',
        'WORKER_CONCURRENCY="0": must be an integer from 1 to 256',
      ]);
    }
  });
});
