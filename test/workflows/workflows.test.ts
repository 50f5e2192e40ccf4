/**
 * The GitHub workflows cannot run here, so what makes them work is checked from the files:
 * each validates against the GitHub Actions workflow schema (@action-validator/core, the
 * validator of the action-validator CLI), and the wiring that matters is asserted — the
 * preview deploys the images its own build pushed and smoke-tests after `pulumi up`; the
 * release builds all four images for both architectures with attestations.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateWorkflow } from '@action-validator/core';
import { parse } from 'yaml';

const ROOT = join(__dirname, '../..');
const DIR = join(ROOT, '.github/workflows');
const FILES = readdirSync(DIR).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));
const read = (file: string) => readFileSync(join(DIR, file), 'utf8');
const workflow = (file: string): any => parse(read(file));
const SERVICES = readdirSync(join(ROOT, 'services'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && readdirSync(join(ROOT, 'services', d.name)).includes('Dockerfile'))
  .map((d) => d.name)
  .sort();
const stepIndex = (steps: any[], pred: (s: any) => boolean) => steps.findIndex(pred);

describe.each(FILES)('.github/workflows/%s', (file) => {
  test('validates against the GitHub Actions workflow schema', () => {
    expect(validateWorkflow(read(file)).errors).toEqual([]);
  });
});

test('the validator rejects a workflow with a misspelt key (it can fail)', () => {
  const bad = 'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz:\n      - run: echo\n';
  expect(validateWorkflow(bad).errors.length).toBeGreaterThan(0);
});

test('the workflows are ci, preview and release', () => {
  expect(FILES.sort()).toEqual(['ci.yml', 'preview.yml', 'release.yml']);
  expect(SERVICES).toEqual(['gateway', 'media', 'model', 'worker']);
});

describe('preview.yml runs the pull request’s code', () => {
  const w = workflow('preview.yml');
  const { meta, images, deploy, destroy } = w.jobs;

  test('the image tag comes from the PR number and head SHA, and the build pushes every app image under it', () => {
    expect(meta.steps[0].run).toContain('tag=pr-${PR_NUMBER}-${HEAD_SHA::12}');
    expect(meta.steps[0].env.HEAD_SHA).toBe('${{ github.event.pull_request.head.sha }}');
    expect(images.needs).toBe('meta');
    expect([...images.strategy.matrix.service].sort()).toEqual(SERVICES);
    const build = images.steps.find((s: any) => String(s.uses).startsWith('docker/build-push-action@'));
    expect(build.with).toMatchObject({
      file: 'services/${{ matrix.service }}/Dockerfile',
      push: true,
      tags: '${{ needs.meta.outputs.registry }}/levee-${{ matrix.service }}:${{ needs.meta.outputs.tag }}',
    });
    expect(images.steps[0].with.ref).toBe('${{ github.event.pull_request.head.sha }}');
  });

  test('pulumi preview and up deploy with the tag and registry the build used, after the build', () => {
    expect(deploy.needs).toEqual(['meta', 'images']);
    for (const id of ['pulumi preview', 'pulumi up']) {
      const step = deploy.steps.find((s: any) => s.name === id);
      const config = parse(step.with['config-map']);
      expect(config).toEqual({
        'levee:imageTag': { value: '${{ needs.meta.outputs.tag }}', secret: false },
        'levee:imageRegistry': { value: '${{ needs.meta.outputs.registry }}', secret: false },
      });
    }
  });

  test('the smoke test runs after pulumi up, against its URLs, fails the job when it fails, and is reported either way', () => {
    const up = stepIndex(deploy.steps, (s) => s.id === 'up');
    const smoke = stepIndex(deploy.steps, (s) => s.id === 'smoke');
    const report = stepIndex(deploy.steps, (s) => s.name === 'Report the smoke result');
    expect(up).toBeGreaterThan(stepIndex(deploy.steps, (s) => s.name === 'pulumi preview'));
    expect(smoke).toBeGreaterThan(up);
    expect(report).toBeGreaterThan(smoke);
    const step = deploy.steps[smoke];
    expect(step.run).toMatch(/set -o pipefail[\s\S]*npm run --silent smoke -- --url "\$PREVIEW_URL" 2>&1 \| tee smoke\.txt/);
    expect(step.env.PREVIEW_URL).toBe('${{ steps.up.outputs.url }}');
    expect(step['continue-on-error']).toBeUndefined();
    expect(deploy.steps[report].if).toBe("always() && steps.up.outcome == 'success'");
    expect(deploy.steps[report].with.script).toContain('core.summary');
    expect(deploy.steps[report].with.script).toContain('createComment');
  });

  test('every stack output the workflow reads is one the Pulumi program exports', () => {
    const used = [...new Set([...read('preview.yml').matchAll(/steps\.up\.outputs\.(\w+)/g)].map((m) => m[1]!))];
    const exported = [...readFileSync(join(ROOT, 'infra/pulumi/index.ts'), 'utf8').matchAll(/^export const (\w+)/gm)].map((m) => m[1]!);
    expect(used.sort()).toEqual(['namespace', 'url']);
    for (const name of used) expect(exported).toContain(name);
  });

  test('closing the PR destroys the stack and deletes only the PR’s images', () => {
    expect(destroy.if).toContain("github.event.action == 'closed'");
    const steps = destroy.steps;
    const down = stepIndex(steps, (s) => s.with?.command === 'destroy');
    const del = stepIndex(steps, (s) => s.name === 'Delete the PR\'s images from GHCR');
    expect(steps[down].with.remove).toBe(true);
    expect(del).toBeGreaterThan(down);
    expect(steps[del].with.script).toContain('const prefix = `pr-${process.env.PR_NUMBER}-`');
    expect(steps[del].with.script).toContain('tags.every((t) => t.startsWith(prefix))');
    expect(destroy.permissions.packages).toBe('write');
  });
});

describe('release.yml publishes the images', () => {
  const w = workflow('release.yml');
  const { images, publish } = w.jobs;
  const build = images.steps.find((s: any) => String(s.uses).startsWith('docker/build-push-action@'));

  test('runs on version tags and builds all four images for amd64 and arm64', () => {
    expect(w.on.push.tags).toEqual(['v*.*.*']);
    expect([...images.strategy.matrix.service].sort()).toEqual(SERVICES);
    expect(build.with.file).toBe('services/${{ matrix.service }}/Dockerfile');
    expect(build.with.platforms.split(',').sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(build.with.push).toBe(true);
    expect(images.steps.some((s: any) => String(s.uses).startsWith('docker/setup-qemu-action@'))).toBe(true);
  });

  test('attaches SBOM and SLSA provenance attestations (BuildKit) to each image, with no more permission than pushing needs', () => {
    expect(build.with.sbom).toBe(true);
    expect(build.with.provenance).toBe('mode=max');
    expect(images.permissions).toEqual({ contents: 'read', packages: 'write' });
  });

  test('publishes the digests in the form LEVEE_IMAGE_DIGESTS takes', () => {
    expect(publish.needs).toBe('images');
    const notes = publish.steps.find((s: any) => s.name === 'Release notes with the digests').run;
    expect(notes).toContain('echo "LEVEE_IMAGE_DIGESTS=${digests}" > digests.env');
    const record = images.steps.find((s: any) => s.name === 'Record the digest').run;
    expect(record).toBe('echo "levee-${{ matrix.service }}=${{ steps.build.outputs.digest }}" > "digest-${{ matrix.service }}.txt"');
  });
});

test('ci.yml runs .ci/run, the same entry point as the CI of this repository', () => {
  const w = workflow('ci.yml');
  expect(w.jobs.test.steps.map((s: any) => s.run).filter(Boolean)).toContain('.ci/run');
});

test("ci.yml tests on the images' Node line and on the oldest the package supports", () => {
  const w = workflow('ci.yml');
  const dockerfile = readFileSync(join(ROOT, 'services/gateway/Dockerfile'), 'utf8');
  const imageMajor = Number(/FROM node:(\d+)\./.exec(dockerfile)![1]);
  const engineMajor = Number(/>=\s*(\d+)/.exec(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines.node)![1]);
  expect([...w.jobs.test.strategy.matrix.node].sort()).toEqual([engineMajor, imageMajor].sort());
  const setup = w.jobs.test.steps.find((s: any) => String(s.uses).startsWith('actions/setup-node'));
  expect(setup.with['node-version']).toBe('${{ matrix.node }}');
});
