// `rrec-emotion eval` (runEval called directly): on the built-in tiny model and on a model that
// answers in the format, over the shipped sample data. The metrics it prints and writes must be
// those recomputed here from its predictions file: gold labels read from the CSV with csv-parse,
// predictions re-parsed from the completions, metrics by classificationMetrics.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliUsageError } from '../../src/cli/args.js';
import { runEval } from '../../src/cli/eval.js';
import { classificationMetrics, formatEvalReport, type EvalMetrics } from '../../src/eval/metrics.js';
import { parseAnswer } from '../../src/reward/index.js';
import { writeAnswerModel } from '../helpers/answer-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const LABELS = ['sad', 'joyful', 'angry', 'afraid'];
const root = mkdtempSync(join(tmpdir(), 'rrec-cli-eval-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Prediction { index: number; text: string; gold: number; gold_label: string; pred: number; pred_label: string | null; completion: string; tokens: number }
interface Report { split: string; limit: number | null; labels: string[]; metrics: EvalMetrics; weights: string | null }

async function evalCli(args: string[]) {
  const out: string[] = [];
  const id = Math.random().toString(36).slice(2);
  const output = join(root, `metrics-${id}.json`);
  const predictions = join(root, `predictions-${id}.jsonl`);
  const code = await runEval([...args, `--output=${output}`, `--predictions=${predictions}`], { out: (t) => out.push(t) });
  return {
    code,
    text: out.join('\n'),
    report: JSON.parse(readFileSync(output, 'utf8')) as Report,
    predictions: readFileSync(predictions, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Prediction),
  };
}

/** Rows of a split, straight from the CSV file. */
function csvRows(split: string): { text: string; label: number }[] {
  const rows = parse(readFileSync(join(sample, `${split}.csv`), 'utf8'), { columns: true }) as { text: string; label: string }[];
  return rows.map((r) => ({ text: r.text, label: Number(r.label) }));
}

/** Every number the command reported, recomputed from its predictions and the CSV. */
function checkConsistent(r: Awaited<ReturnType<typeof evalCli>>, split: string, n: number) {
  expect(r.code).toBe(0);
  const rows = csvRows(split).slice(0, n);
  expect(r.predictions).toHaveLength(n);
  expect(r.predictions.map((p) => p.text)).toEqual(rows.map((row) => row.text));
  expect(r.predictions.map((p) => p.gold)).toEqual(rows.map((row) => row.label));
  const pred = r.predictions.map((p) => {
    const parsed = parseAnswer(p.completion, LABELS);
    return parsed.ok ? parsed.index : -1;
  });
  expect(r.predictions.map((p) => p.pred)).toEqual(pred);
  expect(r.predictions.map((p) => p.pred_label)).toEqual(pred.map((i) => (i < 0 ? null : LABELS[i])));
  const want = classificationMetrics({ gold: rows.map((row) => row.label), pred, numClasses: 4, outputLengths: r.predictions.map((p) => p.tokens) });
  expect(r.report.metrics).toEqual(want);
  expect(r.report.metrics.accuracy).toBe(pred.filter((p, i) => p === rows[i]!.label).length / n);
  expect(r.report.split).toBe(split);
  expect(r.report.labels).toEqual(LABELS);
  // the printed report is the text form of the same numbers
  expect(r.text).toContain(formatEvalReport(want, LABELS));
}

describe('rrec-emotion eval', () => {
  it('the built-in tiny model on the sample valid split (--limit)', async () => {
    const r = await evalCli(['--model=tiny', `--output_dir=${join(root, 'runs')}`, `--data_dir=${sample}`, '--limit=6', '--max_new_tokens=8']);
    checkConsistent(r, 'valid', 6);
    expect(r.report.limit).toBe(6);
    expect(r.report.weights).toBeNull();
    expect(r.text).toContain(`model    ${join(root, 'runs', 'builtin-tiny-qwen2')}`);
    expect(r.text).toContain(`data     ${sample} (valid, 6 of 40 examples)`);
  });

  describe('a model that answers in the format', () => {
    let model: string;
    beforeAll(async () => {
      model = await writeAnswerModel(join(root, 'answer-model'), LABELS);
    });
    it('--split=test: valid answers, several classes predicted, every number recomputed', async () => {
      const r = await evalCli([`--model=${model}`, `--data_dir=${sample}`, '--split=test', '--limit=24', '--max_new_tokens=12', '--eval_batch_size=7']);
      checkConsistent(r, 'test', 24);
      expect(r.report.metrics.invalid_rate).toBe(0);
      expect(new Set(r.predictions.map((p) => p.pred)).size).toBeGreaterThan(1);
      // per-class precision and recall by hand for the first class
      const tp = r.predictions.filter((p) => p.pred === 0 && p.gold === 0).length;
      const predicted = r.predictions.filter((p) => p.pred === 0).length;
      const support = r.predictions.filter((p) => p.gold === 0).length;
      expect(r.report.metrics.per_class[0]!.precision).toBe(predicted === 0 ? 0 : tp / predicted);
      expect(r.report.metrics.per_class[0]!.recall).toBe(support === 0 ? 0 : tp / support);
    });
    it('--json prints the report instead of the text', async () => {
      const out: string[] = [];
      expect(await runEval([`--model=${model}`, `--data_dir=${sample}`, '--limit=3', '--max_new_tokens=12', '--json'], { out: (t) => out.push(t) })).toBe(0);
      const report = JSON.parse(out.join('\n')) as Report;
      expect(report.metrics.n).toBe(3);
    });
  });

  it('--help lists every flag', async () => {
    const out: string[] = [];
    expect(await runEval(['--help'], { out: (t) => out.push(t) })).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/^Usage: rrec-emotion eval/);
    for (const f of ['--model', '--checkpoint', '--adapter', '--split', '--eval_batch_size', '--max_new_tokens', '--data_dir', '--limit', '--output', '--predictions', '--labels', '--system_prompt']) expect(text).toContain(f);
  });

  it('bad flags are refused, naming the flag and the value', async () => {
    const refuse = async (args: string[], message: string | RegExp) => {
      const e = await runEval(args, { out: () => {} }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(CliUsageError);
      expect((e as Error).message).toMatch(message);
    };
    await refuse(['--split=dev'], '--split: expected one of valid, test, train, got "dev"');
    await refuse(['--limit=0'], '--limit: expected an integer >= 1, got "0"');
    await refuse(['--limit=ten'], '--limit: expected an integer, got "ten"');
    await refuse(['--eval_batch_size=0'], '--eval_batch_size: expected an integer >= 1, got "0"');
    await refuse(['--max_new_tokens=-3'], '--max_new_tokens: expected an integer >= 1, got "-3"');
    await refuse(['--splt=test'], /unknown flag "--splt"; did you mean --split\?/);
    await refuse(['valid'], 'unexpected argument "valid"');
    await refuse(['--output='], '--output: expected a non-empty value, got ""');
    await refuse(['--checkpoint=/a', '--adapter=/b'], 'pass either --checkpoint or --adapter, not both (got --checkpoint="/a" and --adapter="/b")');
  });

  it('a missing checkpoint folder or model is an error naming it', async () => {
    const missing = join(root, 'no-such-run', 'checkpoint-3');
    await expect(runEval([`--checkpoint=${missing}`], { out: () => {} })).rejects.toThrow(`${missing}: no such folder`);
    await expect(runEval(['--model=no-such-model'], { out: () => {} })).rejects.toThrow(/unknown model "no-such-model"/);
  });
});
