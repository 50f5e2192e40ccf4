/**
 * Invalid settings and their exact messages: each names the setting (env variable and
 * Pulumi key), the bad value and what is allowed. Nothing is built when one fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, SETTINGS, SETTING_NAMES, buildManifests, configWarnings, resolveConfig, settingsFromEnv } from '../../infra';

const INVALID: [string, Record<string, string>, string[]][] = [
  ["unknown environment", {"environment": "staging"}, ["LEVEE_ENV (levee:environment) = \"staging\" is invalid; allowed: one of production, preview, dev"]],
  ["preview without an id", {"environment": "preview"}, ["LEVEE_PREVIEW_ID (levee:previewId) is required when LEVEE_ENV (levee:environment) = \"preview\"; allowed: a namespace suffix such as pr-123"]],
  ["preview id that is not a namespace suffix", {"environment": "preview", "previewId": "PR_7"}, ["LEVEE_PREVIEW_ID (levee:previewId) = \"PR_7\" is invalid; allowed: a namespace suffix: lower-case letters, digits and \"-\", starting and ending with a letter or digit, at most 57 characters (e.g. pr-123)"]],
  ["preview id too long", {"environment": "preview", "previewId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, ["LEVEE_PREVIEW_ID (levee:previewId) = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is invalid; allowed: a namespace suffix: lower-case letters, digits and \"-\", starting and ending with a letter or digit, at most 57 characters (e.g. pr-123)"]],
  ["preview id outside preview", {"previewId": "pr-7"}, ["LEVEE_PREVIEW_ID (levee:previewId) = \"pr-7\" is only allowed when LEVEE_ENV (levee:environment) = \"preview\" (got \"production\")"]],
  ["min replicas above max", {"gatewayMinReplicas": "5", "gatewayMaxReplicas": "3"}, ["LEVEE_GATEWAY_MIN_REPLICAS (levee:gatewayMinReplicas) = \"5\" is not below LEVEE_GATEWAY_MAX_REPLICAS (levee:gatewayMaxReplicas) = \"3\"; allowed: minimum replicas < maximum replicas (an autoscaler needs room to scale)"]],
  ["min replicas equal to max: an autoscaler that cannot scale", {"workerMinReplicas": "2", "workerMaxReplicas": "2"}, ["LEVEE_WORKER_MIN_REPLICAS (levee:workerMinReplicas) = \"2\" is not below LEVEE_WORKER_MAX_REPLICAS (levee:workerMaxReplicas) = \"2\"; allowed: minimum replicas < maximum replicas (an autoscaler needs room to scale)"]],
  ["digests for only some images", {"imageDigests": "levee-gateway=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, ["LEVEE_IMAGE_DIGESTS (levee:imageDigests) = \"levee-gateway=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is invalid; allowed: empty (pin by tag only) or every app image with its digest, comma-separated: levee-gateway=sha256:<64 hex>,levee-media=sha256:<64 hex>,levee-model=sha256:<64 hex>,levee-worker=sha256:<64 hex> (the release workflow prints this line)"]],
  ["replicas not an integer", {"workerMinReplicas": "two"}, ["LEVEE_WORKER_MIN_REPLICAS (levee:workerMinReplicas) = \"two\" is invalid; allowed: an integer from 1 to 1000"]],
  ["zero replicas", {"mediaMinReplicas": "0"}, ["LEVEE_MEDIA_MIN_REPLICAS (levee:mediaMinReplicas) = \"0\" is invalid; allowed: an integer from 1 to 1000"]],
  ["cpu target 0", {"gatewayCpuTarget": "0"}, ["LEVEE_GATEWAY_CPU_TARGET (levee:gatewayCpuTarget) = \"0\" is invalid; allowed: an integer from 1 to 100"]],
  ["cpu target 101", {"modelCpuTarget": "101"}, ["LEVEE_MODEL_CPU_TARGET (levee:modelCpuTarget) = \"101\" is invalid; allowed: an integer from 1 to 100"]],
  ["cpu request above limit", {"gatewayCpuRequest": "2", "gatewayCpuLimit": "1"}, ["LEVEE_GATEWAY_CPU_REQUEST (levee:gatewayCpuRequest) = \"2\" is greater than LEVEE_GATEWAY_CPU_LIMIT (levee:gatewayCpuLimit) = \"1\"; allowed: request ≤ limit"]],
  ["bad cpu", {"workerCpuLimit": "lots"}, ["LEVEE_WORKER_CPU_LIMIT (levee:workerCpuLimit) = \"lots\" is invalid; allowed: a CPU quantity such as 250m or 2 (greater than 0)"]],
  ["memory request above limit", {"mediaMemoryRequest": "1Gi", "mediaMemoryLimit": "512Mi"}, ["LEVEE_MEDIA_MEMORY_REQUEST (levee:mediaMemoryRequest) = \"1Gi\" is greater than LEVEE_MEDIA_MEMORY_LIMIT (levee:mediaMemoryLimit) = \"512Mi\"; allowed: request ≤ limit"]],
  ["bad memory unit", {"modelMemoryLimit": "1G"}, ["LEVEE_MODEL_MEMORY_LIMIT (levee:modelMemoryLimit) = \"1G\" is invalid; allowed: a memory quantity such as 512Mi or 2Gi (Ki, Mi, Gi or Ti, greater than 0)"]],
  ["latest tag", {"imageTag": "latest"}, ["LEVEE_IMAGE_TAG (levee:imageTag) = \"latest\" is invalid; allowed: a pinned image tag (letters, digits, \"_\", \".\" and \"-\", at most 128 characters), not \"latest\""]],
  ["unpinned redis", {"redisImage": "redis"}, ["LEVEE_REDIS_IMAGE (levee:redisImage) = \"redis\" is invalid; allowed: an image reference pinned to a tag other than \"latest\" or to a sha256 digest (e.g. redis:7.2.11-alpine)"]],
  ["redis latest", {"redisImage": "redis:latest"}, ["LEVEE_REDIS_IMAGE (levee:redisImage) = \"redis:latest\" is invalid; allowed: an image reference pinned to a tag other than \"latest\" or to a sha256 digest (e.g. redis:7.2.11-alpine)"]],
  ["bad registry", {"imageRegistry": "ghcr.io/levee-dev/"}, ["LEVEE_IMAGE_REGISTRY (levee:imageRegistry) = \"ghcr.io/levee-dev/\" is invalid; allowed: a registry host with an optional path (e.g. ghcr.io/levee-dev), lower case, no trailing \"/\""]],
  ["unknown lb", {"loadBalancing": "random"}, ["LEVEE_LOAD_BALANCING (levee:loadBalancing) = \"random\" is invalid; allowed: one of round-robin, least-request, hash"]],
  ["cookie hash at L4", {"loadBalancing": "hash", "hashBy": "cookie"}, ["LEVEE_HASH_BY (levee:hashBy) = \"cookie\" cannot be written out for the L4 Service (it sees no headers or cookies) while LEVEE_EDGE (levee:edge) = \"l4+l7\"; allowed at L4: hashBy = \"client-ip\"; or set edge = \"l7\""]],
  ["header hash at L4", {"loadBalancing": "hash", "hashBy": "header"}, ["LEVEE_HASH_BY (levee:hashBy) = \"header\" cannot be written out for the L4 Service (it sees no headers or cookies) while LEVEE_EDGE (levee:edge) = \"l4+l7\"; allowed at L4: hashBy = \"client-ip\"; or set edge = \"l7\""]],
  ["least-request at L4", {"loadBalancing": "least-request"}, ["LEVEE_LOAD_BALANCING (levee:loadBalancing) = \"least-request\" cannot be written out for the L4 Service (kube-proxy balances connections, not requests) while LEVEE_EDGE (levee:edge) = \"l4+l7\"; allowed at L4: round-robin, or hash with hashBy = \"client-ip\"; or set edge = \"l7\""]],
  ["hashBy without hash", {"hashBy": "client-ip"}, ["LEVEE_HASH_BY (levee:hashBy) = \"client-ip\" contradicts LEVEE_LOAD_BALANCING (levee:loadBalancing) = \"round-robin\"; allowed: hashBy only with loadBalancing = \"hash\""]],
  ["hashCookie with header hash", {"edge": "l7", "loadBalancing": "hash", "hashBy": "header", "hashCookie": "x"}, ["LEVEE_HASH_COOKIE (levee:hashCookie) = \"x\" contradicts LEVEE_HASH_BY (levee:hashBy) = \"header\"; allowed: hashCookie only with hashBy = \"cookie\""]],
  ["unknown edge", {"edge": "l4"}, ["LEVEE_EDGE (levee:edge) = \"l4\" is invalid; allowed: one of l4+l7, l7"]],
  ["unknown l7 provider", {"l7Provider": "traefik"}, ["LEVEE_L7_PROVIDER (levee:l7Provider) = \"traefik\" is invalid; allowed: one of envoy-gateway, gateway-api, ingress-nginx"]],
  ["preview with a host",{"environment":"preview","previewId":"pr-7","host":"x.example.com"},["LEVEE_HOST (levee:host) = \"x.example.com\" cannot be set when LEVEE_ENV (levee:environment) = \"preview\"; allowed: the preview host is always <previewId>.<previewDomain> (set previewDomain)"]],
  ["preview with its own load balancer",{"environment":"preview","previewId":"pr-7","edge":"l4+l7"},["LEVEE_EDGE (levee:edge) = \"l4+l7\" contradicts LEVEE_ENV (levee:environment) = \"preview\"; allowed: edge = \"l7\" (a preview is a host name on the shared Gateway, never a LoadBalancer of its own)"]],
  ["preview with its own Gateway",{"environment":"preview","previewId":"pr-7","sharedGateway":""},["LEVEE_SHARED_GATEWAY (levee:sharedGateway) = \"\" contradicts LEVEE_ENV (levee:environment) = \"preview\"; allowed: <namespace>/<name> of the shared preview Gateway (each Gateway costs a load balancer)"]],
  ["preview domain outside preview",{"previewDomain":"preview.example.com"},["LEVEE_PREVIEW_DOMAIN (levee:previewDomain) = \"preview.example.com\" is only allowed when LEVEE_ENV (levee:environment) = \"preview\" (got \"production\")"]],
  ["bad preview domain",{"environment":"preview","previewId":"pr-7","previewDomain":"Preview.Example.com"},["LEVEE_PREVIEW_DOMAIN (levee:previewDomain) = \"Preview.Example.com\" is invalid; allowed: a DNS domain (lower-case letters, digits, \"-\" and \".\")"]],
  ["bad shared gateway",{"sharedGateway":"levee-previews"},["LEVEE_SHARED_GATEWAY (levee:sharedGateway) = \"levee-previews\" is invalid; allowed: empty (Levee creates its own Gateway) or <namespace>/<name> of an existing Gateway (e.g. levee-previews/levee-previews)"]],
  ["shared gateway TLS without a shared gateway",{"sharedGatewayTls":"false"},["LEVEE_SHARED_GATEWAY_TLS (levee:sharedGatewayTls) = \"false\" contradicts LEVEE_SHARED_GATEWAY (levee:sharedGateway) = \"\"; allowed: sharedGatewayTls only with a shared Gateway (<namespace>/<name>)"]],
  ["gateway class with ingress-nginx",{"l7Provider":"ingress-nginx","gatewayClass":"eg"},["LEVEE_GATEWAY_CLASS (levee:gatewayClass) = \"eg\" contradicts LEVEE_L7_PROVIDER (levee:l7Provider) = \"ingress-nginx\"; allowed: gatewayClass only with l7Provider = \"envoy-gateway\" or \"gateway-api\""]],
  ["ingress class with envoy-gateway",{"ingressClass":"nginx"},["LEVEE_INGRESS_CLASS (levee:ingressClass) = \"nginx\" contradicts LEVEE_L7_PROVIDER (levee:l7Provider) = \"envoy-gateway\"; allowed: ingressClass only with l7Provider = \"ingress-nginx\" (set gatewayClass instead)"]],
  ["edge rate limit with gateway-api",{"l7Provider":"gateway-api","edgeRateLimitMultiplier":"3"},["LEVEE_EDGE_RATE_LIMIT_MULTIPLIER (levee:edgeRateLimitMultiplier) = \"3\" contradicts LEVEE_L7_PROVIDER (levee:l7Provider) = \"gateway-api\"; allowed: edgeRateLimitMultiplier only with l7Provider = \"envoy-gateway\" (an Envoy Gateway policy)"]],
  ["edge retries with ingress-nginx",{"l7Provider":"ingress-nginx","edgeRetries":"2"},["LEVEE_EDGE_RETRIES (levee:edgeRetries) = \"2\" contradicts LEVEE_L7_PROVIDER (levee:l7Provider) = \"ingress-nginx\"; allowed: edgeRetries only with l7Provider = \"envoy-gateway\" (an Envoy Gateway policy)"]],
  ["gateway class with a shared gateway",{"sharedGateway":"infra/public","gatewayClass":"eg"},["LEVEE_GATEWAY_CLASS (levee:gatewayClass) = \"eg\" contradicts LEVEE_SHARED_GATEWAY (levee:sharedGateway) = \"infra/public\"; allowed: gatewayClass only when Levee creates its own Gateway (sharedGateway = \"\")"]],
  ["TLS secret with a shared gateway",{"sharedGateway":"infra/public","tlsSecret":"levee-tls"},["LEVEE_TLS_SECRET (levee:tlsSecret) = \"levee-tls\" contradicts LEVEE_SHARED_GATEWAY (levee:sharedGateway) = \"infra/public\"; allowed: tlsSecret = \"\" (the shared Gateway's listener holds the certificate; see sharedGatewayTls)"]],
  ["client IP detection on a shared gateway",{"sharedGateway":"infra/public","clientIpDetection":"proxy-protocol"},["LEVEE_CLIENT_IP_DETECTION (levee:clientIpDetection) = \"proxy-protocol\" contradicts LEVEE_SHARED_GATEWAY (levee:sharedGateway) = \"infra/public\"; allowed: clientIpDetection only on Levee's own Gateway (a ClientTrafficPolicy attaches to the Gateway, which the shared Gateway's owner configures)"]],
  ["HTTPS redirect without TLS",{"tlsSecret":"","httpRedirect":"true"},["LEVEE_HTTP_REDIRECT (levee:httpRedirect) = \"true\" contradicts LEVEE_TLS_SECRET (levee:tlsSecret) = \"\"; allowed: an HTTPS redirect only with a TLS Secret"]],
  ["trusted hops with PROXY protocol",{"clientIpDetection":"proxy-protocol","xffTrustedHops":"1"},["LEVEE_XFF_TRUSTED_HOPS (levee:xffTrustedHops) = \"1\" contradicts LEVEE_CLIENT_IP_DETECTION (levee:clientIpDetection) = \"proxy-protocol\"; allowed: xffTrustedHops only with clientIpDetection = \"xff\""]],
  ["bad client IP detection",{"clientIpDetection":"header"},["LEVEE_CLIENT_IP_DETECTION (levee:clientIpDetection) = \"header\" is invalid; allowed: one of xff, proxy-protocol"]],
  ["too many trusted hops",{"xffTrustedHops":"11"},["LEVEE_XFF_TRUSTED_HOPS (levee:xffTrustedHops) = \"11\" is invalid; allowed: an integer from 0 to 10"]],
  ["least-request with gateway-api",{"l7Provider":"gateway-api","edge":"l7","loadBalancing":"least-request"},["LEVEE_LOAD_BALANCING (levee:loadBalancing) = \"least-request\" cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = \"gateway-api\": the portable Gateway API objects have no way to say least-request; allowed: loadBalancing = \"round-robin\" (the implementation's default), or l7Provider = \"envoy-gateway\" or \"ingress-nginx\""]],
  ["hash by cookie with gateway-api",{"l7Provider":"gateway-api","edge":"l7","loadBalancing":"hash","hashBy":"cookie"},["LEVEE_HASH_BY (levee:hashBy) = \"cookie\" cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = \"gateway-api\": the portable Gateway API objects have no way to say hash by cookie; allowed: loadBalancing = \"round-robin\" (the implementation's default), or l7Provider = \"envoy-gateway\" or \"ingress-nginx\""]],
  ["hash by client IP (default) with gateway-api",{"l7Provider":"gateway-api","loadBalancing":"hash"},["LEVEE_HASH_BY (levee:hashBy) = \"client-ip\" (the default of LEVEE_LOAD_BALANCING (levee:loadBalancing) = \"hash\") cannot be written out with LEVEE_L7_PROVIDER (levee:l7Provider) = \"gateway-api\": the portable Gateway API objects have no way to say hash by client-ip; allowed: loadBalancing = \"round-robin\" (the implementation's default), or l7Provider = \"envoy-gateway\" or \"ingress-nginx\""]],
  ["cookie lifetime without cookie hashing",{"edge":"l7","loadBalancing":"hash","hashBy":"header","hashCookieTtl":"1h"},["LEVEE_HASH_COOKIE_TTL (levee:hashCookieTtl) = \"1h\" contradicts LEVEE_HASH_BY (levee:hashBy) = \"header\"; allowed: hashCookieTtl only with loadBalancing = \"hash\" and hashBy = \"cookie\""]],
  ["cookie lifetime that is not a duration",{"edge":"l7","loadBalancing":"hash","hashBy":"cookie","hashCookieTtl":"1 hour"},["LEVEE_HASH_COOKIE_TTL (levee:hashCookieTtl) = \"1 hour\" is invalid; allowed: a duration greater than 0 such as 500ms, 20s, 1m or 1h30m"]],
  ["no trusted proxy with envoy-gateway",{"trustProxy":""},["LEVEE_TRUST_PROXY (levee:trustProxy) = \"\" contradicts LEVEE_L7_PROVIDER (levee:l7Provider) = \"envoy-gateway\": every request through the proxy would carry its pod IP, one rate-limit budget for all clients; allowed: the proxy pods' CIDR(s), e.g. 10.0.0.0/8"]],
  ["bad edge timeout",{"edgeRequestTimeout":"20"},["LEVEE_EDGE_REQUEST_TIMEOUT (levee:edgeRequestTimeout) = \"20\" is invalid; allowed: empty (off) or a duration greater than 0 such as 500ms, 20s, 1m or 1h30m"]],
  ["zero edge timeout",{"edgeIdleTimeout":"0s"},["LEVEE_EDGE_IDLE_TIMEOUT (levee:edgeIdleTimeout) = \"0s\" is invalid; allowed: empty (off) or a duration greater than 0 such as 500ms, 20s, 1m or 1h30m"]],
  ["edge retries out of range",{"edgeRetries":"6"},["LEVEE_EDGE_RETRIES (levee:edgeRetries) = \"6\" is invalid; allowed: an integer from 0 to 5"]],
  ["edge rate limit multiplier 0",{"edgeRateLimitMultiplier":"0"},["LEVEE_EDGE_RATE_LIMIT_MULTIPLIER (levee:edgeRateLimitMultiplier) = \"0\" is invalid; allowed: empty (off) or an integer from 1 to 1000"]],
  ["bad proxy selector",{"l7ProxySelector":"app.kubernetes.io/name"},["LEVEE_L7_PROXY_SELECTOR (levee:l7ProxySelector) = \"app.kubernetes.io/name\" is invalid; allowed: empty (any pod of the namespace) or comma-separated <label key>=<label value> pairs (e.g. app.kubernetes.io/name=envoy,app.kubernetes.io/component=proxy)"]],
  ["circuit breaker not a number",{"edgeMaxConnections":"lots"},["LEVEE_EDGE_MAX_CONNECTIONS (levee:edgeMaxConnections) = \"lots\" is invalid; allowed: empty (off) or an integer from 1 to 1000000"]],
  ["bad host", {"host": "Levee.Example.com"}, ["LEVEE_HOST (levee:host) = \"Levee.Example.com\" is invalid; allowed: a DNS host name (lower-case letters, digits, \"-\" and \".\")"]],
  ["bad tls secret", {"tlsSecret": "My_TLS"}, ["LEVEE_TLS_SECRET (levee:tlsSecret) = \"My_TLS\" is invalid; allowed: empty (none) or a Kubernetes resource name (lower-case letters, digits, \"-\" and \".\")"]],
  ["keda + cpu target", {"workerAutoscaler": "keda", "workerCpuTarget": "50"}, ["LEVEE_WORKER_CPU_TARGET (levee:workerCpuTarget) = \"50\" contradicts LEVEE_WORKER_AUTOSCALER (levee:workerAutoscaler) = \"keda\"; allowed: a CPU target only with workerAutoscaler = \"cpu\" (KEDA scales on queue depth)"]],
  ["keda list length without keda", {"kedaListLength": "5"}, ["LEVEE_KEDA_LIST_LENGTH (levee:kedaListLength) = \"5\" contradicts LEVEE_WORKER_AUTOSCALER (levee:workerAutoscaler) = \"cpu\"; allowed: a KEDA list length only with workerAutoscaler = \"keda\""]],
  ["storage without persistence", {"environment": "dev", "queueRedisStorageSize": "5Gi"}, ["LEVEE_QUEUE_REDIS_STORAGE_SIZE (levee:queueRedisStorageSize) = \"5Gi\" contradicts LEVEE_QUEUE_REDIS_PERSISTENCE (levee:queueRedisPersistence) = \"false\"; allowed: storage settings only with persistence = \"true\""]],
  ["redis too small", {"cacheRedisMemory": "32Mi"}, ["LEVEE_CACHE_REDIS_MEMORY (levee:cacheRedisMemory) = \"32Mi\" is too small for the cache Redis; allowed: at least 64Mi"]],
  ["bad persistence", {"queueRedisPersistence": "yes"}, ["LEVEE_QUEUE_REDIS_PERSISTENCE (levee:queueRedisPersistence) = \"yes\" is invalid; allowed: true or false"]],
  ["bad trust proxy", {"trustProxy": "10.0.0.0/33"}, ["LEVEE_TRUST_PROXY (levee:trustProxy) = \"10.0.0.0/33\" is invalid; allowed: empty or a comma-separated list of IPv4/IPv6 CIDRs (e.g. 10.0.0.0/8,fd00::/8)"]],
  ["dns selector without a label", {"dnsSelector": "kube-system"}, ["LEVEE_DNS_SELECTOR (levee:dnsSelector) = \"kube-system\" is invalid; allowed: <namespace>/<label key>=<label value> of the cluster DNS pods (e.g. kube-system/k8s-app=kube-dns)"]],
  ["dns port 0", {"dnsPort": "0"}, ["LEVEE_DNS_PORT (levee:dnsPort) = \"0\" is invalid; allowed: an integer from 1 to 65535"]],
  ["dns cidr without a prefix", {"dnsCidrs": "169.254.20.10"}, ["LEVEE_DNS_CIDRS (levee:dnsCidrs) = \"169.254.20.10\" is invalid; allowed: empty or a comma-separated list of IPv4/IPv6 CIDRs (e.g. 10.0.0.0/8,fd00::/8)"]],
  ["bad queue name", {"queueName": "a:b"}, ["LEVEE_QUEUE_NAME (levee:queueName) = \"a:b\" is invalid; allowed: letters, digits, \"_\" and \"-\", at most 64 characters"]],
  ["bad log level", {"logLevel": "verbose"}, ["LEVEE_LOG_LEVEL (levee:logLevel) = \"verbose\" is invalid; allowed: one of fatal, error, warn, info, debug, trace"]],
  ["unknown monitoring", {"monitoring": "prometheus"}, ["LEVEE_MONITORING (levee:monitoring) = \"prometheus\" is invalid; allowed: one of none, prometheus-operator"]],
  ["alert threshold without monitoring", {"alertOldestJobMinutes": "20"}, ["LEVEE_ALERT_OLDEST_JOB_MINUTES (levee:alertOldestJobMinutes) = \"20\" contradicts LEVEE_MONITORING (levee:monitoring) = \"none\"; allowed: alertOldestJobMinutes only with monitoring = \"prometheus-operator\""]],
  ["alert percent above 100", {"monitoring": "prometheus-operator", "alertRateLimitedPercent": "150"}, ["LEVEE_ALERT_RATE_LIMITED_PERCENT (levee:alertRateLimitedPercent) = \"150\" is invalid; allowed: an integer from 1 to 100"]],
  ["monitoring labels that are not key=value", {"monitoring": "prometheus-operator", "monitoringLabels": "release"}, ["LEVEE_MONITORING_LABELS (levee:monitoringLabels) = \"release\" is invalid; allowed: empty or comma-separated Kubernetes labels key=value (e.g. release=kube-prometheus-stack)"]],
  ["dashboard label with a bad value", {"monitoring": "prometheus-operator", "grafanaDashboardLabel": "grafana_dashboard=a b"}, ["LEVEE_GRAFANA_DASHBOARD_LABEL (levee:grafanaDashboardLabel) = \"grafana_dashboard=a b\" is invalid; allowed: a Kubernetes label key=value (e.g. grafana_dashboard=1)"]],
  ["runbook URL over http", {"monitoring": "prometheus-operator", "runbookUrl": "http://wiki.example.com/levee"}, ["LEVEE_RUNBOOK_URL (levee:runbookUrl) = \"http://wiki.example.com/levee\" is invalid; allowed: an https:// URL without a #fragment (the alerts append #<alert>)"]],
  ["unknown queue Redis mode", {"queueRedis": "cluster"}, ["LEVEE_QUEUE_REDIS (levee:queueRedis) = \"cluster\" is invalid; allowed: one of statefulset, sentinel, external"]],
  ["sentinel in preview with one data pod", {"environment": "preview", "previewId": "pr-7", "queueRedis": "sentinel", "queueRedisReplicas": "1"}, ["LEVEE_QUEUE_REDIS_REPLICAS (levee:queueRedisReplicas) = \"1\" is too few for LEVEE_QUEUE_REDIS (levee:queueRedis) = \"sentinel\"; allowed: at least 2 data pods (a primary and a replica to promote); 3 by default"]],
  ["data pods without sentinel", {"queueRedis": "statefulset", "queueRedisReplicas": "3"}, ["LEVEE_QUEUE_REDIS_REPLICAS (levee:queueRedisReplicas) = \"3\" contradicts LEVEE_QUEUE_REDIS (levee:queueRedis) = \"statefulset\"; allowed: data pods only with queueRedis = \"sentinel\" (statefulset runs one, external none)"]],
  ["more confirmations than replicas", {"queueMinReplicasAcked": "3"}, ["LEVEE_QUEUE_MIN_REPLICAS_ACKED (levee:queueMinReplicasAcked) = \"3\" can never be confirmed with LEVEE_QUEUE_REDIS (levee:queueRedis) = \"sentinel\" and LEVEE_QUEUE_REDIS_REPLICAS (levee:queueRedisReplicas) = \"3\"; allowed: at most 2 (the replicas there are)"]],
  ["confirmations from a single instance", {"environment": "dev", "queueMinReplicasAcked": "1"}, ["LEVEE_QUEUE_MIN_REPLICAS_ACKED (levee:queueMinReplicasAcked) = \"1\" can never be confirmed with LEVEE_QUEUE_REDIS (levee:queueRedis) = \"statefulset\"; allowed: at most 0 (the replicas there are)"]],
  ["external without a URL", {"queueRedis": "external", "queueRedisCidrs": "10.20.0.0/16"}, ["LEVEE_QUEUE_REDIS_URL (levee:queueRedisUrl) is required when LEVEE_QUEUE_REDIS (levee:queueRedis) = \"external\"; allowed: the managed Redis's redis:// or rediss:// URL (e.g. rediss://my-redis.example.com:6380)"]],
  ["external without CIDRs", {"cacheRedis": "external", "cacheRedisUrl": "rediss://cache.example.com:6380"}, ["LEVEE_CACHE_REDIS_CIDRS (levee:cacheRedisCidrs) is required when LEVEE_CACHE_REDIS (levee:cacheRedis) = \"external\"; allowed: the CIDRs the managed Redis is reached at (the egress NetworkPolicy allows only those), e.g. 10.20.0.0/16"]],
  ["a URL without external", {"queueRedisUrl": "redis://q.example.com:6379"}, ["LEVEE_QUEUE_REDIS_URL (levee:queueRedisUrl) = \"redis://q.example.com:6379\" contradicts LEVEE_QUEUE_REDIS (levee:queueRedis) = \"sentinel\"; allowed: queueRedisUrl only with queueRedis = \"external\""]],
  ["a password in the URL", {"queueRedis": "external", "queueRedisUrl": "rediss://levee:hunter2@q.example.com:6380", "queueRedisCidrs": "10.0.0.0/8"}, ["LEVEE_QUEUE_REDIS_URL (levee:queueRedisUrl) = \"rediss://levee:hunter2@q.example.com:6380\" is invalid; allowed: empty, or a redis:// or rediss:// URL of the managed Redis (host and port, e.g. rediss://my-redis.abc123.cache.amazonaws.com:6379), without a user or password"]],
  ["a CA without TLS", {"queueRedis": "external", "queueRedisUrl": "redis://q.example.com:6379", "queueRedisCidrs": "10.0.0.0/8", "queueRedisCaSecret": "q-ca"}, ["LEVEE_QUEUE_REDIS_CA_SECRET (levee:queueRedisCaSecret) = \"q-ca\" contradicts LEVEE_QUEUE_REDIS_URL (levee:queueRedisUrl) = \"redis://q.example.com:6379\"; allowed: a CA Secret only with a rediss:// (TLS) URL"]],
  ["in-cluster sizing with external", {"queueRedis": "external", "queueRedisUrl": "rediss://q.example.com:6380", "queueRedisCidrs": "10.0.0.0/8", "queueRedisMemory": "2Gi"}, ["LEVEE_QUEUE_REDIS_MEMORY (levee:queueRedisMemory) = \"2Gi\" contradicts LEVEE_QUEUE_REDIS (levee:queueRedis) = \"external\"; allowed: queueRedisMemory only with a Redis in the cluster"]],
  ["unknown image store", {"imageStore": "gcs"}, ["LEVEE_IMAGE_STORE (levee:imageStore) = \"gcs\" is invalid; allowed: one of s3, redis"]],
  ["bucket with upper case", {"imageBucket": "Levee_Images"}, ["LEVEE_IMAGE_BUCKET (levee:imageBucket) = \"Levee_Images\" is invalid; allowed: a bucket name: 3-222 characters of a-z, 0-9, \".\", \"_\" and \"-\", starting and ending with a letter or digit"]],
  ["prefix without a trailing slash", {"imageS3Prefix": "/images"}, ["LEVEE_IMAGE_S3_PREFIX (levee:imageS3Prefix) = \"/images\" is invalid; allowed: empty or folders ending in \"/\" (e.g. images/ or previews/pr-1/images/): letters, digits, \".\", \"_\" and \"-\""]],
  ["endpoint with credentials", {"imageS3Endpoint": "https://key:secret@storage.example.com"}, ["LEVEE_IMAGE_S3_ENDPOINT (levee:imageS3Endpoint) = \"https://key:secret@storage.example.com\" is invalid; allowed: empty or an http:// or https:// URL without a user, query or fragment (e.g. https://storage.googleapis.com)"]],
  ["no CIDRs for the store", {"imageS3Cidrs": ""}, ["LEVEE_IMAGE_S3_CIDRS (levee:imageS3Cidrs) = \"\" is invalid; allowed: a comma-separated list of IPv4/IPv6 CIDRs (e.g. 0.0.0.0/0, or 52.216.0.0/15,3.5.0.0/19)"]],
  ["not a role ARN", {"imageS3RoleArn": "levee-images"}, ["LEVEE_IMAGE_S3_ROLE_ARN (levee:imageS3RoleArn) = \"levee-images\" is invalid; allowed: empty or an IAM role ARN (e.g. arn:aws:iam::123456789012:role/levee-images)"]],
  ["s3 settings with the images in Redis", {"imageStore": "redis", "imageBucket": "acme", "imageS3CredentialsSecret": "keys"}, ["LEVEE_IMAGE_BUCKET (levee:imageBucket) = \"acme\" contradicts LEVEE_IMAGE_STORE (levee:imageStore) = \"redis\"; allowed: imageBucket only with imageStore = \"s3\"", "LEVEE_IMAGE_S3_CREDENTIALS_SECRET (levee:imageS3CredentialsSecret) = \"keys\" contradicts LEVEE_IMAGE_STORE (levee:imageStore) = \"redis\"; allowed: imageS3CredentialsSecret only with imageStore = \"s3\""]],
  ["redirect with the images in Redis", {"environment": "dev", "imageDelivery": "redirect"}, ["LEVEE_IMAGE_DELIVERY (levee:imageDelivery) = \"redirect\" contradicts LEVEE_IMAGE_STORE (levee:imageStore) = \"redis\"; allowed: redirect (a presigned URL of the object) only with imageStore = \"s3\""]],
  ["a URL lifetime without redirect", {"imageUrlTtlSeconds": "600"}, ["LEVEE_IMAGE_URL_TTL_SECONDS (levee:imageUrlTtlSeconds) = \"600\" contradicts LEVEE_IMAGE_DELIVERY (levee:imageDelivery) = \"stream\"; allowed: imageUrlTtlSeconds only with imageDelivery = \"redirect\""]],
  ["keys and a role", {"imageS3RoleArn": "arn:aws:iam::123456789012:role/levee", "imageS3CredentialsSecret": "keys"}, ["LEVEE_IMAGE_S3_CREDENTIALS_SECRET (levee:imageS3CredentialsSecret) = \"keys\" contradicts LEVEE_IMAGE_S3_ROLE_ARN (levee:imageS3RoleArn) = \"arn:aws:iam::123456789012:role/levee\": keys in the environment win over the role, silently; allowed: one of them"]],
  ["an unknown model API", {"modelApi": "stable-diffusion"}, ["LEVEE_MODEL_API (levee:modelApi) = \"stable-diffusion\" is invalid; allowed: one of levee, openai-images"]],
  ["a model image pinned to latest", {"modelImage": "sdxl:latest"}, ["LEVEE_MODEL_IMAGE (levee:modelImage) = \"sdxl:latest\" is invalid; allowed: empty (Levee's stand-in) or an image reference pinned to a tag other than \"latest\" or to a sha256 digest (e.g. redis:7.2.11-alpine)"]],
  ["GPUs for an external model", {"modelUrl": "https://images.example.com", "modelGpus": "1"}, ["LEVEE_MODEL_GPUS (levee:modelGpus) = \"1\" contradicts LEVEE_MODEL_URL (levee:modelUrl) = \"https://images.example.com\"; allowed: modelGpus only for a model in the cluster (modelUrl = \"\")"]],
  ["Karpenter without GPUs", {"nodeProvisioner": "karpenter"}, ["LEVEE_NODE_PROVISIONER (levee:nodeProvisioner) = \"karpenter\" contradicts LEVEE_MODEL_GPUS (levee:modelGpus) = \"0\"; allowed: the Karpenter NodePool is for the model's GPU nodes: set modelGpus > 0"]],
  ["a GPU limit without Karpenter", {"modelGpus": "1", "gpuLimit": "8"}, ["LEVEE_GPU_LIMIT (levee:gpuLimit) = \"8\" contradicts LEVEE_NODE_PROVISIONER (levee:nodeProvisioner) = \"none\"; allowed: gpuLimit only with nodeProvisioner = \"karpenter\""]],
  ["a GPU resource without GPUs", {"modelGpuResource": "amd.com/gpu"}, ["LEVEE_MODEL_GPU_RESOURCE (levee:modelGpuResource) = \"amd.com/gpu\" contradicts LEVEE_MODEL_GPUS (levee:modelGpus) = \"0\"; allowed: modelGpuResource only with GPUs (modelGpus > 0)"]],
  ["scale to zero without KEDA", {"modelMinReplicas": "0"}, ["LEVEE_MODEL_MIN_REPLICAS (levee:modelMinReplicas) = \"0\" needs LEVEE_WORKER_AUTOSCALER (levee:workerAutoscaler) = \"keda\" (got \"cpu\"); allowed: scale to zero with KEDA, which scales the model and the workers on the queue"]],
  ["a cooldown without scale to zero", {"workerAutoscaler": "keda", "kedaCooldownSeconds": "120"}, ["LEVEE_KEDA_COOLDOWN_SECONDS (levee:kedaCooldownSeconds) = \"120\" contradicts LEVEE_MODEL_MIN_REPLICAS (levee:modelMinReplicas) = \"2\"; allowed: a cooldown only with scale to zero (modelMinReplicas = 0)"]],
  ["styles with the levee API", {"modelStyles": "photo"}, ["LEVEE_MODEL_STYLES (levee:modelStyles) = \"photo\" contradicts LEVEE_MODEL_API (levee:modelApi) = \"levee\"; allowed: modelStyles only with modelApi = \"openai-images\" (the levee API serves its own catalog)"]],
  ["a NodeClass that is not group/kind/name", {"modelGpus": "1", "nodeProvisioner": "karpenter", "gpuNodeClass": "gpu"}, ["LEVEE_GPU_NODECLASS (levee:gpuNodeClass) = \"gpu\" is invalid; allowed: <group>/<kind>/<name> of a NodeClass (e.g. karpenter.k8s.aws/EC2NodeClass/gpu, karpenter.azure.com/AKSNodeClass/gpu)"]],
  ["a key in clear text to the internet", {"modelUrl": "http://images.example.com", "modelApiKeySecret": "key"}, ["LEVEE_MODEL_URL (levee:modelUrl) = \"http://images.example.com\" contradicts LEVEE_MODEL_API_KEY_SECRET (levee:modelApiKeySecret) = \"key\": the key would cross the internet in clear text; allowed: an https:// model URL, or modelCidrs limited to your private network"]],
  ["model CIDRs without an external model", {"modelCidrs": "10.0.0.0/8"}, ["LEVEE_MODEL_CIDRS (levee:modelCidrs) = \"10.0.0.0/8\" contradicts LEVEE_MODEL_URL (levee:modelUrl) = \"\"; allowed: modelCidrs only with an external model (modelUrl)"]],
  ["unknown cache Redis mode", {"cacheRedis": "sentinel"}, ["LEVEE_CACHE_REDIS (levee:cacheRedis) = \"sentinel\" is invalid; allowed: one of deployment, external"]],
  ["an OTLP endpoint that is not a URL", {"otlpEndpoint": "otel-collector.observability:4318"}, ["LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"otel-collector.observability:4318\" is invalid; allowed: empty (tracing off) or an http:// or https:// URL without a user, query or fragment (e.g. http://otel-collector.observability:4318)"]],
  ["an OTLP endpoint of another scheme", {"otlpEndpoint": "grpc://otel-collector.observability:4317"}, ["LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"grpc://otel-collector.observability:4317\" is invalid; allowed: empty (tracing off) or an http:// or https:// URL without a user, query or fragment (e.g. http://otel-collector.observability:4318)"]],
  ["an OTLP endpoint with credentials", {"otlpEndpoint": "https://user:pw@tempo.example.com"}, ["LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"https://user:pw@tempo.example.com\" is invalid; allowed: empty (tracing off) or an http:// or https:// URL without a user, query or fragment (e.g. http://otel-collector.observability:4318)"]],
  ["an unknown OTLP protocol", {"otlpEndpoint": "http://otel-collector.observability:4318", "otlpProtocol": "thrift"}, ["LEVEE_OTLP_PROTOCOL (levee:otlpProtocol) = \"thrift\" is invalid; allowed: one of http/protobuf, http/json, grpc"]],
  ["a sampling ratio above 1", {"otlpEndpoint": "http://otel-collector.observability:4318", "traceSamplingRatio": "1.5"}, ["LEVEE_TRACE_SAMPLING_RATIO (levee:traceSamplingRatio) = \"1.5\" is invalid; allowed: a number from 0 to 1 with at most 6 decimals (e.g. 0.1 = one trace in ten, 1 = every trace, 0 = none unless the caller sampled it)"]],
  ["a sampling ratio as a percentage", {"otlpEndpoint": "http://otel-collector.observability:4318", "traceSamplingRatio": "10%"}, ["LEVEE_TRACE_SAMPLING_RATIO (levee:traceSamplingRatio) = \"10%\" is invalid; allowed: a number from 0 to 1 with at most 6 decimals (e.g. 0.1 = one trace in ten, 1 = every trace, 0 = none unless the caller sampled it)"]],
  ["an OTLP port of 0", {"otlpEndpoint": "http://otel-collector.observability:4318", "otlpPort": "0"}, ["LEVEE_OTLP_PORT (levee:otlpPort) = \"0\" is invalid; allowed: empty (the endpoint URL's port, else 4317 for grpc and 4318 for http/protobuf and http/json) or an integer from 1 to 65535"]],
  ["an OTLP port above 65535", {"otlpEndpoint": "http://otel-collector.observability:4318", "otlpPort": "70000"}, ["LEVEE_OTLP_PORT (levee:otlpPort) = \"70000\" is invalid; allowed: empty (the endpoint URL's port, else 4317 for grpc and 4318 for http/protobuf and http/json) or an integer from 1 to 65535"]],
  ["a collector namespace that is not a namespace name", {"otlpEndpoint": "http://otel-collector.observability:4318", "otlpNamespace": "Observability"}, ["LEVEE_OTLP_NAMESPACE (levee:otlpNamespace) = \"Observability\" is invalid; allowed: a namespace name (lower-case letters, digits and \"-\", at most 63 characters)"]],
  ["collector pod labels that are not key=value", {"otlpEndpoint": "http://otel-collector.observability:4318", "otlpPodLabels": "opentelemetry-collector"}, ["LEVEE_OTLP_POD_LABELS (levee:otlpPodLabels) = \"opentelemetry-collector\" is invalid; allowed: empty or comma-separated Kubernetes labels key=value (e.g. release=kube-prometheus-stack)"]],
  ["an OTLP protocol without an endpoint", {"otlpProtocol": "grpc"}, ["LEVEE_OTLP_PROTOCOL (levee:otlpProtocol) = \"grpc\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpProtocol only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)"]],
  ["a sampling ratio without an endpoint", {"traceSamplingRatio": "1"}, ["LEVEE_TRACE_SAMPLING_RATIO (levee:traceSamplingRatio) = \"1\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: traceSamplingRatio only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)"]],
  ["a collector namespace without an endpoint", {"otlpNamespace": "tempo"}, ["LEVEE_OTLP_NAMESPACE (levee:otlpNamespace) = \"tempo\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpNamespace only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)"]],
  ["collector pod labels without an endpoint", {"otlpPodLabels": "app.kubernetes.io/name=tempo"}, ["LEVEE_OTLP_POD_LABELS (levee:otlpPodLabels) = \"app.kubernetes.io/name=tempo\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpPodLabels only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)"]],
  ["an OTLP port without an endpoint", {"otlpPort": "4317"}, ["LEVEE_OTLP_PORT (levee:otlpPort) = \"4317\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpPort only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)"]],
  ["every tracing setting but the endpoint", {"otlpProtocol": "http/json", "traceSamplingRatio": "0.5", "otlpNamespace": "tempo", "otlpPodLabels": "", "otlpPort": "4318"}, ["LEVEE_OTLP_PROTOCOL (levee:otlpProtocol) = \"http/json\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpProtocol only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)", "LEVEE_TRACE_SAMPLING_RATIO (levee:traceSamplingRatio) = \"0.5\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: traceSamplingRatio only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)", "LEVEE_OTLP_NAMESPACE (levee:otlpNamespace) = \"tempo\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpNamespace only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)", "LEVEE_OTLP_POD_LABELS (levee:otlpPodLabels) = \"\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpPodLabels only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)", "LEVEE_OTLP_PORT (levee:otlpPort) = \"4318\" contradicts LEVEE_OTLP_ENDPOINT (levee:otlpEndpoint) = \"\"; allowed: otlpPort only with an OTLP endpoint (otlpEndpoint = an http:// or https:// URL)"]],
  ["unknown setting", {"gatewayReplicas": "3"}, ["unknown setting \"gatewayReplicas\"; allowed: the settings listed in infra/README.md (environment, previewId, imageRegistry, …)"]],
  ["several at once", {"gatewayMinReplicas": "x", "imageTag": "latest"}, ["LEVEE_IMAGE_TAG (levee:imageTag) = \"latest\" is invalid; allowed: a pinned image tag (letters, digits, \"_\", \".\" and \"-\", at most 128 characters), not \"latest\"", "LEVEE_GATEWAY_MIN_REPLICAS (levee:gatewayMinReplicas) = \"x\" is invalid; allowed: an integer from 1 to 1000"]],
];

describe('invalid settings', () => {
  test.each(INVALID)('%s fails with the exact message', (_case, input, problems) => {
    let error: unknown;
    try {
      resolveConfig(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual(problems);
    expect((error as ConfigError).message).toContain('nothing was written');
  });
});

describe('valid settings', () => {
  test('the defaults resolve to production in namespace levee', () => {
    const c = resolveConfig({});
    expect([c.environment, c.namespace, c.podDisruptionBudgets, c.namespaceGuards]).toEqual(['production', 'levee', true, false]);
    expect(c.gateway.cpuTargetPercent).toBe(80);
    // The images in object storage: the queue Redis holds jobs and their records only.
    expect(c.imageStore).toEqual({ kind: 's3', bucket: 'levee-images', prefix: 'images/', forcePathStyle: false, serviceAccountAnnotations: {}, egress: { cidrs: ['0.0.0.0/0'], port: 443 } });
    expect(c.imageDelivery).toEqual({ mode: 'stream', urlTtlSeconds: 900 });
    expect(c.queueRedis.memory.text).toBe('512Mi');
    expect(c.queueRedis.maxmemoryMb).toBe(384);
  });

  test('the queue Redis is sized for what it holds: 1Gi with the images in it, 256Mi outside production, or as given', () => {
    expect(resolveConfig({ imageStore: 'redis' }).queueRedis.maxmemoryMb).toBe(768);
    expect(resolveConfig({ environment: 'preview', previewId: 'pr-1' }).queueRedis.memory.text).toBe('256Mi');
    expect(resolveConfig({ environment: 'dev' }).queueRedis.memory.text).toBe('256Mi');
    expect(resolveConfig({ queueRedisMemory: '2Gi' }).queueRedis.maxmemoryMb).toBe(1536);
    expect(() => resolveConfig({ queueRedisMemory: '32Mi' })).toThrow('LEVEE_QUEUE_REDIS_MEMORY (levee:queueRedisMemory) = "32Mi" is too small for the queue Redis; allowed: at least 64Mi');
  });

  test('the object store: the endpoint gives the egress port; a preview its own prefix; dev keeps the images in Redis', () => {
    expect(resolveConfig({ imageS3Endpoint: 'http://minio.minio:9000', imageS3ForcePathStyle: 'true' }).imageStore).toMatchObject({ endpoint: 'http://minio.minio:9000', forcePathStyle: true, egress: { port: 9000 } });
    expect(resolveConfig({ imageS3Endpoint: 'http://ceph-rgw.storage' }).imageStore).toMatchObject({ egress: { port: 80 } });
    expect(resolveConfig({ imageS3Endpoint: 'https://storage.example.com:8443' }).imageStore).toMatchObject({ egress: { port: 8443 } });
    expect(resolveConfig({ environment: 'preview', previewId: 'pr-9' }).imageStore).toMatchObject({ bucket: 'levee-preview-images', prefix: 'previews/pr-9/images/' });
    expect(resolveConfig({ environment: 'dev' }).imageStore).toEqual({ kind: 'redis' });
    expect(resolveConfig({ imagePublicBaseUrl: 'https://cdn.example.com' }).imageDelivery).toEqual({ mode: 'stream', urlTtlSeconds: 900, publicBaseUrl: 'https://cdn.example.com' });
  });

  test('preview derives namespace, labels and host from the id', () => {
    const c = resolveConfig({ environment: 'preview', previewId: 'pr-123' });
    expect(c.namespace).toBe('levee-pr-123');
    expect(c.labels).toEqual({ 'levee.dev/environment': 'preview', 'levee.dev/preview-id': 'pr-123' });
    expect(c.edge.host).toBe('pr-123.preview.levee.example.com');
    expect(c.queueRedis.persistence).toBe(false);
  });

  test('image digests pin every app image by tag and digest; empty pins by tag only', () => {
    const digest = (c: string) => `sha256:${c.repeat(64)}`;
    const digests = `levee-gateway=${digest('1')},levee-media=${digest('2')},levee-model=${digest('3')},levee-worker=${digest('4')}`;
    const images = (settings: Record<string, string>) =>
      buildManifests(resolveConfig(settings))
        .filter((m) => m.kind === 'Deployment')
        .map((m) => [m.metadata.name, (m as unknown as { spec: { template: { spec: { containers: { image: string }[] } } } }).spec.template.spec.containers[0]!.image]);
    expect(Object.fromEntries(images({ imageDigests: digests, imageTag: '1.2.3' }))).toEqual({
      'levee-gateway': `ghcr.io/levee-dev/levee-gateway:1.2.3@${digest('1')}`,
      'levee-media': `ghcr.io/levee-dev/levee-media:1.2.3@${digest('2')}`,
      'levee-model': `ghcr.io/levee-dev/levee-model:1.2.3@${digest('3')}`,
      'levee-worker': `ghcr.io/levee-dev/levee-worker:1.2.3@${digest('4')}`,
      // The webhook sender runs in the worker image.
      'levee-webhooks': `ghcr.io/levee-dev/levee-worker:1.2.3@${digest('4')}`,
      'levee-cache-redis': 'redis:7.2.11-alpine',
    });
    expect(images({}).find(([n]) => n === 'levee-gateway')![1]).toBe('ghcr.io/levee-dev/levee-gateway:0.1.0');
  });

  test('a preview host is <previewId>.<previewDomain>, on the shared preview Gateway, without a load balancer', () => {
    const c = resolveConfig({ environment: 'preview', previewId: 'pr-9', previewDomain: 'pr.example.net' });
    expect(c.edge.host).toBe('pr-9.pr.example.net');
    expect(c.edge.l4).toBe(false);
    expect(c.edge.gateway?.shared).toEqual({ namespace: 'levee-previews', name: 'levee-previews' });
    expect(c.edge.https).toBe(true);
    expect(c.edge.tlsSecret).toBeUndefined();
  });

  test('the legacy provider keeps its own proxy namespace and selects the whole namespace, unless told otherwise', () => {
    expect(resolveConfig({ l7Provider: 'ingress-nginx' }).edge).toMatchObject({ l7Namespace: 'ingress-nginx', l7ProxyLabels: {} });
    expect(resolveConfig({ l7Provider: 'ingress-nginx', l7Namespace: 'nginx', l7ProxySelector: 'app=nginx' }).edge).toMatchObject({ l7Namespace: 'nginx', l7ProxyLabels: { app: 'nginx' } });
    expect(resolveConfig({}).edge).toMatchObject({
      l7Namespace: 'envoy-gateway-system',
      l7ProxyLabels: { 'app.kubernetes.io/name': 'envoy', 'app.kubernetes.io/component': 'proxy', 'app.kubernetes.io/managed-by': 'envoy-gateway' },
    });
  });

  test('the edge limit is the multiplier times the app limit; dev has no edge defenses', () => {
    expect(resolveConfig({ rateLimitPerSecond: '7', edgeRateLimitMultiplier: '4' }).edge.envoy?.rateLimitPerSecond).toBe(28);
    expect(resolveConfig({ environment: 'dev' }).edge.envoy).toEqual({ clientIp: { mode: 'xff', trustedHops: 0 }, retries: 0, circuitBreaker: {} });
  });

  test('only the legacy provider gets a warning, one line', () => {
    expect(configWarnings(resolveConfig({}))).toEqual([]);
    expect(configWarnings(resolveConfig({ l7Provider: 'gateway-api' }))).toEqual([]);
    const [warning, ...rest] = configWarnings(resolveConfig({ l7Provider: 'ingress-nginx' }));
    expect(rest).toEqual([]);
    expect(warning).toMatch(/^warning: LEVEE_L7_PROVIDER \(levee:l7Provider\) = "ingress-nginx" is deprecated .*envoy-gateway/);
    expect(warning).not.toContain('\n');
  });

  test('production runs the queue Redis with Sentinel (3 data pods, 1 confirming replica); preview and dev a single StatefulSet pod', () => {
    expect(resolveConfig({}).queueRedis).toMatchObject({ mode: 'sentinel', replicas: 3, minReplicasAcked: 1, sentinel: { sentinels: 3, quorum: 2 } });
    for (const settings of [{ environment: 'preview', previewId: 'pr-1' }, { environment: 'dev' }]) {
      const q = resolveConfig(settings).queueRedis;
      expect([q.mode, q.replicas, q.minReplicasAcked, q.sentinel]).toEqual(['statefulset', 1, 0, undefined]);
    }
    expect(resolveConfig({ queueRedisReplicas: '5', queueMinReplicasAcked: '4' }).queueRedis).toMatchObject({ replicas: 5, minReplicasAcked: 4 });
    expect(resolveConfig({ environment: 'dev', queueRedis: 'sentinel', queueMinReplicasAcked: '0' }).queueRedis).toMatchObject({ mode: 'sentinel', replicas: 3, minReplicasAcked: 0 });
  });

  test('external Redis: the URL splits into host, port and TLS; CIDRs, ACL user and CA Secret are kept; nothing in-cluster', () => {
    const c = resolveConfig({
      queueRedis: 'external', queueRedisUrl: 'rediss://q.example.com:6380', queueRedisCidrs: '10.20.0.0/16,10.21.0.0/16', queueRedisUsername: 'levee', queueRedisCaSecret: 'q-ca', queueRedisPasswordSecret: 'managed-q',
      cacheRedis: 'external', cacheRedisUrl: 'redis://[fd00::7]', cacheRedisCidrs: 'fd00::/64',
    });
    expect(c.queueRedis).toMatchObject({ mode: 'external', replicas: 0, minReplicasAcked: 0, passwordSecret: 'managed-q', external: { host: 'q.example.com', port: 6380, tls: true, username: 'levee', caSecret: 'q-ca', cidrs: ['10.20.0.0/16', '10.21.0.0/16'] } });
    expect(c.cacheRedis).toMatchObject({ mode: 'external', passwordSecret: 'levee-cache-redis', external: { host: 'fd00::7', port: 6379, tls: false, cidrs: ['fd00::/64'] } });
    expect(c.cacheRedis.external).not.toHaveProperty('username');
  });

  test('an empty TLS secret or storage class means none', () => {
    const c = resolveConfig({ tlsSecret: '', storageClass: '' });
    expect(c.edge.tlsSecret).toBeUndefined();
    expect(c.queueRedis.storageClass).toBeUndefined();
  });

  test('tracing is off by default in every environment; the endpoint turns it on with the defaults of its other settings', () => {
    for (const settings of [{}, { environment: 'preview', previewId: 'pr-1' }, { environment: 'dev' }]) expect(resolveConfig(settings).tracing).toBeUndefined();
    expect(resolveConfig({ otlpEndpoint: 'http://otel-collector.observability:4318' }).tracing).toEqual({
      endpoint: 'http://otel-collector.observability:4318',
      protocol: 'http/protobuf',
      samplingRatio: 0.1,
      collector: { namespace: 'observability', labels: { 'app.kubernetes.io/name': 'opentelemetry-collector' }, port: 4318 },
    });
  });

  test("the collector port: LEVEE_OTLP_PORT, else the endpoint URL's port, else 4317 for grpc and 4318 for the http protocols", () => {
    const port = (settings: Record<string, string>) => resolveConfig(settings).tracing?.collector.port;
    expect(port({ otlpEndpoint: 'http://tempo.tempo:4318' })).toBe(4318);
    expect(port({ otlpEndpoint: 'http://jaeger.tracing:14318', otlpProtocol: 'grpc' })).toBe(14318);
    expect(port({ otlpEndpoint: 'http://otel-collector.observability', otlpProtocol: 'grpc' })).toBe(4317);
    expect(port({ otlpEndpoint: 'https://otel-collector.observability' })).toBe(4318);
    expect(port({ otlpEndpoint: 'http://otel-collector.observability', otlpProtocol: 'http/json' })).toBe(4318);
    // A port written in the URL counts even when it is the scheme's own.
    expect(port({ otlpEndpoint: 'http://otel-collector.observability:80' })).toBe(80);
    expect(port({ otlpEndpoint: 'http://[fd00::7]:4319/otlp' })).toBe(4319);
    // A Service whose port differs from the collector pods' (80 → 4318): the pods' port is what a NetworkPolicy sees.
    expect(port({ otlpEndpoint: 'http://otel-collector.observability:80', otlpPort: '4318' })).toBe(4318);
    expect(resolveConfig({ otlpEndpoint: 'http://c.o:4318', otlpPodLabels: '', traceSamplingRatio: '1' }).tracing).toMatchObject({ samplingRatio: 1, collector: { labels: {} } });
  });

  test('the tracing settings given at their defaults without an endpoint change nothing (a Pulumi project default is harmless)', () => {
    const defaults = { otlpEndpoint: '', otlpProtocol: 'http/protobuf', traceSamplingRatio: '0.1', otlpNamespace: 'observability', otlpPodLabels: 'app.kubernetes.io/name=opentelemetry-collector', otlpPort: '' };
    expect(resolveConfig(defaults)).toEqual(resolveConfig({}));
    // The same value written differently is still the default.
    expect(resolveConfig({ traceSamplingRatio: '0.10' })).toEqual(resolveConfig({}));
  });

  test('every setting has a LEVEE_ environment variable, a description and a valid default in every environment', () => {
    const envs = new Set<string>();
    for (const name of SETTING_NAMES) {
      const spec = SETTINGS[name];
      expect(spec.env).toMatch(/^LEVEE_[A-Z0-9_]+$/);
      expect(spec.description.length).toBeGreaterThan(10);
      envs.add(spec.env);
      for (const env of ['production', 'preview', 'dev'] as const) {
        const d = spec.default(env, 'pr-1');
        if (d !== undefined) expect((spec.parse as (r: string) => { ok: boolean })(d).ok).toBe(true);
      }
    }
    expect(envs.size).toBe(SETTING_NAMES.length);
  });

  test('infra/README.md sends readers to the generated settings reference', () => {
    const readme = readFileSync(join(__dirname, '../../infra/README.md'), 'utf8');
    expect(readme).toContain('(../docs/reference/settings.md#the-charts-settings-levee_)');
    // No hand-kept copy of the table is left to drift.
    expect(readme).not.toContain('| `LEVEE_ENV` |');
  });
});

describe('settings from the environment', () => {
  test('LEVEE_* variables map to settings; others are ignored', () => {
    expect(settingsFromEnv({ LEVEE_ENV: 'preview', LEVEE_PREVIEW_ID: 'pr-7', LEVEE_GATEWAY_MIN_REPLICAS: '4', PATH: '/bin' })).toEqual({
      environment: 'preview',
      previewId: 'pr-7',
      gatewayMinReplicas: '4',
    });
  });

  test('an unknown LEVEE_ variable is refused, so a typo never falls back to a default', () => {
    expect(() => settingsFromEnv({ LEVEE_GATEWAY_MIN_REPLICA: '4' })).toThrow(
      'unknown environment variable LEVEE_GATEWAY_MIN_REPLICA = "4"; allowed: the LEVEE_* settings listed in infra/README.md',
    );
  });
});

describe('npm run synth', () => {
  const run = (env: Record<string, string>) => {
    const outdir = mkdtempSync(join(tmpdir(), 'levee-synth-'));
    const result = spawnSync(process.execPath, [require.resolve('tsx/cli'), 'infra/main.ts'], {
      cwd: join(__dirname, '../..'),
      env: { PATH: process.env.PATH ?? '', CDK8S_OUTDIR: outdir, ...env },
      encoding: 'utf8',
    });
    const files = existsSync(outdir) ? readdirSync(outdir) : [];
    rmSync(outdir, { recursive: true, force: true });
    return { status: result.status, stderr: result.stderr, stdout: result.stdout, files };
  };

  test('writes one manifest file for a valid preview', () => {
    const r = run({ LEVEE_ENV: 'preview', LEVEE_PREVIEW_ID: 'pr-7' });
    expect(r.status).toBe(0);
    expect(r.files).toEqual(['levee.k8s.yaml']);
    expect(r.stdout).toContain('namespace levee-pr-7');
  });

  test('writes the production edge on Envoy Gateway with nothing on stderr', () => {
    const r = run({});
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    // 46 objects of the edge and the apps (the webhook sender's 5: ServiceAccount, Deployment, HPA, PDB, NetworkPolicy; the event streams' BackendTrafficPolicy),
    // plus the Sentinel topology's 7 (a second StatefulSet, its two Services, ServiceAccount, two PDBs, a NetworkPolicy).
    expect(r.stdout).toContain('(53 objects, namespace levee)');
  });

  test('with the legacy ingress-nginx provider, prints one deprecation line and still writes', () => {
    const r = run({ LEVEE_L7_PROVIDER: 'ingress-nginx' });
    expect(r.status).toBe(0);
    expect(r.files).toEqual(['levee.k8s.yaml']);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^warning: LEVEE_L7_PROVIDER \(levee:l7Provider\) = "ingress-nginx" is deprecated/)]);
  });

  test('fails with the message and writes nothing for an invalid setting', () => {
    const r = run({ LEVEE_ENV: 'preview' });
    expect(r.status).toBe(1);
    expect(r.files).toEqual([]);
    expect(r.stderr).toContain('LEVEE_PREVIEW_ID (levee:previewId) is required when LEVEE_ENV (levee:environment) = "preview"');
  });
});
