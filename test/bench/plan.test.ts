import { median, readCpuTimes, roundPlan, stealShare } from '../../bench/plan';

describe('gateway bench round plan', () => {
  const scenarios = [{ index: 0 }, { index: 1 }, { index: 2, group: 'post' }, { index: 3, group: 'post' }, { index: 4, group: 'post' }, { index: 5 }, { index: 6, group: 'other' }];

  it('keeps the ceiling out of the slots and each group in one slot', () => {
    expect(roundPlan(scenarios, 0)).toEqual([[1], [2, 3, 4], [5], [6]]);
  });

  it('rotates a group every round and runs odd rounds backwards', () => {
    expect(roundPlan(scenarios, 1)[1]).toEqual([2, 4, 3]);
    expect(roundPlan(scenarios, 2)[1]).toEqual([4, 2, 3]);
    expect(roundPlan(scenarios, 3)[1]).toEqual([4, 3, 2]);
  });

  it('over 2 × the group size rounds, each member goes first equally often and each neighbour pair runs in both orders equally often', () => {
    const group = [{ index: 0 }, ...[1, 2, 3, 4, 5].map((index) => ({ index, group: 'post' }))];
    const firsts = new Map<number, number>();
    const follows = new Map<string, number>();
    for (let round = 0; round < 10; round++) {
      const order = roundPlan(group, round)[0]!;
      firsts.set(order[0]!, (firsts.get(order[0]!) ?? 0) + 1);
      for (let i = 1; i < order.length; i++) follows.set(`${order[i - 1]}>${order[i]}`, (follows.get(`${order[i - 1]}>${order[i]}`) ?? 0) + 1);
    }
    expect([...firsts.values()]).toEqual([2, 2, 2, 2, 2]);
    for (const [pair, n] of follows) {
      const [a, b] = pair.split('>');
      expect(follows.get(`${b}>${a}`)).toBe(n);
    }
  });

  it('runs every scenario once per round', () => {
    for (const round of [0, 1, 5]) expect(roundPlan(scenarios, round).flat().sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('splits a group that is not contiguous into two slots', () => {
    expect(roundPlan([{ index: 0 }, { index: 1, group: 'a' }, { index: 2 }, { index: 3, group: 'a' }], 0)).toEqual([[1], [2], [3]]);
  });
});

describe('steal share', () => {
  // guest time (fields 9 and 10) is already in user: it must not be counted twice
  const stat = (steal: number, idle: number, guest = 0) => `cpu  ${100 + guest} 0 50 ${idle} 0 0 10 ${steal} ${guest} 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n`;

  it('is the stolen part of all CPU time between two readings', () => {
    const share = stealShare(readCpuTimes(stat(20, 800)), readCpuTimes(stat(40, 980)));
    expect(share).toBeCloseTo(20 / 200);
    // 50 ticks of guest time are 50 ticks of user time, not 100 more ticks in all
    expect(stealShare(readCpuTimes(stat(20, 800)), readCpuTimes(stat(40, 930, 50)))).toBeCloseTo(20 / 200);
  });

  it('is undefined without readings or without elapsed time', () => {
    expect(stealShare(undefined, readCpuTimes(stat(1, 1)))).toBeUndefined();
    expect(stealShare(readCpuTimes(stat(1, 1)), readCpuTimes(stat(1, 1)))).toBeUndefined();
    expect(readCpuTimes('intr 1 2 3')).toBeUndefined();
    expect(readCpuTimes('cpu  1 2 3 4 5 6\n')).toBeUndefined(); // fewer than the 8 fields up to steal
  });
});

describe('median', () => {
  it('is the middle value of an odd count and the mean of the two middle values of an even one', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([10, 30, 20, 40, 50, 60, 70, 80])).toBe(45);
  });

  it('refuses an empty list', () => {
    expect(() => median([])).toThrow('median of nothing');
  });
});
