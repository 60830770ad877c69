// The pure parts of `npm run bench` (bench/lib/): statistics, ratio orientation, the table and the
// report checker. Expected values worked out by hand.
import { describe, expect, it } from 'vitest';
import { makeFigure, median, orientedRatio, stats, type Figure } from '../../bench/lib/figures.js';
import { REQUIRED_FIGURES, figureProblems, reportProblems } from '../../bench/lib/report.js';
import { formatNumber, formatTable } from '../../bench/lib/table.js';

const fig = (over: Partial<Figure> = {}): Figure => ({
  name: 'x',
  unit: 'ms',
  ours: { min: 1, median: 2, max: 3 },
  peer: null,
  ratio: null,
  higher_is_better: false,
  note: 'no peer here',
  ...over,
});

describe('bench statistics', () => {
  it('min / median / max of an odd count', () => {
    expect(stats([5, 1, 4, 2, 3])).toEqual({ min: 1, median: 3, max: 5 });
  });
  it('the median of an even count is the mean of the two middle values', () => {
    expect(median([10, 2, 8, 4])).toBe(6); // sorted 2 4 8 10 -> (4 + 8) / 2
    expect(stats([7, 7, 1, 100, 3, 9])).toEqual({ min: 1, median: 7, max: 100 }); // 1 3 7 7 9 100
  });
  it('one sample is its own min, median and max', () => {
    expect(stats([2.5])).toEqual({ min: 2.5, median: 2.5, max: 2.5 });
  });
  it('refuses no samples and non-finite ones', () => {
    expect(() => stats([])).toThrow(/no samples/);
    expect(() => stats([1, NaN])).toThrow(/non-finite/);
    expect(() => median([])).toThrow(/no samples/);
  });
});

describe('ratio orientation: > 1 means ours is better', () => {
  it('throughputs (higher is better): ours / peer', () => {
    expect(orientedRatio(300, 200, true)).toBe(1.5); // ours faster
    expect(orientedRatio(100, 400, true)).toBe(0.25); // ours slower
  });
  it('times (lower is better): peer / ours', () => {
    expect(orientedRatio(200, 300, false)).toBe(1.5); // ours takes 200 ms, peer 300 ms: ours better
    expect(orientedRatio(400, 100, false)).toBe(0.25);
  });
  it('null without a usable peer', () => {
    expect(orientedRatio(1, null, true)).toBeNull();
    expect(orientedRatio(1, undefined, false)).toBeNull();
    expect(orientedRatio(1, 0, true)).toBeNull();
    expect(orientedRatio(NaN, 1, true)).toBeNull();
  });
  it('makeFigure takes medians of both sides', () => {
    const f = makeFigure({ name: 'train.lora_layer', unit: 'ms', higherIsBetter: false, samples: [400, 380, 500, 390, 410], peer: { name: 'PyTorch', samples: [200, 190, 210, 195, 205] }, note: 'n' });
    expect(f.ours).toEqual({ min: 380, median: 400, max: 500 });
    expect(f.peer).toEqual({ name: 'PyTorch', median: 200 });
    expect(f.ratio).toBe(0.5); // 200 / 400: we take twice as long
    expect(f.higher_is_better).toBe(false);
  });
  it('makeFigure: a peer without samples, or none, gives peer and ratio null', () => {
    expect(makeFigure({ name: 'a', unit: 'GB/s', higherIsBetter: true, samples: [1], peer: { name: 'p', samples: [] }, note: 'n' })).toMatchObject({ peer: null, ratio: null });
    expect(makeFigure({ name: 'a', unit: 'GB/s', higherIsBetter: true, samples: [1], note: 'n' })).toMatchObject({ peer: null, ratio: null });
  });
});

