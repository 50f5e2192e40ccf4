/**
 * The rehearsal's translation of manifests into Docker containers, without Docker: what a
 * kubelet would do with each field must show up in the `docker run` arguments.
 */
import { buildManifests, resolveConfig } from '../../infra';
import { expand } from '../../scripts/rehearsal/expand';
import { ContainerPlan, PlanError, RehearsalPlan, STAND_IN_S3_SETTINGS, STAND_IN_WEBHOOK_SETTINGS, dnsNames, planRehearsal } from '../../scripts/rehearsal/plan';

const NETWORK = { name: 'lrh-test', ips: Array.from({ length: 50 }, (_, i) => `172.30.1.${10 + i}`) };
const plan = (manifests: any[]) => planRehearsal(manifests, { runId: 'test', network: NETWORK, filesDir: '/tmp/lrh-files', password: () => 'generated-password' });
/** The production manifests as `npm run rehearse` synthesizes them: the images go to its object store stand-in, webhooks to its receiver. */
const production = () => buildManifests(resolveConfig({ ...STAND_IN_S3_SETTINGS, ...STAND_IN_WEBHOOK_SETTINGS })) as any[];
const container = (p: RehearsalPlan, pod: string): ContainerPlan => p.pods.find((x) => x.name === pod)!.containers[0]!;
/** The value after a flag, for every occurrence. */
const flagValues = (args: readonly string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));

