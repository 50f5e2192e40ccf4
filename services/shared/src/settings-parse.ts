/**
 * Parsing a settings schema against the environment: zod only, so that a module loaded before
 * any other (the tracing start, shared/src/tracing.ts) can use it. settings.ts re-exports it.
 */
import { z } from 'zod';

/**
 * Settings come from the environment, validated once at start-up. A bad value stops the
 * process with a message that names the variable, the value and what is allowed.
 */
export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid settings:\n  - ${problems.join('\n  - ')}`);
    this.name = 'SettingsError';
  }
}

export type Env = Record<string, string | undefined>;

/** Parses `env` against a zod object schema whose keys are the variable names. */
export function parseSettings<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    // An empty variable means "not set", as in most twelve-factor apps.
    input[key] = value === undefined || value === '' ? undefined : value;
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new SettingsError(
    result.error.issues.map((issue) => {
      const key = String(issue.path[0]);
      return `${key}=${JSON.stringify(input[key] ?? '')}: ${issue.message}`;
    }),
  );
}
