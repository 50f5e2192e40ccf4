/**
 * Each policy rule fires on a bad object: GIVEN the clean production manifests, WHEN one
 * field is broken, THEN exactly that rule reports the object.
 */
import { checkPolicy, PolicyError, RULES } from '../../infra';
import { manifestsFor } from './helpers';

type M = any[];
const byName = (m: M, kind: string, name: string) => m.find((o) => o.kind === kind && o.metadata.name === name);
const pod = (m: M, name: string) => (byName(m, 'Deployment', name) ?? byName(m, 'StatefulSet', name)).spec.template.spec;
const container = (m: M, name: string) => pod(m, name).containers[0];
const redisArgs = (m: M, name: string) => container(m, name).args as string[];
const setFlag = (args: string[], flag: string, value: string) => (args[args.indexOf(flag) + 1] = value);
const redisScript = (m: M, name: string, edit: (script: string) => string) => (container(m, name).command[2] = edit(container(m, name).command[2]));

/** A model on one GPU, on Karpenter's GPU nodes. */
const GPU = { modelGpus: '1', nodeProvisioner: 'karpenter' };
const egressOf = (m: M, name: string) => byName(m, 'NetworkPolicy', name).spec.egress as any[];
const envOf = (m: M, name: string) => container(m, name).env as any[];

/** Tracing on: every Levee app exports spans (POD_NAME, then the OTEL_* variables). */
const TRACING = { otlpEndpoint: 'http://otel-collector.observability:4318' };
const moveToEnd = (env: any[], name: string) => env.push(...env.splice(env.findIndex((e) => e.name === name), 1));

