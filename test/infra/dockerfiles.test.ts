/**
 * What makes the Dockerfiles build and run, checked from the files (`npm run images` and
 * `npm run rehearse` build and run them where a Docker engine answers): one pinned Node 24
 * base, stages shared line for line by all four (one dependency install for four builds), a
 * runtime flattened from the base without its package managers, the manifests' numeric user
 * and ports, production dependencies only, and an entry point whose whole import graph is
 * in the runtime and imports only production dependencies.
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { PORTS, RUN_AS_ID } from '../../infra';

const ROOT = join(__dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
/** The images run the Node 24 LTS line (the tests and CI may run an older supported Node). */
const IMAGE_NODE_MAJOR = '24';

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

const dockerfile = (name: string) => readFileSync(join(ROOT, 'services', name, 'Dockerfile'), 'utf8');
const instructions = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
/** Everything before the runtime's service-specific lines (its COPY of the compiled service). */
const sharedPart = (text: string) => {
  const lines = instructions(text);
  return lines.slice(0, lines.findIndex((l) => l.startsWith('COPY --from=build')));
};

describe('the four Dockerfiles', () => {
  test('share every stage and the first steps of the runtime line for line, so Docker builds the dependencies once', () => {
    const [first, ...rest] = SERVICES.map((s) => sharedPart(dockerfile(s.name)));
    expect(first!.length).toBeGreaterThan(10);
    for (const other of rest) expect(other).toEqual(first);
  });
});

describe.each(SERVICES)('services/$name/Dockerfile', ({ name, port }) => {
  const text = dockerfile(name);
  const lines = instructions(text);
  const froms = lines.filter((l) => l.startsWith('FROM '));
  const runtimeFrom = froms.at(-1)!;
  const runtime = lines.slice(lines.lastIndexOf(runtimeFrom));
  const stage = (alias: string) => {
    const at = lines.findIndex((l) => l.startsWith('FROM ') && l.endsWith(` AS ${alias}`));
    const next = lines.findIndex((l, i) => i > at && l.startsWith('FROM '));
    return lines.slice(at, next === -1 ? undefined : next);
  };

  it(`builds on one base pinned to an exact Node ${IMAGE_NODE_MAJOR} bookworm-slim, and its runtime is that base flattened without npm, npx, corepack or yarn`, () => {
    const bases = new Set(froms.map((l) => l.split(/\s+/)[1]!).filter((b) => b.startsWith('node:')));
    expect(bases.size).toBe(1);
    const base = [...bases][0]!;
    expect(base).toMatch(new RegExp(`^node:${IMAGE_NODE_MAJOR}\\.\\d+\\.\\d+-bookworm-slim$`));
    expect(runtimeFrom).toBe('FROM scratch AS runtime');
    expect(runtime[1]).toBe('COPY --from=node-only / /');
    const nodeOnly = stage('node-only').join(' ');
    expect(nodeOnly).toContain(`FROM ${base} AS node-only`);
    for (const path of ['/usr/local/lib/node_modules', '/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/bin/corepack', '/usr/local/bin/yarn', '/opt/yarn-*']) {
      expect(nodeOnly).toContain(path);
    }
    expect(runtime.filter((l) => l.startsWith('RUN '))).toEqual([]); // nothing runs in the runtime stage, npm least of all
  });

  it(`runs as the manifests' numeric user (${RUN_AS_ID}:${RUN_AS_ID}), exposes port ${port}, with production dependencies only`, () => {
    expect(runtime.filter((l) => l.startsWith('USER '))).toEqual([`USER ${RUN_AS_ID}:${RUN_AS_ID}`]);
    expect(runtime).toContain(`EXPOSE ${port}`);
    expect(stage('production-deps').join(' ')).toContain('npm prune --omit=dev');
    expect(runtime.filter((l) => l.includes('node_modules'))).toEqual(['COPY --from=production-deps /app/node_modules ./node_modules']);
    expect(text).not.toMatch(/\btsx\b|ts-node/); // compiled JavaScript at run time
  });

  it('starts the compiled server, whose whole import graph was compiled and copied into the runtime, importing production dependencies only', () => {
    const cmd = runtime.find((l) => l.startsWith('CMD '));
    expect(cmd).toBe(`CMD ["node", "build/services/${name}/src/server.js"]`);
    // The build stage compiles what it copied from the context; the runtime gets the compiled folders it copies.
    const compiled = stage('build').filter((l) => /^COPY services\b/.test(l)).map((l) => l.split(/\s+/)[1]!);
    const shipped = runtime.filter((l) => l.startsWith('COPY --from=build /app/build/')).map((l) => l.split(/\s+/)[2]!.replace('/app/build/', ''));
    const { files, packages } = importGraph(join(ROOT, 'services', name, 'src', 'server.ts'));
    for (const file of files) {
      const rel = relative(ROOT, file);
      expect([rel, compiled.some((dir) => rel.startsWith(`${dir}/`))]).toEqual([rel, true]);
      expect([rel, shipped.some((dir) => rel.startsWith(`${dir}/`))]).toEqual([rel, true]);
    }
    for (const p of packages) expect([p, p in pkg.dependencies]).toEqual([p, true]);
    expect(packages.size).toBeGreaterThan(0);
  });
});
