// The best model of a run: GRPO on a model that answers in the format from the start (so valid
// accuracy moves from one evaluation to the next), evaluated every step. best/ must hold the
// model of the step with the highest valid accuracy in eval.jsonl (first one on ties): checked by
// re-evaluating best/ from disk with `rrec-emotion eval`, which must reproduce that step's logged
// metrics exactly. Checkpoint rotation leaves best/ alone and keeps the best step's checkpoint;
// eval_on_test scores the best model on the test split. The same run's report.html (src/report/)
// must show it: rendered in headless Chromium, every chart draws data marks, the confusion matrix
// is best/'s, the sample completions are the last evaluation's; `rrec-emotion report` rebuilds it.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval } from '../../src/cli/eval.js';
import type { EvalMetrics } from '../../src/eval/metrics.js';
import { listCheckpoints } from '../../src/train/checkpoint-dir.js';
import { runReport } from '../../src/cli/report.js';
import { chromiumAvailable, CHROMIUM_SKIP_NOTE, inkIn, openAndShoot } from '../helpers/browser.js';
import { GrpoTrainer, type FitResult } from '../../src/train/trainer.js';
import { writeAnswerModel } from '../helpers/answer-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const root = mkdtempSync(join(tmpdir(), 'rrec-best-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

interface EvalRecord { step: number; split: string; accuracy: number; macro_f1: number }

async function evalCli(args: string[]): Promise<{ metrics: EvalMetrics; weights: string }> {
  const file = join(root, `eval-${Math.random().toString(36).slice(2)}.json`);
  expect(await runEval([...args, `--output=${file}`], { out: () => {} })).toBe(0);
  return JSON.parse(readFileSync(file, 'utf8')) as { metrics: EvalMetrics; weights: string };
}