const CASES: [rule: string, object: string, what: string, breakIt: (m: M) => void, settings?: Record<string, string>][] = [
  ['gpu', 'Deployment/levee/levee-model', 'a GPU request below its limit', (m) => (container(m, 'levee-model').resources.requests['nvidia.com/gpu'] = 0), GPU],
  ['gpu', 'Deployment/levee/levee-model', 'a GPU pod that tolerates no taint', (m) => delete pod(m, 'levee-model').tolerations, GPU],
  ['gpu', 'Deployment/levee/levee-worker', 'a GPU for the worker', (m) => { container(m, 'levee-worker').resources.limits['nvidia.com/gpu'] = 1; container(m, 'levee-worker').resources.requests['nvidia.com/gpu'] = 1; pod(m, 'levee-worker').tolerations = [{ operator: 'Exists' }]; }],
  ['worker-grace', 'Deployment/levee/levee-worker', 'a grace period shorter than a render and an upload', (m) => (pod(m, 'levee-worker').terminationGracePeriodSeconds = 40)],
  ['no-metadata-egress', 'NetworkPolicy/levee/levee-worker', 'the store egress without its exceptions (the metadata address open)', (m) => delete egressOf(m, 'levee-worker').find((r) => r.to?.[0]?.ipBlock).to[0].ipBlock.except],
  ['no-metadata-egress', 'NetworkPolicy/levee/levee-media', 'an egress to 169.254.0.0/16', (m) => egressOf(m, 'levee-media').push({ to: [{ ipBlock: { cidr: '169.254.0.0/16' } }], ports: [{ protocol: 'TCP', port: 80 }] })],
  ['no-metadata-egress', 'NetworkPolicy/levee/levee-gateway', 'an egress rule to every destination', (m) => egressOf(m, 'levee-gateway').push({ ports: [{ protocol: 'TCP', port: 443 }] })],
  ['image-store-egress', 'Deployment/levee/levee-media', 'no egress to the store', (m) => byName(m, 'NetworkPolicy', 'levee-media').spec.egress.splice(0, 1)],
  ['image-store-egress', 'Deployment/levee/levee-worker', 'an endpoint on another port than the egress', (m) => envOf(m, 'levee-worker').push({ name: 'IMAGE_S3_ENDPOINT', value: 'http://minio.minio:9000' })],
  ['image-store-egress', 'Deployment/levee/levee-worker', 'no bucket', (m) => envOf(m, 'levee-worker').splice(envOf(m, 'levee-worker').findIndex((e) => e.name === 'IMAGE_S3_BUCKET'), 1)],
  ['no-literal-secrets', 'Deployment/levee/levee-media', "the object store's access key id written in the manifest", (m) => envOf(m, 'levee-media').push({ name: 'AWS_ACCESS_KEY_ID', value: 'AKIAEXAMPLE' })],
  ['env-references', 'Deployment/levee/levee-gateway', 'OTEL_RESOURCE_ATTRIBUTES before the POD_NAME it expands', (m) => moveToEnd(envOf(m, 'levee-gateway'), 'POD_NAME'), TRACING],
  ['env-references', 'Deployment/levee/levee-model', 'a trace resource that names a variable the container does not have', (m) => (envOf(m, 'levee-model').find((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES').value += ',k8s.node.name=$(NODE_NAME)'), TRACING],
  ['env-references', 'StatefulSet/levee/levee-queue-sentinel', "the Sentinel's announced host before the POD_NAME it expands", (m) => moveToEnd(envOf(m, 'levee-queue-sentinel'), 'POD_NAME')],
  ['env-references', 'Deployment/levee/levee-worker', 'an argument that refers to an undeclared variable', (m) => (container(m, 'levee-worker').args = ['--inspect=$(INSPECT_PORT)'])],
  ['pss-restricted', 'Deployment/levee/levee-gateway', 'a container may escalate privileges', (m) => delete container(m, 'levee-gateway').securityContext.allowPrivilegeEscalation],
  ['pss-restricted', 'Deployment/levee/levee-media', 'a container runs with a uid below 10000', (m) => (container(m, 'levee-media').securityContext.runAsUser = 1000) && (pod(m, 'levee-media').securityContext.runAsUser = 1000)],
  ['pss-restricted', 'Deployment/levee/levee-model', 'capabilities are not dropped', (m) => (container(m, 'levee-model').securityContext.capabilities = {})],
  ['pss-restricted', 'StatefulSet/levee/levee-queue-redis', 'no seccomp profile', (m) => { delete container(m, 'levee-queue-redis').securityContext.seccompProfile; delete pod(m, 'levee-queue-redis').securityContext.seccompProfile; }],
  ['pss-restricted', 'Deployment/levee/levee-worker', 'the pod uses the host network', (m) => (pod(m, 'levee-worker').hostNetwork = true)],
  ['pss-restricted', 'Deployment/levee/levee-worker', 'a hostPath volume', (m) => pod(m, 'levee-worker').volumes.push({ name: 'host', hostPath: { path: '/' } })],
  ['read-only-root', 'Deployment/levee/levee-gateway', 'a writable root filesystem', (m) => (container(m, 'levee-gateway').securityContext.readOnlyRootFilesystem = false)],
  ['read-only-root', 'Deployment/levee/levee-media', 'no /tmp emptyDir', (m) => (container(m, 'levee-media').volumeMounts = [])],
  ['resources', 'Deployment/levee/levee-gateway', 'no ephemeral-storage limit', (m) => delete container(m, 'levee-gateway').resources.limits['ephemeral-storage']],
  ['resources', 'Deployment/levee/levee-model', 'no cpu request', (m) => delete container(m, 'levee-model').resources.requests.cpu],
  ['resources', 'Deployment/levee/levee-worker', 'a memory request above the limit', (m) => (container(m, 'levee-worker').resources.requests.memory = '2Gi')],
  ['probes', 'Deployment/levee/levee-gateway', 'no readiness probe', (m) => delete container(m, 'levee-gateway').readinessProbe],
  ['probes', 'Deployment/levee/levee-media', 'liveness identical to readiness', (m) => (container(m, 'levee-media').livenessProbe = container(m, 'levee-media').readinessProbe)],
  ['pinned-image', 'Deployment/levee/levee-gateway', 'a latest tag', (m) => (container(m, 'levee-gateway').image = 'ghcr.io/levee-dev/levee-gateway:latest')],
  ['pinned-image', 'Deployment/levee/levee-cache-redis', 'an untagged image on a registry with a port', (m) => (container(m, 'levee-cache-redis').image = 'registry:5000/redis')],
  ['autoscaler-replicas', 'Deployment/levee/levee-gateway', 'fixed replicas under an HPA', (m) => (byName(m, 'Deployment', 'levee-gateway').spec.replicas = 3)],
  ['autoscaler-replicas', 'HorizontalPodAutoscaler/levee/levee-media', 'min above max', (m) => (byName(m, 'HorizontalPodAutoscaler', 'levee-media').spec.minReplicas = 99)],
  ['autoscaler-replicas', 'HorizontalPodAutoscaler/levee/levee-gateway', 'min equal to max (an autoscaler that can never scale)', (m) => (byName(m, 'HorizontalPodAutoscaler', 'levee-gateway').spec.maxReplicas = byName(m, 'HorizontalPodAutoscaler', 'levee-gateway').spec.minReplicas)],
  ['autoscaler-replicas', 'Deployment/levee/levee-worker', 'an HPA and a ScaledObject on the same worker', (m) => m.push({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name: 'extra', namespace: 'levee' }, spec: { scaleTargetRef: { name: 'levee-worker' }, minReplicaCount: 2, maxReplicaCount: 5, triggers: [] } })],
  ['pdb-drain', 'PodDisruptionBudget/levee/levee-gateway', 'maxUnavailable 0', (m) => (byName(m, 'PodDisruptionBudget', 'levee-gateway').spec.maxUnavailable = 0)],
  ['pdb-drain', 'PodDisruptionBudget/levee/levee-model', 'minAvailable equal to the minimum replicas', (m) => { const s = byName(m, 'PodDisruptionBudget', 'levee-model').spec; delete s.maxUnavailable; s.minAvailable = 2; }],
  ['pdb-drain', 'PodDisruptionBudget/levee/levee-media', 'unhealthy pods not evictable', (m) => delete byName(m, 'PodDisruptionBudget', 'levee-media').spec.unhealthyPodEvictionPolicy],
  ['pdb-drain', 'PodDisruptionBudget/levee/levee-worker', 'a budget over a single replica', (m) => (byName(m, 'HorizontalPodAutoscaler', 'levee-worker').spec.minReplicas = 1)],
  ['network-coverage', 'Namespace/-/levee', 'no default deny', (m) => m.splice(m.indexOf(byName(m, 'NetworkPolicy', 'levee-default-deny')), 1)],
  ['network-coverage', 'Deployment/levee/levee-model', 'no allow policy of its own', (m) => m.splice(m.indexOf(byName(m, 'NetworkPolicy', 'levee-model')), 1)],
  ['service-selects-pods', 'Service/levee/levee-media', 'a selector that matches nothing', (m) => (byName(m, 'Service', 'levee-media').spec.selector = { 'app.kubernetes.io/name': 'levee-medai' })],
  ['service-selects-pods', 'Service/levee/levee-model', 'a target port the pods do not have', (m) => (byName(m, 'Service', 'levee-model').spec.ports[0].targetPort = 'grpc')],
  ['statefulset-headless', 'StatefulSet/levee/levee-queue-redis', 'a governing Service with a cluster IP', (m) => delete byName(m, 'Service', 'levee-queue-redis').spec.clusterIP],
  ['statefulset-headless', 'StatefulSet/levee/levee-queue-redis', 'a missing governing Service', (m) => (byName(m, 'StatefulSet', 'levee-queue-redis').spec.serviceName = 'nope')],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'a literal password on stdin', (m) => redisScript(m, 'levee-queue-redis', (s) => s.replace('requirepass $REDIS_PASSWORD', 'requirepass hunter2'))],
  ['redis', 'Deployment/levee/levee-cache-redis', 'a password variable that is not from a Secret', (m) => redisScript(m, 'levee-cache-redis', (s) => s.replace('requirepass $REDIS_PASSWORD', 'requirepass $HOME'))],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'a literal --requirepass argument', (m) => redisArgs(m, 'levee-queue-redis').push('--requirepass', 'hunter2')],
  ['redis', 'Deployment/levee/levee-cache-redis', 'the Secret-backed password as a --requirepass $(VAR) argument', (m) => redisArgs(m, 'levee-cache-redis').push('--requirepass', '$(REDIS_PASSWORD)')],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'the old redis-server command with --requirepass $(VAR)', (m) => { const c = container(m, 'levee-queue-redis'); c.command = ['redis-server']; c.args.unshift('--requirepass', '$(REDIS_PASSWORD)'); }],
  ['redis', 'Deployment/levee/levee-cache-redis', 'redis-cli -a in the readiness probe', (m) => (container(m, 'levee-cache-redis').readinessProbe.exec.command = ['sh', '-c', 'redis-cli -a "$REDISCLI_AUTH" ping | grep -q PONG'])],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'maxmemory at the memory limit', (m) => setFlag(redisArgs(m, 'levee-queue-redis'), '--maxmemory', '1gb')],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'noeviction without AOF', (m) => setFlag(redisArgs(m, 'levee-queue-redis'), '--appendonly', 'no')],
  ['redis', 'Deployment/levee/levee-cache-redis', 'an evicting cache that persists', (m) => setFlag(redisArgs(m, 'levee-cache-redis'), '--appendonly', 'yes')],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'a replicated Redis without masterauth', (m) => redisScript(m, 'levee-queue-redis', (s) => s.replace('masterauth $REDIS_PASSWORD\n', ''))],
  ['redis', 'StatefulSet/levee/levee-queue-redis', 'a literal masterauth', (m) => redisScript(m, 'levee-queue-redis', (s) => s.replace('masterauth $REDIS_PASSWORD', 'masterauth hunter2'))],
  ['redis', 'StatefulSet/levee/levee-queue-sentinel', 'a Sentinel without auth-pass for the data pods', (m) => redisScript(m, 'levee-queue-sentinel', (s) => s.replace(/^sentinel auth-pass .*\n/m, ''))],
  ['redis', 'StatefulSet/levee/levee-queue-sentinel', 'a Sentinel with a literal sentinel-pass', (m) => redisScript(m, 'levee-queue-sentinel', (s) => s.replace('sentinel sentinel-pass $REDIS_PASSWORD', 'sentinel sentinel-pass hunter2'))],
  ['redis', 'StatefulSet/levee/levee-queue-sentinel', 'a Sentinel whose password is not on stdin', (m) => redisScript(m, 'levee-queue-sentinel', (s) => s.replace('exec redis-server "$conf" "$@" - <<EOF', 'exec redis-server "$conf" "$@" <<EOF'))],
  ['redis-sentinel', 'StatefulSet/levee/levee-queue-sentinel', 'two Sentinels (no majority survives losing one)', (m) => (byName(m, 'StatefulSet', 'levee-queue-sentinel').spec.replicas = 2)],
  ['redis-sentinel', 'StatefulSet/levee/levee-queue-sentinel', 'a quorum that is not a majority', (m) => (container(m, 'levee-queue-sentinel').env.find((e: any) => e.name === 'QUORUM').value = '1')],
  ['redis-sentinel', 'StatefulSet/levee/levee-queue-sentinel', 'its config directory not on an emptyDir', (m) => (container(m, 'levee-queue-sentinel').volumeMounts = container(m, 'levee-queue-sentinel').volumeMounts.filter((v: any) => v.name !== 'sentinel'))],
  ['redis-sentinel', 'StatefulSet/levee/levee-queue-redis', 'a replicated Redis whose readiness cannot tell a replica from a primary', (m) => (container(m, 'levee-queue-redis').readinessProbe.exec.command = ['sh', '-c', 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'])],
  ['redis-sentinel', 'StatefulSet/levee/levee-queue-redis', 'replicas and no Sentinel to promote one', (m) => {
    for (const kind of ['StatefulSet', 'Service', 'PodDisruptionBudget', 'NetworkPolicy', 'ServiceAccount']) {
      for (const o of m.filter((x: any) => x.kind === kind && /^levee-queue-sentinel/.test(x.metadata.name))) m.splice(m.indexOf(o), 1);
    }
  }],
  ['no-literal-secrets', 'Deployment/levee/levee-gateway', 'a literal password env', (m) => container(m, 'levee-gateway').env.push({ name: 'QUEUE_REDIS_PASSWORD', value: 'hunter2' })],
  ['no-literal-secrets', 'Secret/levee/levee-queue-redis', 'a Secret in the manifests', (m) => m.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'levee-queue-redis', namespace: 'levee' }, stringData: { password: 'x' } })],
  ['service-account', 'Deployment/levee/levee-gateway', 'the default ServiceAccount', (m) => (pod(m, 'levee-gateway').serviceAccountName = 'default')],
  ['service-account', 'Deployment/levee/levee-media', 'an automounted token', (m) => { pod(m, 'levee-media').automountServiceAccountToken = true; }],
  ['route-backends', 'HTTPRoute/levee/levee', 'a backendRef to a Service the chart does not have', (m) => (byName(m, 'HTTPRoute', 'levee').spec.rules[1].backendRefs[0].name = 'levee-gatway')],
  ['route-backends', 'HTTPRoute/levee/levee', 'a backendRef to a port the Service does not have', (m) => (byName(m, 'HTTPRoute', 'levee').spec.rules.find((r: any) => r.name === 'images').backendRefs[0].port = 8080)],
  ['route-backends', 'HTTPRoute/levee/levee', 'a backendRef into another namespace', (m) => (byName(m, 'HTTPRoute', 'levee').spec.rules[0].backendRefs[0].namespace = 'default')],
  ['route-parents', 'HTTPRoute/levee/levee', 'a parentRef to a listener the Gateway does not have', (m) => (byName(m, 'HTTPRoute', 'levee').spec.parentRefs[0].sectionName = 'tls')],
  ['route-parents', 'HTTPRoute/levee/levee-redirect', 'a parentRef to a Gateway of the namespace that the chart does not have', (m) => (byName(m, 'HTTPRoute', 'levee-redirect').spec.parentRefs[0].name = 'public')],
  ['route-parents', 'HTTPRoute/levee/levee', 'a host name no listener admits', (m) => (byName(m, 'HTTPRoute', 'levee').spec.hostnames = ['api.example.org'])],
  ['policy-targets', 'BackendTrafficPolicy/levee/levee', 'a targetRef to a route the chart does not have', (m) => (byName(m, 'BackendTrafficPolicy', 'levee').spec.targetRefs[0].name = 'levee-api')],
  ['policy-targets', 'BackendTrafficPolicy/levee/levee-reads', 'a targetRef to a route rule that does not exist', (m) => (byName(m, 'BackendTrafficPolicy', 'levee-reads').spec.targetRefs[0].sectionName = 'reads')],
  ['policy-targets', 'ClientTrafficPolicy/levee/levee', 'a targetRef to a Gateway the chart does not have', (m) => (byName(m, 'ClientTrafficPolicy', 'levee').spec.targetRefs[0].name = 'eg')],
  ['edge-rate-limit', 'BackendTrafficPolicy/levee/levee', 'an edge limit below the app limit', (m) => (byName(m, 'BackendTrafficPolicy', 'levee').spec.rateLimit.local.rules[1].limit.requests = 9)],
  ['edge-rate-limit', 'BackendTrafficPolicy/levee/levee-reads', 'an edge limit per minute that is below the app limit per second', (m) => (byName(m, 'BackendTrafficPolicy', 'levee-reads').spec.rateLimit.local.rules[0].limit = { requests: 300, unit: 'Minute' })],
  ['route-backends', 'Ingress/levee/levee', 'a legacy Ingress backend on a port the Service does not have', (m) => { const i = m.findIndex((o) => o.kind === 'Ingress'); m[i].spec.rules[0].http.paths[1].backend.service.port.number = 80; }, { l7Provider: 'ingress-nginx' }],
  ['metrics-private', 'Service/levee/levee-edge', 'the LoadBalancer sends traffic to the gateway metrics port', (m) => (byName(m, 'Service', 'levee-edge').spec.ports[0].targetPort = 'metrics')],
  ['metrics-private', 'HTTPRoute/levee/levee', 'an L7 route to the media metrics Service port', (m) => (byName(m, 'HTTPRoute', 'levee').spec.rules.find((r: any) => r.backendRefs[0].name === 'levee-media').backendRefs[0].port = 9466)],
  ['metrics-private', 'Ingress/levee/levee', 'a legacy Ingress to the media metrics Service port', (m) => (byName(m, 'Ingress', 'levee').spec.rules[0].http.paths[1].backend.service.port.number = 9466), { l7Provider: 'ingress-nginx' }],
  ['metrics-private', 'NetworkPolicy/levee/levee-gateway', 'the gateway metrics port open to every source', (m) => delete byName(m, 'NetworkPolicy', 'levee-gateway').spec.ingress[1].from],
  ['monitoring', 'ServiceMonitor/levee/levee-model', 'an endpoint port the Service does not have', (m) => (byName(m, 'ServiceMonitor', 'levee-model').spec.endpoints[0].port = 'http-metrics')],
  ['monitoring', 'ServiceMonitor/levee/levee-media', 'a selector that matches no Service', (m) => (byName(m, 'ServiceMonitor', 'levee-media').spec.selector.matchLabels['app.kubernetes.io/name'] = 'levee-medai')],
  ['monitoring', 'PodMonitor/levee/levee-worker', 'a port the worker pods do not have', (m) => (byName(m, 'PodMonitor', 'levee-worker').spec.podMetricsEndpoints[0].port = 'http')],
  ['monitoring', 'PrometheusRule/levee/levee', 'an alert without a runbook', (m) => delete byName(m, 'PrometheusRule', 'levee').spec.groups[0].rules[0].annotations.runbook_url],
  ['monitoring', 'PrometheusRule/levee/levee', 'an alert with an unknown severity', (m) => (byName(m, 'PrometheusRule', 'levee').spec.groups[1].rules[0].labels.severity = 'page')],
];

