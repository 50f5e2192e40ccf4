/**
 * The benchmark runs so far, as data: bench/results/history.json holds one record per run
 * (the figures its section in docs/benchmarks.md or bench/results/HISTORY.md states, nothing
 * more), and `historyChartSpec` draws the headline figures per run against their targets
 * (pure; rendered to SVG by `renderHistoryChartSvg`). Redraw bench/results/history.svg with
 *   npx tsx bench/render-chart.ts --history          (--check: fail if the SVG is stale)
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { renderSpecSvg } from './chart';

export const HISTORY_JSON = path.join(__dirname, 'results', 'history.json');
export const HISTORY_SVG = path.join(__dirname, 'results', 'history.svg');

/** A figure as a section gives it: one value, or `[low, high]` where it gives a range (over rounds, rows or runs). */
export type Figure = number | [number, number];

/**
 * Every figure a record may carry, with its unit. Shares and ratios are fractions (0.91, not
 * 91%); "× ceiling p99" is a multiple of the ceiling's p99 in the same run.
 */
export const FIGURES = {
  ceilingRps: 'ceiling (bare Fastify route), req/s',
  ceilingServerCpuUs: "ceiling, server CPU µs per request",
  ceilingP99Ms: 'ceiling, p99 ms',
  cacheHitRps: 'GET /api/styles cache hit, rate-limited, req/s',
  cacheHitShare: 'cache hit, share of the ceiling',
  cacheHitVsPeer: 'cache hit against the hand-written peer GET, ×',
  cacheHitP99XCeiling: 'cache hit p99, × ceiling p99',
  cacheHitP99Ms: 'cache hit p99, ms',
  peerGetRps: 'peer GET, req/s',
  peerGetShare: 'peer GET, share of the ceiling',
  flood429Rps: '429 flood from one client, req/s',
  flood429Share: '429 flood, share of the ceiling',
  flood429P99XCeiling: '429 flood p99, × ceiling p99',
  flood429P99Ms: '429 flood p99, ms',
  clients50kRps: 'GET /api/styles from 50,000 clients under their limit, req/s',
  clients50kShare: '50,000 clients, share of the ceiling',
  postRps: 'POST /api/images, req/s',
  postShare: 'POST, share of the ceiling',
  postVsFloor: 'POST against the floor (bare POST + queue.add), ×',
  postVsPeer: 'POST against the hand-written peer POST, ×',
  postCpuVsFloor: "POST server CPU per request against the floor's, ×",
  postCpuVsPeer: "POST server CPU per request against the peer's, ×",
  postP99XCeiling: 'POST p99, × ceiling p99',
  postP99Ms: 'POST p99, ms',
  postServerCpuUs: 'POST, gateway CPU µs per request',
  postRedisCpuUs: 'POST, Redis CPU µs per request',
  postClientCpuUs: 'POST, load generator CPU µs per request',
  postBoundShareMax: 'computed POST bound, at most this share of the ceiling',
  aa: 'A/A: the POST on a second identical gateway against the first, ×',
  floorRps: 'floor, req/s',
  floorShare: 'floor, share of the ceiling',
  floorP99XCeiling: 'floor p99, × ceiling p99',
  floorServerCpuUs: 'floor, server CPU µs per request',
  floorRedisCpuUs: 'floor, Redis CPU µs per request',
  peerPostRps: 'peer POST, req/s',
  peerPostP99XCeiling: 'peer POST p99, × ceiling p99',
  peerServerCpuUs: 'peer POST, server CPU µs per request',
  peerRedisCpuUs: 'peer POST, Redis CPU µs per request',
  waitRps: 'POST with WAIT (1 replica), req/s',
  waitVsPost: 'POST with WAIT against the unconfirmed POST, ×',
  waitServerCpuUs: 'POST with WAIT, gateway CPU µs per request',
  postOneRedisVsTwo: 'POST with queue and cache on one Redis against the POST on two, ×',
  postOneRedisVsPeerOneRedis: 'POST on one Redis against the peer POST on one Redis, ×',
  postVsPeer400: 'POST against the peer POST at 400 connections, ×',
  postCpuVsPeer400: "POST server CPU per request against the peer's at 400 connections, ×",
  busyPost: 'main thread busy during the POST, share of the time',
  busyPostOneRedis: 'main thread busy during the POST on one Redis',
  busyPeer: 'main thread busy during the peer POST',
  busyFloor: 'main thread busy during the floor',
  steal: "share of the machine's CPU the hypervisor took, per row",
  originLoadsLevee: 'origin loads per hot-key expiry, Levee (10,000 concurrent, 2 replicas)',
  originLoadsNaive: 'origin loads per hot-key expiry, naive cache-aside',
  breakerP50Ms: 'breaker open, fast-fail p50 ms',
  breakerP99Ms: 'breaker open, fast-fail p99 ms',
  breakerModelCalls: 'breaker open, model calls',
  worker256: 'worker jobs/s against rendering directly, 256²',
  worker512: 'worker jobs/s against rendering directly, 512²',
  workerVsRenderApi512: 'worker against direct calls to the model API /v1/render, 512²',
  workerVsGenerationsApi512: 'worker against direct calls to /v1/images/generations, 512²',
  workerCpuMsPerJobRenderApi: 'worker CPU ms per job, /v1/render, 512²',
  workerCpuMsPerJobGenerationsApi: 'worker CPU ms per job, /v1/images/generations, 512²',
  queueRedisKiBPerJobRedis: 'queue Redis per finished 512² job, images in Redis, KiB',
  queueRedisKiBPerJobS3: 'queue Redis per finished 512² job, images in object storage, KiB',
  jobsPerGiBRedis: 'finished 512² jobs per GiB of queue Redis, images in Redis',
  jobsPerGiBS3: 'finished 512² jobs per GiB of queue Redis, images in object storage',
} as const;

