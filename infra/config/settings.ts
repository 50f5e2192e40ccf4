/**
 * Every Levee setting in one table: its name (the Pulumi stack config key, `levee:<name>`),
 * its environment variable (for `npm run synth`), its per-environment default and its parser.
 * `npm run docs` writes docs/reference/settings.md from this file.
 */
import { parseCpuMillis, parseMemoryBytes } from './quantity';

export const ENVIRONMENTS = ['production', 'preview', 'dev'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** What a parser returns: the value, or the text that says what is allowed. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; allowed: string };

export interface SettingSpec<T> {
  /** Environment variable read by `infra/main.ts`. */
  readonly env: string;
  /** One line for the README. */
  readonly description: string;
  /** Default per environment (`previewId` is only known in preview); undefined = no default. */
  readonly default: (environment: Environment, previewId: string) => string | undefined;
  readonly parse: (raw: string) => Parsed<T>;
}

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(allowed: string): Parsed<T> => ({ ok: false, allowed });

function oneOf<const V extends string>(values: readonly V[]) {
  return (raw: string): Parsed<V> =>
    (values as readonly string[]).includes(raw) ? ok(raw as V) : bad(`one of ${values.join(', ')}`);
}

/** An integer in [min, max]; the bounds stay on the parser, so tests can try both ends. */
function integer(min: number, max: number) {
  const parse = (raw: string): Parsed<number> => {
    if (!/^-?\d+$/.test(raw)) return bad(`an integer from ${min} to ${max}`);
    const n = Number(raw);
    return n >= min && n <= max ? ok(n) : bad(`an integer from ${min} to ${max}`);
  };
  return Object.assign(parse, { min, max });
}

function matching(re: RegExp, allowed: string) {
  return (raw: string): Parsed<string> => (re.test(raw) ? ok(raw) : bad(allowed));
}

function boolean(raw: string): Parsed<boolean> {
  if (raw === 'true') return ok(true);
  if (raw === 'false') return ok(false);
  return bad('true or false');
}

export interface Cpu { readonly text: string; readonly millis: number }
export interface Memory { readonly text: string; readonly bytes: number }

function cpu(raw: string): Parsed<Cpu> {
  const millis = parseCpuMillis(raw);
  return millis === undefined ? bad('a CPU quantity such as 250m or 2 (greater than 0)') : ok({ text: raw, millis });
}

