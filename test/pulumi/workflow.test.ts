/**
 * The preview workflow: pulumi preview + up of stack preview-pr-<n> on pull requests,
 * destroy + stack rm when the pull request closes, through Pulumi's published action.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

interface Step { readonly uses?: string; readonly run?: string; readonly id?: string; readonly with?: Record<string, unknown> }
interface Job { readonly if?: string; readonly steps: readonly Step[] }
interface Workflow { readonly on: Record<string, { types?: string[] }>; readonly env: Record<string, string>; readonly jobs: Record<string, Job> }

const workflow = parse(readFileSync(join(__dirname, '..', '..', '.github', 'workflows', 'preview.yml'), 'utf8')) as Workflow;
const pulumiSteps = (job: Job) => job.steps.filter((s) => s.uses?.startsWith('pulumi/actions@'));

describe('.github/workflows/preview.yml', () => {
  test('runs on pull requests being opened, updated, reopened and closed', () => {
    expect(workflow.on.pull_request?.types).toEqual(['opened', 'synchronize', 'reopened', 'closed']);
  });

  test('targets the stack preview-pr-<number>, whose name gives namespace levee-pr-<number>', () => {
    expect(workflow.env.STACK).toMatch(/preview-pr-\$\{\{ github\.event\.pull_request\.number \}\}$/);
  });

  test('on an open pull request: pulumi preview, then pulumi up of the preview stack (created if missing)', () => {
    const job = workflow.jobs.deploy!;
    // The first job of the chain decides; the build and the deploy need it.
    expect(workflow.jobs.meta!.if).toContain("github.event.action != 'closed'");
    expect((job as { needs?: string[] }).needs).toContain('meta');
    expect(pulumiSteps(job).map((s) => [s.with?.command, s.with?.['stack-name'], s.with?.upsert])).toEqual([
      ['preview', '${{ env.STACK }}', true],
      ['up', '${{ env.STACK }}', true],
    ]);
    expect(job.steps.some((s) => s.run?.includes('cp Pulumi.preview.yaml "Pulumi.preview-pr-${PR_NUMBER}.yaml"'))).toBe(true);
    expect(job.steps.some((s) => s.run === 'npm ci')).toBe(true);
  });

  test('on a closed pull request: pulumi destroy, then pulumi stack rm', () => {
    const job = workflow.jobs.destroy!;
    expect(job.if).toContain("github.event.action == 'closed'");
    expect(pulumiSteps(job).map((s) => [s.with?.command, s.with?.['stack-name'], s.with?.remove])).toEqual([['destroy', '${{ env.STACK }}', true]]);
  });

  test("uses Pulumi's published action at a major version", () => {
    const all = Object.values(workflow.jobs).flatMap(pulumiSteps);
    expect(all.length).toBe(3);
    for (const s of all) expect(s.uses).toMatch(/^pulumi\/actions@v\d+$/);
  });
});
