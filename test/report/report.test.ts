// The report's parts that a training run does not vary: completion splitting, escaping, the
// Vega-Lite specs' choice of charts, stable SVG ids, and the trainer hook's throttle and warning.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { chartSpecs, renderReportHtml, reportUpdater, splitCompletion, type RunData } from '../../src/report/index.js';
import { stableIds } from '../../src/report/charts.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const data = (over: Partial<RunData> = {}): RunData => ({ runDir: '/runs/x', info: null, steps: [], evals: [], best: null, last: null, labels: ['sad', 'joyful'], ...over });

describe('report pieces', () => {
  it('splits a completion into reasoning and answer', () => {
    expect(splitCompletion('They lost a dog. <answer>sad</answer>')).toEqual({ reasoning: 'They lost a dog.', answer: 'sad' });
    expect(splitCompletion('no tag at all')).toEqual({ reasoning: 'no tag at all', answer: null });
    expect(splitCompletion('<answer> joyful')).toEqual({ reasoning: '', answer: 'joyful' });
  });

  it('escapes text from the data and lists only charts that have data', () => {
    const evalRec = { step: 2, epoch: 1, split: 'valid', accuracy: 0.5, macro_f1: 0.4, invalid_rate: 0, mean_output_length: 10, confusion: [[1, 1, 0], [0, 2, 0]], samples: [{ text: '<script>alert(1)</script> & co', gold: 'sad', pred: null, completion: 'x <answer>"q"</answer>' }] };
    const d = data({ steps: [{ step: 1, epoch: 0.5, reward: 1, reward_std: 0.5, loss: 0.1 }], evals: [evalRec], best: evalRec, last: evalRec });
    expect(chartSpecs(d).map((c) => c.id)).toEqual(['reward', 'accuracy', 'loss', 'confusion']);
    const html = renderReportHtml(d, [], { updated: new Date(0) });
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; co');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&quot;q&quot;');
    expect(html).toContain("default-src 'none'");
    expect(chartSpecs(data())).toEqual([]);
  });

  it('renames vega\'s counter ids per chart', () => {
    expect(stableIds('<g id="gradient_7"/><path fill="url(#gradient_7)"/><g id="clip12"/><p clip-path="url(#clip12)"/>', 'reward')).toBe(
      '<g id="reward-0"/><path fill="url(#reward-0)"/><g id="reward-1"/><p clip-path="url(#reward-1)"/>',
    );
  });

  it('the trainer hook writes, skips logging-step calls right after a write, and warns once on failure', async () => {
    const run = join(root, 'run');
    mkdirSync(run);
    writeFileSync(join(run, 'metrics.jsonl'), '{"step":1,"epoch":0.1,"loss":0.5}\n');
    let t = 0;
    const warnings: string[] = [];
    const update = reportUpdater(run, (m) => warnings.push(m), () => (t += 100)); // each write 'takes' 100
    await update();
    expect(existsSync(join(run, 'report.html'))).toBe(true);
    rmSync(join(run, 'report.html'));
    await update(); // within 10 x 100 of the last write: skipped
    expect(existsSync(join(run, 'report.html'))).toBe(false);
    await update({ force: true }); // an evaluation: always written
    expect(existsSync(join(run, 'report.html'))).toBe(true);
    const bad = reportUpdater(join(root, 'missing'), (m) => warnings.push(m), () => (t += 1000));
    await bad();
    await bad();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not write .*missing\/report\.html: .*not a folder/);
  });
});
