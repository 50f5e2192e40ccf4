import { Testing } from 'cdk8s';
import { LeveeChart, requiredSecrets, resolveConfig } from '../../infra';
import { MODEL_LONGEST_RENDER_SECONDS } from '../../infra/constructs/model';
import { REDIS_START_SCRIPT, REPLICATED_REDIS_READY_SCRIPT, REPLICATED_REDIS_START_SCRIPT, SENTINEL_READY_SCRIPT, SENTINEL_START_SCRIPT } from '../../infra/constructs/redis';
import { all, DEV, EXTERNAL_BOTH, find, manifestsFor, PREVIEW } from './helpers';
import { parseCpuMillis, parseMemoryBytes } from '../../infra/config/quantity';

const APPS = ['levee-gateway', 'levee-media', 'levee-model', 'levee-worker'];

describe('snapshots', () => {
  test.each([
    ['production', {}],
    ['preview', PREVIEW],
    ['dev', DEV],
    // Byte for byte the production chart from before the Gateway API edge (checked when this was added).
    ['production, legacy ingress-nginx', { l7Provider: 'ingress-nginx' }],
    // The model tier of a GPU deployment: a GPU model on a Karpenter NodePool, scaled from zero, openai-images behind a key.
    ['production, GPU model on Karpenter, scale to zero', { modelGpus: '1', nodeProvisioner: 'karpenter', modelMinReplicas: '0', workerAutoscaler: 'keda', modelApi: 'openai-images', modelApiKeySecret: 'model-key', modelStyles: 'sunset' }],
  ])('the %s chart matches its snapshot', (_env, settings) => {
    const chart = new LeveeChart(Testing.app(), 'levee', { config: resolveConfig(settings) });
    expect(Testing.synth(chart)).toMatchSnapshot();
  });
});

