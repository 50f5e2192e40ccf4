/** A broken rule on one synthesized object. */
export interface Violation {
  /** Rule id, e.g. `pss-restricted`. */
  readonly rule: string;
  /** `Kind/namespace/name`. */
  readonly object: string;
  readonly message: string;
}

export class PolicyError extends Error {
  constructor(readonly violations: readonly Violation[]) {
    super(
      `Policy check failed (nothing was written):\n${violations.map((v) => `  - [${v.rule}] ${v.object}: ${v.message}`).join('\n')}`,
    );
    this.name = 'PolicyError';
  }
}
