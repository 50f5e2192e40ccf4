/**
 * The Dockerfiles cannot be built here (no Docker engine), so what makes them build and run is
 * checked from the files: pinned multi-stage bases, the manifests' numeric user and ports, a
 * runtime with production dependencies only, and an entry point whose whole import graph was
 * copied into the build stage and needs no devDependency at run time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { PORTS, RUN_AS_ID } from '../../infra';

const ROOT = join(__dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; engines: { node: string } };
/** The Node major the project declares (package.json `engines`, e.g. ">=20.6.0" → 20). */
const NODE_MAJOR = /(\d+)/.exec(pkg.engines.node)![1];

const SERVICES = [
  { name: 'gateway', port: PORTS.gateway },
  { name: 'media', port: PORTS.media },
  { name: 'model', port: PORTS.model },
  { name: 'worker', port: PORTS.workerMetrics },
] as const;

/** Every file reached from `entry` by relative imports, and the packages they import. */
function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const source = readFileSync(file, 'utf8');
    // import … from '…', export … from '…', import '…', import('…'), require('…'); type-only
    // imports are erased.
    for (const m of source.matchAll(/(?:^|\n)\s*(import|export)\s+(type\s+)?[^'";]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|import\('([^']+)'\)|require\('([^']+)'\)/g)) {
      if (m[2]) continue;
      const spec = m[3] ?? m[4] ?? m[5] ?? m[6]!;
      if (spec.startsWith('.')) {
        const base = resolve(dirname(file), spec);
        const target = [`${base}.ts`, join(base, 'index.ts'), base].find((p) => existsSync(p) && p.endsWith('.ts'));
        if (!target) throw new Error(`${relative(ROOT, file)} imports ${spec}, which does not exist`);
        visit(target);
      } else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
  };
  visit(entry);
  return { files, packages };
}

describe.each(SERVICES)('services/$name/Dockerfile', ({ name, port }) => {
  const text = readFileSync(join(ROOT, 'services', name, 'Dockerfile'), 'utf8');
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const froms = lines.filter((l) => l.startsWith('FROM '));
  const runtime = lines.slice(lines.lastIndexOf(froms.at(-1)!));

  it('is multi-stage, every stage on the same base pinned to an exact version of the Node major package.json declares', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const bases = froms.map((l) => l.split(/\s+/)[1]!);
    expect(new Set(bases).size).toBe(1);
    expect(bases[0]).toMatch(/^node:\d+\.\d+\.\d+-[a-z0-9-]+(@sha256:[0-9a-f]{64})?$/);
    expect(bases[0]!.split(/[:.]/)[1]).toBe(NODE_MAJOR);
  });

  it(`runs as the manifests' numeric user (${RUN_AS_ID}:${RUN_AS_ID}), exposes port ${port}, with production dependencies only`, () => {
    expect(runtime.filter((l) => l.startsWith('USER '))).toEqual([`USER ${RUN_AS_ID}:${RUN_AS_ID}`]);
    expect(runtime).toContain(`EXPOSE ${port}`);
    const installs = runtime.filter((l) => l.startsWith('RUN ') && l.includes('npm '));
    expect(installs.length).toBe(1);
    expect(installs[0]).toContain('npm ci --omit=dev');
    expect(text).not.toMatch(/\btsx\b|ts-node/); // compiled JavaScript at run time
  });

  it('starts the compiled server, whose imports were all copied into the build stage and are production dependencies', () => {
    const cmd = runtime.find((l) => l.startsWith('CMD '));
    expect(cmd).toBe(`CMD ["node", "build/services/${name}/src/server.js"]`);
    const copied = lines.filter((l) => /^COPY services\//.test(l)).map((l) => l.split(/\s+/)[1]!);
    const { files, packages } = importGraph(join(ROOT, 'services', name, 'src', 'server.ts'));
    for (const file of files) {
      const rel = relative(ROOT, file);
      expect([rel, copied.some((dir) => rel.startsWith(`${dir}/`))]).toEqual([rel, true]);
    }
    for (const p of packages) expect([p, p in pkg.dependencies]).toEqual([p, true]);
    expect(packages.size).toBeGreaterThan(0);
  });
});
