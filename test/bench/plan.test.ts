import { readCpuTimes, roundPlan, stealShare } from '../../bench/plan';

describe('gateway bench round plan', () => {
  const scenarios = [{ index: 0 }, { index: 1 }, { index: 2, group: 'post' }, { index: 3, group: 'post' }, { index: 4, group: 'post' }, { index: 5 }, { index: 6, group: 'other' }];

  it('keeps the ceiling out of the slots and each group in one slot', () => {
    expect(roundPlan(scenarios, 0)).toEqual([[1], [2, 3, 4], [5], [6]]);
  });

  it('rotates a group every round, so no member always runs first', () => {
    expect(roundPlan(scenarios, 1)[1]).toEqual([3, 4, 2]);
    expect(roundPlan(scenarios, 2)[1]).toEqual([4, 2, 3]);
    expect(roundPlan(scenarios, 3)[1]).toEqual([2, 3, 4]);
    const firsts = new Set([0, 1, 2].map((r) => roundPlan(scenarios, r)[1]![0]));
    expect(firsts).toEqual(new Set([2, 3, 4]));
  });

  it('runs every scenario once per round', () => {
    for (const round of [0, 1, 5]) expect(roundPlan(scenarios, round).flat().sort()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('splits a group that is not contiguous into two slots', () => {
    expect(roundPlan([{ index: 0 }, { index: 1, group: 'a' }, { index: 2 }, { index: 3, group: 'a' }], 0)).toEqual([[1], [2], [3]]);
  });
});

describe('steal share', () => {
  const stat = (steal: number, idle: number) => `cpu  100 0 50 ${idle} 0 0 10 ${steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n`;

  it('is the stolen part of all CPU time between two readings', () => {
    const share = stealShare(readCpuTimes(stat(20, 800)), readCpuTimes(stat(40, 980)));
    expect(share).toBeCloseTo(20 / 200);
  });

  it('is undefined without readings or without elapsed time', () => {
    expect(stealShare(undefined, readCpuTimes(stat(1, 1)))).toBeUndefined();
    expect(stealShare(readCpuTimes(stat(1, 1)), readCpuTimes(stat(1, 1)))).toBeUndefined();
    expect(readCpuTimes('intr 1 2 3')).toBeUndefined();
  });
});
