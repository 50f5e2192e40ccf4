/**
 * Pulumi mocks that record every registration. `setMocks` must run before the program
 * module is imported (pulumi/examples testing-unit-ts-mocks-jest), so tests call
 * {@link installMocks} first and `await import()` the program afterwards.
 */
import * as pulumi from '@pulumi/pulumi';

export interface Registration {
  readonly type: string;
  readonly name: string;
  /** Inputs as the engine would see them; secrets stay wrapped (see {@link isSecretValue}). */
  readonly inputs: Record<string, unknown>;
  readonly provider: string;
  readonly custom: boolean;
}

/** What the mocked `random.RandomPassword` returns, so tests can look for it in plain text. */
export const MOCK_PASSWORD = 'mock-password-7f3a9c1e5b2d';
/** What the mocked random.RandomBytes returns (base64 of 32 bytes), as the webhook signing key's body. */
export const MOCK_BYTES_BASE64 = Buffer.alloc(32, 0x5a).toString('base64');
/** What the mocked LoadBalancer Service reports as its external address. */
export const MOCK_LB_IP = '203.0.113.10';

export function isSecretValue(v: unknown): v is { value: unknown } {
  return v !== null && typeof v === 'object' && (v as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig;
}

/** Removes the secret wrappers (for comparing values, never for the plaintext check). */
export function unwrapSecrets(v: unknown): unknown {
  if (isSecretValue(v)) return unwrapSecrets(v.value);
  if (Array.isArray(v)) return v.map(unwrapSecrets);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, unwrapSecrets(x)]));
  }
  return v;
}

/** Every string in `v` that is not inside a secret wrapper, with its path. */
export function plainStrings(v: unknown, path = ''): { path: string; value: string }[] {
  if (isSecretValue(v)) return [];
  if (typeof v === 'string') return [{ path, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => plainStrings(x, `${path}[${i}]`));
  if (v !== null && typeof v === 'object') return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => plainStrings(x, `${path}.${k}`));
  return [];
}

export interface Recorder {
  readonly registrations: Registration[];
}

/** Installs fresh mocks for one program run and returns the list they fill. */
export async function installMocks(stack: string, config: Record<string, string>, project = 'levee'): Promise<Recorder> {
  const registrations: Registration[] = [];
  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        registrations.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider ?? '', custom: args.custom ?? true });
        const state: Record<string, unknown> = { ...args.inputs };
        if (args.type === 'random:index/randomPassword:RandomPassword') {
          state.result = MOCK_PASSWORD;
        }
        if (args.type === 'random:index/randomBytes:RandomBytes') {
          state.base64 = MOCK_BYTES_BASE64;
          state.hex = Buffer.from(MOCK_BYTES_BASE64, 'base64').toString('hex');
        }
        const spec = unwrapSecrets(args.inputs.spec) as { type?: string } | undefined;
        if (args.type === 'kubernetes:core/v1:Service' && spec?.type === 'LoadBalancer') {
          state.status = { loadBalancer: { ingress: [{ ip: MOCK_LB_IP }] } };
        }
        return { id: `${args.name}-id`, state };
      },
      call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        return args.inputs;
      },
    },
    project,
    stack,
    false,
  );
  return { registrations };
}

/** Resolves an Output in a test (mocks resolve them asynchronously). */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

/** Waits until every given resource has been registered with the mock monitor. */
export async function registered(resources: readonly pulumi.Resource[]): Promise<void> {
  await Promise.all(resources.map((r) => valueOf(r.urn)));
}
