/**
 * The benchmark chart, from a results file like bench/results/latest.json (the fixture holds
 * the figures of the run in BENCHMARKS.md): the spec's data, and the SVG that Vega renders in
 * Node through bench/render-chart.ts (Vega is ESM-only, so it runs as its own process).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchResults, benchChartSpec, kindOf, originLoads } from '../../bench/chart';

const ROOT = join(__dirname, '../..');
const FIXTURE = join(__dirname, 'fixtures/results.json');
const results = JSON.parse(readFileSync(FIXTURE, 'utf8')) as BenchResults;

describe('benchChartSpec', () => {
  const spec = benchChartSpec(results) as any;
  const [throughput, p99, loads] = spec.vconcat;

  test('throughput: every gateway scenario with its req/s, as ceiling, Levee or a peer (reference)', () => {
    expect(throughput.data.values.map((v: any) => [v.kind, v.rps])).toEqual([
      ['ceiling', 12927],
      ['Levee', 13119],
      ['peer (reference)', 11804],
      ['Levee', 4576],
      ['peer (reference)', 9469],
      ['peer (reference)', 4937],
      ['Levee', 11519],
      ['peer (reference)', 10932],
      ['Levee', 7607],
    ]);
    expect(throughput.encoding.x.field).toBe('rps');
    expect(throughput.encoding.y.sort).toEqual(throughput.data.values.map((v: any) => v.scenario));
  });

  test('p99 per scenario, with the target (3 × the ceiling p99 of the run) as a rule', () => {
    expect(p99.data.values.map((v: any) => v.p99)).toEqual([20, 19, 21, 52, 26, 39, 25, 26, 31]);
    expect(p99.layer[0].encoding.x.field).toBe('p99');
    expect(p99.layer[1].data.values).toEqual([{ target: 60 }]);
  });

  test('a row at another connection count than the ceiling stays in the throughput panel and out of the p99 one', () => {
    const gateway = results.raw.gateway!.map((g) => ({ ...g, connections: 100 }));
    gateway.push({ scenario: 'POST /api/images (enqueue), 400 connections', rps: 9000, p50: 40, p99: 77, connections: 400 });
    const [withThroughput, withP99] = (benchChartSpec({ ...results, raw: { ...results.raw, gateway } }) as any).vconcat;
    expect(withThroughput.data.values).toHaveLength(gateway.length);
    expect(withP99.data.values.map((v: any) => v.p99)).toEqual([20, 19, 21, 52, 26, 39, 25, 26, 31]);
  });

  test('origin loads per expiry, naive cache-aside against Levee', () => {
    expect(loads.data.values).toEqual([
      { cache: 'naive cache-aside', loads: 400 },
      { cache: 'Levee', loads: 1 },
    ]);
  });

  test('the run and its machine are in the title', () => {
    expect(spec.title.subtitle[0]).toBe('2026-11-28T16:08:55.198Z — 2 × AMD EPYC, 24 GiB, Linux 6.18.44-fc-v657, Node v20.20.2');
  });

  test('scenario kinds, the loads field over the figure text, and a results file without gateway rows', () => {
    expect(kindOf('bare Fastify route (ceiling)')).toBe('ceiling');
    expect(kindOf('reference: bare Fastify answering the 429\'s exact bytes')).toBe('peer (reference)');
    expect(kindOf('peer: Fastify + @fastify/rate-limit (Redis) + queue.add, hand-written')).toBe('peer (reference)');
    expect(kindOf('floor: bare Fastify POST + one plain BullMQ queue.add per request')).toBe('peer (reference)');
    expect(kindOf('POST /api/images (enqueue)')).toBe('Levee');
    const withField = { ...results, rows: [{ scenario: 'Levee cache: origin loads per hot-key expiry', figure: '1 load (3560 req/s)', loads: 2 }] };
    expect(originLoads(withField)).toEqual([{ cache: 'Levee', loads: 2 }]);
    expect(() => benchChartSpec({ ...results, raw: {} })).toThrow('no gateway scenarios');
  });
});

test('bench/render-chart.ts renders the results file to an SVG with every scenario and both caches', () => {
  const dir = mkdtempSync(join(tmpdir(), 'levee-chart-'));
  try {
    const out = join(dir, 'chart.svg');
    const res = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/render-chart.ts'), FIXTURE, out], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const svg = readFileSync(out, 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const text of ['bare Fastify route (ceiling)', 'POST /api/images (enqueue)', 'naive cache-aside', 'Origin loads per hot-key expiry', 'requests per second', 'p99 (ms)']) {
      expect(svg).toContain(text);
    }
    // Every scenario's label whole, as the spec gives it (Vega elides a label wider than the
    // axis's labelLimit, and rows that differ only at their end then look alike).
    const escape = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
    const labels: string[] = (benchChartSpec(results) as any).vconcat[0].data.values.map((v: any) => v.scenario);
    for (const label of labels) expect(svg).toContain(`>${escape(label)}</text>`);
    // one bar per gateway scenario in each of the two first charts, two in the third
    expect(svg).toContain('aria-roledescription="rule mark"'); // the p99 target
    expect((svg.match(/aria-roledescription="bar"/g) ?? []).length).toBe(9 + 9 + 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
