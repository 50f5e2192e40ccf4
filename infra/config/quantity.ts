/** Parsing of the Kubernetes quantities that Levee settings accept (a deliberate subset). */

const CPU = /^(\d+)m$|^(\d+)(\.\d{1,3})?$/;
const MEMORY = /^(\d+)(Ki|Mi|Gi|Ti)$/;
const MEMORY_FACTORS: Record<string, number> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** CPU in millicores, or undefined when the text is not `<n>m` or a decimal core count. */
export function parseCpuMillis(text: string): number | undefined {
  const m = CPU.exec(text);
  if (!m) return undefined;
  const millis = m[1] !== undefined ? Number(m[1]) : Math.round(Number(`${m[2]}${m[3] ?? ''}`) * 1000);
  return millis > 0 ? millis : undefined;
}

/** Memory in bytes, or undefined when the text is not `<n>Ki|Mi|Gi|Ti`. */
export function parseMemoryBytes(text: string): number | undefined {
  const m = MEMORY.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * MEMORY_FACTORS[m[2]!]!;
  return bytes > 0 ? bytes : undefined;
}