describe('production', () => {
  const m = manifestsFor({});

  test('everything lives in namespace levee, which enforces Pod Security restricted', () => {
    const ns = find(m, 'Namespace', 'levee');
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const o of m.filter((o) => o.kind !== 'Namespace')) expect(o.metadata.namespace).toBe('levee');
  });

  test('the gateway HPA targets 80% average CPU with explicit scale-up and scale-down behavior', () => {
    const hpa = find(m, 'HorizontalPodAutoscaler', 'levee-gateway');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'levee-gateway' });
    expect(hpa.spec.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }]);
    expect(hpa.spec.minReplicas).toBe(3);
    expect(hpa.spec.maxReplicas).toBe(30);
    expect(hpa.spec.behavior.scaleUp).toEqual({
      stabilizationWindowSeconds: 0,
      selectPolicy: 'Max',
      policies: [
        { type: 'Percent', value: 100, periodSeconds: 15 },
        { type: 'Pods', value: 4, periodSeconds: 15 },
      ],
    });
    expect(hpa.spec.behavior.scaleDown).toEqual({ stabilizationWindowSeconds: 300, selectPolicy: 'Min', policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] });
  });

  test('autoscaled Deployments have no fixed replicas', () => {
    for (const name of APPS) expect(find(m, 'Deployment', name).spec.replicas).toBeUndefined();
  });

  test('the worker is scaled by a CPU HPA and no ScaledObject by default', () => {
    expect(find(m, 'HorizontalPodAutoscaler', 'levee-worker').spec.scaleTargetRef.name).toBe('levee-worker');
    expect(all(m, 'ScaledObject')).toEqual([]);
  });

  test('PodDisruptionBudgets allow one eviction at a time and always evict unhealthy pods (apps, Redis data pods, Sentinels)', () => {
    const pdbs = all(m, 'PodDisruptionBudget');
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual([...APPS, 'levee-webhooks', 'levee-queue-redis', 'levee-queue-sentinel'].sort());
    for (const pdb of pdbs) {
      expect(pdb.spec.maxUnavailable).toBe(1);
      expect(pdb.spec.minAvailable).toBeUndefined();
      expect(pdb.spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
      expect(pdb.spec.selector).toEqual({ matchLabels: { 'app.kubernetes.io/name': pdb.metadata.name } });
    }
  });

  test('no budget covers a single Redis', () => {
    expect(all(m, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain('levee-cache-redis');
    expect(all(manifestsFor({ queueRedis: 'statefulset' }), 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain('levee-queue-redis');
  });

  test('every container is restricted: non-root uid 10001, no escalation, drop ALL, RuntimeDefault seccomp, read-only root with /tmp', () => {
    const workloads = [...all(m, 'Deployment'), ...all(m, 'StatefulSet')];
    expect(workloads).toHaveLength(8);
    for (const w of workloads) {
      const pod = w.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.serviceAccountName).toBe(w.metadata.name);
      expect(pod.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '128Mi' } });
      for (const c of pod.containers) {
        expect(c.securityContext).toEqual({
          runAsNonRoot: true,
          runAsUser: 10001,
          runAsGroup: 10001,
          allowPrivilegeEscalation: false,
          privileged: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
        expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
        expect(Object.keys(c.resources.limits).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
        expect(c.image).not.toMatch(/:latest$/);
      }
    }
  });

  test('every ServiceAccount has no automounted token', () => {
    const sas = all(m, 'ServiceAccount');
    expect(sas).toHaveLength(8);
    for (const sa of sas) expect(sa.automountServiceAccountToken).toBe(false);
  });

  test('app resources come from the settings, not cdk8s-plus defaults', () => {
    const c = find(m, 'Deployment', 'levee-gateway').spec.template.spec.containers[0];
    expect(c.resources).toEqual({
      requests: { cpu: '500m', memory: '256Mi', 'ephemeral-storage': '64Mi' },
      limits: { cpu: '1', memory: '512Mi', 'ephemeral-storage': '256Mi' },
    });
  });

  test.each([
    ['levee-gateway', 8080],
    ['levee-media', 8082],
    ['levee-model', 8081],
    ['levee-worker', 9464],
  ])('%s probes liveness on /healthz and readiness on /readyz (port %i)', (name, port) => {
    const c = find(m, 'Deployment', name).spec.template.spec.containers[0];
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port });
    expect(c.ports[0].containerPort).toBe(port);
  });

  test('images follow <registry>/<name>:<tag>', () => {
    for (const name of APPS) expect(find(m, 'Deployment', name).spec.template.spec.containers[0].image).toBe(`ghcr.io/levee-dev/${name}:0.1.0`);
  });

  test('pods spread over zones and nodes as a preference, never as a required rule', () => {
    for (const name of APPS) {
      const spec = find(m, 'Deployment', name).spec.template.spec;
      expect(spec.affinity).toBeUndefined();
      expect(spec.topologySpreadConstraints.map((t: any) => [t.topologyKey, t.whenUnsatisfiable, t.maxSkew])).toEqual([
        ['topology.kubernetes.io/zone', 'ScheduleAnyway', 1],
        ['kubernetes.io/hostname', 'ScheduleAnyway', 1],
      ]);
    }
  });

  test('HTTP apps sleep in preStop and get a grace period longer than preStop + shutdown delay + drain', () => {
    // The model has no SHUTDOWN_DELAY_SECONDS, so its floor is preStop + drain.
    for (const [name, grace, floor] of [['levee-gateway', 35, 5 + 5 + 20], ['levee-media', 35, 5 + 5 + 20], ['levee-model', 30, 5 + 20]] as const) {
      const spec = find(m, 'Deployment', name).spec.template.spec;
      expect(spec.containers[0].lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
      expect(spec.terminationGracePeriodSeconds).toBe(grace);
      expect(grace).toBeGreaterThan(floor);
    }
  });

  test('the worker grace period is derived from MODEL_TIMEOUT_MS and outlasts the longest job', () => {
    expect(find(m, 'Deployment', 'levee-worker').spec.template.spec.terminationGracePeriodSeconds).toBe(75);
    const slow = manifestsFor({ modelTimeoutMs: '120000' });
    const spec = find(slow, 'Deployment', 'levee-worker').spec.template.spec;
    expect(spec.terminationGracePeriodSeconds).toBe(255);
    expect(spec.containers[0].env).toContainEqual({ name: 'MODEL_TIMEOUT_MS', value: '120000' });
  });

  test('the gateway gets exactly the agreed environment, passwords from Secrets', () => {
    const env = find(m, 'Deployment', 'levee-gateway').spec.template.spec.containers[0].env;
    expect(env).toEqual([
      { name: 'PORT', value: '8080' },
      { name: 'METRICS_PORT', value: '9465' },
      { name: 'MODEL_URL', value: 'http://levee-model:8081' },
      { name: 'RATE_LIMIT_PER_SECOND', value: '10' },
      { name: 'RATE_LIMIT_IPV6_PREFIX', value: '64' },
      { name: 'TRUST_PROXY', value: '10.0.0.0/8' },
      { name: 'QUEUE_NAME', value: 'images' },
      { name: 'QUEUE_MAX_WAITING', value: '10000' },
      { name: 'CACHE_TTL_SECONDS', value: '30' },
      { name: 'BREAKER_OPEN_SECONDS', value: '60' },
      { name: 'SHUTDOWN_DELAY_SECONDS', value: '5' },
      { name: 'DRAIN_TIMEOUT_SECONDS', value: '20' },
      { name: 'SERVE_MEDIA', value: 'false' },
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'QUEUE_MIN_REPLICAS_ACKED', value: '1' },
      // Event streams per client and per pod (the webhook policy is the services' default: nothing written).
      { name: 'EVENTS_MAX_PER_CLIENT', value: '4' },
      { name: 'EVENTS_MAX', value: '10000' },
      { name: 'UV_THREADPOOL_SIZE', value: '32' },
      { name: 'MODEL_API', value: 'levee' },
      // Sentinel: the Sentinels' Service and the master group, no URL.
      { name: 'QUEUE_REDIS_SENTINELS', value: 'levee-queue-sentinel:26379' },
      { name: 'QUEUE_REDIS_SENTINEL_NAME', value: 'levee-queue' },
      { name: 'QUEUE_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'levee-queue-redis', key: 'password' } } },
      { name: 'CACHE_REDIS_URL', value: 'redis://levee-cache-redis:6379' },
      { name: 'CACHE_REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'levee-cache-redis', key: 'password' } } },
      // It names the images in the status document (object storage by default); it never calls the store.
      { name: 'IMAGE_STORE', value: 's3' },
      { name: 'IMAGE_S3_BUCKET', value: 'levee-images' },
      { name: 'IMAGE_S3_PREFIX', value: 'images/' },
    ]);
  });

  test('media, worker and model get their agreed environment variable names; media reads object storage and no Redis', () => {
    const names = (n: string) => find(m, 'Deployment', n).spec.template.spec.containers[0].env.map((e: any) => e.name);
    expect(names('levee-media')).toEqual(['PORT', 'METRICS_PORT', 'SHUTDOWN_DELAY_SECONDS', 'DRAIN_TIMEOUT_SECONDS', 'IMAGE_STORE', 'IMAGE_S3_BUCKET', 'IMAGE_S3_PREFIX', 'IMAGE_DELIVERY']);
    expect(names('levee-worker')).toEqual([
      'METRICS_PORT', 'MODEL_URL', 'QUEUE_NAME', 'WORKER_CONCURRENCY', 'MODEL_TIMEOUT_MS', 'MODEL_WAIT_MAX_SECONDS', 'BREAKER_OPEN_SECONDS', 'IMAGE_TTL_SECONDS', 'JOB_DEADLINE_SECONDS', 'QUEUE_MIN_REPLICAS_ACKED', 'MODEL_API',
      'QUEUE_REDIS_SENTINELS', 'QUEUE_REDIS_SENTINEL_NAME', 'QUEUE_REDIS_PASSWORD', 'IMAGE_STORE', 'IMAGE_S3_BUCKET', 'IMAGE_S3_PREFIX',
    ]);
    // With the images in the queue Redis, media reads them there.
    const inRedis = manifestsFor({ imageStore: 'redis' });
    expect(find(inRedis, 'Deployment', 'levee-media').spec.template.spec.containers[0].env.map((e: any) => e.name)).toEqual([
      'PORT', 'METRICS_PORT', 'SHUTDOWN_DELAY_SECONDS', 'DRAIN_TIMEOUT_SECONDS', 'QUEUE_REDIS_SENTINELS', 'QUEUE_REDIS_SENTINEL_NAME', 'QUEUE_REDIS_PASSWORD', 'IMAGE_STORE', 'IMAGE_DELIVERY',
    ]);
    expect(names('levee-model')).toEqual(['PORT', 'METRICS_PORT', 'DRAIN_TIMEOUT_SECONDS']);
  });

  test('with LEVEE_QUEUE_REDIS=statefulset the queue Redis is one StatefulSet pod with a PVC, AOF, noeviction and maxmemory below its limit', () => {
    const single = manifestsFor({ queueRedis: 'statefulset', imageStore: 'redis' });
    const sts = find(single, 'StatefulSet', 'levee-queue-redis');
    expect(sts.spec.serviceName).toBe('levee-queue-redis');
    expect(sts.spec.replicas).toBe(1);
    expect(sts.spec.volumeClaimTemplates[0].spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } });
    const c = sts.spec.template.spec.containers[0];
    expect(c.image).toBe('redis:7.2.11-alpine');
    expect(c.args).toEqual([
      '--port', '6379', '--dir', '/data',
      '--maxmemory', '768mb', '--maxmemory-policy', 'noeviction', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
    ]);
    expect(c.resources.limits.memory).toBe('1Gi');
    expect(c.env).toContainEqual({ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'levee-queue-redis', key: 'password' } } });
    expect(c.livenessProbe.tcpSocket).toEqual({ port: 6379 });
    expect(c.readinessProbe.exec.command.join(' ')).toContain('ping');
    expect(find(single, 'Service', 'levee-queue-redis').spec.clusterIP).toBe('None');
    expect(all(single, 'StatefulSet').map((x) => x.metadata.name)).toEqual(['levee-queue-redis']);
    const env = find(single, 'Deployment', 'levee-gateway').spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'QUEUE_REDIS_URL', value: 'redis://levee-queue-redis:6379' });
    expect(env).toContainEqual({ name: 'QUEUE_MIN_REPLICAS_ACKED', value: '0' });
    expect(env.map((e: any) => e.name)).not.toContain('QUEUE_REDIS_SENTINELS');
  });

  test('the cache Redis evicts LRU and persists nothing', () => {
    const c = find(m, 'Deployment', 'levee-cache-redis').spec.template.spec.containers[0];
    expect(c.args).toEqual([
      '--port', '6379', '--dir', '/tmp',
      '--maxmemory', '192mb', '--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no', '--save', '',
    ]);
    expect(find(m, 'Service', 'levee-cache-redis').spec.type).toBe('ClusterIP');
  });

  test.each([
    ['StatefulSet', 'levee-queue-redis'],
    ['Deployment', 'levee-cache-redis'],
  ])('%s %s (single instance) gets its password on stdin, never in process arguments', (kind, name) => {
    const spec = find(manifestsFor({ queueRedis: 'statefulset' }), kind, name).spec.template.spec;
    const c = spec.containers[0];
    // sh -c '<script>' redis-server <args>: the script execs `redis-server - "$@"` with
    // `requirepass $REDIS_PASSWORD` on stdin; $0 = redis-server, "$@" = the flags.
    expect(c.command).toEqual(['sh', '-c', REDIS_START_SCRIPT, 'redis-server']);
    expect(REDIS_START_SCRIPT).toContain('exec redis-server - "$@" <<EOF\nrequirepass $REDIS_PASSWORD\nEOF\n');
    expect(REDIS_START_SCRIPT).not.toContain('$('); // nothing for Kubernetes to expand into argv
    expect([...c.command, ...c.args].join(' ')).not.toMatch(/requirepass\s+\S*\$\(|--requirepass/);
    expect(c.env).toEqual([
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name, key: 'password' } } },
      { name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name, key: 'password' } } },
    ]);
    // redis-cli authenticates from REDISCLI_AUTH: no -a in the probe.
    expect(c.readinessProbe.exec.command).toEqual(['sh', '-c', 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG']);
    // Unchanged: read-only root, non-root uid 10001.
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(spec.securityContext.runAsUser).toBe(10001);
    expect(spec.securityContext.runAsNonRoot).toBe(true);
  });

  test('the model liveness probe tolerates back-to-back longest renders and outlasts MODEL_TIMEOUT_MS; readiness tolerates a busy loop too', () => {
    const tolerated = (p: any) => p.failureThreshold * Math.max(p.periodSeconds, p.timeoutSeconds);
    const c = find(m, 'Deployment', 'levee-model').spec.template.spec.containers[0];
    expect(c.livenessProbe).toEqual({ httpGet: { path: '/healthz', port: 8081 }, periodSeconds: 10, timeoutSeconds: 10, failureThreshold: 6, initialDelaySeconds: 5 });
    // A pod busy with a render in progress and one queued stays in the Service (every pod
    // busy must not mean no endpoints), yet readiness still differs from liveness.
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/readyz', port: 8081 }, periodSeconds: 5, timeoutSeconds: 8, failureThreshold: 3 });
    expect(c.readinessProbe.timeoutSeconds).toBeGreaterThanOrEqual(2 * MODEL_LONGEST_RENDER_SECONDS);
    expect(c.readinessProbe).not.toEqual(c.livenessProbe);
    // One probe outlasts a render in progress plus one queued behind it.
    expect(c.livenessProbe.timeoutSeconds).toBeGreaterThanOrEqual(2 * MODEL_LONGEST_RENDER_SECONDS);
    // Restarted only after ≥ 60 s of blocked event loop: 15 back-to-back 2048×2048 renders,
    // and longer than a worker waits for a reply (MODEL_TIMEOUT_MS 30 s).
    expect(tolerated(c.livenessProbe)).toBe(60);
    expect(tolerated(c.livenessProbe)).toBeGreaterThanOrEqual(15 * MODEL_LONGEST_RENDER_SECONDS);
    expect(tolerated(c.livenessProbe)).toBeGreaterThan(30);
    // A longer model timeout stretches the liveness budget with it (120 s → 13 probes → 130 s).
    const slow = find(manifestsFor({ modelTimeoutMs: '120000' }), 'Deployment', 'levee-model').spec.template.spec.containers[0].livenessProbe;
    expect(slow.failureThreshold).toBe(13);
    expect(tolerated(slow)).toBeGreaterThan(120);
    // The other HTTP apps keep their short liveness timeout.
    for (const name of ['levee-gateway', 'levee-media', 'levee-worker']) {
      expect(find(m, 'Deployment', name).spec.template.spec.containers[0].livenessProbe.timeoutSeconds).toBe(2);
    }
  });

  test('the L4 edge is a LoadBalancer to the gateway with externalTrafficPolicy Local and no affinity', () => {
    const lb = find(m, 'Service', 'levee-edge');
    expect(lb.spec).toMatchObject({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', sessionAffinity: 'None', selector: { 'app.kubernetes.io/name': 'levee-gateway' } });
    expect(lb.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
  });

  test('the L7 edge is a Gateway with an HTTPS listener for the host and an HTTP listener that only redirects', () => {
    const gw = find(m, 'Gateway', 'levee');
    expect(gw.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(gw.spec.gatewayClassName).toBe('eg');
    expect(gw.spec.listeners.map((l: any) => [l.name, l.protocol, l.port, l.hostname, l.allowedRoutes.namespaces.from])).toEqual([
      ['https', 'HTTPS', 443, 'levee.example.com', 'Same'],
      ['http', 'HTTP', 80, 'levee.example.com', 'Same'],
    ]);
    expect(gw.spec.listeners[0].tls).toEqual({ mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: 'levee-tls' }] });
    expect(gw.status).toBeUndefined();
    const redirect = find(m, 'HTTPRoute', 'levee-redirect');
    expect(redirect.spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'levee', sectionName: 'http' }]);
    expect(redirect.spec.rules).toEqual([{ name: 'https-redirect', filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }]);
  });

  test('the HTTPRoute sends PathPrefix /api to the gateway and /images to media on the HTTPS listener; GETs to /api have a rule of their own', () => {
    const route = find(m, 'HTTPRoute', 'levee');
    expect(route.spec.hostnames).toEqual(['levee.example.com']);
    expect(route.spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'levee', sectionName: 'https' }]);
    expect(route.spec.rules.map((r: any) => [r.name, r.matches[0].path, r.matches[0].method, r.backendRefs])).toEqual([
      ['events', { type: 'RegularExpression', value: '^/api/images/[^/]+/events$' }, 'GET', [{ group: '', kind: 'Service', name: 'levee-gateway', port: 8080 }]],
      ['api-reads', { type: 'PathPrefix', value: '/api' }, 'GET', [{ group: '', kind: 'Service', name: 'levee-gateway', port: 8080 }]],
      ['api', { type: 'PathPrefix', value: '/api' }, undefined, [{ group: '', kind: 'Service', name: 'levee-gateway', port: 8080 }]],
      ['images', { type: 'PathPrefix', value: '/images' }, undefined, [{ group: '', kind: 'Service', name: 'levee-media', port: 8082 }]],
    ]);
    expect(route.status).toBeUndefined();
    expect(all(m, 'Ingress')).toEqual([]);
  });

  test('the gateway trusts the proxy pod CIDR setting for X-Forwarded-For', () => {
    const env = (s: Record<string, string>) => find(manifestsFor(s), 'Deployment', 'levee-gateway').spec.template.spec.containers[0].env;
    expect(env({})).toContainEqual({ name: 'TRUST_PROXY', value: '10.0.0.0/8' });
    expect(env({ trustProxy: '10.244.0.0/16,fd00:10:244::/56' })).toContainEqual({ name: 'TRUST_PROXY', value: '10.244.0.0/16,fd00:10:244::/56' });
  });

  test('network: default deny both ways, then one allow policy per component', () => {
    const deny = find(m, 'NetworkPolicy', 'levee-default-deny');
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    expect(all(m, 'NetworkPolicy')).toHaveLength(9);
  });

  const envoyProxies = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
    podSelector: { matchLabels: { 'app.kubernetes.io/name': 'envoy', 'app.kubernetes.io/component': 'proxy', 'app.kubernetes.io/managed-by': 'envoy-gateway' } },
  };

  const from = (name: string) => find(m, 'NetworkPolicy', name).spec.ingress.flatMap((r: any) => r.from ?? [{ anywhere: true }]);
  const pods = (...names: string[]) => names.map((n) => ({ podSelector: { matchLabels: { 'app.kubernetes.io/name': n } } }));
  const ns = (n: string) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': n } } });

  test('the queue Redis and its Sentinels are reachable from gateway, worker and each other only (media reads object storage); the cache Redis from the gateway only', () => {
    const group = pods('levee-gateway', 'levee-worker', 'levee-webhooks', 'levee-queue-redis', 'levee-queue-sentinel');
    expect(from('levee-queue-redis')).toEqual(group);
    expect(find(m, 'NetworkPolicy', 'levee-queue-redis').spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 6379 }]);
    expect(from('levee-queue-sentinel')).toEqual(group);
    expect(find(m, 'NetworkPolicy', 'levee-queue-sentinel').spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 26379 }]);
    expect(from('levee-cache-redis')).toEqual(pods('levee-gateway'));
    // Data pods and Sentinels reach each other (replication, the start scripts) and DNS, nothing else.
    for (const n of ['levee-queue-redis', 'levee-queue-sentinel']) {
      const egress = find(m, 'NetworkPolicy', n).spec.egress;
      expect(egress.slice(0, 2)).toEqual([
        { to: pods('levee-queue-redis'), ports: [{ protocol: 'TCP', port: 6379 }] },
        { to: pods('levee-queue-sentinel'), ports: [{ protocol: 'TCP', port: 26379 }] },
      ]);
      expect(egress[2].ports).toEqual([{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
      expect(egress).toHaveLength(3);
    }
    // The apps reach both ports.
    for (const n of ['levee-gateway', 'levee-worker', 'levee-webhooks']) {
      expect(find(m, 'NetworkPolicy', n).spec.egress.slice(0, 2)).toEqual([
        { to: pods('levee-queue-redis'), ports: [{ protocol: 'TCP', port: 6379 }] },
        { to: pods('levee-queue-sentinel'), ports: [{ protocol: 'TCP', port: 26379 }] },
      ]);
    }
    // With the images in the queue Redis, media reads them there.
    const inRedis = manifestsFor({ imageStore: 'redis' });
    expect(find(inRedis, 'NetworkPolicy', 'levee-queue-redis').spec.ingress[0].from).toEqual(pods('levee-gateway', 'levee-worker', 'levee-webhooks', 'levee-media', 'levee-queue-redis', 'levee-queue-sentinel'));
    expect(find(inRedis, 'NetworkPolicy', 'levee-media').spec.egress.slice(0, 2)).toEqual([
      { to: pods('levee-queue-redis'), ports: [{ protocol: 'TCP', port: 6379 }] },
      { to: pods('levee-queue-sentinel'), ports: [{ protocol: 'TCP', port: 26379 }] },
    ]);
  });

  const internet = { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '100.64.0.0/10', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'] } };
  test('the worker and media reach the object store on 443 anywhere but the private, CGNAT and link-local ranges (no cluster, no metadata address); the gateway does not', () => {
    const toStore = { to: [internet], ports: [{ protocol: 'TCP', port: 443 }] };
    expect(find(m, 'NetworkPolicy', 'levee-worker').spec.egress).toContainEqual(toStore);
    expect(find(m, 'NetworkPolicy', 'levee-media').spec.egress.slice(0, -1)).toEqual([toStore]); // and DNS, nothing else
    expect(JSON.stringify(find(m, 'NetworkPolicy', 'levee-gateway').spec.egress)).not.toContain('ipBlock');
    // A store of its own: its CIDRs as given (no exceptions), its endpoint's port.
    const minio = manifestsFor({ imageS3Endpoint: 'http://minio.minio.svc:9000', imageS3Cidrs: '10.96.0.0/12,fd00:10:96::/108', imageS3ForcePathStyle: 'true' });
    expect(find(minio, 'NetworkPolicy', 'levee-media').spec.egress[0]).toEqual({ to: [{ ipBlock: { cidr: '10.96.0.0/12' } }, { ipBlock: { cidr: 'fd00:10:96::/108' } }], ports: [{ protocol: 'TCP', port: 9000 }] });
    expect(find(manifestsFor({ imageS3Cidrs: '::/0', imageS3Endpoint: 'https://storage.example.com:8443' }), 'NetworkPolicy', 'levee-worker').spec.egress).toContainEqual({ to: [{ ipBlock: { cidr: '::/0', except: ['fc00::/7', 'fe80::/10'] } }], ports: [{ protocol: 'TCP', port: 8443 }] });
    // With the images in Redis, nobody reaches out but the webhook sender.
    expect(JSON.stringify(all(manifestsFor({ imageStore: 'redis' }), 'NetworkPolicy').filter((p) => p.metadata.name !== 'levee-webhooks'))).not.toContain('0.0.0.0/0');
  });

  test('the object store: its settings on worker, media and gateway; keys from a Secret, or a workload identity on the worker and media ServiceAccounts', () => {
    const envOf = (ms: any[], n: string) => find(ms, 'Deployment', n).spec.template.spec.containers[0].env;
    const gcs = manifestsFor({ imageS3Endpoint: 'https://storage.googleapis.com', imageBucket: 'acme-levee', imageS3Region: 'auto', imageS3CredentialsSecret: 'gcs-hmac', imageGcpServiceAccount: 'levee-images@acme.iam.gserviceaccount.com', imageDelivery: 'redirect', imageUrlTtlSeconds: '600', imagePublicBaseUrl: 'https://cdn.acme.example' });
    for (const n of ['levee-worker', 'levee-media']) {
      const env = envOf(gcs, n);
      for (const e of [
        { name: 'IMAGE_STORE', value: 's3' }, { name: 'IMAGE_S3_BUCKET', value: 'acme-levee' }, { name: 'IMAGE_S3_PREFIX', value: 'images/' },
        { name: 'IMAGE_S3_ENDPOINT', value: 'https://storage.googleapis.com' }, { name: 'IMAGE_S3_REGION', value: 'auto' },
        { name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'gcs-hmac', key: 'AWS_ACCESS_KEY_ID' } } },
        { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'gcs-hmac', key: 'AWS_SECRET_ACCESS_KEY' } } },
      ]) expect(env).toContainEqual(e);
      expect(find(gcs, 'ServiceAccount', n).metadata.annotations).toEqual({ 'iam.gke.io/gcp-service-account': 'levee-images@acme.iam.gserviceaccount.com' });
    }
    expect(envOf(gcs, 'levee-media')).toEqual(expect.arrayContaining([{ name: 'IMAGE_DELIVERY', value: 'redirect' }, { name: 'IMAGE_URL_TTL_SECONDS', value: '600' }]));
    // The gateway names the objects but never calls the store: no keys, no identity.
    const gw = envOf(gcs, 'levee-gateway');
    expect(gw).toContainEqual({ name: 'IMAGE_PUBLIC_BASE_URL', value: 'https://cdn.acme.example' });
    expect(gw.map((e: any) => e.name)).not.toContain('AWS_ACCESS_KEY_ID');
    expect(find(gcs, 'ServiceAccount', 'levee-gateway').metadata.annotations).toBeUndefined();
    expect(requiredSecrets(resolveConfig({ imageS3CredentialsSecret: 'gcs-hmac' })).filter((r) => r.name === 'gcs-hmac').map((r) => [r.key, r.generated])).toEqual([['AWS_ACCESS_KEY_ID', false], ['AWS_SECRET_ACCESS_KEY', false]]);
    // EKS with IRSA: the role on the worker and media ServiceAccounts, no keys anywhere.
    const eks = manifestsFor({ imageS3RoleArn: 'arn:aws:iam::123456789012:role/levee-images', imageS3Region: 'eu-west-1' });
    for (const n of ['levee-worker', 'levee-media']) {
      expect(find(eks, 'ServiceAccount', n).metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/levee-images' });
      expect(JSON.stringify(envOf(eks, n))).not.toContain('AWS_ACCESS_KEY_ID');
    }
    // A preview keeps its objects under a prefix of its own in the shared preview bucket.
    const preview = manifestsFor({ environment: 'preview', previewId: 'pr-7' });
    expect(envOf(preview, 'levee-worker')).toEqual(expect.arrayContaining([{ name: 'IMAGE_S3_BUCKET', value: 'levee-preview-images' }, { name: 'IMAGE_S3_PREFIX', value: 'previews/pr-7/images/' }]));
    // dev: the images stay in Redis, as npm run dev has them.
    expect(envOf(manifestsFor({ environment: 'dev' }), 'levee-worker')).toContainEqual({ name: 'IMAGE_STORE', value: 'redis' });
  });

  test('the webhook sender: the worker image with its own command, its signing key from a Secret, and the only egress to the internet (443/8443, never the cluster ranges)', () => {
    const d = find(m, 'Deployment', 'levee-webhooks');
    const c = d.spec.template.spec.containers[0];
    expect(c.image).toBe('ghcr.io/levee-dev/levee-worker:0.1.0');
    expect(c.command).toEqual(['node', 'build/services/worker/src/webhooks-server.js']);
    expect(c.env).toContainEqual({ name: 'WEBHOOK_SECRET', valueFrom: { secretKeyRef: { name: 'levee-webhook-secret', key: 'secret' } } });
    expect(c.env).toContainEqual({ name: 'QUEUE_NAME', value: 'images' });
    expect(c.env.map((e: any) => e.name)).not.toContain('WEBHOOK_ALLOWED_CIDRS'); // nothing opened by default
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 9468 });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 9468 });
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(20);
    expect(find(m, 'HorizontalPodAutoscaler', 'levee-webhooks').spec).toMatchObject({ minReplicas: 2, maxReplicas: 10 });
    const egress = find(m, 'NetworkPolicy', 'levee-webhooks').spec.egress;
    expect(egress).toContainEqual({ to: [internet, { ipBlock: { cidr: '::/0', except: ['fc00::/7', 'fe80::/10'] } }], ports: [{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 8443 }] });
    // The gateway and the workers cannot: no ipBlock beyond the object store's 443.
    expect(JSON.stringify(find(m, 'NetworkPolicy', 'levee-gateway').spec.egress)).not.toContain('ipBlock');
    expect(JSON.stringify(find(m, 'NetworkPolicy', 'levee-worker').spec.egress)).not.toContain('8443');
    // Private receivers, opened on purpose: the services' policy and the egress agree.
    const open = manifestsFor({ webhookAllowedCidrs: '10.20.0.0/16', webhookAllowHttp: 'true', webhookAllowedPorts: '443,9000' });
    const gwEnv = find(open, 'Deployment', 'levee-gateway').spec.template.spec.containers[0].env;
    const senderEnv = find(open, 'Deployment', 'levee-webhooks').spec.template.spec.containers[0].env;
    for (const e of [{ name: 'WEBHOOK_ALLOWED_CIDRS', value: '10.20.0.0/16' }, { name: 'WEBHOOK_ALLOW_HTTP', value: 'true' }, { name: 'WEBHOOK_ALLOWED_PORTS', value: '443,9000,80' }]) {
      expect(gwEnv).toContainEqual(e);
      expect(senderEnv).toContainEqual(e);
    }
    expect(find(open, 'NetworkPolicy', 'levee-webhooks').spec.egress).toContainEqual({ to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [443, 9000, 80].map((port) => ({ protocol: 'TCP', port })) });
    expect(requiredSecrets(resolveConfig({})).find((r) => r.name === 'levee-webhook-secret')).toMatchObject({ key: 'secret', generated: true, format: 'whsec' });
    // The worker: the deadline.
    expect(find(m, 'Deployment', 'levee-worker').spec.template.spec.containers[0].env).toContainEqual({ name: 'JOB_DEADLINE_SECONDS', value: '3600' });
    expect(() => manifestsFor({ webhookAllowedPorts: '443,70000' })).toThrow(/LEVEE_WEBHOOK_ALLOWED_PORTS \(levee:webhookAllowedPorts\) = "443,70000".*comma-separated ports 1-65535/s);
  });

  test('with LEVEE_QUEUE_REDIS=statefulset the queue Redis is reachable from gateway and worker only (and media with images in Redis) and reaches nothing', () => {
    const single = manifestsFor({ queueRedis: 'statefulset' });
    expect(find(single, 'NetworkPolicy', 'levee-queue-redis').spec.ingress[0].from).toEqual(pods('levee-gateway', 'levee-worker', 'levee-webhooks'));
    const policy = find(manifestsFor({ queueRedis: 'statefulset', imageStore: 'redis' }), 'NetworkPolicy', 'levee-queue-redis').spec;
    expect(policy.ingress[0].from).toEqual(pods('levee-gateway', 'levee-worker', 'levee-webhooks', 'levee-media'));
    expect(policy.egress).toEqual([]);
    expect(all(single, 'NetworkPolicy').map((p) => p.metadata.name)).not.toContain('levee-queue-sentinel');
  });

  /** port → who may reach it */
  const ingressByPort = (name: string) =>
    Object.fromEntries(find(m, 'NetworkPolicy', name).spec.ingress.flatMap((r: any) => r.ports.map((p: any) => [p.port, r.from ?? 'anywhere'])));

  test('the model is reachable from gateway and worker; media from the Envoy proxies; each metrics port from the monitoring namespace only', () => {
    expect(ingressByPort('levee-model')).toEqual({ 8081: pods('levee-gateway', 'levee-worker'), 9467: [ns('monitoring')] });
    expect(ingressByPort('levee-media')).toEqual({ 8082: [envoyProxies], 9466: [ns('monitoring')] });
    expect(ingressByPort('levee-worker')).toEqual({ 9464: [ns('monitoring')] });
    expect(ingressByPort('levee-webhooks')).toEqual({ 9468: [ns('monitoring')] });
    expect(ingressByPort('levee-gateway')).toEqual({ 8080: 'anywhere', 9465: [ns('monitoring')] });
    const elsewhere = manifestsFor({ monitoringNamespace: 'observability' });
    expect(find(elsewhere, 'NetworkPolicy', 'levee-gateway').spec.ingress[1].from).toEqual([ns('observability')]);
  });

  test.each([
    ['levee-gateway', 8080, 9465],
    ['levee-media', 8082, 9466],
    ['levee-model', 8081, 9467],
  ])('%s serves on %i and its metrics on a port of their own, %i, on the pod and on its Service; the edge routes only the first', (name, port, metricsPort) => {
    const c = find(m, 'Deployment', name).spec.template.spec.containers[0];
    expect(c.ports).toEqual([
      { name: 'http', containerPort: port, protocol: 'TCP' },
      { name: 'metrics', containerPort: metricsPort, protocol: 'TCP' },
    ]);
    expect(c.env).toContainEqual({ name: 'METRICS_PORT', value: String(metricsPort) });
    expect(find(m, 'Deployment', name).spec.template.metadata.annotations['prometheus.io/port']).toBe(String(metricsPort));
    expect(find(m, 'Service', name).spec.ports).toEqual([
      { name: 'http', port, targetPort: 'http', protocol: 'TCP' },
      { name: 'metrics', port: metricsPort, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    // neither the L4 LoadBalancer nor the L7 routes reach a metrics port
    expect(find(m, 'Service', 'levee-edge').spec.ports.map((p: any) => p.targetPort)).toEqual(['http']);
    const backends = find(m, 'HTTPRoute', 'levee').spec.rules.flatMap((r: any) => r.backendRefs.map((b: any) => b.port));
    expect(backends).not.toContain(metricsPort);
  });

  test('the gateway port is open to every source (L4 Local delivers client IPs); its metrics port only to the monitoring namespace', () => {
    expect(find(m, 'NetworkPolicy', 'levee-gateway').spec.ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 8080 }] },
      { from: [ns('monitoring')], ports: [{ protocol: 'TCP', port: 9465 }] },
    ]);
  });

  test('without the L4 edge only the Envoy proxies (namespace and labels from the settings) reach the gateway, and monitoring its metrics port', () => {
    const l7 = manifestsFor({ edge: 'l7', l7Namespace: 'edge', l7ProxySelector: 'gateway.envoyproxy.io/owning-gateway-name=levee' });
    const proxies = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'edge' } }, podSelector: { matchLabels: { 'gateway.envoyproxy.io/owning-gateway-name': 'levee' } } };
    for (const [name, port, metricsPort] of [['levee-gateway', 8080, 9465], ['levee-media', 8082, 9466]] as const) {
      expect(find(l7, 'NetworkPolicy', name).spec.ingress).toEqual([
        { from: [proxies], ports: [{ protocol: 'TCP', port }] },
        { from: [ns('monitoring')], ports: [{ protocol: 'TCP', port: metricsPort }] },
      ]);
    }
  });

  test('with the legacy provider the ingress-nginx namespace reaches media, as before', () => {
    expect(find(manifestsFor({ l7Provider: 'ingress-nginx' }), 'NetworkPolicy', 'levee-media').spec.ingress[0].from).toEqual([ns('ingress-nginx')]);
  });

  test('apps may resolve DNS; the cache Redis and the model may not reach anything', () => {
    const dnsTo = (n: string) => find(m, 'NetworkPolicy', n).spec.egress.some((r: any) => r.ports?.some((p: any) => p.port === 53));
    expect(['levee-gateway', 'levee-media', 'levee-worker'].map(dnsTo)).toEqual([true, true, true]);
    expect(find(m, 'NetworkPolicy', 'levee-model').spec.egress).toEqual([]);
    expect(find(m, 'NetworkPolicy', 'levee-cache-redis').spec.egress).toEqual([]);
    expect(find(m, 'NetworkPolicy', 'levee-gateway').spec.egress.at(-1)).toEqual({
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    });
  });

  test('the DNS peer follows the cluster: OpenShift DNS on 5353, plus a node-local cache by IP', () => {
    const custom = manifestsFor({ dnsSelector: 'openshift-dns/dns.operator.openshift.io/daemonset-dns=default', dnsPort: '5353', dnsCidrs: '169.254.20.10/32' });
    const expected = {
      to: [
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'openshift-dns' } }, podSelector: { matchLabels: { 'dns.operator.openshift.io/daemonset-dns': 'default' } } },
        { ipBlock: { cidr: '169.254.20.10/32' } },
      ],
      ports: [{ protocol: 'UDP', port: 5353 }, { protocol: 'TCP', port: 5353 }],
    };
    for (const n of ['levee-gateway', 'levee-media', 'levee-worker']) expect(find(custom, 'NetworkPolicy', n).spec.egress.at(-1)).toEqual(expected);
  });

  test('no ResourceQuota or LimitRange in production', () => {
    expect(all(m, 'ResourceQuota')).toEqual([]);
    expect(all(m, 'LimitRange')).toEqual([]);
  });

  test('the chart references exactly the documented Secrets', () => {
    const refs = new Set<string>();
    JSON.stringify(m, (k, v) => {
      if (k === 'secretKeyRef') refs.add(`${v.name}/${v.key}`);
      return v;
    });
    expect([...refs].sort()).toEqual(requiredSecrets(resolveConfig({})).map((s) => `${s.name}/${s.key}`).sort());
    expect(requiredSecrets(resolveConfig({})).map((s) => [s.name, s.generated])).toEqual([['levee-queue-redis', true], ['levee-cache-redis', true], ['levee-webhook-secret', true]]);
  });
});

