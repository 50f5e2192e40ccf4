/**
 * The client key as spans carry it: an HMAC under a per-process key, the same for the same
 * client (so one client's requests group) and kept for recent clients, never the address.
 */
import { createHmac } from 'node:crypto';
import { keyHash } from '../../services/shared/src/tracing';

test('the same key hashes the same, other keys differently, and the address never shows', () => {
  const a = keyHash('203.0.113.7');
  expect(a).toMatch(/^[0-9a-f]{16}$/);
  expect(keyHash('203.0.113.7')).toBe(a);
  expect(keyHash('203.0.113.8')).not.toBe(a);
  expect(a).not.toContain('203');
  // Not a plain (unkeyed) hash of the address, which anyone could recompute for every IPv4 address.
  expect(a).not.toBe(createHmac('sha256', '').update('203.0.113.7').digest('hex').slice(0, 16));
});

test('past the kept clients, an evicted key is hashed again to the same value', () => {
  const first = keyHash('198.51.100.1');
  const many = Array.from({ length: 5000 }, (_, i) => keyHash(`10.0.${i >> 8}.${i & 255}`));
  expect(new Set(many).size).toBe(5000);
  expect(keyHash('198.51.100.1')).toBe(first);
});