describe('the production manifests as Docker containers', () => {
  const p = plan(production());

  test('the object store is a stand-in in the network, under the name the manifests give, with their bucket; the apps get its keys from their Secret', () => {
    expect(p.objectStore).toEqual({
      dockerName: 'lrh-test-s3', ip: expect.stringMatching(/^172\.30\.1\./), endpoint: 'http://levee-rehearsal-s3:4568', port: 4568, buckets: ['levee-images'], prefixes: { 'levee-images': 'images/' },
    });
    expect([...p.pods.map((x) => x.ip), p.l7Ip]).not.toContain(p.objectStore!.ip);
    for (const pod of ['levee-worker-r0', 'levee-media-r0']) {
      expect(container(p, pod).env).toMatchObject({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', IMAGE_S3_ENDPOINT: 'http://levee-rehearsal-s3:4568' });
    }
    expect(container(p, 'levee-gateway-r0').env.AWS_ACCESS_KEY_ID).toBeUndefined();
    expect(p.notes.join('\n')).toContain('the object store is a stand-in: s3rver');
  });

  test('refuses manifests whose apps would send images to a cloud endpoint; none is planned with the images in Redis', () => {
    expect(() => plan(buildManifests(resolveConfig({})) as any[])).toThrow(
      /^container media keeps its images at AWS S3 \(no IMAGE_S3_ENDPOINT\); a rehearsal never reaches a cloud endpoint: synthesize with LEVEE_IMAGE_S3_ENDPOINT=http:\/\/levee-rehearsal-s3:4568 /,
    );
    expect(() => plan(buildManifests(resolveConfig({ imageS3Endpoint: 'https://storage.googleapis.com' })) as any[])).toThrow(PlanError);
    expect(plan(buildManifests(resolveConfig({ imageStore: 'redis' })) as any[]).objectStore).toBeUndefined();
  });

  test('one pod per Deployment and the StatefulSets as written (Sentinel: three Redis pods, three Sentinels), each with its own IP', () => {
    expect(p.pods.map((x) => [x.name, x.owner])).toEqual([
      ['levee-queue-redis-0', 'StatefulSet/levee-queue-redis'],
      ['levee-queue-redis-1', 'StatefulSet/levee-queue-redis'],
      ['levee-queue-redis-2', 'StatefulSet/levee-queue-redis'],
      ['levee-queue-sentinel-0', 'StatefulSet/levee-queue-sentinel'],
      ['levee-queue-sentinel-1', 'StatefulSet/levee-queue-sentinel'],
      ['levee-queue-sentinel-2', 'StatefulSet/levee-queue-sentinel'],
      ['levee-cache-redis-r0', 'Deployment/levee-cache-redis'],
      ['levee-model-r0', 'Deployment/levee-model'],
      ['levee-gateway-r0', 'Deployment/levee-gateway'],
      ['levee-media-r0', 'Deployment/levee-media'],
      ['levee-worker-r0', 'Deployment/levee-worker'],
      ['levee-webhooks-r0', 'Deployment/levee-webhooks'],
    ]);
    expect(new Set(p.pods.map((x) => x.ip)).size).toBe(12);
    // Both StatefulSets start their pods in parallel (Sentinel elects, no ordinal waits on another)
    expect(p.pods.map((x) => x.after).filter(Boolean)).toEqual([]);
    expect(p.namespace).toBe('levee');
  });

  test('every app container runs with the security context of its manifest: uid/gid, read-only root, no capabilities, no privilege escalation', () => {
    for (const pod of p.pods) {
      const c = pod.containers[0]!;
      expect([pod.name, flagValues(c.args, '--user')]).toEqual([pod.name, ['10001:10001']]);
      expect([pod.name, flagValues(c.args, '--group-add')]).toEqual([pod.name, ['10001']]); // fsGroup
      expect(c.args).toContain('--read-only');
      expect(flagValues(c.args, '--cap-drop')).toEqual(['ALL']);
      expect(flagValues(c.args, '--security-opt')).toEqual(['no-new-privileges']);
      expect([c.uid, c.readOnlyRoot, c.capDropAll]).toEqual([10001, true, true]);
    }
  });

  test('resource limits become --memory (no swap) and --cpus; emptyDir becomes a tmpfs of its sizeLimit', () => {
    const gateway = container(p, 'levee-gateway-r0');
    expect(flagValues(gateway.args, '--memory')).toEqual([String(512 * 1024 ** 2)]);
    expect(flagValues(gateway.args, '--memory-swap')).toEqual([String(512 * 1024 ** 2)]);
    expect(flagValues(gateway.args, '--cpus')).toEqual(['1.000']);
    expect(flagValues(gateway.args, '--tmpfs')).toEqual([`/tmp:rw,exec,nosuid,nodev,mode=1777,size=${128 * 1024 ** 2}`]);
  });

  test('the queue Redis PVC becomes a Docker volume handed to the fsGroup, mounted at /data', () => {
    const pod = p.pods.find((x) => x.name === 'levee-queue-redis-0')!;
    expect(pod.volumes).toEqual([{ dockerName: 'lrh-test-data-levee-queue-redis-0', fsGroup: 10001 }]);
    expect(flagValues(pod.containers[0]!.args, '-v')).toEqual(['lrh-test-data-levee-queue-redis-0:/data']);
  });

  test('Secrets are filled with generated passwords, handed over by name and never written into the arguments', () => {
    const gateway = container(p, 'levee-gateway-r0');
    expect(gateway.env.QUEUE_REDIS_PASSWORD).toBe('generated-password');
    expect(flagValues(gateway.args, '-e')).toContain('QUEUE_REDIS_PASSWORD');
    expect(gateway.args.join(' ')).not.toContain('generated-password');
    expect([...p.secrets.keys()].sort()).toEqual(['levee-cache-redis', 'levee-queue-redis', 'levee-rehearsal-s3-keys', 'levee-webhook-secret']);
    // The webhook signing key is a Standard Webhooks key, as the Pulumi program makes it.
    expect(p.secrets.get('levee-webhook-secret')!.get('secret')).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    // The object store's keys are the stand-in's, as an operator would have put the store's keys there.
    expect(Object.fromEntries(p.secrets.get('levee-rehearsal-s3-keys')!)).toEqual({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' });
    // The Redis that checks the password and the apps that send it read the same Secret.
    expect(container(p, 'levee-queue-redis-0').env.REDIS_PASSWORD).toBe(p.secrets.get('levee-queue-redis')!.get('password'));
  });

  test('command overrides the entrypoint and args follow the image; plain env stays as written', () => {
    const redis = container(p, 'levee-queue-redis-0');
    const at = redis.args.indexOf(redis.image);
    expect(flagValues(redis.args, '--entrypoint')).toEqual(['sh']);
    expect(redis.args.slice(at + 1, at + 3)).toEqual(['-c', expect.stringContaining('exec redis-server -')]);
    expect(redis.args.slice(at + 3, at + 6)).toEqual(['redis-server', '--port', '6379']);
    const gateway = container(p, 'levee-gateway-r0');
    expect(flagValues(gateway.args, '--entrypoint')).toEqual([]);
    expect(gateway.args.at(-1)).toBe(gateway.image); // the image's own CMD
    expect(gateway.env.QUEUE_REDIS_SENTINELS).toBe('levee-queue-sentinel:26379');
    expect(gateway.env.CACHE_REDIS_URL).toBe('redis://levee-cache-redis:6379');
  });

  test('each pod joins a pause container that holds its IP, hostname and every DNS form of the Services selecting it', () => {
    const gateway = p.pods.find((x) => x.name === 'levee-gateway-r0')!;
    expect(flagValues(gateway.containers[0]!.args, '--network')).toEqual(['container:lrh-test-levee-gateway-r0']);
    expect(flagValues(gateway.pause.args, '--ip')).toEqual([gateway.ip]);
    expect(flagValues(gateway.pause.args, '--hostname')).toEqual(['levee-gateway-r0']);
    expect(gateway.aliases).toEqual(dnsNames('levee-gateway', 'levee'));
    expect(dnsNames('levee-gateway', 'levee')).toEqual(['levee-gateway', 'levee-gateway.levee', 'levee-gateway.levee.svc', 'levee-gateway.levee.svc.cluster.local']);
    const redis = p.pods.find((x) => x.name === 'levee-queue-redis-0')!;
    expect(redis.aliases).toEqual([...dnsNames('levee-queue-redis', 'levee'), ...dnsNames('levee-queue-redis-0.levee-queue-redis', 'levee')]);
    // The worker has no Service: no alias.
    expect(p.pods.find((x) => x.name === 'levee-worker-r0')!.aliases).toEqual([]);
  });

  test('probes keep their timing, and named ports resolve to the container port', () => {
    const gateway = container(p, 'levee-gateway-r0');
    const readiness = gateway.probes.find((x) => x.kind === 'readiness')!;
    expect(readiness).toMatchObject({ periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2, action: { type: 'http', path: '/readyz', port: 8080, host: p.pods.find((x) => x.name === 'levee-gateway-r0')!.ip } });
    expect(gateway.probes.find((x) => x.kind === 'liveness')).toMatchObject({ initialDelaySeconds: 5, action: { path: '/healthz' } });
    expect(container(p, 'levee-cache-redis-r0').probes.find((x) => x.kind === 'readiness')!.action).toEqual({ type: 'exec', command: ['sh', '-c', 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'] });
    expect(container(p, 'levee-queue-redis-0').probes.find((x) => x.kind === 'readiness')!.action).toMatchObject({ type: 'exec', command: ['sh', '-c', expect.stringContaining('info replication')] });
  });

  test('the LoadBalancer Service gets a published forwarder honouring port → targetPort; ClusterIP Services with equal ports need none', () => {
    expect(p.forwards).toHaveLength(1);
    const edge = p.forwards[0]!;
    expect(edge).toMatchObject({ service: 'levee-edge', type: 'LoadBalancer', publish: true, aliases: dnsNames('levee-edge', 'levee') });
    expect(edge.ports).toEqual([{ name: 'http', port: 80, targets: [{ ip: p.pods.find((x) => x.name === 'levee-gateway-r0')!.ip, port: 8080 }] }]);
  });

  test('the webhook sender runs the worker image with its command, and webhooks go to the receiver stand-in with the sender\'s key', () => {
    const sender = container(p, 'levee-webhooks-r0');
    expect(sender.image).toBe('ghcr.io/levee-dev/levee-worker:0.1.0');
    expect(sender.args.join(' ')).toContain('build/services/worker/src/webhooks-server.js');
    expect(sender.env.WEBHOOK_ALLOWED_CIDRS).toBe('172.28.0.0/14');
    expect(p.webhookReceiver).toMatchObject({ url: 'http://levee-rehearsal-webhook:8443/hook', port: 8443, secret: p.secrets.get('levee-webhook-secret')!.get('secret') });
    expect(p.webhookReceiver!.ip.startsWith('172.30.1.')).toBe(true);
    // Manifests that keep webhooks off private networks get no receiver, and say why.
    const strict = plan(buildManifests(resolveConfig({ ...STAND_IN_S3_SETTINGS })) as any[]);
    expect(strict.webhookReceiver).toBeUndefined();
    expect(strict.notes.join('\n')).toMatch(/no webhook check: the sender may not reach the receiver stand-in/);
  });

  test('the L7 routes come from the HTTPRoute (its GET-only /api rule and the rest, one route each): /api → gateway, /images → media', () => {
    expect(p.l7.map((r) => [r.source, r.pathPrefix, r.regex ?? false, r.service, r.port])).toEqual([
      ['HTTPRoute levee', '^/api/images/[^/]+/events$', true, 'levee-gateway', 8080],
      ['HTTPRoute levee', '/api', false, 'levee-gateway', 8080],
      ['HTTPRoute levee', '/images', false, 'levee-media', 8082],
    ]);
  });

  test('with the legacy provider, the L7 routes come from the Ingress', () => {
    const legacy = plan(buildManifests(resolveConfig({ l7Provider: 'ingress-nginx', ...STAND_IN_S3_SETTINGS })) as any[]);
    expect(legacy.l7.map((r) => [r.source, r.pathPrefix, r.service, r.port])).toEqual([
      ['Ingress levee', '/api', 'levee-gateway', 8080],
      ['Ingress levee', '/images', 'levee-media', 8082],
    ]);
  });
});

describe('what a kubelet would refuse, or the rehearsal cannot do, fails the plan with the object named', () => {
  const mutate = (f: (m: any[]) => void) => {
    const m = production();
    f(m);
    return () => plan(m);
  };
  const byName = (m: any[], kind: string, name: string) => m.find((o) => o.kind === kind && o.metadata.name === name);

  test('a Service that selects no pod', () => {
    expect(mutate((m) => (byName(m, 'Service', 'levee-model').spec.selector = { 'app.kubernetes.io/name': 'nobody' }))).toThrow(new PlanError('Service levee-model selects no pod of the manifests'));
  });
  test('an L7 route to a Service port that does not exist', () => {
    expect(mutate((m) => (byName(m, 'HTTPRoute', 'levee').spec.rules.find((r: any) => r.name === 'api').backendRefs[0].port = 9999))).toThrow('HTTPRoute levee: /api routes to port 9999 of Service levee-gateway, which has no such port');
  });
  test('a probe on a port name no container has', () => {
    expect(mutate((m) => (byName(m, 'Service', 'levee-gateway').spec.ports[0].targetPort = 'web'))).toThrow('Service levee-gateway port 8080: no container port named "web"');
  });
  test('a gRPC probe', () => {
    expect(mutate((m) => (byName(m, 'Deployment', 'levee-media').spec.template.spec.containers[0].readinessProbe = { grpc: { port: 8082 } }))).toThrow('readiness probe of container media: only httpGet, tcpSocket and exec probes are supported by the rehearsal');
  });
});

describe('fields the production chart does not use yet', () => {
  const pod = (spec: any, extra: any[] = []) =>
    plan([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'app', namespace: 'ns' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec } } },
      ...extra,
    ]).pods[0]!;

  test('fieldRef and resourceFieldRef values, and $(VAR) references in env, command and args', () => {
    const p = pod({
      containers: [
        {
          name: 'c',
          image: 'img:1',
          command: ['/bin/run', '$(POD_NAME)'],
          args: ['--ip=$(POD_IP)', '--literal=$$(POD_IP)', '--unknown=$(NOPE)'],
          resources: { limits: { memory: '64Mi', cpu: '1500m' } },
          env: [
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
            { name: 'LABEL', valueFrom: { fieldRef: { fieldPath: "metadata.labels['a']" } } },
            { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
            { name: 'CPUS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
            { name: 'URL', value: 'http://$(POD_IP):80' },
          ],
        },
      ],
    });
    const c = p.containers[0]!;
    expect(c.env).toEqual({ POD_NAME: 'app-r0', POD_IP: p.ip, NS: 'ns', LABEL: 'b', MEM_MI: '64', CPUS: '2', URL: `http://${p.ip}:80` });
    expect(c.args.slice(c.args.indexOf('img:1'))).toEqual(['img:1', 'app-r0', `--ip=${p.ip}`, '--literal=$(POD_IP)', '--unknown=$(NOPE)']);
    expect(flagValues(c.args, '--entrypoint')).toEqual(['/bin/run']);
  });

  test('configMap volumes become read-only files; init containers run first, without a restart policy', () => {
    const p = pod(
      {
        initContainers: [{ name: 'init', image: 'img:1', command: ['cp', '/conf/a.conf', '/work/'], volumeMounts: [{ name: 'conf', mountPath: '/conf' }, { name: 'work', mountPath: '/work' }] }],
        containers: [{ name: 'c', image: 'img:1', volumeMounts: [{ name: 'work', mountPath: '/work' }] }],
        volumes: [{ name: 'conf', configMap: { name: 'cm' } }, { name: 'work', emptyDir: {} }],
      },
      [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: 'ns' }, data: { 'a.conf': 'x 1\n' } }],
    );
    expect(p.files).toEqual([{ dir: '/tmp/lrh-files/app-r0/conf', files: { 'a.conf': 'x 1\n' }, mode: 0o644 }]);
    const init = p.initContainers[0]!;
    expect(flagValues(init.args, '-v')).toEqual(['/tmp/lrh-files/app-r0/conf:/conf:ro']);
    expect(flagValues(init.args, '--tmpfs')).toEqual(['/work:rw,exec,nosuid,nodev,mode=1777']);
    expect(init.args).not.toContain('--restart');
    expect(flagValues(p.containers[0]!.args, '--restart')).toEqual(['always']);
  });
});

describe('StatefulSets', () => {
  const sts = (policy?: string) =>
    plan([
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'db', namespace: 'ns' },
        spec: { serviceName: 'db', replicas: 3, ...(policy ? { podManagementPolicy: policy } : {}), selector: { matchLabels: { a: 'db' } }, template: { metadata: { labels: { a: 'db' } }, spec: { containers: [{ name: 'c', image: 'img:1' }] } } },
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'ns' }, spec: { clusterIP: 'None', selector: { a: 'db' }, ports: [{ port: 6379 }] } },
    ]).pods;

  test('start one after the other (OrderedReady, the default), each answering as <pod>.<service> too', () => {
    const pods = sts();
    expect(pods.map((p) => [p.name, p.after])).toEqual([['db-0', undefined], ['db-1', 'db-0'], ['db-2', 'db-1']]);
    expect(pods[2]!.aliases).toEqual([...dnsNames('db', 'ns'), ...dnsNames('db-2.db', 'ns')]);
  });

  test('start together with podManagementPolicy Parallel', () => {
    expect(sts('Parallel').map((p) => p.after)).toEqual([undefined, undefined, undefined]);
  });
});

describe('$(VAR) expansion, as the kubelet does it', () => {
  const vars = new Map([['A', 'x'], ['EMPTY', '']]);
  test.each([
    ['$(A)', 'x'],
    ['a-$(A)-b', 'a-x-b'],
    ['$(EMPTY)', ''],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['cost: $5', 'cost: $5'],
    ['trailing $', 'trailing $'],
    ['"$REDIS_PASSWORD" ${X}', '"$REDIS_PASSWORD" ${X}'],
  ])('%s → %s', (input, output) => {
    expect(expand(input, vars)).toBe(output);
  });
});

describe('a GPU model on Karpenter nodes, openai-images, an API key', () => {
  const p = plan(buildManifests(resolveConfig({ ...STAND_IN_S3_SETTINGS, modelGpus: '1', nodeProvisioner: 'karpenter', modelRuntimeClass: 'nvidia', modelApi: 'openai-images', modelApiKeySecret: 'model-key', modelStyles: 'sunset' })) as any[]);

  test('the GPU is left out, and the rehearsal says so; so are the scheduling fields', () => {
    const model = container(p, 'levee-model-r0');
    expect(model.args.join(' ')).not.toMatch(/gpu/i);
    expect(p.notes).toContain('nvidia.com/gpu: 1 of container model (levee-model-r0) is left out: no GPU runs on Docker here (a cluster schedules the pod on a node that has one)');
    expect(p.notes).toContain("scheduling fields of pod levee-model-r0 (tolerations, nodeSelector, runtimeClassName) are the scheduler's and the node's: not emulated");
  });

  test('the model and the workers share the one key of its Secret (the gateway, which never calls an openai-images model, has none); the NodePool (cluster-scoped) runs nothing', () => {
    const key = p.secrets.get('model-key')!.get('api-key');
    expect(key).toBe('generated-password');
    for (const pod of ['levee-model-r0', 'levee-worker-r0']) expect(container(p, pod).env.MODEL_API_KEY).toBe(key);
    expect(container(p, 'levee-gateway-r0').env.MODEL_API_KEY).toBeUndefined();
    expect(container(p, 'levee-worker-r0').env.MODEL_API).toBe('openai-images');
    expect(p.pods.map((x) => x.owner)).not.toContain('NodePool/levee-gpu');
  });
});
