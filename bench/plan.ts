/**
 * The order of the gateway benchmark's load runs. Every round runs each slot between two
 * ceiling runs (a slot's share is over the mean of those two). A slot is one scenario, or a
 * group of scenarios compared with one another (the POST, its floor, its peer, its A/A twin):
 * those run back to back, in an order rotated every round, so a comparison never spans more
 * than one slot of the machine's drift and no member always goes first.
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
  return slots.map((slot) => slot.map((_, i) => slot[(i + round) % slot.length]!));
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