/** The production manifests with monitoring on: every object kind the rules judge. */
const BASE = { monitoring: 'prometheus-operator' } as const;

describe('policy', () => {
  test('the production manifests are clean, with and without monitoring', () => {
    expect(checkPolicy(manifestsFor({}))).toEqual([]);
    expect(checkPolicy(manifestsFor(BASE))).toEqual([]);
  });

  test('an edge limit per minute at or above the app limit is accepted; a route to a shared Gateway is not judged by the chart', () => {
    const m = JSON.parse(JSON.stringify(manifestsFor({})));
    byName(m, 'BackendTrafficPolicy', 'levee').spec.rateLimit.local.rules[0].limit = { requests: 600, unit: 'Minute' };
    expect(checkPolicy(m)).toEqual([]);
    expect(checkPolicy(manifestsFor({ sharedGateway: 'edge-system/public' }))).toEqual([]);
  });

  test.each(CASES)('%s fires on %s: %s', (rule, object, _what, breakIt, settings = {}) => {
    const manifests = JSON.parse(JSON.stringify(manifestsFor({ ...BASE, ...settings })));
    expect(checkPolicy(manifests)).toEqual([]);
    breakIt(manifests);
    const violations = checkPolicy(manifests);
    expect(violations.length).toBeGreaterThan(0);
    expect(violations.filter((v) => v.rule === rule && v.object === object)).not.toEqual([]);
    // Only the rule under test complains (no collateral noise hides the real cause).
    expect([...new Set(violations.map((v) => v.rule))]).toEqual([rule]);
  });

  test('env-references: an escaped $$(VAR) is literal text, and a reference to a variable declared earlier is fine', () => {
    const m = JSON.parse(JSON.stringify(manifestsFor({ ...BASE, ...TRACING })));
    envOf(m, 'levee-media').push({ name: 'LITERAL', value: 'cost: $$(NOT_A_VARIABLE)' }, { name: 'HOST_OF_POD', value: '$(POD_NAME).levee' });
    expect(checkPolicy(m)).toEqual([]);
  });

  test('every rule has at least one case that proves it fires', () => {
    expect([...new Set(CASES.map(([rule]) => rule))].sort()).toEqual(RULES.map((r) => r.id).sort());
  });

  test('a PolicyError names the rule and the object', () => {
    const error = new PolicyError([{ rule: 'probes', object: 'Deployment/levee/levee-gateway', message: 'container "gateway": no readinessProbe' }]);
    expect(error.message).toBe('Policy check failed (nothing was written):\n  - [probes] Deployment/levee/levee-gateway: container "gateway": no readinessProbe');
  });
});
