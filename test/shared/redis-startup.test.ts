/**
 * The Redis connection options per target, and the start-up checks: which connection
 * errors are configuration errors (one line naming the setting, exit), which are not
 * (Redis down: keep retrying), and the eviction-policy warning.
 */
import { EventEmitter } from 'node:events';
import type Redis from 'ioredis';
import { connectionOptions, redisOptions } from '../../services/shared/src/redis';
import { checkEvictionPolicy, fatalRedisError, guardRedisStartup } from '../../services/shared/src/redis-startup';

const tls = { url: 'rediss://redis.example.com:6380', settingsPrefix: 'QUEUE', username: 'levee', password: 'pw' };
const withCode = (message: string, code?: string) => Object.assign(new Error(message), code ? { code } : {});

describe('connection options', () => {
  test('settings override the URL: user, password; rediss:// is TLS with the CA; the database from the path', () => {
    expect(connectionOptions({ url: 'rediss://u:p@h:6380/3', username: 'levee', password: 'pw', ca: 'PEM' })).toEqual({ username: 'levee', password: 'pw', db: 3, tls: { ca: 'PEM' }, host: 'h', port: 6380 });
    expect(connectionOptions({ url: 'redis://u:p%40x@[::1]' })).toEqual({ username: 'u', password: 'p@x', host: '::1', port: 6379 });
  });

  test('with Sentinels: the master group, the same password for the Sentinels, TLS to both, a bounded Sentinel query, no failover detector', () => {
    const o = connectionOptions({ url: 'rediss://ignored:1', password: 'pw', ca: 'PEM', sentinels: [{ host: 's', port: 26379 }], sentinelName: 'levee-queue' });
    expect(o).toMatchObject({ sentinels: [{ host: 's', port: 26379 }], name: 'levee-queue', role: 'master', password: 'pw', sentinelPassword: 'pw', tls: { ca: 'PEM' }, enableTLSForSentinelMode: true, sentinelTLS: { ca: 'PEM' }, failoverDetector: false });
    expect(o.sentinelCommandTimeout).toBeGreaterThan(0);
    expect(o).not.toHaveProperty('host');
  });

  test('READONLY reconnects: a request fails now (1), a worker command is sent again to the new primary (2); other errors do not', () => {
    const readonly = new Error("READONLY You can't write against a read only replica.");
    expect(redisOptions('request', { url: 'redis://h' }).reconnectOnError!(readonly)).toBe(1);
    expect(redisOptions('worker', { url: 'redis://h' }).reconnectOnError!(readonly)).toBe(2);
    expect(redisOptions('worker', { url: 'redis://h' }).reconnectOnError!(new Error('ERR wrong type'))).toBe(false);
    expect(redisOptions('worker', { url: 'redis://h' }).maxRetriesPerRequest).toBeNull();
  });
});

