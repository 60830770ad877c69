/**
 * What a run's report shows, read from its folder (nothing else is needed, so `rrec-emotion report`
 * rebuilds it after the fact):
 *
 *   run.json        the configuration, model and data folders, labels (run-info.ts)
 *   metrics.jsonl   one record per GRPO step (metrics-log.ts)
 *   eval.jsonl      one record per valid evaluation, with its confusion matrix and sample
 *                   completions (EvalLogRecord below; the trainer writes them)
 *
 * The best evaluation is the one with the highest accuracy, the earliest on ties: the rule that
 * chose best/ (early-stopping.ts).
 */
import { join } from 'node:path';
import type { ClassMetrics } from '../eval/metrics.js';
import { pathKind } from '../util/atomic-fs.js';
import { readMetricsLog, type StepRecord } from '../train/metrics-log.js';
import { readRunInfo, RUN_INFO_FILE, type RunInfo } from '../train/run-info.js';

/** One example's completion, as an evaluation logs it. */
export interface SampleCompletion {
  /** The situation (the dataset's text). */
  text: string;
  gold: string;
  /** The parsed label; null for an invalid answer. */
  pred: string | null;
  /** The whole completion: reasoning, then `<answer>...</answer>`. */
  completion: string;
}

/** A line of eval.jsonl. */
export interface EvalLogRecord {
  step: number;
  epoch: number;
  split: string;
  accuracy: number;
  macro_f1: number;
  invalid_rate: number;
  mean_output_length: number | null;
  per_class?: ClassMetrics[];
  /** K rows (gold) x K + 1 columns (predicted, then invalid). */
  confusion?: number[][];
  /** The first examples of the split, the same at every evaluation. */
  samples?: SampleCompletion[];
}

export interface RunData {
  runDir: string;
  /** run.json, or null when absent. */
  info: RunInfo | null;
  steps: StepRecord[];
  evals: EvalLogRecord[];
  best: EvalLogRecord | null;
  last: EvalLogRecord | null;
  labels: string[];
}

export async function readRunData(runDir: string): Promise<RunData> {
  if ((await pathKind(runDir)) !== 'dir') throw new Error(`${runDir}: not a folder (expected a run folder with metrics.jsonl / eval.jsonl)`);
  const infoFile = join(runDir, RUN_INFO_FILE);
  const info = (await pathKind(infoFile)) === 'other' ? await readRunInfo(infoFile) : null;
  const steps = await readMetricsLog(join(runDir, 'metrics.jsonl'));
  const evals = ((await readMetricsLog(join(runDir, 'eval.jsonl'))) as unknown as EvalLogRecord[]).filter((e) => (e.split ?? 'valid') === 'valid');
  if (!info && steps.length === 0 && evals.length === 0) throw new Error(`${runDir}: holds no run.json, metrics.jsonl or eval.jsonl; not a training run folder`);
  let best: EvalLogRecord | null = null;
  for (const e of evals) if (best === null || e.accuracy > best.accuracy) best = e;
  const labels = info?.labels ?? [];
  return { runDir, info, steps, evals, best, last: evals.length > 0 ? evals[evals.length - 1]! : null, labels };
}
