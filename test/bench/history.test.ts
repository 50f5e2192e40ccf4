/**
 * The benchmark history: bench/results/history.json (one record per run), its chart
 * (bench/history.ts, drawn to bench/results/history.svg) and docs/benchmarks.md, which keeps the
 * method and the latest results in at most 200 lines and sums up the history in a table that
 * must agree with the data.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FigureName, HISTORY_PANELS, HistoryRun, historyChartSpec, historyProblems, loadHistory, runLabel } from '../../bench/history';

const ROOT = join(__dirname, '../..');
const history = loadHistory();
const DOC = readFileSync(join(ROOT, 'docs/benchmarks.md'), 'utf8');
const NARRATIVE = readFileSync(join(ROOT, 'bench/results/HISTORY.md'), 'utf8');

/** The marks of every series in a spec: [panel title, series name] → marks (points and range bars). */
function marksBySeries(spec: any): Map<string, any[]> {
  const out = new Map<string, any[]>();
  for (const panel of spec.vconcat) {
    for (const layer of panel.layer.slice(0, 2)) {
      for (const v of layer.data.values) out.set(`${panel.title}|${v.series}`, [...(out.get(`${panel.title}|${v.series}`) ?? []), v]);
    }
  }
  return out;
}

const withFigure = (runs: readonly HistoryRun[], figure: FigureName) => runs.filter((r) => r.figures[figure] !== undefined);

