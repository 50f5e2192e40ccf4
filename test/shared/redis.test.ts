import { randomUUID } from 'node:crypto';
import { createRedis, defineReleaseCommand, releaseIfHeld } from '../../services/shared/src/redis';
import { TEST_REDIS_URL } from '../helpers/redis-url';

describe('releaseIfHeld (token-checked delete)', () => {
  const client = createRedis('request', { url: TEST_REDIS_URL });
  const prefix = `t-release-${randomUUID()}`;
  beforeAll(async () => {
    defineReleaseCommand(client);
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve)); // no offline queue
  });
  afterAll(async () => {
    const keys = await client.keys(`${prefix}:*`);
    if (keys.length) await client.del(...keys);
    client.disconnect();
  });

  it('deletes the key only while it still holds the token', async () => {
    await client.set(`${prefix}:a`, 'mine');
    expect(await releaseIfHeld(client, `${prefix}:a`, 'theirs')).toBe(0);
    expect(await client.get(`${prefix}:a`)).toBe('mine');
    expect(await releaseIfHeld(client, `${prefix}:a`, 'mine')).toBe(1);
    expect(await client.exists(`${prefix}:a`)).toBe(0);
  });

  it('works amid auto-pipelined traffic on the same client (the request-role client pipelines every tick)', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `${prefix}:p${i}`);
    await Promise.all(keys.map((k) => client.set(k, `t${k}`)));
    // releases, reads and writes in the same ticks, one pipeline each
    const results = await Promise.all(keys.flatMap((k, i) => [releaseIfHeld(client, k, i % 2 ? `t${k}` : 'wrong'), client.get(k), client.incr(`${prefix}:n`)]));
    expect(results.filter((_, j) => j % 3 === 0)).toEqual(keys.map((_, i) => (i % 2 ? 1 : 0)));
    expect(await client.get(`${prefix}:n`)).toBe('200');
  });

  it('refuses, with a message saying what to do, on a client where the script was not defined', async () => {
    const other = createRedis('request', { url: TEST_REDIS_URL });
    try {
      await expect(releaseIfHeld(other, `${prefix}:x`, 't')).rejects.toThrow('call defineReleaseCommand(redis) when the client is set up');
    } finally {
      other.disconnect();
    }
  });
});