export type FigureName = keyof typeof FIGURES;

/** One run, as bench/results/history.json holds it. */
export interface HistoryRun {
  /** YYYY-MM-DD. */
  date: string;
  /** The run's name in its section ("S", "run 1"; a machine's name where the section gives ranges over its runs). */
  run: string;
  /** The heading of the section it is in (docs/benchmarks.md for the latest session, bench/results/HISTORY.md before). */
  session: string;
  machine: string;
  /** How the section tells this host from the others of its kind. */
  host?: string;
  /** Node's major version the servers ran on. */
  node: string;
  /** wrk or autocannon (gateway runs only). */
  load?: 'wrk' | 'autocannon';
  /** What was run: `npm run bench`, `bench/gateway.ts`, with which knobs. */
  command: string;
  /** Rounds per gateway scenario (medians over them). */
  rounds?: number;
  /** Levee's POST on one Redis for everything (before run M) or on a queue and a cache Redis, as deployed. */
  redis?: 'one' | 'two';
  /** The git object holding the run's whole BENCHMARKS.md (`git show <table>`). */
  table?: string;
  figures: Partial<Record<FigureName, Figure>>;
  /** What the section concluded from the run, in short. */
  notes: string;
}

export function loadHistory(file = HISTORY_JSON): HistoryRun[] {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as HistoryRun[];
}

/** Whatever is wrong with a history: records without a date, machine or figure, figures of no known name, dates out of order. */
export function historyProblems(history: readonly HistoryRun[]): string[] {
  const problems: string[] = [];
  const names = new Set(Object.keys(FIGURES));
  const seen = new Set<string>();
  history.forEach((r, i) => {
    const at = `#${i} (${r.date} ${r.run})`;
    if (!/^\d{4}-\d{2}-\d{2}$/.test(r.date ?? '')) problems.push(`${at}: date is not YYYY-MM-DD`);
    for (const field of ['run', 'session', 'machine', 'node', 'command', 'notes'] as const) {
      if (typeof r[field] !== 'string' || r[field].trim() === '') problems.push(`${at}: no ${field}`);
    }
    const key = `${r.date} ${r.run}`;
    if (seen.has(key)) problems.push(`${at}: a second record of ${key}`);
    seen.add(key);
    const figures = Object.entries(r.figures ?? {});
    if (figures.length === 0) problems.push(`${at}: no figure`);
    for (const [name, value] of figures) {
      if (!names.has(name)) problems.push(`${at}: unknown figure ${name}`);
      const ok = typeof value === 'number' ? Number.isFinite(value) : Array.isArray(value) && value.length === 2 && value.every(Number.isFinite) && value[0] <= value[1];
      if (!ok) problems.push(`${at}: ${name} is neither a number nor a [low, high] range`);
    }
    if (i > 0 && history[i - 1]!.date > r.date) problems.push(`${at}: before the record above it (${history[i - 1]!.date})`);
  });
  return problems;
}

/** The x-axis name of a run: its date (month-day) and name, unique in a history. */
export function runLabel(r: HistoryRun): string {
  return `${r.date.slice(5)} ${r.run}`;
}

/** One plotted figure: a series of a panel, the figure it reads, and the target drawn with it. */
interface Series {
  figure: FigureName;
  name: string;
}
interface Panel {
  title: string;
  axis: string;
  series: Series[];
  targets: { name: string; value: number }[];
}

