import { parseGatewaySettings, redisTargets } from '../../services/gateway/src/settings';
import { SettingsError } from '../../services/shared/src/settings';

describe('gateway settings', () => {
  it('has the defaults fixed with the infra manifests', () => {
    const s = parseGatewaySettings({});
    expect(s).toMatchObject({
      PORT: 8080,
      REDIS_URL: 'redis://127.0.0.1:6379',
      MODEL_URL: 'http://127.0.0.1:8081',
      RATE_LIMIT_PER_SECOND: 10,
      RATE_LIMIT_IPV6_PREFIX: 64,
      TRUST_PROXY: [],
      QUEUE_NAME: 'images',
      QUEUE_MAX_WAITING: 10000,
      QUEUE_MAX_MEMORY_PERCENT: 80,
      CACHE_TTL_SECONDS: 30,
      BREAKER_OPEN_SECONDS: 60,
      SHUTDOWN_DELAY_SECONDS: 5,
      MODEL_TIMEOUT_MS: 1000,
      BREAKER_FAILURES: 3,
      CACHE_STALE_WAIT_MS: 250,
      SERVE_MEDIA: true,
      LOG_LEVEL: 'info',
    });
    expect(parseGatewaySettings({ SERVE_MEDIA: 'false' }).SERVE_MEDIA).toBe(false);
    expect(() => parseGatewaySettings({ SERVE_MEDIA: 'no' })).toThrow(/SERVE_MEDIA.*must be true or false/s);
    expect(redisTargets(s)).toEqual({
      queue: { url: 'redis://127.0.0.1:6379', password: undefined },
      cache: { url: 'redis://127.0.0.1:6379', password: undefined },
    });
  });

  it('lets QUEUE_/CACHE_REDIS_URL and the password variables override REDIS_URL', () => {
    const s = parseGatewaySettings({
      REDIS_URL: 'redis://shared:6379',
      CACHE_REDIS_URL: 'redis://cache:6379',
      QUEUE_REDIS_PASSWORD: 'q-secret',
      CACHE_REDIS_PASSWORD: 'c-secret',
    });
    expect(redisTargets(s)).toEqual({
      queue: { url: 'redis://shared:6379', password: 'q-secret' },
      cache: { url: 'redis://cache:6379', password: 'c-secret' },
    });
  });

  it('parses TRUST_PROXY as a list of IPs and CIDRs', () => {
    expect(parseGatewaySettings({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.1,fd00::/8' }).TRUST_PROXY).toEqual(['10.0.0.0/8', '192.168.1.1', 'fd00::/8']);
  });

  it.each([
    ['PORT', '0', 'PORT="0": must be an integer from 1 to 65535'],
    ['RATE_LIMIT_PER_SECOND', '1.5', 'RATE_LIMIT_PER_SECOND="1.5": must be an integer from 1 to 10000000'],
    ['RATE_LIMIT_IPV6_PREFIX', '16', 'RATE_LIMIT_IPV6_PREFIX="16": must be an integer from 32 to 128'],
    ['RATE_LIMIT_IPV6_PREFIX', '129', 'RATE_LIMIT_IPV6_PREFIX="129": must be an integer from 32 to 128'],
    ['QUEUE_REDIS_URL', 'http://redis', 'QUEUE_REDIS_URL="http://redis": must be a redis:// or rediss:// URL'],
    ['MODEL_URL', 'model:8081', 'MODEL_URL="model:8081": must be an http:// or https:// URL'],
    ['TRUST_PROXY', '1', 'TRUST_PROXY="1": must be a comma-separated list of IPs or CIDRs (e.g. 10.0.0.0/8,fd00::/8); "1" is neither'],
    ['TRUST_PROXY', 'loopback', 'TRUST_PROXY="loopback": must be a comma-separated list of IPs or CIDRs (e.g. 10.0.0.0/8,fd00::/8); "loopback" is neither'],
    ['QUEUE_NAME', 'a:b', 'QUEUE_NAME="a:b": must be 1-64 characters of A-Z, a-z, 0-9, _ or -'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL="loud": must be one of fatal, error, warn, info, debug, trace, silent'],
  ])('rejects %s=%s naming the variable', (name, value, message) => {
    try {
      parseGatewaySettings({ [name]: value });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(SettingsError);
      expect((err as SettingsError).problems).toEqual([message]);
    }
  });
});
