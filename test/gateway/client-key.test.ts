import { clientKey } from '../../services/gateway/src/client-key';

describe('clientKey', () => {
  test.each([
    ['198.51.100.7', 64, '198.51.100.7'],
    ['::ffff:198.51.100.7', 64, '198.51.100.7'],
    ['::ffff:c633:6407', 64, '198.51.100.7'],
    ['2001:db8:1:2::1', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64, '2001:db8:1:2::/64'],
    ['2001:DB8:0001:0002:0000:0000:0000:0001', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2ff::1', 56, '2001:db8:1:200::/56'],
    ['2001:db8:abcd::1', 32, '2001:db8::/32'],
    ['2001:db8::1', 128, '2001:db8::1'],
    ['2001:db8:0::0:1', 128, '2001:db8::1'],
  ])('%s with prefix /%d → %s', (address, prefix, key) => {
    expect(clientKey(address, prefix)).toBe(key);
  });

  test.each(['not-an-ip', '999.1.1.1', '2001:db8::zz', '1', ''])('%j is not an IP address → undefined', (address) => {
    expect(clientKey(address, 64)).toBeUndefined();
  });
});
