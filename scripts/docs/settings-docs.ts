/**
 * What the code says of each service setting: its description is the JSDoc comment on the
 * schema property that defines it (in the service's settings file or the shared helper it
 * spreads in), read with the TypeScript compiler API; its default and what it accepts come
 * from the zod schema itself. Keys made per Redis role (`${role}_REDIS_URL`) are documented
 * once, as `<ROLE>_REDIS_URL`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import type { z } from 'zod';

const ROOT = join(__dirname, '../..');

/** JSDoc of every UPPER_CASE property of an object literal in `files`, by name (`<ROLE>_…` for the per-role ones). */
export function settingComments(files: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAssignment(node)) {
        const name = propertyName(node.name);
        if (name && /^[A-Z<][A-Z0-9_<>]+$/.test(name) && !out.has(name)) {
          const doc = ts
            .getJSDocCommentsAndTags(node)
            .map((d) => (typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? ''))
            .join(' ')
            .replace(/\s+/g, ' ')
            .trim();
          if (doc) out.set(name, doc);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return out;
}

function propertyName(name: ts.PropertyName): string | undefined {
  if (ts.isIdentifier(name) || ts.isStringLiteral(name)) return name.text;
  // [`${role}_REDIS_URL`] → <ROLE>_REDIS_URL
  if (ts.isComputedPropertyName(name) && ts.isTemplateExpression(name.expression)) {
    return `<ROLE>${name.expression.templateSpans.map((s) => s.literal.text).join('')}`;
  }
  return undefined;
}

/** The TypeScript files whose schemas (and the shared pieces they spread) define the services' settings. */
export function settingSources(first: string): string[] {
  const shared = join(ROOT, 'services/shared/src');
  return [join(ROOT, first), ...readdirSync(shared).filter((f) => f.endsWith('.ts')).map((f) => join(shared, f))];
}

export interface SettingRow {
  readonly name: string;
  /** What an unset variable becomes (JSON), or `required`, or `—` (unset: none). */
  readonly default: string;
  /** What the schema says of a value it refuses (its error message), when that is telling. */
  readonly accepts?: string;
  readonly description?: string;
}

/** One row per variable of a service's schema, in the schema's order. */
export function settingRows(schema: z.ZodObject, comments: ReadonlyMap<string, string>): SettingRow[] {
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const unset = field.safeParse(undefined);
    const shown = !unset.success ? 'required' : unset.data === undefined ? '—' : Array.isArray(unset.data) ? unset.data.join(',') || '(empty)' : String(unset.data);
    const refused = field.safeParse('\u0000not a value');
    // The message for a value it refuses, without the test value's own error code (a file setting's).
    const accepts = !refused.success ? refused.error.issues[0]?.message.replace(/ \([A-Z_]+\)$/, '') : undefined;
    const role = name.replace(/^(QUEUE|CACHE)_REDIS_/, '<ROLE>_REDIS_');
    const description = comments.get(name) ?? comments.get(role);
    return { name, default: shown, ...(accepts && !/^Invalid input/.test(accepts) ? { accepts } : {}), ...(description ? { description } : {}) };
  });
}