describe('report shape', () => {
  const good = () => ({
    machine: { cpu_model: 'x', cores: 2 },
    versions: { node: 'v20', torch: null },
    figures: REQUIRED_FIGURES.map((name) => fig({ name, ...(name === 'sample.decode.b1' ? { roofline_fraction: 0.5 } : {}) })),
  });
  it('a well-formed report has no problems', () => {
    expect(reportProblems(good())).toEqual([]);
  });
  it('names every missing required figure', () => {
    const r = good();
    r.figures = r.figures.filter((f) => f.name !== 'grpo.step' && f.name !== 'memory.bandwidth');
    expect(reportProblems(r)).toEqual(['grpo.step: missing', 'memory.bandwidth: missing']);
  });
  it('sample.decode.b1 must carry roofline_fraction', () => {
    const r = good();
    r.figures = r.figures.map((f) => (f.name === 'sample.decode.b1' ? fig({ name: f.name }) : f));
    expect(reportProblems(r)).toEqual(['sample.decode.b1: roofline_fraction missing']);
  });
  it('checks each figure', () => {
    expect(figureProblems(fig())).toEqual([]);
    expect(figureProblems(fig({ ours: { min: 3, median: 2, max: 1 } }))).toEqual(['x: ours needs min <= median <= max']);
    expect(figureProblems(fig({ ratio: 2 }))).toEqual(['x: ratio must be null without a peer']);
    expect(figureProblems(fig({ note: ' ' }))).toEqual(['x: a figure without a peer needs a note']);
    expect(figureProblems({ ...fig(), unit: '' })).toEqual(['x: unit must be a non-empty string']);
    expect(figureProblems({ ...fig(), peak_fraction: '62%' })).toEqual(['x: peak_fraction must be a number or null']);
    expect(figureProblems({ name: 'y' })).toEqual([
      'y: unit must be a non-empty string',
      'y: higher_is_better must be a boolean',
      'y: note must be a string',
      'y: ours must be { min, median, max } numbers',
      'y: peer must be null or { name, median }',
    ]);
  });
  it('rejects a ratio that is not oriented', () => {
    // lower is better, ours 2 ms, peer 4 ms: the ratio is 4 / 2 = 2, not 2 / 4
    expect(figureProblems(fig({ peer: { name: 'p', median: 4 }, ratio: 2 }))).toEqual([]);
    expect(figureProblems(fig({ peer: { name: 'p', median: 4 }, ratio: 0.5 }))).toEqual(['x: ratio 0.5 is not 2 (oriented so > 1 means ours is better)']);
  });
  it('rejects duplicates and bad top-level parts', () => {
    const r = good();
    r.figures.push(fig({ name: 'grpo.step' }));
    expect(reportProblems(r)).toEqual(['grpo.step: appears twice']);
    expect(reportProblems({ machine: 1, versions: { a: 2 }, figures: {} })).toEqual(['machine must be an object', 'versions.a must be a string or null', 'figures must be an array']);
  });
});

describe('table', () => {
  it('formats numbers to about 3 significant digits', () => {
    expect([formatNumber(1234.5), formatNumber(56.78), formatNumber(3.14159), formatNumber(0.012345), formatNumber(null), formatNumber(0)]).toEqual(['1235', '56.8', '3.14', '0.0123', '-', '0']);
  });
  it('one row per figure with median [min–max], peer and ratio', () => {
    const t = formatTable([fig({ name: 'a.b', peer: { name: 'P', median: 4 }, ratio: 2, note: 'x | y' })]).split('\n');
    expect(t).toHaveLength(3);
    expect(t[2]).toBe('| a.b | ms ↓ | 2.00 [1.00–3.00] | P | 4.00 | 2.00x | x / y |');
  });
  it('shows a roofline or bf16-peak fraction beside the median', () => {
    expect(formatTable([fig({ roofline_fraction: 0.774 })]).split('\n')[2]).toBe('| x | ms ↓ | 2.00 [1.00–3.00] (77% of roofline) | - | - | - | no peer here |');
    expect(formatTable([fig({ peak_fraction: 0.625 })]).split('\n')[2]).toBe('| x | ms ↓ | 2.00 [1.00–3.00] (63% of bf16 peak) | - | - | - | no peer here |');
    expect(formatTable([fig({ peak_fraction: null })]).split('\n')[2]).toBe('| x | ms ↓ | 2.00 [1.00–3.00] | - | - | - | no peer here |');
  });
});
