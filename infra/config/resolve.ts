/**
 * Turns a plain record of settings (environment variables for synth, stack config for
 * Pulumi — same keys, same messages) into a validated {@link LeveeConfig}.
 * Nothing is built before this succeeds.
 */
import {
  CacheRedisMode, Cpu, DnsSelector, Environment, GatewayRef, HashBy, KARPENTER_ONLY_SETTINGS, L7ProviderName, Label, LoadBalancingAlgorithm, MONITORING_ONLY_SETTINGS, Memory, ModelApiName, NodeClassRef,
  NodeRequirement, QueueRedisMode, S3_ONLY_SETTINGS, SETTINGS, SETTING_NAMES, SettingName, SettingValues, settingLabel,
} from './settings';

export interface Resources {
  readonly cpuRequest: Cpu;
  readonly cpuLimit: Cpu;
  readonly memoryRequest: Memory;
  readonly memoryLimit: Memory;
}

export interface AppSizing {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  readonly cpuTargetPercent: number;
  readonly resources: Resources;
}

export interface LoadBalancing {
  readonly algorithm: LoadBalancingAlgorithm;
  /** Set only when the algorithm is `hash`. */
  readonly hashBy?: HashBy;
  readonly hashHeader?: string;
  readonly hashCookie?: string;
  /** Max-Age of the affinity cookie, a Gateway API duration (hash by cookie only). */
  readonly hashCookieTtl?: string;
}

/** How Envoy finds the client IP (a ClientTrafficPolicy on Levee's own Gateway). */
export type ClientIpDetectionConfig = { readonly mode: 'xff'; readonly trustedHops: number } | { readonly mode: 'proxy-protocol' };

/** Envoy Gateway policies in front of the app's own defenses; each undefined/0 = off. */
export interface EnvoyEdge {
  /** undefined when Levee attaches to a shared Gateway (its owner sets client IP detection). */
  readonly clientIp?: ClientIpDetectionConfig;
  readonly requestTimeout?: string;
  readonly idleTimeout?: string;
  /** Retries of GETs on connect failure or 503; 0 = none. */
  readonly retries: number;
  readonly circuitBreaker: { readonly maxConnections?: number; readonly maxPendingRequests?: number; readonly maxParallelRequests?: number };
  /** Consecutive local-origin failures (connect failure, reset, timeout) that eject a pod. */
  readonly outlierFailures?: number;
  /** Per-client requests per second in each Envoy: multiplier × the app's RATE_LIMIT_PER_SECOND. */
  readonly rateLimitPerSecond?: number;
}

/** The Gateway API side of the edge (providers envoy-gateway and gateway-api). */
export interface GatewayEdge {
  /** gatewayClassName of the Gateway Levee creates (unused with a shared Gateway). */
  readonly className: string;
  /** Attach to this existing Gateway instead of creating one. */
  readonly shared?: GatewayRef;
  /** Own Gateway with TLS: the HTTP listener only redirects to HTTPS. */
  readonly httpRedirect: boolean;
}

/** Alert thresholds (see infra/monitoring/alerts.ts and the README's list of alerts). */
export interface AlertThresholds {
  readonly breakerOpenMinutes: number;
  readonly rateLimitedPercent: number;
  readonly queueRejectedPercent: number;
  readonly oldestJobMinutes: number;
  readonly jobFailurePercent: number;
  readonly webhookFailurePercent: number;
  readonly stalledJobs: number;
  readonly queueRedisMemoryPercent: number;
  readonly gatewayMaxedMinutes: number;
}

/** prometheus-operator objects and the Grafana dashboard; present only when monitoring is on. */
export interface MonitoringConfig {
  readonly labels: readonly Label[];
  readonly scrapeIntervalSeconds: number;
  readonly dashboardLabel: Label;
  readonly runbookUrl: string;
  readonly alerts: AlertThresholds;
}

/** A managed Redis outside the cluster (`LEVEE_QUEUE_REDIS=external`, `LEVEE_CACHE_REDIS=external`). */
export interface ExternalRedis {
  /** The URL as given (no credentials). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** `rediss://` */
  readonly tls: boolean;
  /** ACL user, if any. */
  readonly username?: string;
  /** Secret (key `ca.crt`) with the CA that signed its certificate; none = the system CAs. */
  readonly caSecret?: string;
  /** Where it is, for the egress NetworkPolicy (on `port`). */
  readonly cidrs: readonly string[];
}

/** The Sentinel part of `LEVEE_QUEUE_REDIS=sentinel` (fixed: three Sentinels, a majority of two). */
export interface SentinelSettings {
  readonly sentinels: number;
  readonly quorum: number;
  /** A primary unreachable this long is down (then a failover starts once the quorum agrees). */
  readonly downAfterMs: number;
  readonly failoverTimeoutMs: number;
}

/** Sentinels of the Sentinel topology: an odd number, so a majority survives the loss of one. */
export const SENTINEL_DEFAULTS: SentinelSettings = { sentinels: 3, quorum: 2, downAfterMs: 5000, failoverTimeoutMs: 20_000 };

/** Rendered PNGs in S3-compatible object storage (`LEVEE_IMAGE_STORE=s3`). */
export interface S3Store {
  readonly kind: 's3';
  readonly bucket: string;
  /** Objects are `<prefix><job id>.png`. */
  readonly prefix: string;
  /** Undefined: AWS S3. */
  readonly endpoint?: string;
  /** Undefined: the pods' AWS_REGION, else us-east-1. */
  readonly region?: string;
  readonly forcePathStyle: boolean;
  /** Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; undefined: the SDK's default chain. */
  readonly credentialsSecret?: string;
  /** ServiceAccount annotations of the pods that use the store (worker, media): IRSA, GKE Workload Identity. */
  readonly serviceAccountAnnotations: Readonly<Record<string, string>>;
  /** Where the store is reached (the worker's and media's egress). */
  readonly egress: { readonly cidrs: readonly string[]; readonly port: number };
}

