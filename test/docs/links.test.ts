/**
 * Every relative link in the repository's Markdown points at a file that exists, and every
 * `#anchor` into a Markdown file at one of its headings (GitHub's slugs): documents move, and
 * a newcomer following a dead link is lost.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

const ROOT = join(__dirname, '../..');
const FILES = execFileSync('git', ['ls-files', '*.md', '**/*.md'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f && !f.startsWith('imports/') && existsSync(join(ROOT, f)));

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(markdown: string): string[] {
  const out: string[] = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    if (fenced) continue;
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) out.push(m[1]!);
  }
  return out.filter((l) => !/^[a-z]+:/i.test(l));
}

test('the repository has Markdown to check', () => {
  expect(FILES).toEqual(expect.arrayContaining(['README.md', 'infra/README.md', 'docs/runbooks.md']));
});

test('the anchor rule matches GitHub on the cases the documents use', () => {
  expect([...anchorsOf('# Images and the deploy rehearsal\n## `npm run dev` — locally\n### Redis connections (every service, every role)\n## A\n## A')]).toEqual([
    'images-and-the-deploy-rehearsal',
    'npm-run-dev--locally',
    'redis-connections-every-service-every-role',
    'a',
    'a-1',
  ]);
});

describe.each(FILES)('%s', (file) => {
  test('every relative link resolves, anchors included', () => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const broken: string[] = [];
    for (const link of links(text)) {
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(ROOT, file) : normalize(join(ROOT, dirname(file), decodeURIComponent(path)));
      if (!existsSync(target)) {
        broken.push(`${link}: no such file`);
        continue;
      }
      if (anchor && target.endsWith('.md') && !anchorsOf(readFileSync(target, 'utf8')).has(anchor.toLowerCase())) broken.push(`${link}: no such heading`);
    }
    expect(broken).toEqual([]);
  });
});

/** Every `npm run <script>` a document names: a newcomer who types it gets the script, not "Missing script". */
const SCRIPTS = new Set(Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts));
export function npmRuns(markdown: string): string[] {
  return [...markdown.matchAll(/npm run ([a-z][a-z0-9:_-]*)/g)].map((m) => m[1]!);
}

test('the npm-run check reads the script names the documents use', () => {
  expect(npmRuns('`npm run synth` then npm run bench:memory, or `npm run rehearse -- --keep`')).toEqual(['synth', 'bench:memory', 'rehearse']);
  expect(SCRIPTS.has('synth')).toBe(true);
  expect(SCRIPTS.has('nonesuch')).toBe(false);
});

describe.each(FILES)('%s', (file) => {
  test('every `npm run <script>` it names exists in package.json', () => {
    const missing = npmRuns(readFileSync(join(ROOT, file), 'utf8')).filter((s) => !SCRIPTS.has(s));
    expect([...new Set(missing)]).toEqual([]);
  });
});
