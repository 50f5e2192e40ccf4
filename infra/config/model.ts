/**
 * The model tier: in the cluster (image, GPUs, nodes, Karpenter) or external (URL, CIDRs, key),
 * scale to zero with KEDA, and the resolved {@link ModelServer}.
 */
import type { SettingName, SettingValues } from './settings';
import { KARPENTER_ONLY_SETTINGS, settingLabel } from './settings';
import { show } from './problems';
import type { ModelServer } from './types';

/** Cross-setting rules of the model tier. */
export function modelProblems(
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  const problems: string[] = [];
  const externalModel = v.modelUrl !== '';
  const givenNonEmpty = (name: SettingName) => given(name) && raw[name] !== '';
  if (externalModel) {
    for (const name of ['modelImage', 'modelGpus', 'modelGpuResource', 'modelGpuTaint', 'modelNodeSelector', 'modelRuntimeClass', 'modelStartupSeconds', 'nodeProvisioner'] as const) {
      if (givenNonEmpty(name) && !(name === 'modelGpus' && v.modelGpus === 0) && !(name === 'nodeProvisioner' && v.nodeProvisioner === 'none')) {
        problems.push(`${show(name, raw[name])} contradicts ${show('modelUrl', raw.modelUrl)}; allowed: ${name} only for a model in the cluster (modelUrl = "")`);
      }
    }
    if (v.modelMinReplicas === 0) problems.push(`${show('modelMinReplicas', raw.modelMinReplicas)} contradicts ${show('modelUrl', raw.modelUrl)}; allowed: scale to zero only for a model in the cluster`);
  } else if (given('modelCidrs')) {
    problems.push(`${show('modelCidrs', raw.modelCidrs)} contradicts ${show('modelUrl', raw.modelUrl)}; allowed: modelCidrs only with an external model (modelUrl)`);
  }
  if (v.modelGpus === 0) {
    for (const name of ['modelGpuResource', 'modelGpuTaint'] as const) {
      if (given(name)) problems.push(`${show(name, raw[name])} contradicts ${show('modelGpus', raw.modelGpus)}; allowed: ${name} only with GPUs (modelGpus > 0)`);
    }
  }
  if (v.nodeProvisioner === 'karpenter' && v.modelGpus === 0) {
    problems.push(`${show('nodeProvisioner', raw.nodeProvisioner)} contradicts ${show('modelGpus', raw.modelGpus)}; allowed: the Karpenter NodePool is for the model's GPU nodes: set modelGpus > 0`);
  }
  if (v.nodeProvisioner !== 'karpenter') {
    for (const name of KARPENTER_ONLY_SETTINGS.filter(given)) {
      problems.push(`${show(name, raw[name])} contradicts ${show('nodeProvisioner', raw.nodeProvisioner)}; allowed: ${name} only with nodeProvisioner = "karpenter"`);
    }
  }
  // A key in clear text to anywhere on the internet: refused.
  if (externalModel && v.modelApiKeySecret !== '' && v.modelUrl.startsWith('http:') && v.modelCidrs.split(',').some((c) => c === '0.0.0.0/0' || c === '::/0')) {
    problems.push(`${show('modelUrl', raw.modelUrl)} contradicts ${show('modelApiKeySecret', raw.modelApiKeySecret)}: the key would cross the internet in clear text; allowed: an https:// model URL, or modelCidrs limited to your private network`);
  }
  if (v.modelStyles !== '' && v.modelApi !== 'openai-images') {
    problems.push(`${show('modelStyles', raw.modelStyles)} contradicts ${show('modelApi', raw.modelApi)}; allowed: modelStyles only with modelApi = "openai-images" (the levee API serves its own catalog)`);
  }
  if (v.modelMinReplicas === 0) {
    if (v.workerAutoscaler !== 'keda') {
      problems.push(`${show('modelMinReplicas', raw.modelMinReplicas)} needs ${settingLabel('workerAutoscaler')} = "keda" (got ${JSON.stringify(raw.workerAutoscaler)}); allowed: scale to zero with KEDA, which scales the model and the workers on the queue`);
    }
    if (given('modelCpuTarget')) problems.push(`${show('modelCpuTarget', raw.modelCpuTarget)} contradicts ${show('modelMinReplicas', raw.modelMinReplicas)}; allowed: a CPU target only when the model does not scale to zero (KEDA scales it on the queue)`);
  } else if (given('kedaCooldownSeconds')) {
    problems.push(`${show('kedaCooldownSeconds', raw.kedaCooldownSeconds)} contradicts ${show('modelMinReplicas', raw.modelMinReplicas)}; allowed: a cooldown only with scale to zero (modelMinReplicas = 0)`);
  }
  return problems;
}

/** The resolved model tier. */
export function modelServer(v: SettingValues, namespace: string): ModelServer {
  const url = v.modelUrl !== '' ? new URL(v.modelUrl) : undefined;
  return {
    api: v.modelApi,
    name: v.modelName,
    ...(v.modelApiKeySecret !== '' ? { apiKeySecret: v.modelApiKeySecret } : {}),
    ...(v.modelStyles !== '' ? { styles: v.modelStyles } : {}),
    ...(url ? { external: { url: v.modelUrl, cidrs: v.modelCidrs.split(','), port: url.port ? Number(url.port) : url.protocol === 'http:' ? 80 : 443 } } : {}),
    ...(v.modelImage !== '' ? { image: v.modelImage } : {}),
    gpus: v.modelGpus,
    gpuResource: v.modelGpuResource,
    gpuTaintKey: v.modelGpuTaint,
    nodeSelector: v.modelNodeSelector,
    ...(v.modelRuntimeClass !== '' ? { runtimeClass: v.modelRuntimeClass } : {}),
    startupSeconds: v.modelStartupSeconds,
    scaleToZero: v.modelMinReplicas === 0,
    kedaCooldownSeconds: v.kedaCooldownSeconds,
    ...(v.nodeProvisioner === 'karpenter'
      ? { karpenter: { nodePool: `${namespace}-gpu`, nodeClass: v.gpuNodeClass, requirements: v.gpuRequirements, gpuLimit: v.gpuLimit, consolidateAfter: v.gpuConsolidateAfter, expireAfter: v.gpuExpireAfter, budget: v.gpuDisruptionBudget } }
      : {}),
  };
}
