import { z } from 'zod';
import { SettingsError, intSetting, parseSettings, redisUrlSetting } from '../../services/shared/src/settings';

const schema = z.object({ PORT: intSetting(1, 65535, 8080), REDIS_URL: redisUrlSetting('redis://127.0.0.1:6379') });

describe('parseSettings', () => {
  it('fills defaults for unset and empty variables', () => {
    expect(parseSettings(schema, { PORT: '' })).toEqual({ PORT: 8080, REDIS_URL: 'redis://127.0.0.1:6379' });
  });

  it('names the variable, the value and what is allowed', () => {
    expect(() => parseSettings(schema, { PORT: 'eighty', REDIS_URL: 'http://x' })).toThrow(SettingsError);
    try {
      parseSettings(schema, { PORT: '70000', REDIS_URL: 'http://x' });
    } catch (err) {
      expect((err as SettingsError).problems).toEqual([
        'PORT="70000": must be an integer from 1 to 65535',
        'REDIS_URL="http://x": must be a redis:// or rediss:// URL',
      ]);
    }
    expect.assertions(2);
  });
});