/** The panels of the history chart: the targets of docs/benchmarks.md that every session measured. */
export const HISTORY_PANELS: Panel[] = [
  {
    title: 'POST /api/images against the floor and the hand-written peer, and two identical gateways (A/A)',
    axis: '× the other row, same run',
    series: [
      { figure: 'postVsFloor', name: 'POST / floor' },
      { figure: 'postVsPeer', name: 'POST / peer POST' },
      { figure: 'aa', name: 'A/A (noise)' },
    ],
    targets: [
      { name: 'target: ≥ 0.90 × the floor', value: 0.9 },
      { name: 'target: ≥ 1.2 × the peer', value: 1.2 },
    ],
  },
  {
    title: 'Share of the ceiling (a bare Fastify route), same round',
    axis: 'share of the ceiling',
    series: [
      { figure: 'cacheHitShare', name: 'cache hit, rate-limited' },
      { figure: 'flood429Share', name: '429 flood' },
      { figure: 'postShare', name: 'POST' },
    ],
    targets: [
      { name: 'target: cache hit ≥ 0.75', value: 0.75 },
      { name: 'target: 429 flood ≥ 0.90', value: 0.9 },
    ],
  },
  {
    title: 'Worker jobs/s against rendering directly',
    axis: 'share of the direct rate',
    series: [
      { figure: 'worker256', name: '256²' },
      { figure: 'worker512', name: '512²' },
    ],
    targets: [{ name: 'target: ≥ 0.85', value: 0.85 }],
  },
];

/** The marks of one panel: a point per run with the figure, or a bar where the section gave a range. */
export function panelValues(history: readonly HistoryRun[], panel: Panel): { run: string; series: string; low: number; high: number; range: boolean }[] {
  const out: { run: string; series: string; low: number; high: number; range: boolean }[] = [];
  for (const r of history) {
    for (const s of panel.series) {
      const v = r.figures[s.figure];
      if (v === undefined) continue;
      const [low, high] = typeof v === 'number' ? [v, v] : v;
      out.push({ run: runLabel(r), series: s.name, low, high, range: typeof v !== 'number' });
    }
  }
  return out;
}

/** The Vega-Lite spec of bench/results/history.svg: one panel per headline target, the runs in the history's order. */
export function historyChartSpec(history: readonly HistoryRun[]): TopLevelSpec {
  if (history.length === 0) throw new Error('the history holds no runs');
  const order = history.map(runLabel);
  const first = history[0]!.date;
  const last = history[history.length - 1]!.date;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Levee benchmarks, run by run',
      subtitle: [`${history.length} runs, ${first} to ${last}, on 2-core VMs of several hosts (bench/results/history.json)`, 'a bar is a range the section gave over rounds or runs; compare runs of one host, not hosts'],
    },
    config: { font: 'sans-serif', view: { stroke: null } },
    resolve: { scale: { color: 'independent', xOffset: 'independent' }, legend: { color: 'independent' } },
    vconcat: HISTORY_PANELS.map((panel) => {
      const values = panelValues(history, panel);
      const x = { field: 'run', type: 'ordinal', sort: order, title: null, axis: { labelAngle: -60 } } as const;
      const names = panel.series.map((s) => s.name);
      // the series of one run side by side, so that ranges and points do not hide each other
      const xOffset = { field: 'series', type: 'nominal', sort: names, scale: { domain: names } } as const;
      const color = { field: 'series', type: 'nominal', title: null, scale: { domain: names }, legend: { labelLimit: 300 } } as const;
      return {
        title: panel.title,
        width: 720,
        height: 180,
        layer: [
          {
            data: { values: values.filter((v) => !v.range) },
            mark: { type: 'point', filled: true, size: 50, tooltip: true },
            encoding: { x, xOffset, y: { field: 'low', type: 'quantitative', title: panel.axis, scale: { zero: false } }, color },
          },
          {
            data: { values: values.filter((v) => v.range) },
            mark: { type: 'rule', strokeWidth: 4, opacity: 0.6, tooltip: true },
            encoding: { x, xOffset, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' }, color },
          },
          {
            data: { values: panel.targets },
            mark: { type: 'rule', color: 'red', strokeDash: [4, 3] },
            encoding: { y: { field: 'value', type: 'quantitative' } },
          },
          {
            data: { values: panel.targets },
            mark: { type: 'text', color: 'red', align: 'right', dy: -6, x: 'width' },
            encoding: { y: { field: 'value', type: 'quantitative' }, text: { field: 'name', type: 'nominal' } },
          },
        ],
      };
    }),
  } as TopLevelSpec;
}

export function renderHistoryChartSvg(history: readonly HistoryRun[]): Promise<string> {
  return renderSpecSvg(historyChartSpec(history));
}
