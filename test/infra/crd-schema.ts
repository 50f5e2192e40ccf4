/**
 * Validates objects of the custom kinds Levee writes against `openAPIV3Schema` of the CRD
 * copies in infra/crds/ (committed; never ../shared), as the API server would with strict
 * field validation (`kubectl apply --validate=strict`, the default): structure, types,
 * enums, patterns, bounds, required fields, unknown fields, int-or-string, list-type set
 * and map uniqueness. The CEL rules (`x-kubernetes-validations`) are the API server's; the
 * ones Levee could break are checked explicitly in edge.test.ts. metadata is checked with
 * kubernetes-models' ObjectMeta.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

export const CRD_DIR = join(__dirname, '..', '..', 'infra', 'crds');

type Schema = Record<string, any>;

const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** OpenAPI v3 structural schema (Kubernetes dialect) → plain JSON Schema for Ajv. */
export function toJsonSchema(node: Schema): Schema {
  if (Array.isArray(node)) return node.map(toJsonSchema) as unknown as Schema;
  if (node === null || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-')) continue;
    if (key === 'properties' || key === 'patternProperties') {
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, toJsonSchema(v as Schema)]));
    } else if (key === 'items' || key === 'additionalProperties' || key === 'not') {
      out[key] = typeof value === 'object' ? toJsonSchema(value as Schema) : value;
    } else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') {
      out[key] = (value as Schema[]).map(toJsonSchema);
    } else if (key === 'description') {
      continue;
    } else {
      out[key] = value;
    }
  }
  if (node['x-kubernetes-int-or-string'] === true) {
    const { type: _type, ...rest } = out;
    return { ...rest, anyOf: [{ type: 'integer' }, { type: 'string' }] };
  }
  // Unknown fields are errors (strict field validation), unless the schema keeps them.
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined && node['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  if (node['x-kubernetes-list-type'] === 'set') out.uniqueItems = true;
  if (node['x-kubernetes-list-type'] === 'map') out.listMapKeys = node['x-kubernetes-list-map-keys'] ?? [];
  return out;
}

function ajv(): Ajv {
  const a = new Ajv({ allErrors: true, strict: true, strictRequired: false, strictTypes: false });
  a.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  a.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  a.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  a.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
  a.addFormat('ipv4', /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/);
  a.addFormat('ipv6', (s: string) => /^[0-9a-fA-F:.]+$/.test(s) && s.includes(':'));
  // x-kubernetes-list-type: map — no two items share the values of the key fields.
  a.addKeyword({
    keyword: 'listMapKeys',
    type: 'array',
    schemaType: 'array',
    validate: (keys: string[], data: Record<string, unknown>[]) => {
      const seen = new Set(data.map((item) => JSON.stringify(keys.map((k) => item?.[k] ?? null))));
      return seen.size === data.length;
    },
  });
  return a;
}

export interface CrdValidator {
  /** `apiVersion/kind` this validator checks. */
  readonly type: string;
  /** The CRD file it came from. */
  readonly file: string;
  /** Error texts; empty when the object is valid. */
  validate(object: unknown): string[];
}

/** One validator per served version of every CRD in infra/crds, keyed `apiVersion/kind`. */
export function loadCrdValidators(dir: string = CRD_DIR): Map<string, CrdValidator> {
  const a = ajv();
  const out = new Map<string, CrdValidator>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      const crd = doc.toJS() as Schema;
      if (crd?.kind !== 'CustomResourceDefinition') continue;
      for (const version of crd.spec.versions as Schema[]) {
        if (!version.served) continue;
        const type = `${crd.spec.group}/${version.name}/${crd.spec.names.kind}`;
        const check: ValidateFunction = a.compile(toJsonSchema(version.schema.openAPIV3Schema));
        out.set(type, {
          type,
          file,
          validate(object: unknown): string[] {
            const errors: string[] = [];
            if (!check(object)) errors.push(...(check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`));
            const metadata = (object as { metadata?: { name?: unknown; namespace?: unknown } })?.metadata;
            // What the API server checks of every custom resource's name and namespace.
            if (typeof metadata?.name !== 'string' || !DNS_SUBDOMAIN.test(metadata.name)) errors.push(`/metadata/name ${JSON.stringify(metadata?.name)} is not a DNS-1123 subdomain`);
            if (metadata?.namespace !== undefined && (typeof metadata.namespace !== 'string' || !DNS_LABEL.test(metadata.namespace))) errors.push(`/metadata/namespace ${JSON.stringify(metadata.namespace)} is not a DNS-1123 label`);
            try {
              new ObjectMeta(metadata as never).validate();
            } catch (err) {
              errors.push(`/metadata ${(err as Error).message}`);
            }
            return errors;
          },
        });
      }
    }
  }
  return out;
}
