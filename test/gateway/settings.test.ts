import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGatewaySettings, queueMinReplicasAcked, redisTargets } from '../../services/gateway/src/settings';
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
      queue: { url: 'redis://127.0.0.1:6379', settingsPrefix: 'QUEUE' },
      cache: { url: 'redis://127.0.0.1:6379', settingsPrefix: 'CACHE' },
    });
    expect([s.QUEUE_MIN_REPLICAS_ACKED, queueMinReplicasAcked(s), s.QUEUE_REPLICA_ACK_TIMEOUT_MS]).toEqual([undefined, 0, 500]);
  });

  it('lets QUEUE_/CACHE_REDIS_URL and the password variables override REDIS_URL', () => {
    const s = parseGatewaySettings({
      REDIS_URL: 'redis://shared:6379',
      CACHE_REDIS_URL: 'redis://cache:6379',
      QUEUE_REDIS_PASSWORD: 'q-secret',
      CACHE_REDIS_PASSWORD: 'c-secret',
    });
    expect(redisTargets(s)).toEqual({
      queue: { url: 'redis://shared:6379', password: 'q-secret', settingsPrefix: 'QUEUE' },
      cache: { url: 'redis://cache:6379', password: 'c-secret', settingsPrefix: 'CACHE' },
    });
  });

  it('reads Sentinels, the master group, an ACL user and a CA file per role; one replica must confirm by default with Sentinel', () => {
    const dir = mkdtempSync(join(tmpdir(), 'levee-ca-'));
    const ca = join(dir, 'ca.crt');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    try {
      const s = parseGatewaySettings({
        QUEUE_REDIS_URL: 'rediss://ignored-with-sentinels:6379/2',
        QUEUE_REDIS_SENTINELS: 's-0.sentinel:26379, s-1.sentinel:26379,[::1]:26380',
        QUEUE_REDIS_USERNAME: 'levee',
        QUEUE_REDIS_PASSWORD: 'pw',
        QUEUE_REDIS_CA_FILE: ca,
        CACHE_REDIS_URL: 'redis://cache:6379',
      });
      expect(redisTargets(s).queue).toEqual({
        url: 'rediss://ignored-with-sentinels:6379/2',
        settingsPrefix: 'QUEUE',
        username: 'levee',
        password: 'pw',
        ca: readFileSync(ca, 'utf8'),
        sentinels: [{ host: 's-0.sentinel', port: 26379 }, { host: 's-1.sentinel', port: 26379 }, { host: '::1', port: 26380 }],
        sentinelName: 'levee-queue',
      });
      expect(queueMinReplicasAcked(s)).toBe(1);
      expect(queueMinReplicasAcked(parseGatewaySettings({ QUEUE_REDIS_SENTINELS: 'a:1', QUEUE_MIN_REPLICAS_ACKED: '0' }))).toBe(0);
      expect(queueMinReplicasAcked(parseGatewaySettings({ QUEUE_MIN_REPLICAS_ACKED: '2' }))).toBe(2);
      expect(redisTargets(parseGatewaySettings({ CACHE_REDIS_SENTINELS: 'c:26379' })).cache.sentinelName).toBe('levee-cache');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
    ['QUEUE_REDIS_SENTINELS', 'sentinel-0', 'QUEUE_REDIS_SENTINELS="sentinel-0": must be a comma-separated list of host:port (e.g. levee-queue-sentinel-0.levee-queue-sentinel:26379,…)'],
    ['CACHE_REDIS_SENTINELS', 'a:26379,b:0', 'CACHE_REDIS_SENTINELS="a:26379,b:0": must be a comma-separated list of host:port (e.g. levee-queue-sentinel-0.levee-queue-sentinel:26379,…)'],
    ['QUEUE_REDIS_USERNAME', 'le vee', 'QUEUE_REDIS_USERNAME="le vee": must be an ACL user name (1-128 characters of A-Z, a-z, 0-9, ".", "_" or "-")'],
    ['QUEUE_MIN_REPLICAS_ACKED', '-1', 'QUEUE_MIN_REPLICAS_ACKED="-1": must be an integer from 0 to 16'],
  ])('rejects %s=%s naming the variable', (name, value, message) => {
    try {
      parseGatewaySettings({ [name]: value });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(SettingsError);
      expect((err as SettingsError).problems).toEqual([message]);
    }
  });

  it('refuses a CA file without TLS, naming both settings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'levee-ca-'));
    writeFileSync(join(dir, 'ca.crt'), '-----BEGIN CERTIFICATE-----\n');
    try {
      expect(() => parseGatewaySettings({ CACHE_REDIS_CA_FILE: join(dir, 'ca.crt') })).toThrow(`CACHE_REDIS_CA_FILE="${join(dir, 'ca.crt')}": is only used for TLS, but REDIS_URL is not a rediss:// URL`);
      expect(() => parseGatewaySettings({ QUEUE_REDIS_URL: 'redis://q:6379', QUEUE_REDIS_CA_FILE: join(dir, 'ca.crt') })).toThrow('is only used for TLS, but QUEUE_REDIS_URL is not a rediss:// URL');
      expect(parseGatewaySettings({ REDIS_URL: 'rediss://r:6380', QUEUE_REDIS_CA_FILE: join(dir, 'ca.crt') }).QUEUE_REDIS_CA_FILE).toBe(join(dir, 'ca.crt'));
      expect(() => parseGatewaySettings({ REDIS_URL: 'rediss://r:6380', QUEUE_REDIS_CA_FILE: '/nonexistent/ca.crt' })).toThrow(
        'QUEUE_REDIS_CA_FILE="/nonexistent/ca.crt": must be a readable file of PEM CA certificates (ENOENT)',
      );
      writeFileSync(join(dir, 'key.pem'), '-----BEGIN PRIVATE KEY-----\n');
      expect(() => parseGatewaySettings({ REDIS_URL: 'rediss://r:6380', QUEUE_REDIS_CA_FILE: join(dir, 'key.pem') })).toThrow('must be a file of PEM CA certificates');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