describe('preview pr-7', () => {
  const m = manifestsFor(PREVIEW);

  test('everything lives in levee-pr-7 and carries the preview labels', () => {
    expect(find(m, 'Namespace', 'levee-pr-7')).toBeDefined();
    for (const o of m) {
      if (o.kind !== 'Namespace') expect(o.metadata.namespace).toBe('levee-pr-7');
      expect(o.metadata.labels).toMatchObject({ 'levee.dev/environment': 'preview', 'levee.dev/preview-id': 'pr-7' });
    }
  });

  test('one replica each to start, autoscalers with room to scale, no PVC, no PDB', () => {
    const range = Object.fromEntries(all(m, 'HorizontalPodAutoscaler').map((hpa) => [hpa.metadata.name, [hpa.spec.minReplicas, hpa.spec.maxReplicas]]));
    expect(range).toEqual({ 'levee-gateway': [1, 3], 'levee-media': [1, 2], 'levee-model': [1, 2], 'levee-worker': [1, 3], 'levee-webhooks': [1, 2] });
    expect(all(m, 'PodDisruptionBudget')).toEqual([]);
    const sts = find(m, 'StatefulSet', 'levee-queue-redis');
    expect(sts.spec.volumeClaimTemplates).toBeUndefined();
    expect(sts.spec.template.spec.volumes).toContainEqual({ name: 'data', emptyDir: { sizeLimit: '1Gi' } });
  });

  test('a ResourceQuota sized for the chart (no load balancer at all) and a LimitRange', () => {
    const quota = find(m, 'ResourceQuota', 'levee-quota');
    // The webhook sender's 2 pods + 1 surge at 250m each: 17 → 20 pods, 9250m → 10000m.
    expect(quota.spec.hard).toMatchObject({ pods: 20, persistentvolumeclaims: 0, 'services.loadbalancers': 0, 'services.nodeports': 0, 'limits.cpu': '10000m' });
    expect(find(m, 'LimitRange', 'levee-limits').spec.limits[0].type).toBe('Container');
  });

  test('the ResourceQuota admits every autoscaler at its maximum plus a 25% rollout surge, and both Redis pods', () => {
    const quota = find(m, 'ResourceQuota', 'levee-quota').spec.hard;
    let pods = 0;
    let cpuMillis = 0;
    let memoryMi = 0;
    const podCost = (template: any) => {
      for (const c of template.spec.containers) {
        cpuMillis += parseCpuMillis(c.resources.limits.cpu)!;
        memoryMi += parseMemoryBytes(c.resources.limits.memory)! / 1024 ** 2;
      }
    };
    for (const hpa of all(m, 'HorizontalPodAutoscaler')) {
      const n = hpa.spec.maxReplicas + Math.ceil(hpa.spec.maxReplicas * 0.25);
      const template = find(m, 'Deployment', hpa.spec.scaleTargetRef.name).spec.template;
      for (let i = 0; i < n; i++) podCost(template);
      pods += n;
    }
    for (const [kind, name] of [['StatefulSet', 'levee-queue-redis'], ['Deployment', 'levee-cache-redis']] as const) {
      podCost(find(m, kind, name).spec.template);
      pods += 1;
    }
    expect(pods).toBeLessThanOrEqual(quota.pods);
    expect(cpuMillis).toBeLessThanOrEqual(parseCpuMillis(quota['limits.cpu'])!);
    expect(memoryMi).toBeLessThanOrEqual(parseMemoryBytes(quota['limits.memory'])! / 1024 ** 2);
  });

  test('the edge is a hostname route on the shared preview Gateway: no LoadBalancer Service, no Gateway of its own', () => {
    expect(m.filter((o: any) => o.kind === 'Service' && o.spec.type === 'LoadBalancer')).toEqual([]);
    expect(all(m, 'Gateway')).toEqual([]);
    expect(all(m, 'ClientTrafficPolicy')).toEqual([]);
    const route = find(m, 'HTTPRoute', 'levee');
    expect(route.metadata.namespace).toBe('levee-pr-7');
    expect(route.spec.hostnames).toEqual(['pr-7.preview.levee.example.com']);
    expect(route.spec.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', namespace: 'levee-previews', name: 'levee-previews' }]);
    expect(find(m, 'BackendTrafficPolicy', 'levee').spec.targetRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'levee' }]);
  });

  test('with the legacy provider the preview host is an Ingress rule without TLS', () => {
    const ing = find(manifestsFor({ ...PREVIEW, l7Provider: 'ingress-nginx' }), 'Ingress', 'levee');
    expect(ing.spec.rules[0].host).toBe('pr-7.preview.levee.example.com');
    expect(ing.spec.tls).toBeUndefined();
  });
});