describe('configuration errors at start-up', () => {
  test.each([
    ['a wrong password for an ACL user', withCode('WRONGPASS invalid username-password pair or user is disabled.'), tls, 'the queue Redis (rediss://redis.example.com:6380) refused ACL user "levee" (QUEUE_REDIS_USERNAME) with QUEUE_REDIS_PASSWORD: WRONGPASS invalid username-password pair or user is disabled.'],
    ['a password where one is required', withCode('NOAUTH Authentication required.'), { url: 'redis://h:6379', settingsPrefix: 'CACHE' }, 'the queue Redis (redis://h:6379) requires a password and CACHE_REDIS_PASSWORD is not set: NOAUTH Authentication required.'],
    ['a certificate no trusted CA signed', withCode('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'), tls, 'the queue Redis (rediss://redis.example.com:6380) presented a certificate that no trusted CA signed; set QUEUE_REDIS_CA_FILE to the CA that signed it: self-signed certificate in certificate chain'],
    ['a certificate the given CA did not sign', withCode('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), { ...tls, ca: 'PEM' }, 'the queue Redis (rediss://redis.example.com:6380) presented a certificate that the CA in QUEUE_REDIS_CA_FILE did not sign: unable to verify the first certificate'],
    ['a certificate for another host', withCode("Hostname/IP does not match certificate's altnames: Host: x. is not in the cert's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'), tls, "the queue Redis (rediss://redis.example.com:6380) presented a certificate for another host (check the host in QUEUE_REDIS_URL): Hostname/IP does not match certificate's altnames: Host: x. is not in the cert's altnames"],
    ['TLS to a plain port', withCode('C0B7A0E0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number', 'ERR_SSL_WRONG_VERSION_NUMBER'), tls, 'QUEUE_REDIS_URL is rediss:// but the queue Redis (rediss://redis.example.com:6380) does not speak TLS: C0B7A0E0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number'],
    ['a wrong password, through the Sentinels', withCode('All sentinels are unreachable. Retrying from scratch after 10ms. Last error: WRONGPASS invalid username-password pair or user is disabled.'), { url: 'redis://x', password: 'pw', settingsPrefix: 'QUEUE', sentinels: [{ host: 's', port: 26379 }], sentinelName: 'levee-queue' }, 'the queue Redis (Sentinel master "levee-queue" via s:26379) refused QUEUE_REDIS_PASSWORD: All sentinels are unreachable. Retrying from scratch after 10ms. Last error: WRONGPASS invalid username-password pair or user is disabled.'],
  ])('%s is named with its setting', (_what, err, target, line) => {
    expect(fatalRedisError(err, target, 'queue Redis')).toBe(line);
  });

  test.each([
    ['Redis down', withCode('connect ECONNREFUSED 127.0.0.1:6379', 'ECONNREFUSED')],
    ['a reset connection', withCode('read ECONNRESET', 'ECONNRESET')],
    ['a timeout', withCode('connect ETIMEDOUT', 'ETIMEDOUT')],
    ['Sentinels down', withCode('All sentinels are unreachable. Retrying from scratch after 10ms. Last error: connect ECONNREFUSED 10.0.0.1:26379')],
    ['Redis loading its AOF', withCode('LOADING Redis is loading the dataset in memory')],
  ])('%s is not a configuration error: the service keeps retrying', (_what, err) => {
    expect(fatalRedisError(err, tls, 'queue Redis')).toBeUndefined();
  });

  function fakeClient(): Redis & EventEmitter {
    return new EventEmitter() as unknown as Redis & EventEmitter;
  }

  test('the guard exits once, with the line, on the first configuration error before the connection was ever ready; errors after that are not its business', () => {
    const client = fakeClient();
    const worker = new EventEmitter();
    const lines: string[] = [];
    const seenByOthers: string[] = [];
    client.on('error', (e: Error) => seenByOthers.push(e.message));
    guardRedisStartup({ service: 'worker', logger: { error: jest.fn(), warn: jest.fn() }, exit: (l) => lines.push(l), connections: [{ client, target: tls, what: 'queue Redis', alsoFrom: [worker] }] });
    client.emit('error', withCode('connect ECONNREFUSED 127.0.0.1:6380', 'ECONNREFUSED'));
    expect(lines).toEqual([]);
    worker.emit('error', withCode('WRONGPASS invalid username-password pair or user is disabled.'));
    client.emit('error', withCode('WRONGPASS invalid username-password pair or user is disabled.'));
    expect(lines).toEqual(['levee-worker: the queue Redis (rediss://redis.example.com:6380) refused ACL user "levee" (QUEUE_REDIS_USERNAME) with QUEUE_REDIS_PASSWORD: WRONGPASS invalid username-password pair or user is disabled.']);

    const later = fakeClient();
    const exits: string[] = [];
    guardRedisStartup({ service: 'media', logger: { error: jest.fn(), warn: jest.fn() }, exit: (l) => exits.push(l), connections: [{ client: later, target: tls, what: 'queue Redis' }] });
    later.emit('ready');
    later.on('error', () => undefined);
    later.emit('error', withCode('WRONGPASS (password rotated while running)'));
    expect(exits).toEqual([]);
  });

  test('an evicting policy is reported loudly once connected; noeviction is not; an unreadable policy is a warning', async () => {
    const logger = { error: jest.fn(), warn: jest.fn() };
    const client = (policy: string | Error) => ({ info: async () => (policy instanceof Error ? Promise.reject(policy) : `# Memory\r\nmaxmemory_policy:${policy}\r\n`) }) as unknown as Redis;
    expect(await checkEvictionPolicy({ client: client('volatile-lru'), target: tls, what: 'queue Redis' }, logger)).toBe('volatile-lru');
    expect(logger.error).toHaveBeenCalledTimes(1);
    expect(logger.error.mock.calls[0][1]).toContain('the queue Redis has maxmemory-policy volatile-lru: BullMQ requires noeviction');
    expect(await checkEvictionPolicy({ client: client('noeviction'), target: tls, what: 'queue Redis' }, logger)).toBe('noeviction');
    expect(logger.error).toHaveBeenCalledTimes(1);
    await checkEvictionPolicy({ client: client(new Error("NOPERM this user has no permissions to run the 'info' command")), target: tls, what: 'queue Redis' }, logger);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });
});
