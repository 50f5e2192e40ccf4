import { BlockList } from '../../services/gateway/src/block-list';

describe('BlockList (clients blocked in memory until their window ends)', () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it('blocks a key for the time given, no longer', () => {
    const list = new BlockList(1000, clock);
    list.add('a', 400);
    expect(list.msLeft('a')).toBe(400);
    expect(list.msLeft('b')).toBe(0);
    now += 399;
    expect(list.msLeft('a')).toBe(1);
    now += 1;
    expect(list.msLeft('a')).toBe(0);
  });

  it('caps a block at the window', () => {
    const list = new BlockList(1000, clock);
    list.add('a', 60_000);
    expect(list.msLeft('a')).toBe(1000);
  });

  it('keeps a block added just before a generation ends until the block itself ends', () => {
    const list = new BlockList(1000, clock);
    now += 999;
    list.add('late', 1000);
    now += 1; // the generation rotates here
    expect(list.msLeft('late')).toBe(999);
    now += 998;
    expect(list.msLeft('late')).toBe(1);
    now += 1;
    expect(list.msLeft('late')).toBe(0);
  });

  it('a newer block of the same key wins over the one in the older generation', () => {
    const list = new BlockList(1000, clock);
    list.add('a', 200);
    now += 1000;
    list.add('a', 900); // rotated: the old block is in the previous generation, ended
    expect(list.msLeft('a')).toBe(900);
  });

  it('drops ended blocks whole: memory is bounded by the clients blocked in the last two windows', () => {
    const list = new BlockList(1000, clock);
    for (let i = 0; i < 20_000; i++) list.add(`ip${i}`, 1000);
    expect(list.size).toBe(20_000);
    now += 1000;
    list.add('next', 1000); // rotation: the 20,000 move to the previous generation, still blocked
    expect(list.msLeft('ip7')).toBe(0); // ended exactly now
    expect(list.size).toBe(20_001);
    now += 1000;
    expect(list.msLeft('next')).toBe(0); // rotation again: the 20,000 are gone
    expect(list.size).toBe(1);
    now += 5000;
    expect(list.msLeft('next')).toBe(0); // a long quiet spell drops everything
    expect(list.size).toBe(0);
  });
});