describe('dev', () => {
  test('lives in levee-dev with debug logs', () => {
    const m = manifestsFor(DEV);
    expect(find(m, 'Namespace', 'levee-dev')).toBeDefined();
    expect(find(m, 'Deployment', 'levee-gateway').spec.template.spec.containers[0].env).toContainEqual({ name: 'LOG_LEVEL', value: 'debug' });
    expect(all(m, 'PodDisruptionBudget')).toEqual([]);
  });
});

describe('load balancing with the legacy ingress-nginx provider (today\'s Ingress)', () => {
  const legacy = (settings: Record<string, string>) => manifestsFor({ l7Provider: 'ingress-nginx', ...settings });
  const ann = (settings: Record<string, string>) => find(legacy(settings), 'Ingress', 'levee').metadata.annotations;

  test('the Ingress routes /api to the gateway and /images to media with TLS and round-robin', () => {
    const ing = find(legacy({}), 'Ingress', 'levee');
    expect(ing.spec.ingressClassName).toBe('nginx');
    expect(ing.spec.tls).toEqual([{ hosts: ['levee.example.com'], secretName: 'levee-tls' }]);
    expect(ing.spec.rules[0].http.paths).toEqual([
      { path: '/api', pathType: 'Prefix', backend: { service: { name: 'levee-gateway', port: { number: 8080 } } } },
      { path: '/images', pathType: 'Prefix', backend: { service: { name: 'levee-media', port: { number: 8082 } } } },
    ]);
    expect(ing.metadata.annotations).toEqual({ 'nginx.ingress.kubernetes.io/load-balance': 'round_robin', 'nginx.ingress.kubernetes.io/ssl-redirect': 'true' });
    expect(all(legacy({}), 'Gateway')).toEqual([]);
    expect(all(legacy({}), 'HTTPRoute')).toEqual([]);
    expect(all(legacy({}), 'BackendTrafficPolicy')).toEqual([]);
  });

  test('hash by client IP sets ClientIP affinity on the L4 Service and hashes $remote_addr at L7', () => {
    const m = legacy({ loadBalancing: 'hash', hashBy: 'client-ip' });
    expect(find(m, 'Service', 'levee-edge').spec).toMatchObject({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } });
    expect(ann({ loadBalancing: 'hash' })['nginx.ingress.kubernetes.io/upstream-hash-by']).toBe('$remote_addr');
  });

  test('least-request is ingress-nginx EWMA (L7 only)', () => {
    const m = legacy({ edge: 'l7', loadBalancing: 'least-request' });
    expect(m.filter((o) => o.kind === 'Service' && o.metadata.name === 'levee-edge')).toEqual([]);
    expect(ann({ edge: 'l7', loadBalancing: 'least-request' })['nginx.ingress.kubernetes.io/load-balance']).toBe('ewma');
  });

  test('hash by header hashes the header variable', () => {
    expect(ann({ edge: 'l7', loadBalancing: 'hash', hashBy: 'header', hashHeader: 'X-Api-Token' })['nginx.ingress.kubernetes.io/upstream-hash-by']).toBe('$http_x_api_token');
  });

  test('hash by cookie uses ingress-nginx cookie affinity, secure under TLS, with a max age only when a lifetime is set', () => {
    const cookie = ann({ edge: 'l7', loadBalancing: 'hash', hashBy: 'cookie', hashCookie: 'sticky' });
    expect(cookie).toMatchObject({
      'nginx.ingress.kubernetes.io/affinity': 'cookie',
      'nginx.ingress.kubernetes.io/session-cookie-name': 'sticky',
      'nginx.ingress.kubernetes.io/session-cookie-secure': 'true',
    });
    expect(cookie['nginx.ingress.kubernetes.io/session-cookie-max-age']).toBeUndefined();
    expect(ann({ edge: 'l7', loadBalancing: 'hash', hashBy: 'cookie', hashCookieTtl: '1h30m' })['nginx.ingress.kubernetes.io/session-cookie-max-age']).toBe('5400');
  });
});

