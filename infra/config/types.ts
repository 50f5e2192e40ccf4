/**
 * The shape of a resolved, validated configuration ({@link LeveeConfig} and its parts), the
 * fixed values it carries, and the settings as given ({@link SettingsInput}).
 */
import type {
  CacheRedisMode, Cpu, DnsSelector, Environment, GatewayRef, HashBy, L7ProviderName, Label, LoadBalancingAlgorithm, Memory, ModelApiName, NodeClassRef,
  NodeRequirement, OtlpProtocol, QueueRedisMode,
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

/** OpenTelemetry tracing (LEVEE_OTLP_*); present only with an OTLP endpoint. */
export interface TracingConfig {
  /** OTEL_EXPORTER_OTLP_ENDPOINT of every Levee container. */
  readonly endpoint: string;
  readonly protocol: OtlpProtocol;
  /** OTEL_TRACES_SAMPLER_ARG of parentbased_traceidratio. */
  readonly samplingRatio: number;
  /** The collector pods, for the egress NetworkPolicies: namespace, matchLabels (empty = every pod there), pod port. */
  readonly collector: { readonly namespace: string; readonly labels: Readonly<Record<string, string>>; readonly port: number };
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
  /** With `otlpEndpoint` set; undefined = tracing off (no OTEL_* variables, no egress to a collector). */
  readonly tracing?: TracingConfig;
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
