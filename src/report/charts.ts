/**
 * The report's charts as Vega-Lite specs, rendered to SVG in Node by Vega (no browser, no canvas:
 * the 'none' renderer and View.toSVG). Each spec is small and declarative: the data are the run's
 * records, folded into { step, series, value } rows.
 *
 * vega / vega-lite are imported when a report is first rendered, so importing the library does
 * not load them.
 */
import type { StepRecord } from '../train/metrics-log.js';
import type { RunData } from './run-data.js';

/** A rendered chart: its id (the figure's data-chart attribute), title and SVG. */
export interface Chart {
  id: string;
  title: string;
  /** What it plots, one line. */
  caption: string;
  svg: string;
}

type Spec = Record<string, unknown>;

const WIDTH = 380;
const HEIGHT = 170;
const CONFIG = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: null },
  axis: { labelColor: '#444', titleColor: '#444', gridColor: '#e6e6e6', domainColor: '#888', titleFontWeight: 'normal' },
  legend: { orient: 'bottom', labelColor: '#444', titleColor: '#444' },
  background: '#ffffff',
};

type Row = { step: number; series: string; value: number };

/** Rows of the metrics present (finite numbers only). */
function rows(steps: readonly StepRecord[], series: Record<string, string>): Row[] {
  const out: Row[] = [];
  for (const r of steps)
    for (const [key, name] of Object.entries(series)) {
      const v = r[key];
      if (typeof v === 'number' && Number.isFinite(v)) out.push({ step: r.step, series: name, value: v });
    }
  return out;
}

function lineSpec(values: Row[], yTitle: string, opts: { points?: boolean; yDomain?: [number, number]; scaleType?: 'linear' | 'log' } = {}): Spec {
  const series = [...new Set(values.map((v) => v.series))];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH, height: HEIGHT, config: CONFIG,
    data: { values },
    mark: { type: 'line', point: opts.points ?? values.length <= 40, strokeWidth: 2 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: yTitle, axis: { format: '~g' }, scale: { zero: false, ...(opts.yDomain ? { domain: opts.yDomain } : {}), ...(opts.scaleType ? { type: opts.scaleType } : {}) } },
      color: series.length > 1 ? { field: 'series', type: 'nominal', title: null, scale: { range: ['#1f6fb4', '#e07b00', '#2a9d58', '#b8336a'] } } : { value: '#1f6fb4' },
    },
  };
}

function rewardSpec(steps: readonly StepRecord[]): Spec | null {
  const values = steps
    .filter((r) => typeof r.reward === 'number' && Number.isFinite(r.reward))
    .map((r) => {
      const std = typeof r.reward_std === 'number' && Number.isFinite(r.reward_std) ? r.reward_std : 0;
      return { step: r.step, mean: r.reward!, lo: r.reward! - std, hi: r.reward! + std };
    });
  if (values.length === 0) return null;
  const x = { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH, height: HEIGHT, config: CONFIG,
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.25, color: '#1f6fb4' }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'reward (mean ± std)' }, y2: { field: 'hi' } } },
      { mark: { type: 'line', color: '#1f6fb4', strokeWidth: 2, point: values.length <= 40 }, encoding: { x, y: { field: 'mean', type: 'quantitative' } } },
    ],
  };
}

function confusionSpec(data: RunData): Spec | null {
  const c = data.best?.confusion;
  if (!c || c.length === 0) return null;
  const labels = data.labels.length === c.length ? data.labels : c.map((_, i) => `class ${i}`);
  const predicted = [...labels, 'invalid'];
  const values = c.flatMap((row, g) => row.map((count, p) => ({ gold: labels[g]!, predicted: predicted[p] ?? `col ${p}`, count })));
  const max = Math.max(1, ...values.map((v) => v.count));
  const side = Math.min(300, 56 * predicted.length);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: side, height: Math.round((side * labels.length) / predicted.length), config: CONFIG,
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: predicted, title: 'predicted', axis: { labelAngle: 0, orient: 'top' } },
      y: { field: 'gold', type: 'nominal', sort: labels, title: 'gold' },
    },
    layer: [
      { mark: { type: 'rect', stroke: '#ffffff', strokeWidth: 1 }, encoding: { color: { field: 'count', type: 'quantitative', title: 'examples', scale: { scheme: 'blues', domain: [0, max] } } } },
      {
        mark: { type: 'text', fontSize: 13 },
        encoding: { text: { field: 'count', type: 'quantitative' }, color: { condition: { test: `datum.count > ${max / 2}`, value: '#ffffff' }, value: '#222222' } },
      },
    ],
  };
}