describe('KEDA workers', () => {
  const m = manifestsFor({ workerAutoscaler: 'keda', queueRedis: 'statefulset' });

  test('replace the worker HPA with a ScaledObject on bull:<queue>:wait and bull:<queue>:prioritized', () => {
    expect(all(m, 'HorizontalPodAutoscaler').map((h) => h.metadata.name)).not.toContain('levee-worker');
    const so = find(m, 'ScaledObject', 'levee-worker');
    expect(so.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'levee-worker' });
    expect([so.spec.minReplicaCount, so.spec.maxReplicaCount]).toEqual([2, 50]);
    expect(so.spec.triggers.map((t: any) => [t.type, t.metadata.listName, t.metadata.listLength, t.authenticationRef.name])).toEqual([
      ['redis', 'bull:images:wait', '20', 'levee-worker-queue-redis'],
      ['redis', 'bull:images:prioritized', '20', 'levee-worker-queue-redis'],
    ]);
    expect(so.spec.triggers[0].metadata.address).toBe('levee-queue-redis.levee.svc.cluster.local:6379');
  });

  test('KEDA reads the password through a TriggerAuthentication and may reach the queue Redis', () => {
    const auth = find(m, 'TriggerAuthentication', 'levee-worker-queue-redis');
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'password', name: 'levee-queue-redis', key: 'password' }]);
    const peers = find(m, 'NetworkPolicy', 'levee-queue-redis').spec.ingress[0].from;
    expect(peers).toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } });
  });

  test('follow a custom queue name', () => {
    const so = find(manifestsFor({ workerAutoscaler: 'keda', queueName: 'renders' }), 'ScaledObject', 'levee-worker');
    expect(so.spec.triggers.map((t: any) => t.metadata.listName)).toEqual(['bull:renders:wait', 'bull:renders:prioritized']);
  });

  test('with Sentinel (the production default): redis-sentinel triggers ask the Sentinels for the primary, with both passwords; KEDA may reach Sentinels and data pods', () => {
    const ms = manifestsFor({ workerAutoscaler: 'keda' });
    const so = find(ms, 'ScaledObject', 'levee-worker');
    expect(so.spec.triggers.map((t: any) => t.type)).toEqual(['redis-sentinel', 'redis-sentinel']);
    expect(so.spec.triggers[0].metadata).toEqual({
      addresses: 'levee-queue-sentinel.levee.svc.cluster.local:26379',
      sentinelMaster: 'levee-queue',
      listName: 'bull:images:wait',
      listLength: '20',
      activationListLength: '0',
      databaseIndex: '0',
    });
    expect(find(ms, 'TriggerAuthentication', 'levee-worker-queue-redis').spec.secretTargetRef).toEqual([
      { parameter: 'password', name: 'levee-queue-redis', key: 'password' },
      { parameter: 'sentinelPassword', name: 'levee-queue-redis', key: 'password' },
    ]);
    for (const n of ['levee-queue-redis', 'levee-queue-sentinel']) {
      expect(find(ms, 'NetworkPolicy', n).spec.ingress[0].from).toContainEqual({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'keda' } } });
    }
  });

  test('with a managed Redis: the external address, the ACL user from the worker env, TLS with the private CA from its Secret', () => {
    const me = manifestsFor(EXTERNAL_BOTH);
    const so = find(me, 'ScaledObject', 'levee-worker');
    expect(so.spec.triggers.map((t: any) => t.type)).toEqual(['redis', 'redis']);
    expect(so.spec.triggers[0].metadata).toMatchObject({ address: 'queue.redis.example.com:6380', usernameFromEnv: 'QUEUE_REDIS_USERNAME' });
    expect(so.spec.triggers[0].metadata.enableTLS).toBeUndefined(); // with a CA: the TriggerAuthentication's tls/ca instead
    expect(find(me, 'TriggerAuthentication', 'levee-worker-queue-redis').spec).toEqual({
      secretTargetRef: [
        { parameter: 'password', name: 'managed-queue-redis', key: 'password' },
        { parameter: 'ca', name: 'queue-redis-ca', key: 'ca.crt' },
      ],
      env: [{ parameter: 'tls', name: 'KEDA_REDIS_TLS', containerName: 'worker' }],
    });
    const worker = find(me, 'Deployment', 'levee-worker').spec.template.spec.containers[0];
    expect(worker.name).toBe('worker');
    expect(worker.env).toContainEqual({ name: 'KEDA_REDIS_TLS', value: 'enable' });
    expect(worker.env).toContainEqual({ name: 'QUEUE_REDIS_USERNAME', value: 'levee-queue' });
    // TLS with the system CAs: the trigger's own enableTLS.
    const publicCa = manifestsFor({ ...EXTERNAL_BOTH, queueRedisCaSecret: '' });
    expect(find(publicCa, 'ScaledObject', 'levee-worker').spec.triggers[0].metadata.enableTLS).toBe('true');
    expect(find(publicCa, 'TriggerAuthentication', 'levee-worker-queue-redis').spec.env).toBeUndefined();
  });
});