describe('best model by valid accuracy', () => {
  let r: FitResult;
  let records: EvalRecord[];
  beforeAll(async () => {
    const model = await writeAnswerModel(join(root, 'answer-model'), ['sad', 'joyful', 'angry', 'afraid']);
    r = await new GrpoTrainer({
      model, data_dir: sample, output_dir: join(root, 'runs'), run_name: 'best', seed: 1, sft_epochs: 0, eval_on_start: true,
      max_steps: 6, eval_steps: 1, save_steps: 2, save_total_limit: 1, max_new_tokens: 12, train_batch_size: 4, group_size: 4,
      eval_batch_size: 40, learning_rate: 5e-2, warmup_steps: 0, lr_scheduler_type: 'constant', eval_on_test: true,
    }).fit({ stream: quiet });
    records = readFileSync(join(r.runDir, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as EvalRecord);
  });

  it('every valid evaluation is logged, and the accuracies differ (the case is not trivial)', () => {
    expect(r.steps).toBe(6);
    expect(r.stopReason).toBe('completed');
    expect(records.map((e) => e.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(records.every((e) => e.split === 'valid')).toBe(true);
    expect(new Set(records.map((e) => e.accuracy)).size).toBeGreaterThan(1);
    expect(records.map((e) => e.accuracy)).toEqual(
      ['start', 'step-1', 'step-2', 'step-3', 'step-4', 'step-5', 'end'].map((l) => (JSON.parse(readFileSync(join(r.runDir, `eval-${l}.json`), 'utf8')) as EvalMetrics).accuracy),
    );
  });

  it('best/ holds the step with the highest valid accuracy in eval.jsonl (the first on ties)', () => {
    const max = Math.max(...records.map((e) => e.accuracy));
    const bestStep = records.find((e) => e.accuracy === max)!.step;
    expect(r.bestStep).toBe(bestStep);
    expect(r.bestValidAccuracy).toBe(max);
    expect(r.bestDir).toBe(join(r.runDir, 'best'));
    const info = JSON.parse(readFileSync(join(r.bestDir!, 'best.json'), 'utf8')) as { step: number; accuracy: number; metrics: EvalMetrics };
    expect(info.step).toBe(bestStep);
    expect(info.accuracy).toBe(max);
    expect(info.metrics.macro_f1).toBe(records.find((e) => e.step === bestStep)!.macro_f1);
    expect(existsSync(join(r.bestDir!, 'adapter', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(r.bestDir!, 'optimizer.safetensors'))).toBe(false);
  });

  it('rotation (save_total_limit 1) keeps the latest checkpoint and the best step\'s, never best/', async () => {
    const kept = (await listCheckpoints(r.runDir)).map((c) => c.step);
    const saved = [2, 4, 6];
    expect(kept).toEqual(saved.filter((s) => s === 6 || s === r.bestStep));
    expect(existsSync(join(r.runDir, 'best', 'best.json'))).toBe(true);
    const state = JSON.parse(readFileSync(join(r.runDir, 'checkpoint-6', 'trainer_state.json'), 'utf8')) as { early_stopping: unknown };
    expect(state.early_stopping).toEqual({ best_step: r.bestStep, best_accuracy: r.bestValidAccuracy, evals_without_improvement: 6 - r.bestStep! });
  });

  it('re-evaluated from disk, best/ gives exactly the metrics logged at its step', async () => {
    const logged = JSON.parse(readFileSync(join(r.runDir, 'best', 'best.json'), 'utf8')) as { metrics: EvalMetrics };
    const fromBest = await evalCli([`--checkpoint=${join(r.runDir, 'best')}`]); // model, labels, data: from run.json
    expect(fromBest.metrics).toEqual(logged.metrics);
    const fromRun = await evalCli([`--checkpoint=${r.runDir}`]); // a run folder means its best/
    expect(fromRun.weights).toBe(join(r.runDir, 'best'));
  });

  it('eval_on_test scores the best model on the test split', async () => {
    expect(r.testStep).toBe(r.bestStep);
    expect(r.testMetrics!.n).toBe(40);
    const test = await evalCli([`--checkpoint=${join(r.runDir, 'best')}`, '--split=test']);
    expect(r.testMetrics).toEqual(test.metrics);
  });

  it('report.html shows the run: every chart, best/\'s confusion matrix, the last evaluation\'s completions', () => {
    const html = readFileSync(join(r.runDir, 'report.html'), 'utf8');
    const charts = [...html.matchAll(/<figure class="chart" data-chart="([a-z_]+)">/g)].map((m) => m[1]);
    expect(charts).toEqual(['reward', 'accuracy', 'loss', 'kl', 'clip_ratio', 'completion_length', 'learning_rate', 'grad_norm', 'confusion']);
    expect(html).toContain('<dd>finished</dd>');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing to fetch
    // the confusion matrix drawn is best/'s: each count appears as a text mark in the heatmap
    const best = JSON.parse(readFileSync(join(r.runDir, 'best', 'best.json'), 'utf8')) as { step: number; metrics: EvalMetrics };
    const last = readFileSync(join(r.runDir, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).pop();
    const fromLog = records.find((e) => e.step === best.step) as unknown as { confusion: number[][] };
    expect(fromLog.confusion).toEqual(best.metrics.confusion);
    const confusionSvg = html.slice(html.indexOf('data-chart="confusion"'));
    const counts = [...confusionSvg.slice(0, confusionSvg.indexOf('</figure>')).matchAll(/<text[^>]*>(\d+)<\/text>/g)].map((m) => Number(m[1]));
    for (const n of best.metrics.confusion.flat()) expect(counts).toContain(n);
    expect(html).toContain(`valid split, step ${best.step}`);
    // the samples table: the last evaluation's first 8 examples, text and answers escaped
    expect(last.samples).toHaveLength(8);
    const table = html.slice(html.indexOf('<table class="samples">'));
    const rows = table.slice(0, table.indexOf('</table>')).split('</tr>').length - 2;
    expect(rows).toBe(8);
    const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
    for (const sample of last.samples) expect(html).toContain(`<td>${esc(sample.text)}</td>`);
  });

  it('`rrec-emotion report RUN_DIR` rebuilds the same page from the run folder', async () => {
    const before = readFileSync(join(r.runDir, 'report.html'), 'utf8');
    const out: string[] = [];
    expect(await runReport([r.runDir], { out: (t) => out.push(t) })).toBe(0);
    expect(out).toEqual([`wrote ${join(r.runDir, 'report.html')}`]);
    const strip = (h: string) => h.replace(/<dt>updated<\/dt><dd>[^<]*<\/dd>/, '');
    const [x, y] = [strip(readFileSync(join(r.runDir, 'report.html'), 'utf8')), strip(before)];
    let at = 0;
    while (at < x.length && x[at] === y[at]) at++;
    expect(x.slice(at - 100, at + 100)).toBe(y.slice(at - 100, at + 100));
    await expect(runReport([join(root, 'answer-model')])).rejects.toThrow(/not a training run folder/);
  });

  it.skipIf(!chromiumAvailable)(`report.html renders in headless Chromium: ink in every chart, no console error, no request${chromiumAvailable ? '' : ` (skipped: ${CHROMIUM_SKIP_NOTE})`}`, async () => {
    const shot = await openAndShoot(join(r.runDir, 'report.html'));
    expect(shot.consoleErrors).toEqual([]);
    expect(shot.requests).toEqual([]);
    expect([...shot.charts.keys()]).toHaveLength(9);
    for (const [id, box] of shot.charts) {
      expect(box.width * box.height, id).toBeGreaterThan(150 * 100);
      const { total, ink, colored } = inkIn(shot.image, box);
      expect(ink / total, `${id}: share of non-white pixels`).toBeGreaterThan(0.01); // axes, labels, marks
      expect(colored, `${id}: coloured pixels (data marks)`).toBeGreaterThan(100);
    }
    // a blank page region (below the last element) has no ink: the check can fail
    const blank = inkIn(shot.image, { x: 0, y: shot.image.height - 4, width: shot.image.width, height: 4 });
    expect(blank.colored).toBe(0);
  });
});
