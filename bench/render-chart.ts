/**
 * Redraws the benchmark chart from a results file:
 *   npx tsx bench/render-chart.ts [bench/results/latest.json] [BENCHMARKS.svg]
 */
import fs from 'node:fs';
import path from 'node:path';
import { BenchResults, renderBenchChartSvg } from './chart';

const ROOT = path.resolve(__dirname, '..');
const input = process.argv[2] ?? path.join(ROOT, 'bench', 'results', 'latest.json');
const output = process.argv[3] ?? path.join(ROOT, 'BENCHMARKS.svg');

renderBenchChartSvg(JSON.parse(fs.readFileSync(input, 'utf8')) as BenchResults).then(
  (svg) => {
    fs.writeFileSync(output, svg);
    process.stdout.write(`bench chart: ${input} → ${output}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`bench chart failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
