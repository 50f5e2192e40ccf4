import { buildManifests, Manifest, resolveConfig, SettingsInput } from '../../infra';

/** Resolves `settings` and builds the chart in memory (no policy, no files). */
export function manifestsFor(settings: SettingsInput = {}): Manifest[] {
  return buildManifests(resolveConfig(settings));
}

/** The one object of `kind` named `name`; fails loudly when missing. */
// Manifests are plain JSON; tests read deep fields freely.
export function find(manifests: readonly Manifest[], kind: string, name: string): any {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind}/${name}, found ${found.length}`);
  return found[0];
}

export function all(manifests: readonly Manifest[], kind: string): any[] {
  return manifests.filter((m) => m.kind === kind);
}

export const PREVIEW = { environment: 'preview', previewId: 'pr-7' } as const;
export const DEV = { environment: 'dev' } as const;

/** Every edge defense of the envoy-gateway provider switched off. */
export const NO_EDGE_DEFENSES = {
  edgeRequestTimeout: '', edgeIdleTimeout: '', edgeRetries: '0', edgeMaxConnections: '', edgeMaxPendingRequests: '',
  edgeMaxParallelRequests: '', edgeOutlierFailures: '', edgeRateLimitMultiplier: '',
} as const;

/** Both Redis roles managed outside the cluster, over TLS with ACL users and private CAs. */
export const EXTERNAL_BOTH: SettingsInput = {
  queueRedis: 'external',
  queueRedisUrl: 'rediss://queue.redis.example.com:6380',
  queueRedisUsername: 'levee-queue',
  queueRedisCaSecret: 'queue-redis-ca',
  queueRedisCidrs: '10.20.0.0/16',
  queueRedisPasswordSecret: 'managed-queue-redis',
  cacheRedis: 'external',
  cacheRedisUrl: 'rediss://cache.redis.example.com:6380',
  cacheRedisUsername: 'levee-cache',
  cacheRedisCaSecret: 'cache-redis-ca',
  cacheRedisCidrs: '10.21.0.0/16',
  workerAutoscaler: 'keda',
};

/** Every environment, L7 provider, load-balancing and Redis variant the chart supports. */
export const VARIANTS: Record<string, SettingsInput> = {
  'production (defaults)': {},
  'production, hash by client IP': { loadBalancing: 'hash', hashBy: 'client-ip' },
  'production, L7 only, least-request': { edge: 'l7', loadBalancing: 'least-request' },
  'production, L7 only, hash by header': { edge: 'l7', loadBalancing: 'hash', hashBy: 'header', hashHeader: 'X-Api-Token' },
  'production, L7 only, hash by cookie': { edge: 'l7', loadBalancing: 'hash', hashBy: 'cookie' },
  'production, KEDA workers': { workerAutoscaler: 'keda' },
  'production, storage class, no TLS': { storageClass: 'fast-ssd', tlsSecret: '' },
  'production, OpenShift DNS and a node-local DNS cache': { dnsSelector: 'openshift-dns/dns.operator.openshift.io/daemonset-dns=default', dnsPort: '5353', dnsCidrs: '169.254.20.10/32' },
  'production, no HTTPS redirect, X-Forwarded-For with 2 trusted hops': { httpRedirect: 'false', xffTrustedHops: '2' },
  'production, PROXY protocol, every edge defense off': { clientIpDetection: 'proxy-protocol', ...NO_EDGE_DEFENSES },
  'production, on a shared Gateway': { sharedGateway: 'edge-system/public', l7ProxySelector: 'app.kubernetes.io/name=envoy' },
  'production, gateway-api provider': { l7Provider: 'gateway-api', gatewayClass: 'cilium' },
  'production, ingress-nginx (legacy)': { l7Provider: 'ingress-nginx' },
  'production, ingress-nginx, L7 only, hash by cookie with a lifetime': { l7Provider: 'ingress-nginx', edge: 'l7', loadBalancing: 'hash', hashBy: 'cookie', hashCookieTtl: '30m' },
  'production, monitoring (prometheus-operator)': { monitoring: 'prometheus-operator' },
  'production, monitoring with selector labels, KEDA workers': { monitoring: 'prometheus-operator', monitoringLabels: 'release=kube-prometheus-stack,team=levee', workerAutoscaler: 'keda' },
  'preview pr-7': { ...PREVIEW },
  'preview pr-7, monitoring': { ...PREVIEW, monitoring: 'prometheus-operator', grafanaDashboardLabel: 'grafana_dashboard=levee' },
  'production, single-pod queue Redis (statefulset)': { queueRedis: 'statefulset' },
  'production, 5 data pods, 2 confirming replicas, KEDA on Sentinel': { queueRedisReplicas: '5', queueMinReplicasAcked: '2', workerAutoscaler: 'keda' },
  'production, managed Redis (TLS, ACL user, private CA) for both roles, KEDA': EXTERNAL_BOTH,
  'production, managed queue Redis without TLS, cache in the cluster': { queueRedis: 'external', queueRedisUrl: 'redis://10.20.1.5:6379', queueRedisCidrs: '10.20.1.5/32', workerAutoscaler: 'keda' },
  'preview pr-7 with Sentinel': { ...PREVIEW, queueRedis: 'sentinel' },
  'preview pr-7, KEDA, hash by client IP': { ...PREVIEW, workerAutoscaler: 'keda', loadBalancing: 'hash' },
  'preview pr-7, hash by cookie, on a shared Gateway without TLS': { ...PREVIEW, loadBalancing: 'hash', hashBy: 'cookie', sharedGatewayTls: 'false' },
  'preview pr-7, gateway-api provider': { ...PREVIEW, l7Provider: 'gateway-api' },
  'preview pr-7, ingress-nginx (legacy)': { ...PREVIEW, l7Provider: 'ingress-nginx' },
  'production, images in the queue Redis': { imageStore: 'redis' },
  'production, images on GCS (HMAC keys from a Secret, Workload Identity), redirect delivery, a CDN base': {
    imageS3Endpoint: 'https://storage.googleapis.com', imageBucket: 'acme-levee', imageS3Region: 'auto', imageS3CredentialsSecret: 'gcs-hmac',
    imageGcpServiceAccount: 'levee-images@acme.iam.gserviceaccount.com', imageDelivery: 'redirect', imageUrlTtlSeconds: '600', imagePublicBaseUrl: 'https://cdn.acme.example',
  },
  'production, images on S3 with IRSA, managed queue Redis': { imageS3RoleArn: 'arn:aws:iam::123456789012:role/levee-images', imageS3Region: 'eu-west-1', queueRedis: 'external', queueRedisUrl: 'rediss://q.example.com:6380', queueRedisCidrs: '10.20.0.0/16' },
  'preview pr-7, images on an in-cluster MinIO': { ...PREVIEW, imageS3Endpoint: 'http://minio.minio.svc:9000', imageS3ForcePathStyle: 'true', imageS3Cidrs: '10.96.0.0/12', imageS3CredentialsSecret: 'minio-keys' },
  'production, GPU model (1 GPU) on Karpenter nodes, openai-images, an API key': { modelGpus: '1', nodeProvisioner: 'karpenter', modelApi: 'openai-images', modelName: 'sdxl-turbo', modelApiKeySecret: 'model-key', modelStyles: 'photo,anime', modelRuntimeClass: 'nvidia', modelStartupSeconds: '900' },
  'production, scale to zero (KEDA) with a GPU model on the cluster\'s GPU nodes': { modelMinReplicas: '0', workerAutoscaler: 'keda', modelGpus: '2', modelGpuResource: 'amd.com/gpu', modelGpuTaint: 'amd.com/gpu', modelNodeSelector: 'cloud.google.com/gke-accelerator=nvidia-l4' },
  'production, an external model (openai-images, hosted), managed queue Redis with a private CA, scale of the workers by KEDA': { modelUrl: 'https://images.example.com', modelApi: 'openai-images', modelApiKeySecret: 'hosted-key', modelCidrs: '203.0.113.0/24', ...EXTERNAL_BOTH },
  'production, scale to zero on a managed queue Redis over TLS with a private CA': { ...EXTERNAL_BOTH, modelMinReplicas: '0', kedaCooldownSeconds: '600' },
  'production, tracing to an OpenTelemetry Collector (OTLP/HTTP), monitoring': { otlpEndpoint: 'http://otel-collector.observability:4318', monitoring: 'prometheus-operator' },
  'preview pr-7, tracing over gRPC to Tempo, every trace, port from the protocol': {
    ...PREVIEW, otlpEndpoint: 'http://tempo-distributor.tempo', otlpProtocol: 'grpc', traceSamplingRatio: '1', otlpNamespace: 'tempo', otlpPodLabels: 'app.kubernetes.io/name=tempo',
  },
  'production, tracing with an external model (no model pod to configure)': { otlpEndpoint: 'https://otel.example.com:4318', otlpPort: '4318', modelUrl: 'https://images.example.com', modelApi: 'openai-images' },
  dev: { ...DEV },
  'dev, images in object storage': { ...DEV, imageStore: 's3', imageS3Endpoint: 'http://minio.minio.svc:9000', imageS3ForcePathStyle: 'true', imageS3Cidrs: '10.96.0.0/12', imageS3CredentialsSecret: 'minio-keys' },
  'dev, L7 only, hash by cookie': { ...DEV, edge: 'l7', loadBalancing: 'hash', hashBy: 'cookie' },
  'dev, ingress-nginx (legacy)': { ...DEV, l7Provider: 'ingress-nginx' },
};
