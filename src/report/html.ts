/**
 * report.html: one self-contained page (inline CSS and SVG, no script, no external resource; a
 * Content-Security-Policy that forbids loading anything makes sure of it) that a person opens to
 * see how a run went: the summary, the charts (charts.ts), the best checkpoint's confusion matrix,
 * sample completions of the last evaluation (reasoning and answer apart) and the configuration.
 */
import type { Chart } from './charts.js';
import type { RunData, SampleCompletion } from './run-data.js';

const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString()) : v === null || v === undefined ? '–' : String(v));

/** The reasoning (before the first `<answer>`) and the answer tag's content of a completion. */
export function splitCompletion(completion: string): { reasoning: string; answer: string | null } {
  const open = completion.indexOf('<answer>');
  if (open < 0) return { reasoning: completion.trim(), answer: null };
  const close = completion.indexOf('</answer>', open);
  return { reasoning: completion.slice(0, open).trim(), answer: completion.slice(open + 8, close < 0 ? undefined : close).trim() };
}

function samplesTable(samples: readonly SampleCompletion[]): string {
  const rows = samples.map((s, i) => {
    const { reasoning, answer } = splitCompletion(s.completion);
    const ok = s.pred !== null && s.pred === s.gold;
    return `<tr class="${ok ? 'right' : 'wrong'}"><td>${i + 1}</td><td>${esc(s.text)}</td><td>${esc(s.gold)}</td><td>${s.pred === null ? '<em>invalid</em>' : esc(s.pred)}</td><td class="reasoning">${esc(reasoning) || '<em>(none)</em>'}</td><td>${answer === null ? '<em>(no answer tag)</em>' : esc(answer)}</td></tr>`;
  });
  return `<table class="samples"><thead><tr><th>#</th><th>situation</th><th>gold</th><th>predicted</th><th>reasoning</th><th>answer</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function configTable(data: RunData): string {
  if (!data.info) return '<p>No run.json in this folder.</p>';
  const entries: [string, unknown][] = [
    ['model_dir', data.info.model_dir],
    ['data_dir', data.info.data_dir],
    ['labels', data.info.labels.join(', ')],
    ...Object.entries(data.info.config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ];
  const cell = (v: unknown) => esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : fmt(v));
  return `<table class="config"><tbody>${entries.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${cell(v)}</td></tr>`).join('')}</tbody></table>`;
}

function summary(data: RunData, updated: Date, final: boolean): string {
  const last = data.steps[data.steps.length - 1];
  const name = (data.info?.config as { run_name?: unknown } | undefined)?.run_name ?? data.runDir.split('/').pop();
  const items: [string, string][] = [
    ['run', esc(name)],
    ['status', final ? 'finished' : 'in progress (or stopped)'],
    ['GRPO steps logged', esc(last ? last.step : 0)],
    ['evaluations', esc(data.evals.length)],
  ];
  if (data.best) items.push(['best valid accuracy', `${esc(fmt(data.best.accuracy))} (macro-F1 ${esc(fmt(data.best.macro_f1))}) at step ${esc(data.best.step)}`]);
  if (data.last) items.push(['last valid accuracy', `${esc(fmt(data.last.accuracy))} at step ${esc(data.last.step)}, invalid answers ${esc(fmt(data.last.invalid_rate * 100))}%`]);
  if (data.info) items.push(['model', esc(data.info.model_dir)]);
  items.push(['updated', esc(updated.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))]);
  return `<dl class="summary">${items.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join('')}</dl>`;
}

const CSS = `
body{font-family:Helvetica,Arial,sans-serif;margin:24px auto;max-width:1240px;color:#222;background:#fafafa;padding:0 16px}
h1{font-size:22px;margin:0 0 12px}h2{font-size:17px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.summary{display:flex;flex-wrap:wrap;gap:8px 28px;margin:0}.summary div{min-width:140px}.summary dt{font-size:12px;color:#666}.summary dd{margin:0;font-size:14px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(470px,1fr));gap:14px}
figure.chart{margin:0;background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:10px}
figure.chart figcaption{font-size:13px;margin-bottom:6px}figure.chart figcaption small{display:block;color:#777;font-size:11px}
figure.chart svg{display:block;max-width:100%;height:auto}
table{border-collapse:collapse;background:#fff;font-size:13px}th,td{border:1px solid #e2e2e2;padding:5px 8px;vertical-align:top;text-align:left}
table.samples td.reasoning{max-width:520px;white-space:pre-wrap}tr.right td:nth-child(4){color:#1d7a3d}tr.wrong td:nth-child(4){color:#b3261e}
table.config th{font-weight:normal;color:#555;white-space:nowrap}table.config td{font-family:Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
p.empty{color:#777}`;

export function renderReportHtml(data: RunData, charts: readonly Chart[], opts: { updated?: Date; final?: boolean } = {}): string {
  const updated = opts.updated ?? new Date();
  const figure = (c: Chart) => `<figure class="chart" data-chart="${esc(c.id)}"><figcaption>${esc(c.title)}<small>${esc(c.caption)}</small></figcaption>${c.svg}</figure>`;
  const confusion = charts.find((c) => c.id === 'confusion');
  const lines = charts.filter((c) => c.id !== 'confusion');
  const samples = data.last?.samples ?? [];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`rrec-emotion run ${(data.info?.config as { run_name?: unknown } | undefined)?.run_name ?? ''}`.trim())}</title>
<style>${CSS}</style></head>
<body>
<h1>rrec-emotion training report</h1>
${summary(data, updated, opts.final ?? false)}
<h2>Training</h2>
${lines.length > 0 ? `<div class="charts">${lines.map(figure).join('\n')}</div>` : '<p class="empty">No step logged yet.</p>'}
<h2>Best checkpoint</h2>
${confusion ? `<div class="charts">${figure(confusion)}</div>` : '<p class="empty">No evaluation yet.</p>'}
<h2>Sample completions${data.last ? ` (last evaluation, step ${esc(data.last.step)})` : ''}</h2>
${samples.length > 0 ? samplesTable(samples) : '<p class="empty">No completions logged yet.</p>'}
<h2>Configuration</h2>
${configTable(data)}
</body></html>
`;
}