/** The Vega-Lite specs of a run's charts, in the order the page shows them (absent metrics: no chart). */
export function chartSpecs(data: RunData): { id: string; title: string; caption: string; spec: Spec }[] {
  const s = data.steps;
  const out: { id: string; title: string; caption: string; spec: Spec | null }[] = [
    { id: 'reward', title: 'Reward', caption: 'mean total reward of the step\'s completions, band: ± its standard deviation', spec: rewardSpec(s) },
    {
      id: 'accuracy', title: 'Valid accuracy and macro-F1', caption: 'greedy evaluations on the valid split (eval.jsonl)',
      spec: data.evals.length === 0 ? null : lineSpec(data.evals.flatMap((e) => [{ step: e.step, series: 'accuracy', value: e.accuracy }, { step: e.step, series: 'macro-F1', value: e.macro_f1 }]), 'valid', { points: true, yDomain: [0, 1] }),
    },
    { id: 'loss', title: 'Loss', caption: 'GRPO loss of the step', spec: lineOrNull(rows(s, { loss: 'loss' }), 'loss') },
    { id: 'kl', title: 'KL to the reference', caption: 'mean per-token k3 estimate of KL(policy || reference)', spec: lineOrNull(rows(s, { kl: 'kl' }), 'KL') },
    { id: 'clip_ratio', title: 'Clip ratio', caption: 'fraction of tokens whose ratio was clipped', spec: lineOrNull(rows(s, { 'clip_ratio/region_mean': 'clipped' }), 'ratio') },
    { id: 'completion_length', title: 'Completion length', caption: 'tokens per completion: mean and longest of the step', spec: lineOrNull(rows(s, { 'completions/mean_length': 'mean', 'completions/max_length': 'max' }), 'tokens') },
    { id: 'learning_rate', title: 'Learning rate', caption: 'of the step, after warm-up and schedule', spec: lineOrNull(rows(s, { learning_rate: 'lr' }), 'learning rate') },
    { id: 'grad_norm', title: 'Gradient norm', caption: 'global L2 norm before clipping', spec: lineOrNull(rows(s, { grad_norm: 'grad norm' }), 'norm') },
    { id: 'confusion', title: 'Confusion matrix (best checkpoint)', caption: data.best ? `valid split, step ${data.best.step}: rows are gold labels, columns predictions` : '', spec: confusionSpec(data) },
  ];
  return out.filter((c): c is { id: string; title: string; caption: string; spec: Spec } => c.spec !== null);
}

function lineOrNull(values: Row[], title: string): Spec | null {
  return values.length === 0 ? null : lineSpec(values, title);
}

/**
 * Vega numbers the ids of gradients and clip paths with process-wide counters: renamed here to
 * `<chart>-<k>` in order of definition, so that a page is the same whichever process drew it and
 * the inline SVGs of one page never share an id.
 */
export function stableIds(svg: string, chartId: string): string {
  const ids = [...svg.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]!);
  const renamed = new Map(ids.map((id, k) => [id, `${chartId}-${k}`]));
  return svg.replace(/ id="([^"]+)"|url\(#([^)]+)\)/g, (all, def: string | undefined, ref: string | undefined) => {
    if (def !== undefined) return ` id="${renamed.get(def) ?? def}"`;
    return `url(#${renamed.get(ref!) ?? ref})`;
  });
}

/** Renders every chart of the run to SVG. */
export async function renderCharts(data: RunData): Promise<Chart[]> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const charts: Chart[] = [];
  for (const c of chartSpecs(data)) {
    const compiled = vl.compile(c.spec as never).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    try {
      charts.push({ id: c.id, title: c.title, caption: c.caption, svg: stableIds(await view.toSVG(), c.id) });
    } finally {
      view.finalize();
    }
  }
  return charts;
}