/** The model tier: the API, the server (in the cluster or not), its nodes and GPUs, and scale to zero. */
export interface ModelServer {
  readonly api: ModelApiName;
  readonly name: string;
  /** Secret (key `api-key`) with the Bearer key, if any. */
  readonly apiKeySecret?: string;
  /** openai-images: the catalog `/api/styles` serves (comma-separated ids). */
  readonly styles?: string;
  /** An endpoint outside the chart: no model Deployment, egress to it instead. */
  readonly external?: { readonly url: string; readonly cidrs: readonly string[]; readonly port: number };
  /** A model image of the user's; undefined: Levee's stand-in. */
  readonly image?: string;
  /** GPUs per pod (0 = none), of `gpuResource`, tolerating `gpuTaintKey`. */
  readonly gpus: number;
  readonly gpuResource: string;
  readonly gpuTaintKey: string;
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly runtimeClass?: string;
  /** The startupProbe allows this long to load and warm up. */
  readonly startupSeconds: number;
  /** LEVEE_MODEL_MIN_REPLICAS = 0: KEDA scales the model and the workers from zero. */
  readonly scaleToZero: boolean;
  readonly kedaCooldownSeconds: number;
  /** With LEVEE_NODE_PROVISIONER=karpenter: the NodePool of the GPU nodes. */
  readonly karpenter?: {
    readonly nodePool: string;
    readonly nodeClass: NodeClassRef;
    readonly requirements: readonly NodeRequirement[];
    readonly gpuLimit: number;
    readonly consolidateAfter: string;
    readonly expireAfter: string;
    readonly budget: string;
  };
}

