/**
 * No import cycle in the code (type-only imports count: a cycle of types is still two modules
 * that cannot be understood apart). madge builds the graph from the TypeScript sources.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import madge from 'madge';

const ROOT = join(__dirname, '../..');
const cycles = async (paths: string[], baseDir?: string) =>
  (await madge(paths, { baseDir: baseDir ?? ROOT, fileExtensions: ['ts'], tsConfig: join(ROOT, 'tsconfig.json'), excludeRegExp: [/node_modules/, /\.d\.ts$/], detectiveOptions: { ts: { skipTypeImports: false } } })).circular();

jest.setTimeout(60_000);

test('services, infra, scripts and bench import one another without a cycle', async () => {
  expect(await cycles(['services', 'infra', 'scripts', 'bench'].map((d) => join(ROOT, d)))).toEqual([]);
});

test('the check finds a cycle of type imports', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'levee-cycle-'));
  try {
    writeFileSync(join(dir, 'a.ts'), "import type { B } from './b';\nexport type A = B | 1;\n");
    writeFileSync(join(dir, 'b.ts'), "import type { A } from './a';\nexport type B = A[];\n");
    expect(await cycles([dir], dir)).toEqual([['a.ts', 'b.ts']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
