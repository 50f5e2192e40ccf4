/**
 * The rehearsal can fail: production manifests with three mistakes a kubelet would expose —
 * a readiness probe on a path the gateway does not serve, a model that writes to its
 * read-only root, a worker setting the app rejects — run on Docker, and each workload is
 * reported not ready with the reason and its container's log, and nothing is left behind.
 *
 * Needs a Docker engine and the images of `npm run images`: runs when REHEARSAL_TESTS=1
 * (`.ci/run` sets it after building them), and is skipped otherwise.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Yaml } from 'cdk8s';
import { buildManifests, resolveConfig } from '../../infra';
import { docker } from '../../scripts/docker/docker';
import { STAND_IN_S3_SETTINGS } from '../../scripts/rehearsal/plan';

const ROOT = join(__dirname, '../..');
const enabled = process.env.REHEARSAL_TESTS === '1';
const READY_TIMEOUT_SECONDS = 25;
jest.setTimeout(180_000);

(enabled ? describe : describe.skip)('npm run rehearse on manifests with mistakes (Docker)', () => {
  let out = '';
  let code: number | null = null;
  let dir: string;
  let claims = 0;

  beforeAll(async () => {
    const m = buildManifests(resolveConfig({ ...STAND_IN_S3_SETTINGS })) as any[];
    const spec = (name: string) => m.find((o) => o.kind === 'Deployment' && o.metadata.name === name).spec.template.spec.containers[0];
    spec('levee-gateway').readinessProbe.httpGet.path = '/nope';
    spec('levee-model').command = ['node', '-e', "require('fs').writeFileSync('/app/cache.json', '{}'); setInterval(() => {}, 1000)"];
    spec('levee-worker').env.push({ name: 'WORKER_CONCURRENCY', value: '0' });
    // One Docker volume per PersistentVolumeClaim a StatefulSet's pods make (Sentinel: three Redis).
    claims = m.filter((o) => o.kind === 'StatefulSet').reduce((n, o) => n + (o.spec.replicas ?? 1) * (o.spec.volumeClaimTemplates?.length ?? 0), 0);
    dir = mkdtempSync(join(tmpdir(), 'levee-rehearse-test-'));
    writeFileSync(join(dir, 'broken.k8s.yaml'), Yaml.stringify(...m));
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/rehearse.ts'), '--manifests', join(dir, 'broken.k8s.yaml'), '--timeout', String(READY_TIMEOUT_SECONDS)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('exit', (c) => ((code = c), resolve()));
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('exits 1, with the healthy workloads ready and the summary saying it failed', () => {
    expect(code).toBe(1);
    expect(out).toMatch(/ok\s+pod levee-queue-redis-0 ready in/);
    expect(out).toMatch(/ok\s+pod levee-media-r0 ready in/);
    expect(out).toMatch(/checks passed in .* — FAILED/);
  });

  test('a readiness probe that never passes: the gateway is not ready, with the probe and its answer', () => {
    expect(out).toContain(`FAIL pod levee-gateway-r0 (Deployment/levee-gateway): not ready after ${READY_TIMEOUT_SECONDS} s`);
    expect(out).toMatch(/container gateway: running, 0 restarts, exit code 0; readiness GET http:\/\/[\d.]+:8080\/nope → HTTP 404/);
  });

  test('an app that writes to its read-only root: the model crash-loops, and its log says why', () => {
    expect(out).toMatch(/FAIL pod levee-model-r0 \(Deployment\/levee-model\): container model is in a crash loop/);
    expect(out).toMatch(/\|\s+.*EROFS: read-only file system, open '\/app\/cache\.json'/);
  });

  test('a setting the app rejects: the worker crash-loops, and its log names the variable', () => {
    expect(out).toMatch(/FAIL pod levee-worker-r0 \(Deployment\/levee-worker\): container worker is in a crash loop \(\d+ restarts, last exit code 78\)/);
    expect(out).toMatch(/\|\s+.*WORKER_CONCURRENCY/);
  });

  test('removes every container, network and volume it created', async () => {
    expect(claims).toBeGreaterThan(0);
    expect(out).toContain(` containers, 1 network and ${claims} volume${claims === 1 ? '' : 's'}`);
    for (const kind of ['container', 'network', 'volume']) {
      const left = await docker([kind, 'ls', '-q', ...(kind === 'container' ? ['-a'] : []), '--filter', 'label=dev.levee.rehearsal']);
      expect({ kind, left: left.stdout.trim() }).toEqual({ kind, left: '' });
    }
  });
});
