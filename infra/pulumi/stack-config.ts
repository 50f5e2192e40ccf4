/**
 * Stack config → the same plain record of settings that `npm run synth` builds from
 * `LEVEE_*` variables, so `resolveConfig` validates both with the same messages.
 * `levee:<setting>` maps to setting `<setting>`; the few keys only Pulumi needs (how to
 * reach the cluster) are taken out first.
 */

/** Settings that only the Pulumi program reads; not part of the chart configuration. */
export const PULUMI_ONLY_SETTINGS = {
  kubeContext: 'kubeconfig context to deploy to; empty = the current context of the kubeconfig',
  kubeconfig: 'kubeconfig contents or path (set it with --secret); empty = $KUBECONFIG or ~/.kube/config',
} as const;

export type PulumiOnlySetting = keyof typeof PULUMI_ONLY_SETTINGS;

/** Stack names of preview environments: `preview-<id>` → namespace `levee-<id>`. */
export const PREVIEW_STACK = /^preview-(.+)$/;

export interface StackSettings {
  /** Setting name → text, exactly what `resolveConfig` takes (unknown keys included, so it can refuse them). */
  readonly settings: Readonly<Record<string, string>>;
  /** Kubernetes provider settings. */
  readonly kubernetes: { readonly context?: string; readonly kubeconfig?: string };
}

/**
 * Splits the whole stack config (`pulumi.runtime.allConfig()`: `"<namespace>:<key>"` → text)
 * into chart settings and provider settings. A stack named `preview-<id>` defaults
 * `environment` to `preview` and `previewId` to `<id>`; explicit config wins.
 */
export function stackSettings(allConfig: Readonly<Record<string, string>>, project: string, stack: string): StackSettings {
  const settings: Record<string, string> = {};
  const kubernetes: { context?: string; kubeconfig?: string } = {};
  const prefix = `${project}:`;
  for (const [fullKey, value] of Object.entries(allConfig)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (key === 'kubeContext') {
      if (value !== '') kubernetes.context = value;
    } else if (key === 'kubeconfig') {
      if (value !== '') kubernetes.kubeconfig = value;
    } else {
      settings[key] = value;
    }
  }
  const preview = PREVIEW_STACK.exec(stack);
  if (preview) {
    settings.environment ??= 'preview';
    if (settings.environment === 'preview') settings.previewId ??= preview[1]!;
  }
  return { settings, kubernetes };
}
