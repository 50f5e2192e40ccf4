/**
 * A picture of one `npm run bench` run: a Vega-Lite spec built from bench/results/latest.json
 * (pure, see `benchChartSpec`), rendered to SVG in Node by Vega itself (no browser, no canvas:
 * `renderBenchChartSvg`). `npm run bench` writes it to BENCHMARKS.svg next to BENCHMARKS.md;
 * `npx tsx bench/render-chart.ts [results.json] [out.svg]` redraws it from a results file.
 * The chart of every run so far (bench/results/history.svg) is bench/history.ts's.
 */
import type { TopLevelSpec } from 'vega-lite';

/** What bench/run.ts writes to bench/results/latest.json (the parts the chart reads). */
export interface BenchResults {
  date: string;
  machine: string;
  rows: { scenario: string; figure: string; rps?: number; p50?: number; p99?: number; loads?: number; target?: string }[];
  raw: { gateway?: { scenario: string; rps: number; p50: number; p99: number; target?: string; connections?: number }[]; [k: string]: unknown };
}

/** The p99 target of the gateway scenarios: at most this many times the ceiling's p99 in the same run. */
export const P99_TARGET_TIMES_CEILING = 3;

/** The p99 target in ms: 3 × the ceiling's p99 of this run (the first gateway row is the ceiling). */
export function p99TargetMs(results: BenchResults): number {
  const ceiling = (results.raw.gateway ?? []).find((g) => kindOf(g.scenario) === 'ceiling');
  if (!ceiling) throw new Error('the results hold no ceiling row');
  return P99_TARGET_TIMES_CEILING * ceiling.p99;
}

export type Kind = 'ceiling' | 'Levee' | 'peer (reference)';

/** Which of the three a gateway scenario is: the bare route, a reference that does less than Levee, or Levee. */
export function kindOf(scenario: string): Kind {
  if (/\(ceiling\)/.test(scenario)) return 'ceiling';
  if (/^(reference|peer|floor):/.test(scenario)) return 'peer (reference)';
  return 'Levee';
}

/** Origin loads per hot-key expiry, naive cache-aside vs Levee (the `loads` field, or the figure's leading number in older results). */
export function originLoads(results: BenchResults): { cache: string; loads: number }[] {
  const out: { cache: string; loads: number }[] = [];
  for (const row of results.rows) {
    const which = row.scenario.startsWith('naive cache-aside') ? 'naive cache-aside' : row.scenario.startsWith('Levee cache') ? 'Levee' : undefined;
    if (!which) continue;
    const loads = row.loads ?? Number(/^(\d+) loads?\b/.exec(row.figure)?.[1]);
    if (Number.isFinite(loads)) out.push({ cache: which, loads });
  }
  return out;
}

const COLORS: Record<Kind, string> = { ceiling: '#7f7f7f', Levee: '#1f77b4', 'peer (reference)': '#ff7f0e' };

/** The Vega-Lite spec of the chart: throughput and p99 per gateway scenario, then origin loads per expiry. */
export function benchChartSpec(results: BenchResults): TopLevelSpec {
  const gateway = (results.raw.gateway ?? []).map((g) => ({
    scenario: g.scenario.length > 70 ? `${g.scenario.slice(0, 68)}…` : g.scenario,
    kind: kindOf(g.scenario),
    rps: Math.round(g.rps),
    p99: g.p99,
    connections: g.connections,
  }));
  if (gateway.length === 0) throw new Error('the results hold no gateway scenarios (raw.gateway)');
  const order = gateway.map((g) => g.scenario);
  const ceilingConnections = gateway.find((g) => g.kind === 'ceiling')?.connections;
  const color = { field: 'kind', type: 'nominal', title: null, scale: { domain: Object.keys(COLORS), range: Object.values(COLORS) } } as const;
  const y = { field: 'scenario', type: 'nominal', sort: order, title: null, axis: { labelLimit: 600 } } as const;
  const loads = originLoads(results);
  const p99Target = p99TargetMs(results);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Levee benchmark', subtitle: [`${results.date} — ${results.machine}`, 'figures from one run on the machine named; rerun on yours'] },
    config: { font: 'sans-serif', view: { stroke: null } },
    resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    vconcat: [
      {
        title: 'Throughput per scenario (req/s): Levee against the ceiling and the peers',
        width: 360,
        data: { values: gateway },
        mark: { type: 'bar', tooltip: true },
        encoding: { y, x: { field: 'rps', type: 'quantitative', title: 'requests per second' }, color },
      },
      {
        title: `p99 latency per scenario (ms), 100 connections; the rule is the target, ${P99_TARGET_TIMES_CEILING}× the ceiling's p99 (${p99Target.toFixed(1)} ms)`,
        width: 360,
        // only the rows at the ceiling's connection count: the target is a multiple of its p99
        data: { values: gateway.filter((g) => g.connections === undefined || g.connections === ceilingConnections) },
        layer: [
          { mark: { type: 'bar', tooltip: true }, encoding: { y, x: { field: 'p99', type: 'quantitative', title: 'p99 (ms)' }, color } },
          { data: { values: [{ target: p99Target }] }, mark: { type: 'rule', color: 'red', strokeDash: [4, 3] }, encoding: { x: { field: 'target', type: 'quantitative' } } },
        ],
      },
      {
        title: 'Origin loads per hot-key expiry under 10,000 concurrent requests (2 replicas)',
        width: 360,
        data: { values: loads },
        layer: [
          {
            mark: { type: 'bar', tooltip: true },
            encoding: {
              y: { field: 'cache', type: 'nominal', title: null, sort: ['naive cache-aside', 'Levee'] },
              x: { field: 'loads', type: 'quantitative', title: 'origin loads' },
              color: { field: 'cache', type: 'nominal', legend: null, scale: { domain: ['naive cache-aside', 'Levee'], range: [COLORS['peer (reference)'], COLORS.Levee] } },
            },
          },
          {
            mark: { type: 'text', align: 'left', dx: 4 },
            encoding: { y: { field: 'cache', type: 'nominal', sort: ['naive cache-aside', 'Levee'] }, x: { field: 'loads', type: 'quantitative' }, text: { field: 'loads', type: 'quantitative' } },
          },
        ],
      },
    ],
  };
}

/** Renders the chart to SVG with Vega. */
export function renderBenchChartSvg(results: BenchResults): Promise<string> {
  return renderSpecSvg(benchChartSpec(results));
}

/** Renders a Vega-Lite spec to SVG with Vega (ESM-only libraries, loaded on demand). */
export async function renderSpecSvg(vegaLiteSpec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const { spec } = vegaLite.compile(vegaLiteSpec);
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