describe('bench/results/history.json', () => {
  test('parses, and every record has a date, a machine, at least one figure of a known name, in date order', () => {
    expect(history.length).toBeGreaterThanOrEqual(20);
    for (const r of history) {
      expect(r.date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(r.machine.trim()).not.toBe('');
      expect(Object.keys(r.figures).length).toBeGreaterThan(0);
    }
    expect(history.map((r) => r.date)).toEqual([...history.map((r) => r.date)].sort());
    expect(historyProblems(history)).toEqual([]);
  });

  test('the check finds what is wrong with a record', () => {
    const [a, b] = history as [HistoryRun, HistoryRun];
    expect(historyProblems([b, { ...a, date: '2099-01-01' }, a])).toEqual([expect.stringMatching(/^#2 .*before the record above it/)]);
    expect(historyProblems([{ ...a, machine: ' ' }])).toEqual([expect.stringContaining('no machine')]);
    expect(historyProblems([{ ...a, figures: {} }])).toEqual([expect.stringContaining('no figure')]);
    expect(historyProblems([{ ...a, figures: { postVsPeer: 1.1, nonesuch: 2 } as any }])).toEqual([expect.stringContaining('unknown figure nonesuch')]);
    expect(historyProblems([{ ...a, figures: { postVsPeer: [1.3, 1.1] } }])).toEqual([expect.stringContaining('postVsPeer is neither')]);
    expect(historyProblems([a, a])).toEqual([expect.stringContaining('a second record')]);
  });

  test("every record's session is a heading of HISTORY.md or of docs/benchmarks.md (its latest results)", () => {
    const headings = new Set([...`${NARRATIVE}\n${DOC}`.matchAll(/^## (.*)$/gm)].map((m) => m[1]));
    expect(history.map((r) => r.session).filter((s) => !headings.has(s))).toEqual([]);
  });

  test('the earlier sessions are in HISTORY.md, the latest in docs/benchmarks.md, and no section is in both', () => {
    const latest = history[history.length - 1]!.session;
    const earlier = [...new Set(history.map((r) => r.session))].filter((s) => s !== latest);
    for (const s of earlier) {
      expect(NARRATIVE).toContain(`\n## ${s}\n`);
      expect(DOC).not.toContain(`## ${s}`);
    }
    expect(DOC).toContain(`\n## ${latest}\n`);
    expect(NARRATIVE).not.toContain(`## ${latest}`);
  });
});

describe('historyChartSpec', () => {
  const spec = historyChartSpec(history) as any;
  const marks = marksBySeries(spec);

  test('one mark per run that has the plotted figure, in every series of every panel', () => {
    expect(spec.vconcat).toHaveLength(HISTORY_PANELS.length);
    for (const panel of HISTORY_PANELS) {
      for (const s of panel.series) {
        const runs = withFigure(history, s.figure);
        expect(runs.length).toBeGreaterThan(0);
        expect((marks.get(`${panel.title}|${s.name}`) ?? []).map((m) => m.run).sort()).toEqual(runs.map(runLabel).sort());
      }
    }
    expect(marks.get(`${HISTORY_PANELS[0]!.title}|POST / peer POST`)).toHaveLength(withFigure(history, 'postVsPeer').length);
  });

  test('a single figure is a point at its value, a range a bar from low to high', () => {
    const s = history.find((r) => r.run === 'S')!;
    const xeon = history.find((r) => r.run === 'Xeon')!;
    const [post, shares] = spec.vconcat;
    expect(post.layer[0].data.values).toContainEqual({ run: runLabel(s), series: 'POST / peer POST', low: s.figures.postVsPeer, high: s.figures.postVsPeer, range: false });
    expect(shares.layer[1].data.values).toContainEqual({ run: runLabel(xeon), series: 'cache hit, rate-limited', low: 0.6, high: 0.92, range: true });
    expect(post.layer[0].encoding.x.sort).toEqual(history.map(runLabel));
    expect(post.layer[2].data.values.map((t: any) => t.value)).toEqual([0.9, 1.2]);
  });

  test('the spec follows the data: a figure taken out of a run, or changed, changes the marks', () => {
    const i = history.findIndex((r) => r.figures.postVsPeer !== undefined);
    const without = history.map((r, j) => (j === i ? { ...r, figures: { ...r.figures, postVsPeer: undefined } } : r));
    const fewer = marksBySeries(historyChartSpec(without)).get(`${HISTORY_PANELS[0]!.title}|POST / peer POST`)!;
    expect(fewer).toHaveLength(withFigure(history, 'postVsPeer').length - 1);
    expect(fewer.map((m) => m.run)).not.toContain(runLabel(history[i]!));
    const changed = history.map((r, j) => (j === i ? { ...r, figures: { ...r.figures, postVsPeer: 9.99 } } : r));
    expect(historyChartSpec(changed)).not.toEqual(spec);
    expect(JSON.stringify(historyChartSpec(changed))).toContain('9.99');
    expect(() => historyChartSpec([])).toThrow('no runs');
  });
});

test('bench/results/history.svg is the drawing of history.json (redraw: npx tsx bench/render-chart.ts --history)', () => {
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/render-chart.ts'), '--history', '--check'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  const svg = readFileSync(join(ROOT, 'bench/results/history.svg'), 'utf8');
  expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  for (const panel of HISTORY_PANELS) expect(svg).toContain(panel.title.replace(/&/g, '&amp;'));
}, 60_000);

test('--check fails on a history.svg that is not the drawing of its history.json, and on a bad record', () => {
  const dir = mkdtempSync(join(tmpdir(), 'levee-history-'));
  try {
    const data = join(dir, 'history.json');
    const svg = join(dir, 'history.svg');
    writeFileSync(data, JSON.stringify(history.slice(0, 5)));
    writeFileSync(svg, readFileSync(join(ROOT, 'bench/results/history.svg')));
    const stale = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/render-chart.ts'), '--history', '--check', data, svg], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain('is not the drawing of');
    writeFileSync(data, JSON.stringify([{ ...history[0], machine: '' }]));
    const bad = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/render-chart.ts'), '--history', data, svg], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('no machine');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('docs/benchmarks.md', () => {
  test('is the method, the targets and the latest results, in at most 200 lines', () => {
    expect(DOC.trimEnd().split('\n').length).toBeLessThanOrEqual(200);
    for (const heading of ['## Running it', '## Method', '## Targets', '## History']) expect(DOC).toContain(`\n${heading}\n`);
    for (const link of ['../bench/results/history.json', '../bench/results/history.svg', '../bench/results/HISTORY.md']) expect(DOC).toContain(`](${link}`);
  });

  test("the History table's figures are the low–high of each session's runs in history.json", () => {
    // GitHub's heading anchors, as test/docs/links.test.ts reads them
    const slug = (h: string) => h.replace(/`/g, '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const bySlug = new Map(history.map((r) => [slug(r.session), r.session]));
    const columns: (FigureName | undefined)[] = [undefined, undefined, 'postShare', 'postVsFloor', 'postVsPeer', 'cacheHitShare', 'flood429Share'];
    const rows = DOC.slice(DOC.indexOf('\n## History\n')).split('\n').filter((l) => /^\| \[/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(5);
    expect(rows.length).toBeLessThanOrEqual(10);
    const sessions = rows.map((row) => {
      const cells = row.split('|').slice(1, -1).map((c) => c.trim());
      const session = bySlug.get(/#([^)]+)\)/.exec(cells[0]!)![1]!);
      expect(session).toBeDefined();
      const runs = history.filter((r) => r.session === session);
      columns.forEach((figure, i) => {
        if (!figure) return;
        const values = runs.flatMap((r) => {
          const v = r.figures[figure];
          return v === undefined ? [] : typeof v === 'number' ? [v] : v;
        });
        const [low, high] = [Math.min(...values), Math.max(...values)].map((v) => v.toFixed(2));
        const expected = values.length === 0 ? '–' : low === high ? low : `${low}–${high}`;
        expect(`${session}: ${figure} ${cells[i]}`).toBe(`${session}: ${figure} ${expected}`);
      });
      return session;
    });
    // every session of the history has its row
    expect(sessions).toEqual([...new Set(history.map((r) => r.session))]);
  });
});