function memory(raw: string): Parsed<Memory> {
  const bytes = parseMemoryBytes(raw);
  return bytes === undefined ? bad('a memory quantity such as 512Mi or 2Gi (Ki, Mi, Gi or Ti, greater than 0)') : ok({ text: raw, bytes });
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function namespaceName(raw: string): Parsed<string> {
  return DNS_LABEL.test(raw) && raw.length <= 63 ? ok(raw) : bad('a namespace name (lower-case letters, digits and "-", at most 63 characters)');
}

/** The cluster DNS pods, for the DNS egress rule. */
export interface DnsSelector {
  readonly namespace: string;
  readonly labelKey: string;
  readonly labelValue: string;
}

function dnsSelector(raw: string): Parsed<DnsSelector> {
  // <namespace>/<label key>=<label value>; the key may have a DNS-subdomain prefix (a/b).
  const m = /^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\/((([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)=([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)$/.exec(raw);
  return m
    ? ok({ namespace: m[1]!, labelKey: m[3]!, labelValue: m[8]! })
    : bad('<namespace>/<label key>=<label value> of the cluster DNS pods (e.g. kube-system/k8s-app=kube-dns)');
}

function previewId(raw: string): Parsed<string> {
  // The namespace is `levee-<id>`, so the id may use 63 - 6 characters.
  return DNS_LABEL.test(raw) && raw.length <= 57
    ? ok(raw)
    : bad('a namespace suffix: lower-case letters, digits and "-", starting and ending with a letter or digit, at most 57 characters (e.g. pr-123)');
}

function optionalResourceName(raw: string): Parsed<string> {
  return raw === '' || (DNS_SUBDOMAIN.test(raw) && raw.length <= 253) ? ok(raw) : bad('empty (none) or a Kubernetes resource name (lower-case letters, digits, "-" and ".")');
}

/** A pinned image reference `name:tag` or `name@sha256:…`; never `latest`, never untagged. */
function pinnedImage(raw: string): Parsed<string> {
  const m = /^([a-z0-9][a-z0-9._\/-]*(?::\d+\/[a-z0-9._\/-]+)?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(@sha256:[a-f0-9]{64})?$/.exec(raw);
  const allowed = 'an image reference pinned to a tag other than "latest" or to a sha256 digest (e.g. redis:7.2.11-alpine)';
  if (!m || (m[2] === undefined && m[3] === undefined) || m[2] === 'latest') return bad(allowed);
  return ok(raw);
}

function imageTag(raw: string): Parsed<string> {
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(raw) && raw !== 'latest'
    ? ok(raw)
    : bad('a pinned image tag (letters, digits, "_", "." and "-", at most 128 characters), not "latest"');
}

/** The app images' Kubernetes names, which `imageDigests` keys on. */
export const APP_IMAGE_NAMES = ['levee-gateway', 'levee-media', 'levee-model', 'levee-worker'] as const;

/** `levee-gateway=sha256:…,levee-media=sha256:…,…`: all four or none (empty). */
function imageDigests(raw: string): Parsed<Readonly<Record<string, string>>> {
  const allowed = `empty (pin by tag only) or every app image with its digest, comma-separated: ${APP_IMAGE_NAMES.map((n) => `${n}=sha256:<64 hex>`).join(',')} (the release workflow prints this line)`;
  if (raw === '') return ok({});
  const out: Record<string, string> = {};
  for (const part of raw.split(',').map((p) => p.trim())) {
    const m = /^([a-z0-9-]+)=(sha256:[a-f0-9]{64})$/.exec(part);
    if (!m || !(APP_IMAGE_NAMES as readonly string[]).includes(m[1]!) || out[m[1]!] !== undefined) return bad(allowed);
    out[m[1]!] = m[2]!;
  }
  return Object.keys(out).length === APP_IMAGE_NAMES.length ? ok(out) : bad(allowed);
}

function cidrList(raw: string): Parsed<string> {
  const allowed = 'empty or a comma-separated list of IPv4/IPv6 CIDRs (e.g. 10.0.0.0/8,fd00::/8)';
  if (raw === '') return ok(raw);
  const v4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;
  const v6 = /^[0-9a-fA-F:]+:[0-9a-fA-F:]*\/(12[0-8]|1[01]\d|[1-9]?\d)$/;
  const parts = raw.split(',').map((p) => p.trim());
  return parts.every((p) => v4.test(p) || v6.test(p)) ? ok(parts.join(',')) : bad(allowed);
}

/** A Gateway API Duration (`10s`, `1m30s`, `500ms`; at most 4 parts, each at most 5 digits), greater than zero. */
export const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

/** Milliseconds of a Gateway API Duration, or undefined when it is not one. */
export function durationMillis(raw: string): number | undefined {
  if (!DURATION.test(raw)) return undefined;
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let ms = 0;
  for (const [, n, u] of raw.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(n) * unit[u!]!;
  return ms;
}

/** `off` (empty) or a duration > 0. */
function optionalDuration(raw: string): Parsed<string | undefined> {
  if (raw === '') return ok(undefined);
  const ms = durationMillis(raw);
  return ms !== undefined && ms > 0 ? ok(raw) : bad('empty (off) or a duration greater than 0 such as 500ms, 20s, 1m or 1h30m');
}

function duration(raw: string): Parsed<string> {
  const ms = durationMillis(raw);
  return ms !== undefined && ms > 0 ? ok(raw) : bad('a duration greater than 0 such as 500ms, 20s, 1m or 1h30m');
}

/** `off` (empty) or an integer in [min, max]. */
function optionalInteger(min: number, max: number) {
  const inner = integer(min, max);
  return (raw: string): Parsed<number | undefined> => {
    if (raw === '') return ok(undefined);
    const parsed = inner(raw);
    return parsed.ok ? parsed : bad(`empty (off) or an integer from ${min} to ${max}`);
  };
}

const LABEL_KEY = /^(([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/** `key=value,key=value` (matchLabels), or empty = none. */
function labelSelector(raw: string): Parsed<Readonly<Record<string, string>>> {
  const allowed = 'empty (any pod of the namespace) or comma-separated <label key>=<label value> pairs (e.g. app.kubernetes.io/name=envoy,app.kubernetes.io/component=proxy)';
  if (raw === '') return ok({});
  const out: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    const [key, value, ...rest] = pair.trim().split('=');
    if (key === undefined || value === undefined || rest.length > 0 || !LABEL_KEY.test(key) || !LABEL_VALUE.test(value) || key in out) return bad(allowed);
    out[key] = value;
  }
  return ok(out);
}

/** An existing Gateway to attach to, `<namespace>/<name>`, or empty = Levee creates its own. */
export interface GatewayRef { readonly namespace: string; readonly name: string }
function optionalGatewayRef(raw: string): Parsed<GatewayRef | undefined> {
  if (raw === '') return ok(undefined);
  const [namespace, name, ...rest] = raw.split('/');
  return namespace !== undefined && name !== undefined && rest.length === 0 && DNS_LABEL.test(namespace) && namespace.length <= 63 && DNS_SUBDOMAIN.test(name)
    ? ok({ namespace, name })
    : bad('empty (Levee creates its own Gateway) or <namespace>/<name> of an existing Gateway (e.g. levee-previews/levee-previews)');
}

/** A Kubernetes label `key=value`. */
export interface Label {
  readonly key: string;
  readonly value: string;
}

function parseLabel(raw: string): Label | undefined {
  const eq = raw.indexOf('=');
  if (eq < 0) return undefined;
  const key = raw.slice(0, eq).trim();
  const value = raw.slice(eq + 1).trim();
  return LABEL_KEY.test(key) && LABEL_VALUE.test(value) ? { key, value } : undefined;
}

function label(raw: string): Parsed<Label> {
  const parsed = parseLabel(raw);
  return parsed ? ok(parsed) : bad('a Kubernetes label key=value (e.g. grafana_dashboard=1)');
}

function labelList(raw: string): Parsed<readonly Label[]> {
  if (raw.trim() === '') return ok([]);
  const labels = raw.split(',').map(parseLabel);
  return labels.every((l): l is Label => l !== undefined) ? ok(labels) : bad('empty or comma-separated Kubernetes labels key=value (e.g. release=kube-prometheus-stack)');
}

function httpsUrl(raw: string): Parsed<string> {
  try {
    const url = new URL(raw);
    return url.protocol === 'https:' && !url.hash ? ok(raw) : bad('an https:// URL without a #fragment (the alerts append #<alert>)');
  } catch {
    return bad('an https:// URL without a #fragment (the alerts append #<alert>)');
  }
}

/** Empty (none) or the redis:// or rediss:// URL of a managed Redis, without credentials (those come from settings and a Secret). */
function externalRedisUrl(raw: string): Parsed<string> {
  const allowed = 'empty, or a redis:// or rediss:// URL of the managed Redis (host and port, e.g. rediss://my-redis.abc123.cache.amazonaws.com:6379), without a user or password';
  if (raw === '') return ok(raw);
  if (!/^rediss?:\/\/[^\s]+$/.test(raw) || !URL.canParse(raw)) return bad(allowed);
  const url = new URL(raw);
  if (url.username || url.password || !url.hostname || (url.pathname !== '' && url.pathname !== '/' && !/^\/\d{1,2}$/.test(url.pathname))) return bad(allowed);
  return ok(raw);
}

/** Empty (none) or an http(s) URL without credentials, query or fragment. */
function optionalHttpUrl(example: string) {
  const allowed = `empty or an http:// or https:// URL without a user, query or fragment (e.g. ${example})`;
  return (raw: string): Parsed<string> => {
    if (raw === '') return ok(raw);
    if (!/^https?:\/\/[^\s]+$/.test(raw) || !URL.canParse(raw)) return bad(allowed);
    const url = new URL(raw);
    return url.username || url.password || url.search || url.hash || !url.hostname ? bad(allowed) : ok(raw);
  };
}

/** Empty (tracing off) or the OTLP endpoint: an http(s) URL without credentials, query or fragment. */
function otlpEndpoint(raw: string): Parsed<string> {
  const allowed = 'empty (tracing off) or an http:// or https:// URL without a user, query or fragment (e.g. http://otel-collector.observability:4318)';
  if (raw === '') return ok(raw);
  if (!/^https?:\/\/[^\s]+$/.test(raw) || !URL.canParse(raw)) return bad(allowed);
  const url = new URL(raw);
  return url.username || url.password || url.search || url.hash || !url.hostname ? bad(allowed) : ok(raw);
}

/** A ratio from 0 to 1 (`0`, `1`, `0.1`, `0.025`). */
function ratio(raw: string): Parsed<number> {
  return /^(0|1)(\.\d{1,6})?$/.test(raw) && Number(raw) <= 1 ? ok(Number(raw)) : bad('a number from 0 to 1 with at most 6 decimals (e.g. 0.1 = one trace in ten, 1 = every trace, 0 = none unless the caller sampled it)');
}

/** Empty (derived) or a port. */
function optionalPort(derived: string) {
  const inner = integer(1, 65535);
  return (raw: string): Parsed<number | undefined> => {
    if (raw === '') return ok(undefined);
    return inner(raw).ok ? inner(raw) : bad(`empty (${derived}) or an integer from 1 to 65535`);
  };
}

/** A bucket name: S3's rules, widened for GCS (dots, underscores, up to 222 characters). */
function bucketName(raw: string): Parsed<string> {
  return /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(raw) ? ok(raw) : bad('a bucket name: 3-222 characters of a-z, 0-9, ".", "_" and "-", starting and ending with a letter or digit');
}

/** An object key prefix: empty, or folders ending in "/". */
function keyPrefix(raw: string): Parsed<string> {
  return raw.length <= 512 && /^([A-Za-z0-9._-]+\/)*$/.test(raw) ? ok(raw) : bad('empty or folders ending in "/" (e.g. images/ or previews/pr-1/images/): letters, digits, ".", "_" and "-"');
}

function optionalRoleArn(raw: string): Parsed<string> {
  return raw === '' || /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/.test(raw) ? ok(raw) : bad('empty or an IAM role ARN (e.g. arn:aws:iam::123456789012:role/levee-images)');
}

function optionalGcpServiceAccount(raw: string): Parsed<string> {
  return raw === '' || /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.:-]+\.iam\.gserviceaccount\.com$/.test(raw)
    ? ok(raw)
    : bad('empty or a Google service account e-mail (e.g. levee-images@my-project.iam.gserviceaccount.com)');
}

/** A non-empty list of CIDRs. */
/** "443,8443" → the same, checked: ports 1-65535. */
function portList(raw: string): Parsed<string> {
  const ports = raw.split(',');
  return ports.length > 0 && ports.every((p) => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535) ? ok(raw) : bad('comma-separated ports 1-65535 (e.g. 443,8443)');
}

function requiredCidrList(raw: string): Parsed<string> {
  const parsed = cidrList(raw);
  return parsed.ok && parsed.value !== '' ? parsed : bad('a comma-separated list of IPv4/IPv6 CIDRs (e.g. 0.0.0.0/0, or 52.216.0.0/15,3.5.0.0/19)');
}

/** Empty (none) or a pinned image reference. */
function optionalPinnedImage(raw: string): Parsed<string> {
  if (raw === '') return ok(raw);
  const parsed = pinnedImage(raw);
  return parsed.ok ? parsed : bad(`empty (Levee's stand-in) or ${parsed.allowed}`);
}

/** A Karpenter nodeClassRef: `<group>/<kind>/<name>`. */
export interface NodeClassRef { readonly group: string; readonly kind: string; readonly name: string }
function nodeClassRef(raw: string): Parsed<NodeClassRef> {
  const m = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?)\/([A-Z][A-Za-z0-9]*)\/([a-z0-9]([a-z0-9.-]*[a-z0-9])?)$/.exec(raw);
  return m ? ok({ group: m[1]!, kind: m[3]!, name: m[4]! }) : bad('<group>/<kind>/<name> of a NodeClass (e.g. karpenter.k8s.aws/EC2NodeClass/gpu, karpenter.azure.com/AKSNodeClass/gpu)');
}

/** Node requirements `key=v1|v2,key2=v3` (operator In). */
export interface NodeRequirement { readonly key: string; readonly values: readonly string[] }
function nodeRequirements(raw: string): Parsed<readonly NodeRequirement[]> {
  const allowed = 'empty or comma-separated <label key>=<value>|<value> (e.g. karpenter.k8s.aws/instance-category=g,karpenter.sh/capacity-type=on-demand|spot)';
  if (raw === '') return ok([]);
  const out: NodeRequirement[] = [];
  for (const part of raw.split(',').map((p) => p.trim())) {
    const [key, values, ...rest] = part.split('=');
    const list = (values ?? '').split('|');
    if (!key || rest.length > 0 || !LABEL_KEY.test(key) || list.some((v) => v === '' || !LABEL_VALUE.test(v)) || out.some((r) => r.key === key)) return bad(allowed);
    out.push({ key, values: list });
  }
  return ok(out);
}

/** A Karpenter duration: Go's `1h30m`, `10m`, `30s` (no ms), or `Never`. */
function karpenterDuration(raw: string): Parsed<string> {
  return raw === 'Never' || /^([0-9]+(s|m|h))+$/.test(raw) ? ok(raw) : bad('a duration such as 30s, 10m or 1h, or Never');
}

const same = (value: string) => () => value;
const byEnv = (values: Record<Environment, string | undefined>) => (environment: Environment) => values[environment];
const prodOr = (production: string, small: string) => byEnv({ production, preview: small, dev: small });
/** Edge defenses: on in production and in previews (which rehearse production), off in dev. */
const exceptDev = (value: string, dev = '') => byEnv({ production: value, preview: value, dev });

export const LOAD_BALANCING = ['round-robin', 'least-request', 'hash'] as const;
export type LoadBalancingAlgorithm = (typeof LOAD_BALANCING)[number];
export const HASH_BY = ['client-ip', 'header', 'cookie'] as const;
export type HashBy = (typeof HASH_BY)[number];
export const EDGES = ['l4+l7', 'l7'] as const;
export type EdgeMode = (typeof EDGES)[number];
export const L7_PROVIDERS = ['envoy-gateway', 'gateway-api', 'ingress-nginx'] as const;
export type L7ProviderName = (typeof L7_PROVIDERS)[number];
export const CLIENT_IP_DETECTION = ['xff', 'proxy-protocol'] as const;
export type ClientIpDetection = (typeof CLIENT_IP_DETECTION)[number];
export const WORKER_AUTOSCALERS = ['cpu', 'keda'] as const;
export const MONITORING = ['none', 'prometheus-operator'] as const;
export type MonitoringMode = (typeof MONITORING)[number];
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];
export const QUEUE_REDIS_MODES = ['statefulset', 'sentinel', 'external'] as const;
export type QueueRedisMode = (typeof QUEUE_REDIS_MODES)[number];
export const CACHE_REDIS_MODES = ['deployment', 'external'] as const;
export type CacheRedisMode = (typeof CACHE_REDIS_MODES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export const MODEL_APIS = ['levee', 'openai-images'] as const;
export type ModelApiName = (typeof MODEL_APIS)[number];
export const NODE_PROVISIONERS = ['none', 'karpenter'] as const;
export const IMAGE_STORES = ['s3', 'redis'] as const;
export type ImageStoreMode = (typeof IMAGE_STORES)[number];
export const IMAGE_DELIVERIES = ['stream', 'redirect'] as const;

/** Settings for one autoscaled app; env names are `LEVEE_<APP>_…`. */
function appSettings<const P extends string>(
  prefix: P,
  label: string,
  d: { min: [string, string]; max: [string, string]; target: string; cpuReq: [string, string]; cpuLim: [string, string]; memReq: [string, string]; memLim: [string, string] },
  /** What the minimum may be: 0 means the app can scale to zero (KEDA). */
  minReplicas = { lowest: 1, note: '' },
) {
  const env = prefix.toUpperCase();
  return {
    [`${prefix}MinReplicas`]: { env: `LEVEE_${env}_MIN_REPLICAS`, description: `${label}: minimum replicas (autoscaler)${minReplicas.note}`, default: prodOr(...d.min), parse: integer(minReplicas.lowest, 1000) },
    [`${prefix}MaxReplicas`]: { env: `LEVEE_${env}_MAX_REPLICAS`, description: `${label}: maximum replicas (autoscaler)`, default: prodOr(...d.max), parse: integer(1, 1000) },
    [`${prefix}CpuTarget`]: { env: `LEVEE_${env}_CPU_TARGET`, description: `${label}: HPA target average CPU utilization, percent of the request`, default: same(d.target), parse: integer(1, 100) },
    [`${prefix}CpuRequest`]: { env: `LEVEE_${env}_CPU_REQUEST`, description: `${label}: CPU request per pod`, default: prodOr(...d.cpuReq), parse: cpu },
    [`${prefix}CpuLimit`]: { env: `LEVEE_${env}_CPU_LIMIT`, description: `${label}: CPU limit per pod`, default: prodOr(...d.cpuLim), parse: cpu },
    [`${prefix}MemoryRequest`]: { env: `LEVEE_${env}_MEMORY_REQUEST`, description: `${label}: memory request per pod`, default: prodOr(...d.memReq), parse: memory },
    [`${prefix}MemoryLimit`]: { env: `LEVEE_${env}_MEMORY_LIMIT`, description: `${label}: memory limit per pod`, default: prodOr(...d.memLim), parse: memory },
  } as {
    [K in `${P}MinReplicas` | `${P}MaxReplicas` | `${P}CpuTarget`]: SettingSpec<number>;
  } & { [K in `${P}CpuRequest` | `${P}CpuLimit`]: SettingSpec<Cpu> } & { [K in `${P}MemoryRequest` | `${P}MemoryLimit`]: SettingSpec<Memory> };
}

export const SETTINGS = {
  environment: { env: 'LEVEE_ENV', description: 'preset: production, preview or dev', default: same('production'), parse: oneOf(ENVIRONMENTS) },
  previewId: { env: 'LEVEE_PREVIEW_ID', description: 'preview id, required for preview; namespace becomes levee-<id>', default: () => undefined, parse: previewId },

  imageRegistry: {
    env: 'LEVEE_IMAGE_REGISTRY',
    description: 'registry prefix of the app images (<registry>/levee-gateway:<tag>, …)',
    default: same('ghcr.io/levee-dev'),
    parse: matching(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(\/[a-z0-9._-]+)*$/, 'a registry host with an optional path (e.g. ghcr.io/levee-dev), lower case, no trailing "/"'),
  },
  imageTag: { env: 'LEVEE_IMAGE_TAG', description: 'tag of the app images', default: same('0.1.0'), parse: imageTag },
  imageDigests: {
    env: 'LEVEE_IMAGE_DIGESTS',
    description: 'pin the app images by digest as well as tag (<registry>/levee-gateway:<tag>@sha256:…): levee-gateway=sha256:…,levee-media=sha256:…,levee-model=sha256:…,levee-worker=sha256:…, as the release workflow prints it; empty = by tag only',
    default: same(''),
    parse: imageDigests,
  },
  redisImage: { env: 'LEVEE_REDIS_IMAGE', description: 'pinned Redis image for both Redis instances', default: same('redis:7.2.11-alpine'), parse: pinnedImage },

  // Previews and dev start at one pod each but can still scale, so a reviewer can watch the
  // autoscalers react; the namespace's ResourceQuota is sized from these maxima.
  ...appSettings('gateway', 'gateway', { min: ['3', '1'], max: ['30', '3'], target: '80', cpuReq: ['500m', '100m'], cpuLim: ['1', '500m'], memReq: ['256Mi', '128Mi'], memLim: ['512Mi', '256Mi'] }),
  ...appSettings('media', 'media', { min: ['2', '1'], max: ['10', '2'], target: '75', cpuReq: ['100m', '50m'], cpuLim: ['500m', '250m'], memReq: ['128Mi', '64Mi'], memLim: ['256Mi', '128Mi'] }),
  ...appSettings('model', 'model', { min: ['2', '1'], max: ['20', '2'], target: '70', cpuReq: ['1', '250m'], cpuLim: ['2', '1'], memReq: ['512Mi', '256Mi'], memLim: ['1Gi', '512Mi'] }, { lowest: 0, note: '; 0 = scale to zero: KEDA scales the model and the workers on the queue, from zero (needs workerAutoscaler keda)' }),
  ...appSettings('worker', 'worker', { min: ['2', '1'], max: ['50', '3'], target: '70', cpuReq: ['250m', '100m'], cpuLim: ['1', '500m'], memReq: ['256Mi', '128Mi'], memLim: ['512Mi', '256Mi'] }),
  ...appSettings('webhooks', 'webhook sender', { min: ['2', '1'], max: ['10', '2'], target: '70', cpuReq: ['100m', '50m'], cpuLim: ['500m', '250m'], memReq: ['128Mi', '64Mi'], memLim: ['256Mi', '128Mi'] }),

  // Results pushed to clients (docs/push.md): signed webhooks, event streams, deadlines.
  webhookSecret: { env: 'LEVEE_WEBHOOK_SECRET', description: 'Secret (key secret) with the whsec_… key that signs webhooks (WEBHOOK_SECRET; the Pulumi program generates it, cdk8s users create it: docs/push.md)', default: same('levee-webhook-secret'), parse: matching(DNS_SUBDOMAIN, 'a Kubernetes Secret name (lower-case letters, digits, "-" and ".")') },
  webhookEgressCidrs: { env: 'LEVEE_WEBHOOK_EGRESS_CIDRS', description: "where the webhook sender may connect, on the allowed ports (egress NetworkPolicy; 0.0.0.0/0 and ::/0 leave out the private, CGNAT and link-local ranges and the metadata address)", default: same('0.0.0.0/0,::/0'), parse: requiredCidrList },
  webhookAllowedCidrs: { env: 'LEVEE_WEBHOOK_ALLOWED_CIDRS', description: 'non-public addresses webhooks may reach anyway (WEBHOOK_ALLOWED_CIDRS of the gateway and the sender, and egress to them): private receivers; empty = none', default: same(''), parse: cidrList },
  webhookAllowHttp: { env: 'LEVEE_WEBHOOK_ALLOW_HTTP', description: 'accept http:// webhook URLs (and port 80): only for receivers inside a private network', default: same('false'), parse: boolean },
  webhookAllowedPorts: { env: 'LEVEE_WEBHOOK_ALLOWED_PORTS', description: 'ports a webhook URL may name (WEBHOOK_ALLOWED_PORTS), comma-separated', default: same('443,8443'), parse: portList },
  jobDeadlineSeconds: { env: 'LEVEE_JOB_DEADLINE_SECONDS', description: 'a job that waited longer than this is not rendered: it fails expired…, and its webhook says so (worker JOB_DEADLINE_SECONDS)', default: same('3600'), parse: integer(60, 30 * 86400) },
  eventsMaxPerClient: { env: 'LEVEE_EVENTS_MAX_PER_CLIENT', description: 'open event streams (GET /api/images/{id}/events) per client and gateway pod; beyond, 429', default: same('4'), parse: integer(1, 10000) },
  eventsMax: { env: 'LEVEE_EVENTS_MAX', description: 'open event streams per gateway pod; beyond, 503', default: same('10000'), parse: integer(1, 1000000) },

  // The model tier: which API, which server, on which nodes (docs/model.md).
  modelApi: { env: 'LEVEE_MODEL_API', description: 'the API the workers speak to the model: levee (POST /v1/render) or openai-images (POST /v1/images/generations, the de-facto standard of local and hosted image servers)', default: same('levee'), parse: oneOf(MODEL_APIS) },
  modelName: { env: 'LEVEE_MODEL_NAME', description: 'openai-images: the model of every request (MODEL_NAME)', default: same('levee-stand-in'), parse: matching(/^[A-Za-z0-9._:/@-]{1,256}$/, 'a model name: letters, digits, ".", "_", ":", "/", "@" and "-", at most 256 characters') },
  modelImage: { env: 'LEVEE_MODEL_IMAGE', description: "the model container to run, pinned (it must serve the model API on PORT 8081 with /healthz and /readyz, run as uid 10001 with a read-only root); empty = Levee's stand-in (<registry>/levee-model)", default: same(''), parse: optionalPinnedImage },
  modelUrl: { env: 'LEVEE_MODEL_URL', description: 'an external model endpoint (a hosted API, or a server outside the chart): no model Deployment is written, and the workers and gateway may reach it (LEVEE_MODEL_CIDRS); empty = the in-cluster model', default: same(''), parse: optionalHttpUrl('https://api.example.com') },
  modelCidrs: { env: 'LEVEE_MODEL_CIDRS', description: 'with modelUrl: where it is, for the egress NetworkPolicy of the workers and the gateway (0.0.0.0/0 and ::/0 leave out the private, CGNAT and link-local ranges)', default: same('0.0.0.0/0'), parse: requiredCidrList },
  modelApiKeySecret: { env: 'LEVEE_MODEL_API_KEY_SECRET', description: 'Secret (key api-key) with the model API key, sent as a Bearer token (MODEL_API_KEY; the in-cluster stand-in then requires it too); empty = none', default: same(''), parse: optionalResourceName },
  modelStyles: { env: 'LEVEE_MODEL_STYLES', description: 'openai-images: the style catalog /api/styles serves (that API has none), comma-separated style ids; empty = none (404)', default: same(''), parse: matching(/^([a-z0-9-]{1,64}(,[a-z0-9-]{1,64})*)?$/, 'empty or comma-separated style ids (a-z, 0-9 and "-", e.g. sunset,ocean)') },
  modelGpus: { env: 'LEVEE_MODEL_GPUS', description: 'GPUs per model pod (limits of LEVEE_MODEL_GPU_RESOURCE, and a toleration of the GPU taint); 0 = none', default: same('0'), parse: integer(0, 16) },
  modelGpuResource: { env: 'LEVEE_MODEL_GPU_RESOURCE', description: 'with GPUs: the extended resource the model pods ask for', default: same('nvidia.com/gpu'), parse: matching(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\/[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/, 'an extended resource name <domain>/<name> (e.g. nvidia.com/gpu, amd.com/gpu)') },
  modelGpuTaint: { env: 'LEVEE_MODEL_GPU_TAINT', description: 'with GPUs: the key of the NoSchedule taint the GPU nodes carry (the model pods tolerate it; the Karpenter NodePool sets it)', default: same('nvidia.com/gpu'), parse: matching(LABEL_KEY, 'a taint key (a label key, e.g. nvidia.com/gpu)') },
  modelNodeSelector: { env: 'LEVEE_MODEL_NODE_SELECTOR', description: 'labels the model pods\' nodes must have, as key=value pairs (e.g. cloud.google.com/gke-accelerator=nvidia-l4); empty = none', default: same(''), parse: labelSelector },
  modelRuntimeClass: { env: 'LEVEE_MODEL_RUNTIME_CLASS', description: 'runtimeClassName of the model pods (e.g. nvidia); empty = the cluster default', default: same(''), parse: optionalResourceName },
  modelStartupSeconds: { env: 'LEVEE_MODEL_STARTUP_SECONDS', description: "longest a model pod may take to load and warm up (its startupProbe on /readyz): liveness starts only after, so a loading model is never killed", default: same('60'), parse: integer(10, 7200) },
  kedaCooldownSeconds: { env: 'LEVEE_KEDA_COOLDOWN_SECONDS', description: 'scale to zero: how long the queue stays empty before KEDA scales the model and the workers to zero', default: same('300'), parse: integer(30, 86400) },
  nodeProvisioner: { env: 'LEVEE_NODE_PROVISIONER', description: 'nodes for the model\'s GPUs: none (the cluster has them) or karpenter (a Karpenter NodePool karpenter.sh/v1 of GPU nodes, tainted, limited, consolidated when empty)', default: same('none'), parse: oneOf(NODE_PROVISIONERS) },
  gpuNodeClass: { env: 'LEVEE_GPU_NODECLASS', description: "karpenter: the cloud's NodeClass the NodePool uses, <group>/<kind>/<name> (the cluster's, not Levee's)", default: same('karpenter.k8s.aws/EC2NodeClass/gpu'), parse: nodeClassRef },
  gpuRequirements: {
    env: 'LEVEE_GPU_REQUIREMENTS',
    description: 'karpenter: node requirements, comma-separated <label>=<value>|<value> (operator In)',
    default: same('karpenter.k8s.aws/instance-category=g,karpenter.k8s.aws/instance-gpu-manufacturer=nvidia,karpenter.sh/capacity-type=on-demand'),
    parse: nodeRequirements,
  },
  gpuLimit: { env: 'LEVEE_GPU_LIMIT', description: 'karpenter: most GPUs the NodePool may provision in all (its limits)', default: same('100'), parse: integer(1, 100000) },
  gpuConsolidateAfter: { env: 'LEVEE_GPU_CONSOLIDATE_AFTER', description: 'karpenter: how long a GPU node stays empty before it is removed (consolidation when empty only: a node busy with renders is never drained for cost)', default: same('10m'), parse: karpenterDuration },
  gpuExpireAfter: { env: 'LEVEE_GPU_EXPIRE_AFTER', description: "karpenter: a GPU node's longest life (its expireAfter; Karpenter's default is 720h): expiry and drift do disrupt busy nodes, their renders then finish within the pods' grace period; Never = only when empty", default: same('720h'), parse: karpenterDuration },
  gpuDisruptionBudget: { env: 'LEVEE_GPU_DISRUPTION_BUDGET', description: 'karpenter: the share (or number) of GPU nodes disrupted at once', default: same('10%'), parse: matching(/^((100|[1-9]?[0-9])%|[0-9]+)$/, 'a percentage (e.g. 10%) or a number of nodes') },

  workerAutoscaler: { env: 'LEVEE_WORKER_AUTOSCALER', description: 'worker autoscaling: cpu (HorizontalPodAutoscaler) or keda (ScaledObject on queue depth) — never both', default: same('cpu'), parse: oneOf(WORKER_AUTOSCALERS) },
  kedaListLength: { env: 'LEVEE_KEDA_LIST_LENGTH', description: 'KEDA: waiting jobs per replica (listLength of the waiting and prioritized triggers; with scale to zero also of the model and of its running jobs)', default: same('20'), parse: integer(1, 100000) },
  kedaNamespace: { env: 'LEVEE_KEDA_NAMESPACE', description: 'namespace of the KEDA operator (allowed to reach the queue Redis when KEDA is on)', default: same('keda'), parse: namespaceName },

  queueRedis: {
    env: 'LEVEE_QUEUE_REDIS',
    description: 'the queue Redis: statefulset (one pod), sentinel (a primary, replicas and 3 Sentinels; survives losing a node) or external (a managed Redis, see LEVEE_QUEUE_REDIS_URL)',
    default: prodOr('sentinel', 'statefulset'),
    parse: oneOf(QUEUE_REDIS_MODES),
  },
  queueRedisReplicas: { env: 'LEVEE_QUEUE_REDIS_REPLICAS', description: 'sentinel: Redis data pods, one primary and the rest its replicas (at least 2)', default: same('3'), parse: integer(1, 9) },
  queueMinReplicasAcked: {
    env: 'LEVEE_QUEUE_MIN_REPLICAS_ACKED',
    description: 'replicas that must confirm each accepted job and each stored image (Redis WAIT) before the gateway answers 202 / the worker completes (QUEUE_MIN_REPLICAS_ACKED); unset: 1 with sentinel, else 0',
    default: () => undefined,
    parse: integer(0, 8),
  },
  queueRedisUrl: { env: 'LEVEE_QUEUE_REDIS_URL', description: 'external: URL of the managed queue Redis (rediss:// for TLS); required with external', default: same(''), parse: externalRedisUrl },
  queueRedisUsername: { env: 'LEVEE_QUEUE_REDIS_USERNAME', description: 'external: ACL user of the managed queue Redis; empty = the default user', default: same(''), parse: matching(/^([A-Za-z0-9._-]{1,128})?$/, 'empty or an ACL user name (letters, digits, ".", "_" and "-", at most 128 characters)') },
  queueRedisPasswordSecret: { env: 'LEVEE_QUEUE_REDIS_PASSWORD_SECRET', description: 'Secret (key password) with the queue Redis password; external: create it with the managed Redis password (the Pulumi program generates it only for an in-cluster Redis)', default: same('levee-queue-redis'), parse: matching(DNS_SUBDOMAIN, 'a Kubernetes Secret name (lower-case letters, digits, "-" and ".")') },
  queueRedisCaSecret: { env: 'LEVEE_QUEUE_REDIS_CA_SECRET', description: 'external with rediss://: Secret (key ca.crt) with the CA that signed the managed Redis certificate; empty = the system CAs', default: same(''), parse: optionalResourceName },
  queueRedisCidrs: { env: 'LEVEE_QUEUE_REDIS_CIDRS', description: 'external: CIDRs of the managed queue Redis (egress NetworkPolicy, on the URL port); required with external', default: same(''), parse: cidrList },
  queueRedisMemory: {
    env: 'LEVEE_QUEUE_REDIS_MEMORY',
    description: 'queue Redis memory request = limit; maxmemory is 75% of it. Unset: 512Mi in production with imageStore s3 (jobs and their records only: ~2.3 KiB per finished job), 1Gi with redis (the PNGs too: ~266 KiB each), 256Mi in preview and dev',
    default: () => undefined,
    parse: memory,
  },
  queueRedisPersistence: { env: 'LEVEE_QUEUE_REDIS_PERSISTENCE', description: 'queue Redis data on a PersistentVolumeClaim (false: emptyDir, no PVC)', default: prodOr('true', 'false'), parse: boolean },
  queueRedisStorageSize: { env: 'LEVEE_QUEUE_REDIS_STORAGE_SIZE', description: 'size of the queue Redis PVC (only with persistence)', default: same('10Gi'), parse: memory },
  storageClass: { env: 'LEVEE_STORAGE_CLASS', description: 'StorageClass of the queue Redis PVC; empty = the cluster default', default: same(''), parse: optionalResourceName },
  cacheRedis: { env: 'LEVEE_CACHE_REDIS', description: 'the cache Redis: deployment (one pod) or external (a managed Redis, see LEVEE_CACHE_REDIS_URL)', default: same('deployment'), parse: oneOf(CACHE_REDIS_MODES) },
  cacheRedisUrl: { env: 'LEVEE_CACHE_REDIS_URL', description: 'external: URL of the managed cache Redis (rediss:// for TLS); required with external', default: same(''), parse: externalRedisUrl },
  cacheRedisUsername: { env: 'LEVEE_CACHE_REDIS_USERNAME', description: 'external: ACL user of the managed cache Redis; empty = the default user', default: same(''), parse: matching(/^([A-Za-z0-9._-]{1,128})?$/, 'empty or an ACL user name (letters, digits, ".", "_" and "-", at most 128 characters)') },
  cacheRedisPasswordSecret: { env: 'LEVEE_CACHE_REDIS_PASSWORD_SECRET', description: 'Secret (key password) with the cache Redis password; external: create it with the managed Redis password', default: same('levee-cache-redis'), parse: matching(DNS_SUBDOMAIN, 'a Kubernetes Secret name (lower-case letters, digits, "-" and ".")') },
  cacheRedisCaSecret: { env: 'LEVEE_CACHE_REDIS_CA_SECRET', description: 'external with rediss://: Secret (key ca.crt) with the CA that signed the managed Redis certificate; empty = the system CAs', default: same(''), parse: optionalResourceName },
  cacheRedisCidrs: { env: 'LEVEE_CACHE_REDIS_CIDRS', description: 'external: CIDRs of the managed cache Redis (egress NetworkPolicy, on the URL port); required with external', default: same(''), parse: cidrList },
  cacheRedisMemory: { env: 'LEVEE_CACHE_REDIS_MEMORY', description: 'cache Redis memory request = limit; maxmemory is 75% of it', default: prodOr('256Mi', '128Mi'), parse: memory },

  imageStore: {
    env: 'LEVEE_IMAGE_STORE',
    description: 'where rendered PNGs go: s3 (S3-compatible object storage: AWS S3, GCS, Cloudflare R2, MinIO, Ceph RGW; the queue Redis then holds jobs only) or redis (the queue Redis, next to the jobs; nothing more to run)',
    default: byEnv({ production: 's3', preview: 's3', dev: 'redis' }),
    parse: oneOf(IMAGE_STORES),
  },
  imageBucket: { env: 'LEVEE_IMAGE_BUCKET', description: 's3: the bucket (create it with its lifecycle rule and access grant: docs/image-store.md); previews share one, each under its own prefix', default: byEnv({ production: 'levee-images', preview: 'levee-preview-images', dev: 'levee-dev-images' }), parse: bucketName },
  imageS3Prefix: { env: 'LEVEE_IMAGE_S3_PREFIX', description: 's3: key prefix of the PNGs, which are <prefix><job id>.png', default: (environment, id) => (environment === 'preview' ? `previews/${id}/images/` : 'images/'), parse: keyPrefix },
  imageS3Endpoint: { env: 'LEVEE_IMAGE_S3_ENDPOINT', description: 's3: endpoint of an S3-compatible store (GCS: https://storage.googleapis.com; R2: https://<account id>.r2.cloudflarestorage.com; MinIO: http://minio.minio:9000); empty = AWS S3', default: same(''), parse: optionalHttpUrl('https://storage.googleapis.com') },
  imageS3Region: { env: 'LEVEE_IMAGE_S3_REGION', description: "s3: the bucket's region (R2: auto); empty = the pods' AWS_REGION, else us-east-1", default: same(''), parse: matching(/^([a-z0-9-]{1,64})?$/, 'empty or a region name such as eu-west-1 or auto') },
  imageS3ForcePathStyle: { env: 'LEVEE_IMAGE_S3_FORCE_PATH_STYLE', description: 's3: path-style URLs <endpoint>/<bucket>/<key> instead of <bucket>.<endpoint>/<key> (MinIO, Ceph RGW)', default: same('false'), parse: boolean },
  imageS3CredentialsSecret: {
    env: 'LEVEE_IMAGE_S3_CREDENTIALS_SECRET',
    description: "s3: Secret (keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) with the store's access keys (GCS HMAC keys, R2 or MinIO keys), handed to the worker and media; empty = the AWS SDK's default chain only (workload identity)",
    default: same(''),
    parse: optionalResourceName,
  },
  imageS3RoleArn: { env: 'LEVEE_IMAGE_S3_ROLE_ARN', description: 's3 on EKS with IRSA: the IAM role of the worker and media ServiceAccounts (annotation eks.amazonaws.com/role-arn); empty = none (EKS Pod Identity needs no annotation)', default: same(''), parse: optionalRoleArn },
  imageGcpServiceAccount: {
    env: 'LEVEE_IMAGE_GCP_SERVICE_ACCOUNT',
    description: "GKE Workload Identity: the Google service account of the worker and media ServiceAccounts (annotation iam.gke.io/gcp-service-account); GCS's S3 API still signs with that account's HMAC keys (LEVEE_IMAGE_S3_CREDENTIALS_SECRET); empty = none",
    default: same(''),
    parse: optionalGcpServiceAccount,
  },
  imageS3Cidrs: {
    env: 'LEVEE_IMAGE_S3_CIDRS',
    description: 's3: where the store is, for the egress NetworkPolicy of the worker and media (0.0.0.0/0 and ::/0 leave out the private, CGNAT and link-local ranges: not the cluster, not the metadata address); a store inside the cluster or behind a private endpoint: its CIDRs',
    default: same('0.0.0.0/0'),
    parse: requiredCidrList,
  },
  imageDelivery: { env: 'LEVEE_IMAGE_DELIVERY', description: 'how media hands out a PNG kept in s3: stream (through media) or redirect (a 302 to a presigned URL: the bytes never pass through media)', default: same('stream'), parse: oneOf(IMAGE_DELIVERIES) },
  imageUrlTtlSeconds: { env: 'LEVEE_IMAGE_URL_TTL_SECONDS', description: 'redirect: lifetime of a presigned URL (IMAGE_URL_TTL_SECONDS)', default: same('900'), parse: integer(60, 604800) },
  imagePublicBaseUrl: {
    env: 'LEVEE_IMAGE_PUBLIC_BASE_URL',
    description: "a CDN or public bucket in front of the store: the status document's imageUrl becomes <this>/<object key> (IMAGE_PUBLIC_BASE_URL); empty = Levee's /images route",
    default: same(''),
    parse: optionalHttpUrl('https://cdn.example.com'),
  },

  edge: {
    env: 'LEVEE_EDGE',
    description: 'entry points: l4+l7 (LoadBalancer Service in front of the gateway plus L7 routes) or l7 (L7 routes only; a preview costs a hostname, never a load balancer)',
    default: byEnv({ production: 'l4+l7', preview: 'l7', dev: 'l4+l7' }),
    parse: oneOf(EDGES),
  },
  l7Provider: {
    env: 'LEVEE_L7_PROVIDER',
    description: 'how L7 routes are written: envoy-gateway (Gateway API objects plus Envoy Gateway policies), gateway-api (portable Gateway API objects only) or ingress-nginx (legacy Ingress; deprecated, ingress-nginx is retired)',
    default: same('envoy-gateway'),
    parse: oneOf(L7_PROVIDERS),
  },
  gatewayClass: { env: 'LEVEE_GATEWAY_CLASS', description: 'gatewayClassName of the Gateway Levee creates (Gateway API providers)', default: same('eg'), parse: matching(DNS_SUBDOMAIN, 'a GatewayClass name (lower-case letters, digits, "-" and ".")') },
  sharedGateway: {
    env: 'LEVEE_SHARED_GATEWAY',
    description: "an existing Gateway to attach the routes to, as <namespace>/<name> (its allowedRoutes must admit Levee's namespace); empty = Levee creates its own Gateway",
    default: byEnv({ production: '', preview: 'levee-previews/levee-previews', dev: '' }),
    parse: optionalGatewayRef,
  },
  sharedGatewayTls: { env: 'LEVEE_SHARED_GATEWAY_TLS', description: "with a shared Gateway: its listener terminates TLS for the host (the URLs are https)", default: same('true'), parse: boolean },
  previewDomain: { env: 'LEVEE_PREVIEW_DOMAIN', description: 'preview only: the domain under which each preview gets its host name <previewId>.<previewDomain>', default: same('preview.levee.example.com'), parse: matching(DNS_SUBDOMAIN, 'a DNS domain (lower-case letters, digits, "-" and ".")') },
  httpRedirect: { env: 'LEVEE_HTTP_REDIRECT', description: "Levee's own Gateway with TLS: an HTTP listener whose only route redirects to HTTPS (false: both listeners serve the routes)", default: same('true'), parse: boolean },
  ingressClass: { env: 'LEVEE_INGRESS_CLASS', description: 'ingressClassName of the Ingress (ingress-nginx provider)', default: same('nginx'), parse: matching(DNS_SUBDOMAIN, 'an IngressClass name (lower-case letters, digits, "-" and ".")') },
  l7Namespace: { env: 'LEVEE_L7_NAMESPACE', description: 'namespace of the L7 proxy pods, allowed to reach gateway and media (with the ingress-nginx provider the default is ingress-nginx)', default: same('envoy-gateway-system'), parse: namespaceName },
  l7ProxySelector: {
    env: 'LEVEE_L7_PROXY_SELECTOR',
    description: 'labels of the L7 proxy pods in that namespace, as key=value pairs; empty = every pod of the namespace (the default with the ingress-nginx provider)',
    default: same('app.kubernetes.io/name=envoy,app.kubernetes.io/component=proxy,app.kubernetes.io/managed-by=envoy-gateway'),
    parse: labelSelector,
  },
  host: {
    env: 'LEVEE_HOST',
    description: 'public host name of the L7 routes (preview: always <previewId>.<previewDomain>)',
    default: byEnv({ production: 'levee.example.com', preview: undefined, dev: 'levee.localtest.me' }),
    parse: matching(DNS_SUBDOMAIN, 'a DNS host name (lower-case letters, digits, "-" and ".")'),
  },
  tlsSecret: { env: 'LEVEE_TLS_SECRET', description: "TLS Secret (in Levee's namespace) of the L7 routes: the certificateRefs of Levee's own Gateway, or the Ingress's TLS; empty = no TLS", default: prodOr('levee-tls', ''), parse: optionalResourceName },

  clientIpDetection: {
    env: 'LEVEE_CLIENT_IP_DETECTION',
    description: 'envoy-gateway, own Gateway: how Envoy finds the client IP: xff (the X-Forwarded-For entry LEVEE_XFF_TRUSTED_HOPS from the right; 0 = the connection peer) or proxy-protocol (a PROXY protocol header from the load balancer)',
    default: same('xff'),
    parse: oneOf(CLIENT_IP_DETECTION),
  },
  xffTrustedHops: { env: 'LEVEE_XFF_TRUSTED_HOPS', description: "with xff: proxies in front of Envoy that append to X-Forwarded-For (0: Envoy's LoadBalancer keeps client IPs)", default: same('0'), parse: integer(0, 10) },
  edgeRequestTimeout: { env: 'LEVEE_EDGE_REQUEST_TIMEOUT', description: 'envoy-gateway: time Envoy waits for a whole response from the pods; empty = off', default: exceptDev('20s'), parse: optionalDuration },
  edgeIdleTimeout: { env: 'LEVEE_EDGE_IDLE_TIMEOUT', description: "envoy-gateway: idle timeout of client connections and of Envoy's connections to the pods (below the apps' 72 s keep-alive); empty = off", default: exceptDev('60s'), parse: optionalDuration },
  edgeRetries: { env: 'LEVEE_EDGE_RETRIES', description: 'envoy-gateway: retries of idempotent GETs on connect failure or 503 (never of POST); 0 = off', default: exceptDev('2', '0'), parse: integer(0, 5) },
  edgeMaxConnections: { env: 'LEVEE_EDGE_MAX_CONNECTIONS', description: 'envoy-gateway circuit breaker: connections each Envoy opens to the gateway (and media) pods; empty = off (Envoy default 1024)', default: exceptDev('2048'), parse: optionalInteger(1, 1_000_000) },
  edgeMaxPendingRequests: { env: 'LEVEE_EDGE_MAX_PENDING_REQUESTS', description: 'envoy-gateway circuit breaker: requests each Envoy queues waiting for a connection; beyond it Envoy answers 503 at once; empty = off', default: exceptDev('512'), parse: optionalInteger(1, 1_000_000) },
  edgeMaxParallelRequests: { env: 'LEVEE_EDGE_MAX_PARALLEL_REQUESTS', description: 'envoy-gateway circuit breaker: requests in flight from each Envoy to the pods; empty = off', default: exceptDev('4096'), parse: optionalInteger(1, 1_000_000) },
  edgeOutlierFailures: { env: 'LEVEE_EDGE_OUTLIER_FAILURES', description: 'envoy-gateway passive health check: consecutive connection failures, resets or timeouts after which a pod is ejected for 30 s (answers, even 503s, never eject); empty = off', default: exceptDev('5'), parse: optionalInteger(1, 1000) },
  edgeRateLimitMultiplier: { env: 'LEVEE_EDGE_RATE_LIMIT_MULTIPLIER', description: "envoy-gateway: per-client local rate limit in each Envoy, as a multiple of LEVEE_RATE_LIMIT_PER_SECOND (sheds a flood before Node; the app's shared limit stays exact); empty = off", default: exceptDev('3'), parse: optionalInteger(1, 1000) },

  loadBalancing: { env: 'LEVEE_LOAD_BALANCING', description: 'algorithm: round-robin, least-request or hash', default: same('round-robin'), parse: oneOf(LOAD_BALANCING) },
  hashBy: { env: 'LEVEE_HASH_BY', description: 'with hash: client-ip, header or cookie', default: same('client-ip'), parse: oneOf(HASH_BY) },
  hashHeader: { env: 'LEVEE_HASH_HEADER', description: 'with hash by header: the header (e.g. the API token)', default: same('Authorization'), parse: matching(/^[A-Za-z0-9-]{1,64}$/, 'an HTTP header name (letters, digits and "-", at most 64 characters)') },
  hashCookie: { env: 'LEVEE_HASH_COOKIE', description: 'with hash by cookie: the affinity cookie name', default: same('levee-affinity'), parse: matching(/^[A-Za-z0-9_-]{1,64}$/, 'a cookie name (letters, digits, "_" and "-", at most 64 characters)') },
  hashCookieTtl: { env: 'LEVEE_HASH_COOKIE_TTL', description: 'with hash by cookie: lifetime (Max-Age) of the affinity cookie', default: same('1h'), parse: duration },

  dnsSelector: {
    env: 'LEVEE_DNS_SELECTOR',
    description: 'the cluster DNS pods the apps may query, as <namespace>/<label>=<value> (OpenShift: openshift-dns/dns.operator.openshift.io/daemonset-dns=default)',
    default: same('kube-system/k8s-app=kube-dns'),
    parse: dnsSelector,
  },
  dnsPort: { env: 'LEVEE_DNS_PORT', description: 'port the DNS pods listen on, UDP and TCP (OpenShift: 5353)', default: same('53'), parse: integer(1, 65535) },
  dnsCidrs: { env: 'LEVEE_DNS_CIDRS', description: 'more DNS destinations on that port, as CIDRs (NodeLocal DNSCache: 169.254.20.10/32); empty = none', default: same(''), parse: cidrList },
  monitoringNamespace: { env: 'LEVEE_MONITORING_NAMESPACE', description: 'namespace of Prometheus (allowed to scrape the metrics ports)', default: same('monitoring'), parse: namespaceName },
  // Monitoring objects (prometheus-operator); every setting below needs monitoring = prometheus-operator.
  monitoring: { env: 'LEVEE_MONITORING', description: 'monitoring objects: none, or prometheus-operator (a ServiceMonitor/PodMonitor per component, a PrometheusRule with the alerts, a Grafana dashboard ConfigMap)', default: same('none'), parse: oneOf(MONITORING) },
  monitoringLabels: { env: 'LEVEE_MONITORING_LABELS', description: "labels put on the ServiceMonitors, PodMonitor and PrometheusRule so that your Prometheus's selectors pick them (kube-prometheus-stack: release=<its release name>); empty = none", default: same(''), parse: labelList },
  scrapeIntervalSeconds: { env: 'LEVEE_SCRAPE_INTERVAL_SECONDS', description: 'how often Prometheus scrapes each pod', default: same('15'), parse: integer(5, 300) },
  grafanaDashboardLabel: { env: 'LEVEE_GRAFANA_DASHBOARD_LABEL', description: "label of the dashboard ConfigMap that Grafana's dashboard sidecar looks for", default: same('grafana_dashboard=1'), parse: label },
  runbookUrl: { env: 'LEVEE_RUNBOOK_URL', description: 'runbook document the alerts link to (runbook_url = <this>#<alert name in lower case>)', default: same('https://github.com/levee-dev/levee/blob/main/docs/runbooks.md'), parse: httpsUrl },
  alertBreakerOpenMinutes: { env: 'LEVEE_ALERT_BREAKER_OPEN_MINUTES', description: 'alert LeveeCircuitBreakerOpen: a breaker not closed for this long', default: same('1'), parse: integer(1, 1440) },
  alertRateLimitedPercent: { env: 'LEVEE_ALERT_RATE_LIMITED_PERCENT', description: 'alert LeveeRateLimitedShareHigh: percent of /api answers that are 429 (5-minute rate), for 10 minutes', default: same('25'), parse: integer(1, 100) },
  alertQueueRejectedPercent: { env: 'LEVEE_ALERT_QUEUE_REJECTED_PERCENT', description: 'alert LeveeQueueFull: percent of POST /api/images refused with 503 by the queue bound (5-minute rate), for 5 minutes', default: same('1'), parse: integer(1, 100) },
  alertOldestJobMinutes: { env: 'LEVEE_ALERT_OLDEST_JOB_MINUTES', description: 'alert LeveeOldestJobWaiting: age of the oldest waiting job', default: same('10'), parse: integer(1, 1440) },
  alertWebhookFailurePercent: { env: 'LEVEE_ALERT_WEBHOOK_FAILURE_PERCENT', description: 'alert LeveeWebhookFailureRatioHigh: percent of the webhook delivery attempts over 15 minutes that did not get a 2xx, for 15 minutes', default: same('20'), parse: integer(1, 100) },
  alertJobFailurePercent: { env: 'LEVEE_ALERT_JOB_FAILURE_PERCENT', description: 'alert LeveeJobFailureRatioHigh: percent of the jobs finished over 15 minutes that failed for good, for 5 minutes', default: same('5'), parse: integer(1, 100) },
  alertStalledJobs: { env: 'LEVEE_ALERT_STALLED_JOBS', description: 'alert LeveeStalledJobsRecovered: stalled jobs recovered within 15 minutes (workers dying mid-job)', default: same('3'), parse: integer(1, 100000) },
  alertQueueRedisMemoryPercent: { env: 'LEVEE_ALERT_QUEUE_REDIS_MEMORY_PERCENT', description: 'alert LeveeQueueRedisMemoryHigh: queue Redis used memory, percent of its maxmemory, for 5 minutes', default: same('80'), parse: integer(1, 100) },
  alertGatewayMaxedMinutes: { env: 'LEVEE_ALERT_GATEWAY_MAXED_MINUTES', description: 'alert LeveeGatewayAtMaxReplicas: gateway pods at the autoscaler maximum for this long', default: same('15'), parse: integer(1, 1440) },

  // OpenTelemetry tracing (docs/how-to/tracing.md); every setting below needs otlpEndpoint.
  otlpEndpoint: {
    env: 'LEVEE_OTLP_ENDPOINT',
    description: "tracing: the OTLP endpoint every Levee container exports its spans to (OTEL_EXPORTER_OTLP_ENDPOINT; an OpenTelemetry Collector, Grafana Tempo or Jaeger), and egress NetworkPolicies to the collector pods (LEVEE_OTLP_NAMESPACE, LEVEE_OTLP_POD_LABELS, LEVEE_OTLP_PORT); empty = tracing off",
    default: same(''),
    parse: otlpEndpoint,
  },
  otlpProtocol: { env: 'LEVEE_OTLP_PROTOCOL', description: 'tracing: the OTLP transport (OTEL_EXPORTER_OTLP_PROTOCOL): http/protobuf, http/json or grpc', default: same('http/protobuf'), parse: oneOf(OTLP_PROTOCOLS) },
  traceSamplingRatio: {
    env: 'LEVEE_TRACE_SAMPLING_RATIO',
    description: "tracing: share of the traces started at Levee that are kept (OTEL_TRACES_SAMPLER_ARG of parentbased_traceidratio; a caller's traceparent decides for its own traces)",
    default: same('0.1'),
    parse: ratio,
  },
  otlpNamespace: { env: 'LEVEE_OTLP_NAMESPACE', description: 'tracing: namespace of the collector pods the Levee pods may reach (egress NetworkPolicy)', default: same('observability'), parse: namespaceName },
  otlpPodLabels: {
    env: 'LEVEE_OTLP_POD_LABELS',
    description: 'tracing: labels of the collector pods in that namespace, as key=value pairs (egress NetworkPolicy); empty = every pod of the namespace',
    default: same('app.kubernetes.io/name=opentelemetry-collector'),
    parse: labelList,
  },
  otlpPort: {
    env: 'LEVEE_OTLP_PORT',
    description: "tracing: the collector pods' port the egress NetworkPolicy opens (a NetworkPolicy sees the pod's port, not the Service's); empty = the endpoint URL's port, else 4317 for grpc and 4318 for the http protocols",
    default: same(''),
    parse: optionalPort("the endpoint URL's port, else 4317 for grpc and 4318 for http/protobuf and http/json"),
  },

  rateLimitPerSecond: { env: 'LEVEE_RATE_LIMIT_PER_SECOND', description: 'gateway RATE_LIMIT_PER_SECOND (per client IP)', default: same('10'), parse: integer(1, 100000) },
  rateLimitIpv6Prefix: { env: 'LEVEE_RATE_LIMIT_IPV6_PREFIX', description: 'gateway RATE_LIMIT_IPV6_PREFIX: IPv6 clients share one budget per this prefix of their address (a subscriber holds a /64 or more)', default: same('64'), parse: integer(32, 128) },
  trustProxy: { env: 'LEVEE_TRUST_PROXY', description: "the L7 proxy's pod CIDR(s), passed to the gateway as TRUST_PROXY: peers whose X-Forwarded-For is believed (the default trusts every 10.x peer, so any such pod or node reaching the gateway directly can pick its client IP); empty = trust no proxy (ingress-nginx only)", default: same('10.0.0.0/8'), parse: cidrList },
  queueName: { env: 'LEVEE_QUEUE_NAME', description: 'BullMQ queue name (QUEUE_NAME)', default: same('images'), parse: matching(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-", at most 64 characters') },
  queueMaxWaiting: { env: 'LEVEE_QUEUE_MAX_WAITING', description: 'gateway QUEUE_MAX_WAITING (backpressure bound)', default: same('10000'), parse: integer(1, 10000000) },
  cacheTtlSeconds: { env: 'LEVEE_CACHE_TTL_SECONDS', description: 'gateway CACHE_TTL_SECONDS', default: same('30'), parse: integer(1, 86400) },
  breakerOpenSeconds: { env: 'LEVEE_BREAKER_OPEN_SECONDS', description: 'gateway and worker BREAKER_OPEN_SECONDS', default: same('60'), parse: integer(1, 3600) },
  workerConcurrency: { env: 'LEVEE_WORKER_CONCURRENCY', description: 'worker WORKER_CONCURRENCY (jobs per pod; the workers mostly wait on the model, so their CPU autoscaler rarely adds pods: replicas × this bounds the renders in flight)', default: prodOr('8', '2'), parse: integer(1, 256) },
  modelTimeoutMs: { env: 'LEVEE_MODEL_TIMEOUT_MS', description: 'worker MODEL_TIMEOUT_MS; also sets the worker terminationGracePeriodSeconds', default: same('30000'), parse: integer(100, 600000) },
  imageTtlSeconds: { env: 'LEVEE_IMAGE_TTL_SECONDS', description: "worker IMAGE_TTL_SECONDS (how long rendered PNGs are kept in redis; in s3 the bucket's lifecycle rule expires them, and the worker warns when none does; the outcome record of a job: at least 24 h)", default: same('86400'), parse: integer(60, 30 * 86400) },
  logLevel: { env: 'LEVEE_LOG_LEVEL', description: 'gateway LOG_LEVEL', default: byEnv({ production: 'info', preview: 'info', dev: 'debug' }), parse: oneOf(LOG_LEVELS) },

  preStopSeconds: { env: 'LEVEE_PRESTOP_SECONDS', description: 'preStop sleep of the HTTP apps (lets endpoints and proxies forget the pod)', default: same('5'), parse: integer(0, 120) },
  shutdownDelaySeconds: { env: 'LEVEE_SHUTDOWN_DELAY_SECONDS', description: 'gateway and media SHUTDOWN_DELAY_SECONDS (readiness fails, then the delay, then close)', default: same('5'), parse: integer(0, 120) },
  drainSeconds: { env: 'LEVEE_DRAIN_SECONDS', description: 'time allowed for in-flight HTTP requests to finish after close (passed to the apps as DRAIN_TIMEOUT_SECONDS; also sizes the grace period)', default: same('20'), parse: integer(1, 600) },
} satisfies Record<string, SettingSpec<unknown>>;

export type SettingName = keyof typeof SETTINGS;
export type SettingValues = { [K in SettingName]: (typeof SETTINGS)[K] extends SettingSpec<infer T> ? T : never };
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

/** Settings that only mean something with `monitoring = prometheus-operator`. */
export const MONITORING_ONLY_SETTINGS: readonly SettingName[] = [
  'monitoringLabels', 'scrapeIntervalSeconds', 'grafanaDashboardLabel', 'runbookUrl', 'alertBreakerOpenMinutes', 'alertRateLimitedPercent',
  'alertQueueRejectedPercent', 'alertOldestJobMinutes', 'alertJobFailurePercent', 'alertWebhookFailurePercent', 'alertStalledJobs', 'alertQueueRedisMemoryPercent', 'alertGatewayMaxedMinutes',
];

/** Settings that only mean something with an OTLP endpoint (`otlpEndpoint` set). */
export const TRACING_ONLY_SETTINGS: readonly SettingName[] = ['otlpProtocol', 'traceSamplingRatio', 'otlpNamespace', 'otlpPodLabels', 'otlpPort'];

/** Settings that only mean something with `nodeProvisioner = karpenter`. */
export const KARPENTER_ONLY_SETTINGS: readonly SettingName[] = ['gpuNodeClass', 'gpuRequirements', 'gpuLimit', 'gpuConsolidateAfter', 'gpuExpireAfter', 'gpuDisruptionBudget'];

/** Settings that only mean something with `imageStore = s3`. */
export const S3_ONLY_SETTINGS: readonly SettingName[] = [
  'imageBucket', 'imageS3Prefix', 'imageS3Endpoint', 'imageS3Region', 'imageS3ForcePathStyle', 'imageS3CredentialsSecret', 'imageS3RoleArn', 'imageGcpServiceAccount', 'imageS3Cidrs',
];

/** `LEVEE_GATEWAY_MIN_REPLICAS (levee:gatewayMinReplicas)` — how every error names a setting, for env and Pulumi alike. */
export function settingLabel(name: SettingName): string {
  return `${SETTINGS[name].env} (levee:${name})`;
}
