/**
 * Redraws a benchmark chart:
 *   npx tsx bench/render-chart.ts [bench/results/latest.json] [BENCHMARKS.svg]     one run's chart
 *   npx tsx bench/render-chart.ts --history [history.json] [history.svg]          every run so far
 *     (bench/results/history.json → bench/results/history.svg by default)
 *   npx tsx bench/render-chart.ts --history --check                               exit 1 if history.svg
 *     is not the drawing of history.json (redraw and commit it with the data)
 */
import fs from 'node:fs';
import path from 'node:path';
import { BenchResults, renderBenchChartSvg } from './chart';
import { HISTORY_JSON, HISTORY_SVG, historyProblems, loadHistory, renderHistoryChartSvg } from './history';

const ROOT = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const history = args.includes('--history');
const check = args.includes('--check');
const [input, output] = args.filter((a) => !a.startsWith('--'));

async function main(): Promise<string> {
  if (!history) {
    const from = input ?? path.join(ROOT, 'bench', 'results', 'latest.json');
    const to = output ?? path.join(ROOT, 'BENCHMARKS.svg');
    fs.writeFileSync(to, await renderBenchChartSvg(JSON.parse(fs.readFileSync(from, 'utf8')) as BenchResults));
    return `bench chart: ${from} → ${to}`;
  }
  const from = input ?? HISTORY_JSON;
  const to = output ?? HISTORY_SVG;
  const runs = loadHistory(from);
  const problems = historyProblems(runs);
  if (problems.length > 0) throw new Error(`${from}:\n  ${problems.join('\n  ')}`);
  const svg = await renderHistoryChartSvg(runs);
  if (check) {
    const current = fs.existsSync(to) ? fs.readFileSync(to, 'utf8') : '';
    if (current !== svg) throw new Error(`${path.relative(ROOT, to)} is not the drawing of ${path.relative(ROOT, from)}: npx tsx bench/render-chart.ts --history`);
    return `history chart: ${to} is up to date`;
  }
  fs.writeFileSync(to, svg);
  return `history chart: ${from} → ${to} (${runs.length} runs)`;
}

main().then(
  (line) => process.stdout.write(`${line}\n`),
  (err: unknown) => {
    process.stderr.write(`bench chart failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