describe('the Sentinel topology (LEVEE_QUEUE_REDIS=sentinel, the production default)', () => {
  const m = manifestsFor({});
  const data = find(m, 'StatefulSet', 'levee-queue-redis');
  const sentinels = find(m, 'StatefulSet', 'levee-queue-sentinel');
  const dc = data.spec.template.spec.containers[0];
  const sc = sentinels.spec.template.spec.containers[0];
  const env = (c: any) => Object.fromEntries(c.env.map((e: any) => [e.name, e.value ?? e.valueFrom]));

  test('three data pods with AOF, noeviction and a PVC each; started together; every pod finds the primary through the Sentinels', () => {
    expect(data.spec.replicas).toBe(3);
    expect(data.spec.podManagementPolicy).toBe('Parallel');
    expect(data.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('10Gi');
    expect(dc.args).toEqual([
      '--port', '6379', '--dir', '/data',
      '--maxmemory', '384mb', '--maxmemory-policy', 'noeviction', '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
      '--repl-diskless-sync-delay', '0',
    ]);
    expect(dc.command).toEqual(['sh', '-c', REPLICATED_REDIS_START_SCRIPT, 'redis-server']);
    expect(REPLICATED_REDIS_START_SCRIPT).toContain('requirepass $REDIS_PASSWORD\nmasterauth $REDIS_PASSWORD\nEOF');
    expect(env(dc)).toMatchObject({
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      ANNOUNCE_HOST: '$(POD_NAME).levee-queue-redis.levee.svc',
      PRIMARY_HOST: 'levee-queue-redis-0.levee-queue-redis.levee.svc',
      PRIMARY_PORT: '6379',
      SENTINELS: 'levee-queue-sentinel:26379',
      MASTER_NAME: 'levee-queue',
      REDIS_PASSWORD: { secretKeyRef: { name: 'levee-queue-redis', key: 'password' } },
    });
    // Readiness knows a replica from a primary: a replica only while in sync.
    expect(dc.readinessProbe.exec.command).toEqual(['sh', '-c', REPLICATED_REDIS_READY_SCRIPT]);
    expect(REPLICATED_REDIS_READY_SCRIPT).toContain('*role:master*|*master_link_status:up*');
    expect(dc.livenessProbe.tcpSocket).toEqual({ port: 6379 });
    // The headless Service publishes pods before they are ready (a syncing replica must resolve the primary).
    expect(find(m, 'Service', 'levee-queue-redis').spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
  });

  test('three Sentinels, quorum two, their config in a writable emptyDir, the password on stdin, a stable id per pod', () => {
    expect(sentinels.spec.replicas).toBe(3);
    expect(sentinels.spec.serviceName).toBe('levee-queue-sentinel-headless');
    expect(sc.command).toEqual(['sh', '-c', SENTINEL_START_SCRIPT, 'redis-server']);
    expect(sc.args).toEqual(['--sentinel']);
    expect(SENTINEL_START_SCRIPT).toContain('exec redis-server "$conf" "$@" - <<EOF\nrequirepass $REDIS_PASSWORD\nsentinel auth-pass $MASTER_NAME $REDIS_PASSWORD\nsentinel sentinel-pass $REDIS_PASSWORD\nEOF');
    expect(SENTINEL_START_SCRIPT).not.toContain('$(');
    expect(env(sc)).toMatchObject({ QUORUM: '2', SENTINEL_DIR: '/sentinel', SENTINEL_PORT: '26379', DOWN_AFTER_MS: '5000', FAILOVER_TIMEOUT_MS: '20000', ANNOUNCE_HOST: '$(POD_NAME).levee-queue-sentinel-headless.levee.svc' });
    expect(sc.volumeMounts).toContainEqual({ name: 'sentinel', mountPath: '/sentinel' });
    expect(sentinels.spec.template.spec.volumes).toContainEqual({ name: 'sentinel', emptyDir: { sizeLimit: '16Mi' } });
    expect(sc.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(sc.readinessProbe.exec.command).toEqual(['sh', '-c', SENTINEL_READY_SCRIPT]);
    expect(SENTINEL_READY_SCRIPT).toContain('sentinel ckquorum');
    expect(find(m, 'Service', 'levee-queue-sentinel').spec).toMatchObject({ type: 'ClusterIP', ports: [{ name: 'sentinel', port: 26379, targetPort: 'sentinel', protocol: 'TCP' }] });
    expect(find(m, 'Service', 'levee-queue-sentinel-headless').spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
  });

  test('data pods and Sentinels are spread over nodes (required) and zones (preferred), and a drain takes one at a time', () => {
    for (const sts of [data, sentinels]) {
      const name = sts.metadata.name;
      expect(sts.spec.template.spec.topologySpreadConstraints).toEqual([
        { topologyKey: 'topology.kubernetes.io/zone', maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { 'app.kubernetes.io/name': name } } },
        { topologyKey: 'kubernetes.io/hostname', maxSkew: 1, whenUnsatisfiable: 'DoNotSchedule', nodeTaintsPolicy: 'Honor', labelSelector: { matchLabels: { 'app.kubernetes.io/name': name } } },
      ]);
      expect(find(m, 'PodDisruptionBudget', name).spec).toEqual({ maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: { 'app.kubernetes.io/name': name } } });
    }
  });

  test('in preview it is opt-in, and without PDBs', () => {
    const p = manifestsFor({ ...PREVIEW, queueRedis: 'sentinel' });
    expect(find(p, 'StatefulSet', 'levee-queue-redis').spec.replicas).toBe(3);
    expect(find(p, 'StatefulSet', 'levee-queue-sentinel').spec.replicas).toBe(3);
    expect(all(p, 'PodDisruptionBudget')).toEqual([]);
    // The quota admits 2 more data pods and 3 Sentinels than with the single-pod queue Redis.
    expect(find(p, 'ResourceQuota', 'levee-quota').spec.hard.pods).toBe(find(manifestsFor(PREVIEW), 'ResourceQuota', 'levee-quota').spec.hard.pods + 2 + 3);
  });
});

describe('managed Redis (LEVEE_QUEUE_REDIS=external, LEVEE_CACHE_REDIS=external)', () => {
  const m = manifestsFor(EXTERNAL_BOTH);

  test('no Redis runs in the cluster', () => {
    expect(m.filter((o) => /redis|sentinel/.test(o.metadata.name) && o.kind !== 'TriggerAuthentication')).toEqual([]);
  });

  test('the apps get the URL, ACL user, CA file (mounted from its Secret) and the password from the named Secret', () => {
    const c = find(m, 'Deployment', 'levee-gateway').spec.template.spec;
    const env = c.containers[0].env;
    for (const [role, host, user, ca, secret] of [['QUEUE', 'queue', 'levee-queue', 'queue-redis-ca', 'managed-queue-redis'], ['CACHE', 'cache', 'levee-cache', 'cache-redis-ca', 'levee-cache-redis']]) {
      expect(env).toContainEqual({ name: `${role}_REDIS_URL`, value: `rediss://${host}.redis.example.com:6380` });
      expect(env).toContainEqual({ name: `${role}_REDIS_USERNAME`, value: user });
      expect(env).toContainEqual({ name: `${role}_REDIS_CA_FILE`, value: `/etc/levee/${host}-redis-ca/ca.crt` });
      expect(env).toContainEqual({ name: `${role}_REDIS_PASSWORD`, valueFrom: { secretKeyRef: { name: secret, key: 'password' } } });
      expect(c.volumes).toContainEqual({ name: `${host}-redis-ca`, secret: { secretName: ca, items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
      expect(c.containers[0].volumeMounts).toContainEqual({ name: `${host}-redis-ca`, mountPath: `/etc/levee/${host}-redis-ca`, readOnly: true });
    }
    expect(env).toContainEqual({ name: 'QUEUE_MIN_REPLICAS_ACKED', value: '0' });
    expect(find(m, 'Deployment', 'levee-worker').spec.template.spec.containers[0].env.map((e: any) => e.name)).toEqual(
      expect.arrayContaining(['QUEUE_REDIS_URL', 'QUEUE_REDIS_USERNAME', 'QUEUE_REDIS_CA_FILE', 'QUEUE_REDIS_PASSWORD']),
    );
    // Media reads the images from object storage: no Redis settings, no CA volume.
    const media = find(m, 'Deployment', 'levee-media').spec.template.spec;
    expect(media.containers[0].env.map((e: any) => e.name).filter((n: string) => n.startsWith('QUEUE_'))).toEqual([]);
    expect(media.volumes.map((v: any) => v.name)).toEqual(['tmp']);
    // With the images in Redis, media gets the managed queue Redis too.
    expect(find(manifestsFor({ ...EXTERNAL_BOTH, imageStore: 'redis' }), 'Deployment', 'levee-media').spec.template.spec.containers[0].env.map((e: any) => e.name)).toEqual(
      expect.arrayContaining(['QUEUE_REDIS_URL', 'QUEUE_REDIS_USERNAME', 'QUEUE_REDIS_CA_FILE', 'QUEUE_REDIS_PASSWORD']),
    );
  });

  test('egress to the managed Redis only at its CIDRs and port', () => {
    const to = (n: string) => find(m, 'NetworkPolicy', n).spec.egress;
    expect(to('levee-gateway').slice(0, 2)).toEqual([
      { to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ protocol: 'TCP', port: 6380 }] },
      { to: [{ ipBlock: { cidr: '10.21.0.0/16' } }], ports: [{ protocol: 'TCP', port: 6380 }] },
    ]);
    expect(to('levee-worker')[0]).toEqual({ to: [{ ipBlock: { cidr: '10.20.0.0/16' } }], ports: [{ protocol: 'TCP', port: 6380 }] });
    expect(JSON.stringify(to('levee-media'))).not.toContain('10.20.0.0/16');
    expect(to(`levee-media`)[0]).toEqual(expect.objectContaining({ to: [expect.objectContaining({ ipBlock: expect.objectContaining({ cidr: '0.0.0.0/0' }) })] }));
  });

  test('the Secrets it needs are the operator\'s (passwords and CAs); only the webhook signing key is generated', () => {
    expect(requiredSecrets(resolveConfig(EXTERNAL_BOTH)).map((s) => [s.name, s.key, s.generated])).toEqual([
      ['managed-queue-redis', 'password', false],
      ['levee-cache-redis', 'password', false],
      ['queue-redis-ca', 'ca.crt', false],
      ['cache-redis-ca', 'ca.crt', false],
      // Ours, not the managed Redis's: generated.
      ['levee-webhook-secret', 'secret', true],
    ]);
  });
});

describe('the model tier (LEVEE_MODEL_*)', () => {
  const deployment = (m: any[], n: string) => find(m, 'Deployment', n).spec.template.spec;

  test('GPUs on Karpenter nodes: the model asks for its GPU (requests = limits), tolerates the taint the NodePool sets, and goes to that pool', () => {
    const m = manifestsFor({ modelGpus: '1', nodeProvisioner: 'karpenter', modelRuntimeClass: 'nvidia', modelStartupSeconds: '900', modelNodeSelector: 'topology.kubernetes.io/zone=eu-west-1a' });
    const spec = deployment(m, 'levee-model');
    const c = spec.containers[0];
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(c.resources.requests['nvidia.com/gpu']).toBe(1);
    expect(spec.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(spec.nodeSelector).toEqual({ 'topology.kubernetes.io/zone': 'eu-west-1a', 'karpenter.sh/nodepool': 'levee-gpu' });
    expect(spec.runtimeClassName).toBe('nvidia');
    // A 15-minute load: the startupProbe waits for it; liveness starts after.
    expect(c.startupProbe).toEqual({ httpGet: { path: '/readyz', port: 8081 }, periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 90 });
    const pool = find(m, 'NodePool', 'levee-gpu');
    expect(pool.apiVersion).toBe('karpenter.sh/v1');
    expect(pool.metadata.namespace).toBeUndefined(); // cluster-scoped
    expect(pool.spec.template.spec.taints).toEqual([{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }]);
    expect(pool.spec.template.spec.expireAfter).toBe('720h');
    expect(pool.spec.template.spec.nodeClassRef).toEqual({ group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'gpu' });
    expect(pool.spec.template.spec.requirements).toEqual([
      { key: 'karpenter.k8s.aws/instance-category', operator: 'In', values: ['g'] },
      { key: 'karpenter.k8s.aws/instance-gpu-manufacturer', operator: 'In', values: ['nvidia'] },
      { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['on-demand'] },
    ]);
    expect(pool.spec.limits).toEqual({ 'nvidia.com/gpu': '100' });
    expect(pool.spec.disruption).toEqual({ consolidationPolicy: 'WhenEmpty', consolidateAfter: '10m', budgets: [{ nodes: '10%' }] });
    // Nothing else asks for a GPU or tolerates the taint.
    for (const n of ['levee-gateway', 'levee-media', 'levee-worker']) {
      expect(JSON.stringify(deployment(m, n))).not.toMatch(/gpu/);
    }
    // A preview's pool is its own.
    expect(find(manifestsFor({ environment: 'preview', previewId: 'pr-7', modelGpus: '1', nodeProvisioner: 'karpenter' }), 'NodePool', 'levee-pr-7-gpu').spec.template.metadata.labels).toEqual({ 'levee.dev/gpu-nodes': 'levee-pr-7' });
  });

  test('scale to zero: KEDA scales the model and the workers from zero on waiting, active and delayed jobs; no HPA, no PDB, no missing-target alert for them', () => {
    const m = manifestsFor({ modelMinReplicas: '0', workerAutoscaler: 'keda', kedaCooldownSeconds: '600', monitoring: 'prometheus-operator' });
    expect(all(m, 'HorizontalPodAutoscaler').map((h) => h.metadata.name).sort()).toEqual(['levee-gateway', 'levee-media', 'levee-webhooks']);
    expect(all(m, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toEqual(expect.arrayContaining(['levee-model']));
    expect(all(m, 'PodDisruptionBudget').map((p) => p.metadata.name)).not.toContain('levee-worker');
    for (const [n, auth] of [['levee-model', 'levee-model-queue-redis'], ['levee-worker', 'levee-worker-queue-redis']]) {
      const so = find(m, 'ScaledObject', n!);
      expect(so.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: n });
      expect(so.spec.minReplicaCount).toBe(0);
      expect(so.spec.cooldownPeriod).toBe(600);
      // Waiting jobs per replica (LEVEE_KEDA_LIST_LENGTH), running jobs per replica (a worker's
      // concurrency, 8), and postponed jobs only wake one replica (they wait for the model).
      expect(so.spec.triggers.map((t: any) => [t.name, t.metadata.listName, t.metadata.listLength, t.metadata.activationListLength, t.authenticationRef.name])).toEqual([
        ['waiting', 'bull:images:wait', '20', '0', auth],
        ['prioritized', 'bull:images:prioritized', '20', '0', auth],
        ['active', 'bull:images:active', n === 'levee-worker' ? '8' : '20', '0', auth],
        ['delayed', 'bull:images:delayed', '1000000', '0', auth],
      ]);
      expect(find(m, 'TriggerAuthentication', auth!).spec.secretTargetRef[0]).toEqual({ parameter: 'password', name: 'levee-queue-redis', key: 'password' });
    }
    expect(find(m, 'ScaledObject', 'levee-model').spec.maxReplicaCount).toBe(20);
    const alerts = find(m, 'PrometheusRule', 'levee').spec.groups.flatMap((g: any) => g.rules).filter((r: any) => r.alert === 'LeveeTargetMissing').map((r: any) => r.labels.component);
    expect(alerts).toEqual(['gateway', 'media', 'webhooks']);
  });

  test('an external model: no model objects; the workers and the gateway reach it (and only it) at its CIDRs and port, with the key from its Secret', () => {
    const m = manifestsFor({ modelUrl: 'https://images.example.com', modelApi: 'openai-images', modelName: 'gpt-image-1', modelApiKeySecret: 'hosted-key', modelCidrs: '203.0.113.0/24', modelStyles: 'photo,anime', monitoring: 'prometheus-operator' });
    expect(m.filter((o) => o.metadata.name === 'levee-model')).toEqual([]);
    const key = { name: 'MODEL_API_KEY', valueFrom: { secretKeyRef: { name: 'hosted-key', key: 'api-key' } } };
    const worker = deployment(m, 'levee-worker').containers[0].env;
    expect(worker).toEqual(expect.arrayContaining([{ name: 'MODEL_URL', value: 'https://images.example.com' }, { name: 'MODEL_API', value: 'openai-images' }, { name: 'MODEL_NAME', value: 'gpt-image-1' }, key]));
    // openai-images: the gateway serves the configured catalog and never calls the model: no key, no egress to it.
    const gateway = deployment(m, 'levee-gateway').containers[0].env;
    expect(gateway).toEqual(expect.arrayContaining([{ name: 'MODEL_STYLES', value: 'photo,anime' }]));
    expect(gateway.map((e: any) => e.name)).not.toContain('MODEL_API_KEY');
    expect(JSON.stringify(find(m, 'NetworkPolicy', 'levee-gateway').spec.egress)).not.toContain('203.0.113.0/24');
    expect(find(m, 'NetworkPolicy', 'levee-worker').spec.egress).toContainEqual({ to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] });
    // With the levee API the gateway reads the catalog from the model: egress and key.
    const levee = manifestsFor({ modelUrl: 'https://images.example.com', modelApiKeySecret: 'hosted-key', modelCidrs: '203.0.113.0/24' });
    expect(find(levee, 'NetworkPolicy', 'levee-gateway').spec.egress).toContainEqual({ to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] });
    expect(deployment(levee, 'levee-gateway').containers[0].env).toContainEqual(key);
    expect(requiredSecrets(resolveConfig({ modelUrl: 'https://images.example.com', modelApiKeySecret: 'hosted-key' })).find((r) => r.name === 'hosted-key')).toMatchObject({ key: 'api-key', generated: false });
    // The in-cluster stand-in gets the key too, and then requires it.
    expect(deployment(manifestsFor({ modelApiKeySecret: 'model-key' }), 'levee-model').containers[0].env).toContainEqual({ name: 'MODEL_API_KEY', valueFrom: { secretKeyRef: { name: 'model-key', key: 'api-key' } } });
  });

  test('LEVEE_MODEL_IMAGE runs another model container in the same place', () => {
    const m = manifestsFor({ modelImage: 'registry.example.com/sdxl-server:2.1.0' });
    expect(deployment(m, 'levee-model').containers[0].image).toBe('registry.example.com/sdxl-server:2.1.0');
  });
});

describe('KEDA reads what its triggers name from the scale target', () => {
  test.each([
    ['the workers', { ...EXTERNAL_BOTH }],
    ['scale to zero on a managed queue Redis with an ACL user and a private CA', { ...EXTERNAL_BOTH, modelMinReplicas: '0' }],
  ])('%s: every *FromEnv of a trigger and every env of the TriggerAuthentication is in the target\'s container', (_name, settings) => {
    const m = manifestsFor(settings);
    const objects = all(m, 'ScaledObject');
    expect(objects.length).toBeGreaterThan(0);
    for (const so of objects) {
      const target = find(m, 'Deployment', so.spec.scaleTargetRef.name).spec.template.spec.containers[0];
      const names = new Set((target.env ?? []).map((e: any) => e.name));
      for (const t of so.spec.triggers) {
        for (const [k, v] of Object.entries(t.metadata)) if (k.endsWith('FromEnv')) expect([so.metadata.name, k, names.has(v)]).toEqual([so.metadata.name, k, true]);
        const auth = find(m, 'TriggerAuthentication', t.authenticationRef.name);
        for (const e of auth.spec.env ?? []) expect([auth.metadata.name, e.name, e.containerName, names.has(e.name)]).toEqual([auth.metadata.name, e.name, target.name, true]);
      }
    }
  });
});
