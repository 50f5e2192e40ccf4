/**
 * The order of the gateway benchmark's load runs. Every round runs each slot between two
 * ceiling runs (a slot's share is over the mean of those two). A slot is one scenario, or a
 * group of scenarios compared with one another (the POST, its floor, its peer, its A/A twin):
 * those run back to back, in an order rotated every round, so a comparison never spans more
 * than one slot of the machine's drift. Odd rounds run the rotated order backwards, so over
 * 2 × (group size) rounds every member goes first equally often and every two members that
 * run next to each other do so equally often in both orders (a row's leftovers, such as a
 * grown queue, do not always fall on the same neighbour).
 */
export interface Planned {
  /** Position in the scenario list (0 is the ceiling). */
  readonly index: number;
  /** The group it belongs to, when it is in one. */
  readonly group?: string;
}

/** One round: the slots in order, each a list of scenario indices (a ceiling run before, between and after the slots). */
export function roundPlan(scenarios: readonly Planned[], round: number): number[][] {
  const slots: number[][] = [];
  let last: string | undefined;
  for (const s of scenarios) {
    if (s.index === 0) continue; // the ceiling brackets every slot
    if (s.group !== undefined && s.group === last) slots[slots.length - 1]!.push(s.index);
    else slots.push([s.index]);
    last = s.group;
  }
  return slots.map((slot) => {
    const rotated = slot.map((_, i) => slot[(i + round) % slot.length]!);
    return round % 2 === 1 ? rotated.reverse() : rotated;
  });
}

/** The median; of an even count, the mean of the two middle values. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of nothing');
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Share of all CPU time the hypervisor took from this VM between two `/proc/stat` readings (undefined off Linux). */
export function stealShare(before: readonly number[] | undefined, after: readonly number[] | undefined): number | undefined {
  if (!before || !after) return undefined;
  const total = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
  // user nice system idle iowait irq softirq steal (guest time is counted in user already)
  return total > 0 ? (after[7]! - before[7]!) / total : undefined;
}

/** The aggregate `cpu` line of /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal. */
export function readCpuTimes(stat: string): number[] | undefined {
  const line = /^cpu\s+(.*)$/m.exec(stat)?.[1];
  if (!line) return undefined;
  const fields = line.trim().split(/\s+/).slice(0, 8).map(Number);
  return fields.length === 8 && fields.every(Number.isFinite) ? fields : undefined;
}