/** IPv4 and IPv6 ranges that "anywhere" leaves out of the object store's egress: private, CGNAT, link-local (the cloud metadata address), unique-local. */
export const NOT_THE_INTERNET = { v4: ['10.0.0.0/8', '100.64.0.0/10', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'], v6: ['fc00::/7', 'fe80::/10'] } as const;

export interface LeveeConfig {
  readonly environment: Environment;
  readonly previewId?: string;
  readonly namespace: string;
  /** Labels put on every object (environment and preview id). */
  readonly labels: Readonly<Record<string, string>>;
  readonly images: {
    readonly registry: string;
    readonly tag: string;
    /** Digest per app image name (`levee-gateway` → `sha256:…`); empty = pinned by tag only. */
    readonly digests: Readonly<Record<string, string>>;
    readonly redis: string;
  };
  readonly gateway: AppSizing;
  readonly media: AppSizing;
  readonly model: AppSizing;
  /** Which model, where, on which nodes (docs/model.md). */
  readonly modelServer: ModelServer;
  readonly worker: AppSizing & {
    readonly autoscaler: 'cpu' | 'keda';
    readonly kedaListLength: number;
    readonly concurrency: number;
    readonly modelTimeoutMs: number;
    /** JOB_DEADLINE_SECONDS: older jobs are not rendered. */
    readonly jobDeadlineSeconds: number;
  };
  /** The webhook sender (the worker image, its own pods and egress) and the gateway's push settings (docs/push.md). */
  readonly webhooks: AppSizing & {
    /** Secret (key `secret`) with the whsec_… signing key. */
    readonly secret: string;
    /** Where the sender may connect: the internet by default (never the cluster's ranges), plus `allowedCidrs`. */
    readonly egressCidrs: readonly string[];
    /** WEBHOOK_ALLOWED_CIDRS, as given ('' = none). */
    readonly allowedCidrs: string;
    readonly allowHttp: boolean;
    readonly allowedPorts: readonly number[];
    readonly eventsMaxPerClient: number;
    readonly eventsMax: number;
  };
  readonly queueRedis: {
    readonly mode: QueueRedisMode;
    /** Redis data pods in the cluster: 1 (statefulset), `LEVEE_QUEUE_REDIS_REPLICAS` (sentinel), 0 (external). */
    readonly replicas: number;
    /** Replicas that must confirm each accepted job and stored image (QUEUE_MIN_REPLICAS_ACKED). */
    readonly minReplicasAcked: number;
    /** Only with `sentinel`. */
    readonly sentinel?: SentinelSettings;
    /** Only with `external`. */
    readonly external?: ExternalRedis;
    /** Secret (key `password`) holding the password. */
    readonly passwordSecret: string;
    readonly memory: Memory;
    /** `maxmemory` in MiB: 75% of the memory limit, leaving room for fork/AOF rewrite buffers. */
    readonly maxmemoryMb: number;
    readonly persistence: boolean;
    readonly storageSize: Memory;
    readonly storageClass?: string;
  };
  readonly cacheRedis: {
    readonly mode: CacheRedisMode;
    /** Only with `external`. */
    readonly external?: ExternalRedis;
    readonly passwordSecret: string;
    readonly memory: Memory;
    readonly maxmemoryMb: number;
  };
  readonly edge: {
    readonly l4: boolean;
    readonly l7Provider: L7ProviderName;
    readonly ingressClass: string;
    readonly host: string;
    /** TLS Secret in Levee's namespace (own Gateway or Ingress); never set with a shared Gateway. */
    readonly tlsSecret?: string;
    /** The public URLs are https (own TLS Secret, or a shared Gateway that terminates TLS). */
    readonly https: boolean;
    readonly l7Namespace: string;
    /** matchLabels of the L7 proxy pods in l7Namespace; empty = every pod there. */
    readonly l7ProxyLabels: Readonly<Record<string, string>>;
    /** Set for the Gateway API providers. */
    readonly gateway?: GatewayEdge;
    /** Set for envoy-gateway only. */
    readonly envoy?: EnvoyEdge;
  };
  /** Where the worker puts rendered PNGs and media reads them. */
  readonly imageStore: { readonly kind: 'redis' } | S3Store;
  /** How `GET /images/{id}.png` hands them out, and the status document's `imageUrl`. */
  readonly imageDelivery: { readonly mode: 'stream' | 'redirect'; readonly urlTtlSeconds: number; readonly publicBaseUrl?: string };
  readonly loadBalancing: LoadBalancing;
  readonly monitoringNamespace: string;
  /** With `monitoring = prometheus-operator`; undefined = no monitoring objects. */
  readonly monitoring?: MonitoringConfig;
  readonly kedaNamespace: string;
  /** Where the apps may send DNS queries (the DNS egress rule). */
  readonly dns: { readonly selector: DnsSelector; readonly port: number; readonly cidrs: readonly string[] };
  readonly app: {
    readonly rateLimitPerSecond: number;
    readonly rateLimitIpv6Prefix: number;
    readonly trustProxy: string;
    readonly queueName: string;
    readonly queueMaxWaiting: number;
    readonly cacheTtlSeconds: number;
    readonly breakerOpenSeconds: number;
    readonly imageTtlSeconds: number;
    readonly logLevel: string;
  };
  readonly shutdown: { readonly preStopSeconds: number; readonly shutdownDelaySeconds: number; readonly drainSeconds: number };
  /** PodDisruptionBudgets only where they cannot block a drain (never in preview/dev). */
  readonly podDisruptionBudgets: boolean;
  /** ResourceQuota + LimitRange for the namespace (preview and dev). */
  readonly namespaceGuards: boolean;
}

/** Settings as given: any key, any string; unset = undefined. */
export type SettingsInput = Readonly<Partial<Record<string, string | undefined>>>;

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid Levee configuration (nothing was written):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function show(name: SettingName, value: string | undefined): string {
  return `${settingLabel(name)} = ${JSON.stringify(value ?? '')}`;
}

/** Validates and resolves the settings; throws {@link ConfigError} listing every problem. */
export function resolveConfig(input: SettingsInput): LeveeConfig {
  const problems: string[] = [];
  for (const key of Object.keys(input)) {
    if (input[key] !== undefined && !(SETTING_NAMES as string[]).includes(key)) {
      problems.push(`unknown setting "${key}"; allowed: the settings listed in infra/README.md (${SETTING_NAMES.slice(0, 3).join(', ')}, …)`);
    }
  }
  const given = (name: SettingName): boolean => input[name] !== undefined;

  // The environment decides the defaults of everything else, so it is resolved first.
  const envRaw = input.environment ?? 'production';
  const envParsed = SETTINGS.environment.parse(envRaw);
  if (!envParsed.ok) {
    problems.push(`${show('environment', envRaw)} is invalid; allowed: ${envParsed.allowed}`);
    throw new ConfigError(problems);
  }
  const environment = envParsed.value;
  if (environment === 'preview' && !given('previewId')) {
    problems.push(`${settingLabel('previewId')} is required when ${settingLabel('environment')} = "preview"; allowed: a namespace suffix such as pr-123`);
    throw new ConfigError(problems);
  }
  // Defaults derived from the preview id (the host) use a placeholder while the id is invalid,
  // so the one mistake is reported once.
  const previewIdRaw = input.previewId;
  const idForDefaults = previewIdRaw !== undefined && SETTINGS.previewId.parse(previewIdRaw).ok ? previewIdRaw : 'preview';

  const raw: Partial<Record<SettingName, string>> = {};
  const values: Partial<Record<SettingName, unknown>> = {};
  for (const name of SETTING_NAMES) {
    const spec = SETTINGS[name] as { parse: (r: string) => { ok: boolean; value?: unknown; allowed?: string }; default: (e: Environment, id: string) => string | undefined };
    const text = input[name] ?? spec.default(environment, idForDefaults);
    if (text === undefined) continue;
    raw[name] = text;
    const parsed = spec.parse(text);
    if (parsed.ok) values[name] = parsed.value;
    else problems.push(`${show(name, text)} is invalid; allowed: ${parsed.allowed}`);
  }
  // The queue Redis's size follows what it holds: jobs only (s3), or jobs and their PNGs (redis).
  if (raw.queueRedisMemory === undefined) {
    const text = environment !== 'production' ? '256Mi' : values.imageStore === 'redis' ? '1Gi' : '512Mi';
    const parsed = SETTINGS.queueRedisMemory.parse(text);
    if (parsed.ok) values.queueRedisMemory = parsed.value;
    raw.queueRedisMemory = text;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const v = values as SettingValues;

  // Cross-setting rules: contradictions are refused, not silently resolved.
  if (environment !== 'preview' && given('previewId')) {
    problems.push(`${show('previewId', raw.previewId)} is only allowed when ${settingLabel('environment')} = "preview" (got "${environment}")`);
  }
  for (const app of ['gateway', 'media', 'model', 'worker'] as const) {
    const min = `${app}MinReplicas` as const;
    const max = `${app}MaxReplicas` as const;
    if (v[min] >= v[max]) {
      problems.push(`${show(min, raw[min])} is not below ${show(max, raw[max])}; allowed: minimum replicas < maximum replicas (an autoscaler needs room to scale)`);
    }
    const cpuReq = `${app}CpuRequest` as const;
    const cpuLim = `${app}CpuLimit` as const;
    if (v[cpuReq].millis > v[cpuLim].millis) {
      problems.push(`${show(cpuReq, raw[cpuReq])} is greater than ${show(cpuLim, raw[cpuLim])}; allowed: request ≤ limit`);
    }
    const memReq = `${app}MemoryRequest` as const;
    const memLim = `${app}MemoryLimit` as const;
    if (v[memReq].bytes > v[memLim].bytes) {
      problems.push(`${show(memReq, raw[memReq])} is greater than ${show(memLim, raw[memLim])}; allowed: request ≤ limit`);
    }
  }
  if (v.workerAutoscaler === 'keda' && given('workerCpuTarget')) {
    problems.push(`${show('workerCpuTarget', raw.workerCpuTarget)} contradicts ${settingLabel('workerAutoscaler')} = "keda"; allowed: a CPU target only with workerAutoscaler = "cpu" (KEDA scales on queue depth)`);
  }
  if (v.workerAutoscaler === 'cpu' && given('kedaListLength')) {
    problems.push(`${show('kedaListLength', raw.kedaListLength)} contradicts ${settingLabel('workerAutoscaler')} = "cpu"; allowed: a KEDA list length only with workerAutoscaler = "keda"`);
  }
  if (!v.queueRedisPersistence && (given('queueRedisStorageSize') || given('storageClass'))) {
    const which: SettingName = given('queueRedisStorageSize') ? 'queueRedisStorageSize' : 'storageClass';
    problems.push(`${show(which, raw[which])} contradicts ${settingLabel('queueRedisPersistence')} = "false"; allowed: storage settings only with persistence = "true"`);
  }
  if (v.monitoring !== 'prometheus-operator') {
    for (const name of MONITORING_ONLY_SETTINGS.filter(given)) {
      problems.push(`${show(name, raw[name])} contradicts ${show('monitoring', raw.monitoring)}; allowed: ${name} only with monitoring = "prometheus-operator"`);
    }
  }
  for (const [mem, label] of [['queueRedisMemory', 'queue'], ['cacheRedisMemory', 'cache']] as const) {
    if (v[mem].bytes < 64 * 1024 ** 2) {
      problems.push(`${show(mem, raw[mem])} is too small for the ${label} Redis; allowed: at least 64Mi`);
    }
  }

  // The Redis modes: each mode's own settings only with that mode, and what each mode needs.
  const queueMode = v.queueRedis;
  const queueModeIs = `${show('queueRedis', raw.queueRedis)}`;
  if (queueMode === 'sentinel' && v.queueRedisReplicas < 2) {
    problems.push(`${show('queueRedisReplicas', raw.queueRedisReplicas)} is too few for ${queueModeIs}; allowed: at least 2 data pods (a primary and a replica to promote); 3 by default`);
  }
  if (queueMode !== 'sentinel' && given('queueRedisReplicas')) {
    problems.push(`${show('queueRedisReplicas', raw.queueRedisReplicas)} contradicts ${queueModeIs}; allowed: data pods only with queueRedis = "sentinel" (statefulset runs one, external none)`);
  }
  if (given('queueMinReplicasAcked')) {
    const replicasAvailable = queueMode === 'sentinel' ? v.queueRedisReplicas - 1 : queueMode === 'statefulset' ? 0 : Infinity;
    if (v.queueMinReplicasAcked > replicasAvailable) {
      problems.push(
        `${show('queueMinReplicasAcked', raw.queueMinReplicasAcked)} can never be confirmed with ${queueModeIs}${queueMode === 'sentinel' ? ` and ${show('queueRedisReplicas', raw.queueRedisReplicas)}` : ''}; allowed: at most ${replicasAvailable} (the replicas there are)`,
      );
    }
  }
  for (const role of ['queue', 'cache'] as const) {
    const mode = role === 'queue' ? 'queueRedis' : 'cacheRedis';
    const external = v[mode] === 'external';
    const url = `${role}RedisUrl` as const;
    const cidrs = `${role}RedisCidrs` as const;
    const onlyExternal = [url, `${role}RedisUsername`, `${role}RedisCaSecret`, cidrs] as const;
    if (external) {
      if (raw[url] === '') problems.push(`${settingLabel(url)} is required when ${show(mode, raw[mode])}; allowed: the managed Redis's redis:// or rediss:// URL (e.g. rediss://my-redis.example.com:6380)`);
      if (raw[cidrs] === '') problems.push(`${settingLabel(cidrs)} is required when ${show(mode, raw[mode])}; allowed: the CIDRs the managed Redis is reached at (the egress NetworkPolicy allows only those), e.g. 10.20.0.0/16`);
      if (given(`${role}RedisCaSecret`) && raw[`${role}RedisCaSecret`] !== '' && !String(raw[url]).startsWith('rediss://')) {
        problems.push(`${show(`${role}RedisCaSecret`, raw[`${role}RedisCaSecret`])} contradicts ${show(url, raw[url])}; allowed: a CA Secret only with a rediss:// (TLS) URL`);
      }
      const inCluster = role === 'queue' ? (['queueRedisMemory', 'queueRedisPersistence', 'queueRedisStorageSize', 'storageClass'] as const) : (['cacheRedisMemory'] as const);
      for (const name of inCluster) {
        if (given(name)) problems.push(`${show(name, raw[name])} contradicts ${show(mode, raw[mode])}; allowed: ${name} only with a Redis in the cluster`);
      }
    } else {
      for (const name of onlyExternal) {
        if (given(name) && raw[name] !== '') problems.push(`${show(name, raw[name])} contradicts ${show(mode, raw[mode])}; allowed: ${name} only with ${mode} = "external"`);
      }
    }
  }

  // The model tier.
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

  // The image store: the s3 settings only with s3; one way to the credentials.
  if (v.imageStore === 'redis') {
    for (const name of S3_ONLY_SETTINGS.filter((n) => given(n) && raw[n] !== '')) {
      problems.push(`${show(name, raw[name])} contradicts ${show('imageStore', raw.imageStore)}; allowed: ${name} only with imageStore = "s3"`);
    }
    if (v.imageDelivery === 'redirect') problems.push(`${show('imageDelivery', raw.imageDelivery)} contradicts ${show('imageStore', raw.imageStore)}; allowed: redirect (a presigned URL of the object) only with imageStore = "s3"`);
  } else if (v.imageS3RoleArn !== '' && v.imageS3CredentialsSecret !== '') {
    problems.push(`${show('imageS3CredentialsSecret', raw.imageS3CredentialsSecret)} contradicts ${show('imageS3RoleArn', raw.imageS3RoleArn)}: keys in the environment win over the role, silently; allowed: one of them`);
  }
  if (given('imageUrlTtlSeconds') && v.imageDelivery !== 'redirect') {
    problems.push(`${show('imageUrlTtlSeconds', raw.imageUrlTtlSeconds)} contradicts ${show('imageDelivery', raw.imageDelivery)}; allowed: imageUrlTtlSeconds only with imageDelivery = "redirect"`);
  }

  // Load balancing: one algorithm, written out for L7 and (when present) the L4 Service.
  if (v.loadBalancing !== 'hash') {
    for (const name of ['hashBy', 'hashHeader', 'hashCookie'] as const) {
      if (given(name)) {
        problems.push(`${show(name, raw[name])} contradicts ${show('loadBalancing', raw.loadBalancing)}; allowed: ${name} only with loadBalancing = "hash"`);
      }
    }
  } else {
    if (given('hashHeader') && v.hashBy !== 'header') {
      problems.push(`${show('hashHeader', raw.hashHeader)} contradicts ${show('hashBy', raw.hashBy)}; allowed: hashHeader only with hashBy = "header"`);
    }
    if (given('hashCookie') && v.hashBy !== 'cookie') {
      problems.push(`${show('hashCookie', raw.hashCookie)} contradicts ${show('hashBy', raw.hashBy)}; allowed: hashCookie only with hashBy = "cookie"`);
    }
  }
  const l4 = v.edge === 'l4+l7';
  if (l4 && v.loadBalancing === 'least-request') {
    problems.push(`${show('loadBalancing', raw.loadBalancing)} cannot be written out for the L4 Service (kube-proxy balances connections, not requests) while ${show('edge', raw.edge)}; allowed at L4: round-robin, or hash with hashBy = "client-ip"; or set edge = "l7"`);
  }
  if (l4 && v.loadBalancing === 'hash' && v.hashBy !== 'client-ip') {
    problems.push(`${show('hashBy', raw.hashBy)} cannot be written out for the L4 Service (it sees no headers or cookies) while ${show('edge', raw.edge)}; allowed at L4: hashBy = "client-ip"; or set edge = "l7"`);
  }
  if (given('hashCookieTtl') && (v.loadBalancing !== 'hash' || v.hashBy !== 'cookie')) {
    problems.push(`${show('hashCookieTtl', raw.hashCookieTtl)} contradicts ${v.loadBalancing !== 'hash' ? show('loadBalancing', raw.loadBalancing) : show('hashBy', raw.hashBy)}; allowed: hashCookieTtl only with loadBalancing = "hash" and hashBy = "cookie"`);
  }
  problems.push(...edgeProblems(environment, v, raw, given));

  if (problems.length > 0) throw new ConfigError(problems);

  const previewId = environment === 'preview' ? v.previewId : undefined;
  const namespace = environment === 'production' ? 'levee' : environment === 'dev' ? 'levee-dev' : `levee-${previewId}`;
  const sizing = (app: 'gateway' | 'media' | 'model' | 'worker' | 'webhooks'): AppSizing => ({
    minReplicas: v[`${app}MinReplicas`],
    maxReplicas: v[`${app}MaxReplicas`],
    cpuTargetPercent: v[`${app}CpuTarget`],
    resources: {
      cpuRequest: v[`${app}CpuRequest`],
      cpuLimit: v[`${app}CpuLimit`],
      memoryRequest: v[`${app}MemoryRequest`],
      memoryLimit: v[`${app}MemoryLimit`],
    },
  });
  const maxmemoryMb = (m: Memory) => Math.floor((m.bytes * 0.75) / 1024 ** 2);
  const external = (role: 'queue' | 'cache'): ExternalRedis => {
    const url = new URL(v[`${role}RedisUrl`]);
    const tls = url.protocol === 'rediss:';
    const username = v[`${role}RedisUsername`];
    const caSecret = v[`${role}RedisCaSecret`];
    return {
      url: v[`${role}RedisUrl`],
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : 6379,
      tls,
      ...(username !== '' ? { username } : {}),
      ...(caSecret !== '' ? { caSecret } : {}),
      cidrs: v[`${role}RedisCidrs`].split(','),
    };
  };

  return {
    environment,
    ...(previewId !== undefined ? { previewId } : {}),
    namespace,
    labels: { 'levee.dev/environment': environment, ...(previewId !== undefined ? { 'levee.dev/preview-id': previewId } : {}) },
    images: { registry: v.imageRegistry, tag: v.imageTag, digests: v.imageDigests, redis: v.redisImage },
    gateway: sizing('gateway'),
    media: sizing('media'),
    model: sizing('model'),
    worker: {
      ...sizing('worker'),
      // Scale to zero: the workers too, unless a minimum is given (KEDA wakes them with the model).
      ...(v.modelMinReplicas === 0 && !given('workerMinReplicas') ? { minReplicas: 0 } : {}),
      autoscaler: v.workerAutoscaler,
      kedaListLength: v.kedaListLength,
      concurrency: v.workerConcurrency,
      modelTimeoutMs: v.modelTimeoutMs,
      jobDeadlineSeconds: v.jobDeadlineSeconds,
    },
    webhooks: {
      ...sizing('webhooks'),
      secret: v.webhookSecret,
      egressCidrs: v.webhookEgressCidrs.split(','),
      allowedCidrs: v.webhookAllowedCidrs,
      allowHttp: v.webhookAllowHttp,
      allowedPorts: [...new Set([...v.webhookAllowedPorts.split(',').map(Number), ...(v.webhookAllowHttp ? [80] : [])])],
      eventsMaxPerClient: v.eventsMaxPerClient,
      eventsMax: v.eventsMax,
    },
    queueRedis: {
      mode: v.queueRedis,
      replicas: v.queueRedis === 'sentinel' ? v.queueRedisReplicas : v.queueRedis === 'statefulset' ? 1 : 0,
      minReplicasAcked: v.queueMinReplicasAcked ?? (v.queueRedis === 'sentinel' ? 1 : 0),
      ...(v.queueRedis === 'sentinel' ? { sentinel: SENTINEL_DEFAULTS } : {}),
      ...(v.queueRedis === 'external' ? { external: external('queue') } : {}),
      passwordSecret: v.queueRedisPasswordSecret,
      memory: v.queueRedisMemory,
      maxmemoryMb: maxmemoryMb(v.queueRedisMemory),
      persistence: v.queueRedisPersistence,
      storageSize: v.queueRedisStorageSize,
      ...(v.storageClass !== '' ? { storageClass: v.storageClass } : {}),
    },
    cacheRedis: {
      mode: v.cacheRedis,
      ...(v.cacheRedis === 'external' ? { external: external('cache') } : {}),
      passwordSecret: v.cacheRedisPasswordSecret,
      memory: v.cacheRedisMemory,
      maxmemoryMb: maxmemoryMb(v.cacheRedisMemory),
    },
    edge: edgeConfig(environment, previewId, v, given),
    modelServer: modelServer(v, namespace),
    imageStore: v.imageStore === 's3' ? s3Store(v) : { kind: 'redis' },
    imageDelivery: { mode: v.imageDelivery, urlTtlSeconds: v.imageUrlTtlSeconds, ...(v.imagePublicBaseUrl !== '' ? { publicBaseUrl: v.imagePublicBaseUrl } : {}) },
    loadBalancing:
      v.loadBalancing === 'hash'
        ? {
            algorithm: 'hash',
            hashBy: v.hashBy,
            ...(v.hashBy === 'header' ? { hashHeader: v.hashHeader } : {}),
            // ingress-nginx gets a cookie lifetime only when one is asked for (today's Ingress otherwise).
            ...(v.hashBy === 'cookie' ? { hashCookie: v.hashCookie, ...(v.l7Provider !== 'ingress-nginx' || given('hashCookieTtl') ? { hashCookieTtl: v.hashCookieTtl } : {}) } : {}),
          }
        : { algorithm: v.loadBalancing },
    monitoringNamespace: v.monitoringNamespace,
    ...(v.monitoring === 'prometheus-operator'
      ? {
          monitoring: {
            labels: v.monitoringLabels,
            scrapeIntervalSeconds: v.scrapeIntervalSeconds,
            dashboardLabel: v.grafanaDashboardLabel,
            runbookUrl: v.runbookUrl,
            alerts: {
              breakerOpenMinutes: v.alertBreakerOpenMinutes,
              rateLimitedPercent: v.alertRateLimitedPercent,
              queueRejectedPercent: v.alertQueueRejectedPercent,
              oldestJobMinutes: v.alertOldestJobMinutes,
              jobFailurePercent: v.alertJobFailurePercent,
              webhookFailurePercent: v.alertWebhookFailurePercent,
              stalledJobs: v.alertStalledJobs,
              queueRedisMemoryPercent: v.alertQueueRedisMemoryPercent,
              gatewayMaxedMinutes: v.alertGatewayMaxedMinutes,
            },
          },
        }
      : {}),
    kedaNamespace: v.kedaNamespace,
    dns: { selector: v.dnsSelector, port: v.dnsPort, cidrs: v.dnsCidrs === '' ? [] : v.dnsCidrs.split(',') },
    app: {
      rateLimitPerSecond: v.rateLimitPerSecond,
      rateLimitIpv6Prefix: v.rateLimitIpv6Prefix,
      trustProxy: v.trustProxy,
      queueName: v.queueName,
      queueMaxWaiting: v.queueMaxWaiting,
      cacheTtlSeconds: v.cacheTtlSeconds,
      breakerOpenSeconds: v.breakerOpenSeconds,
      imageTtlSeconds: v.imageTtlSeconds,
      logLevel: v.logLevel,
    },
    shutdown: { preStopSeconds: v.preStopSeconds, shutdownDelaySeconds: v.shutdownDelaySeconds, drainSeconds: v.drainSeconds },
    podDisruptionBudgets: environment === 'production',
    namespaceGuards: environment !== 'production',
  };
}

/** The resolved model tier. */
function modelServer(v: SettingValues, namespace: string): ModelServer {
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

/** The resolved object store; the egress port is the endpoint's (443 for https and AWS, 80 for http). */
function s3Store(v: SettingValues): S3Store {
  const endpoint = v.imageS3Endpoint !== '' ? new URL(v.imageS3Endpoint) : undefined;
  const port = endpoint?.port ? Number(endpoint.port) : endpoint?.protocol === 'http:' ? 80 : 443;
  return {
    kind: 's3',
    bucket: v.imageBucket,
    prefix: v.imageS3Prefix,
    ...(endpoint ? { endpoint: v.imageS3Endpoint } : {}),
    ...(v.imageS3Region !== '' ? { region: v.imageS3Region } : {}),
    forcePathStyle: v.imageS3ForcePathStyle,
    ...(v.imageS3CredentialsSecret !== '' ? { credentialsSecret: v.imageS3CredentialsSecret } : {}),
    serviceAccountAnnotations: {
      ...(v.imageS3RoleArn !== '' ? { 'eks.amazonaws.com/role-arn': v.imageS3RoleArn } : {}),
      ...(v.imageGcpServiceAccount !== '' ? { 'iam.gke.io/gcp-service-account': v.imageGcpServiceAccount } : {}),
    },
    egress: { cidrs: v.imageS3Cidrs.split(','), port },
  };
}

/** Settings that only the envoy-gateway provider writes out (as Envoy Gateway policies). */
export const ENVOY_GATEWAY_SETTINGS = [
  'clientIpDetection', 'xffTrustedHops', 'edgeRequestTimeout', 'edgeIdleTimeout', 'edgeRetries',
  'edgeMaxConnections', 'edgeMaxPendingRequests', 'edgeMaxParallelRequests', 'edgeOutlierFailures', 'edgeRateLimitMultiplier',
] as const satisfies readonly SettingName[];

/** Settings of the Gateway Levee creates itself (both Gateway API providers, no shared Gateway). */
const OWN_GATEWAY_SETTINGS = ['gatewayClass', 'httpRedirect'] as const satisfies readonly SettingName[];

/** Cross-setting rules of the edge; every message names both settings, the values and what is allowed. */
function edgeProblems(
  environment: Environment,
  v: SettingValues,
  raw: Partial<Record<SettingName, string>>,
  given: (name: SettingName) => boolean,
): string[] {
  const problems: string[] = [];
  const show = (name: SettingName) => `${settingLabel(name)} = ${JSON.stringify(raw[name] ?? '')}`;
  const provider = v.l7Provider;
  const gatewayApi = provider !== 'ingress-nginx';
  const shared = gatewayApi ? v.sharedGateway : undefined;

  // The preview edge is a host name on the shared Gateway (or shared ingress controller), never a load balancer.
  if (environment === 'preview') {
    if (given('host')) problems.push(`${show('host')} cannot be set when ${show('environment')}; allowed: the preview host is always <previewId>.<previewDomain> (set previewDomain)`);
    if (v.edge === 'l4+l7') problems.push(`${show('edge')} contradicts ${show('environment')}; allowed: edge = "l7" (a preview is a host name on the shared Gateway, never a LoadBalancer of its own)`);
    if (gatewayApi && v.sharedGateway === undefined) {
      problems.push(`${show('sharedGateway')} contradicts ${show('environment')}; allowed: <namespace>/<name> of the shared preview Gateway (each Gateway costs a load balancer)`);
    }
  } else if (given('previewDomain')) {
    problems.push(`${show('previewDomain')} is only allowed when ${settingLabel('environment')} = "preview" (got "${environment}")`);
  }

  // Settings of one provider given with another.
  if (!gatewayApi) {
    for (const name of ['gatewayClass', 'sharedGateway', 'sharedGatewayTls', 'httpRedirect'] as const) {
      if (given(name)) problems.push(`${show(name)} contradicts ${show('l7Provider')}; allowed: ${name} only with l7Provider = "envoy-gateway" or "gateway-api"`);
    }
  } else if (given('ingressClass')) {
    problems.push(`${show('ingressClass')} contradicts ${show('l7Provider')}; allowed: ingressClass only with l7Provider = "ingress-nginx" (set gatewayClass instead)`);
  }
  if (provider !== 'envoy-gateway') {
    for (const name of ENVOY_GATEWAY_SETTINGS) {
      if (given(name)) problems.push(`${show(name)} contradicts ${show('l7Provider')}; allowed: ${name} only with l7Provider = "envoy-gateway" (an Envoy Gateway policy)`);
    }
  }

  // Own Gateway or shared one.
  if (gatewayApi && shared !== undefined) {
    for (const name of OWN_GATEWAY_SETTINGS) {
      if (given(name)) problems.push(`${show(name)} contradicts ${show('sharedGateway')}; allowed: ${name} only when Levee creates its own Gateway (sharedGateway = "")`);
    }
    if (given('tlsSecret') && v.tlsSecret !== '') {
      problems.push(`${show('tlsSecret')} contradicts ${show('sharedGateway')}; allowed: tlsSecret = "" (the shared Gateway's listener holds the certificate; see sharedGatewayTls)`);
    }
    if (provider === 'envoy-gateway') {
      for (const name of ['clientIpDetection', 'xffTrustedHops'] as const) {
        if (given(name)) problems.push(`${show(name)} contradicts ${show('sharedGateway')}; allowed: ${name} only on Levee's own Gateway (a ClientTrafficPolicy attaches to the Gateway, which the shared Gateway's owner configures)`);
      }
    }
  } else if (gatewayApi && given('sharedGatewayTls')) {
    problems.push(`${show('sharedGatewayTls')} contradicts ${show('sharedGateway')}; allowed: sharedGatewayTls only with a shared Gateway (<namespace>/<name>)`);
  }
  if (gatewayApi && shared === undefined && v.httpRedirect && given('httpRedirect') && v.tlsSecret === '') {
    problems.push(`${show('httpRedirect')} contradicts ${show('tlsSecret')}; allowed: an HTTPS redirect only with a TLS Secret`);
  }
  if (given('xffTrustedHops') && v.clientIpDetection === 'proxy-protocol') {
    problems.push(`${show('xffTrustedHops')} contradicts ${show('clientIpDetection')}; allowed: xffTrustedHops only with clientIpDetection = "xff"`);
  }

  // Load balancing that a provider cannot write out.
  if (provider === 'gateway-api' && v.loadBalancing !== 'round-robin') {
    const which: SettingName = v.loadBalancing === 'hash' ? 'hashBy' : 'loadBalancing';
    const what = v.loadBalancing === 'hash' ? `hash by ${v.hashBy}` : v.loadBalancing;
    problems.push(
      `${show(which)}${which === 'hashBy' && !given('hashBy') ? ` (the default of ${show('loadBalancing')})` : ''} cannot be written out with ${show('l7Provider')}: the portable Gateway API objects have no way to say ${what}; allowed: loadBalancing = "round-robin" (the implementation's default), or l7Provider = "envoy-gateway" or "ingress-nginx"`,
    );
  }

  // The gateway must believe the proxy, or every client is the proxy's IP to the rate limiter.
  if (gatewayApi && v.trustProxy === '') {
    problems.push(`${show('trustProxy')} contradicts ${show('l7Provider')}: every request through the proxy would carry its pod IP, one rate-limit budget for all clients; allowed: the proxy pods' CIDR(s), e.g. 10.0.0.0/8`);
  }
  return problems;
}

/** The resolved edge: which objects the provider writes and with what. */
function edgeConfig(environment: Environment, previewId: string | undefined, v: SettingValues, given: (name: SettingName) => boolean): LeveeConfig['edge'] {
  const provider = v.l7Provider;
  const gatewayApi = provider !== 'ingress-nginx';
  const shared = gatewayApi ? v.sharedGateway : undefined;
  const tlsSecret = shared === undefined && v.tlsSecret !== '' ? v.tlsSecret : undefined;
  const legacy = provider === 'ingress-nginx';
  const envoy: EnvoyEdge | undefined =
    provider === 'envoy-gateway'
      ? {
          ...(shared === undefined
            ? { clientIp: v.clientIpDetection === 'xff' ? { mode: 'xff', trustedHops: v.xffTrustedHops } : { mode: 'proxy-protocol' } }
            : {}),
          ...(v.edgeRequestTimeout !== undefined ? { requestTimeout: v.edgeRequestTimeout } : {}),
          ...(v.edgeIdleTimeout !== undefined ? { idleTimeout: v.edgeIdleTimeout } : {}),
          retries: v.edgeRetries,
          circuitBreaker: {
            ...(v.edgeMaxConnections !== undefined ? { maxConnections: v.edgeMaxConnections } : {}),
            ...(v.edgeMaxPendingRequests !== undefined ? { maxPendingRequests: v.edgeMaxPendingRequests } : {}),
            ...(v.edgeMaxParallelRequests !== undefined ? { maxParallelRequests: v.edgeMaxParallelRequests } : {}),
          },
          ...(v.edgeOutlierFailures !== undefined ? { outlierFailures: v.edgeOutlierFailures } : {}),
          ...(v.edgeRateLimitMultiplier !== undefined ? { rateLimitPerSecond: v.edgeRateLimitMultiplier * v.rateLimitPerSecond } : {}),
        }
      : undefined;
  return {
    l4: v.edge === 'l4+l7',
    l7Provider: provider,
    ingressClass: v.ingressClass,
    host: environment === 'preview' ? `${previewId}.${v.previewDomain}` : v.host,
    ...(tlsSecret !== undefined ? { tlsSecret } : {}),
    https: shared !== undefined ? v.sharedGatewayTls : tlsSecret !== undefined,
    // ingress-nginx keeps its own defaults, so switching back to the legacy provider yields today's objects.
    l7Namespace: legacy && !given('l7Namespace') ? 'ingress-nginx' : v.l7Namespace,
    l7ProxyLabels: legacy && !given('l7ProxySelector') ? {} : v.l7ProxySelector,
    ...(gatewayApi
      ? { gateway: { className: v.gatewayClass, ...(shared !== undefined ? { shared } : {}), httpRedirect: shared === undefined && tlsSecret !== undefined && v.httpRedirect } }
      : {}),
    ...(envoy !== undefined ? { envoy } : {}),
  };
}

/**
 * Things that are valid but deserve a word, one line each: `npm run synth` prints them on
 * stderr, the Pulumi program as warnings.
 */
export function configWarnings(config: LeveeConfig): string[] {
  return config.edge.l7Provider === 'ingress-nginx'
    ? [`warning: ${settingLabel('l7Provider')} = "ingress-nginx" is deprecated (ingress-nginx is retired: no releases or security fixes since March 2026); move to "envoy-gateway", see "Migrating from ingress-nginx" in infra/l7/README.md`]
    : [];
}

/**
 * Reads the settings from environment variables (`LEVEE_*`). A `LEVEE_` variable that is
 * not a setting is refused, so a typo cannot silently fall back to a default.
 */
export function settingsFromEnv(env: Readonly<Record<string, string | undefined>>): Partial<Record<SettingName, string>> {
  const byEnv = new Map(SETTING_NAMES.map((name) => [SETTINGS[name].env, name] as const));
  const out: Partial<Record<SettingName, string>> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('LEVEE_') || value === undefined) continue;
    const name = byEnv.get(key);
    if (name) out[name] = value;
    else unknown.push(`unknown environment variable ${key} = ${JSON.stringify(value)}; allowed: the LEVEE_* settings listed in infra/README.md`);
  }
  if (unknown.length > 0) throw new ConfigError(unknown);
  return out;
}
