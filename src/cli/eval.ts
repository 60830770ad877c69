/**
 * `rrec-emotion eval`: greedy evaluation of a model (the built-in tiny one, a registry name or a
 * folder; with a trainer checkpoint, best/ or a PEFT adapter) on a split of a dataset: accuracy,
 * macro-F1, per-class precision / recall / F1, invalid-answer rate, confusion matrix, mean output
 * length. `--output` writes the metrics as JSON, `--predictions` one JSON line per example (text,
 * gold, prediction, completion); both atomically.
 *
 * Exit codes: 0 evaluated, 1 a model / data / I/O problem, 2 bad usage (flag named).
 */
import { resolve } from 'node:path';
import { evaluate } from '../eval/run.js';
import { boundTextForPrompt, checkGenerationLengths, checkTextBeforeTokenizing } from '../eval/lengths.js';
import { formatEvalReport, INVALID_PREDICTION } from '../eval/metrics.js';
import { defaultDataDir, openDataset } from '../train/dataset-source.js';
import { recpoEvalSettings, recpoEvaluate, RECPO_EVAL_FLAGS } from '../recpo/eval-settings.js';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { CliUsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { intAtLeast, noPositional, nonEmpty, oneOf } from './flag-values.js';
import { describeModel, engineFor, loadModelFromFlags, maxNewTokens, MODEL_FLAGS, prompterFor, promptLabels, TRAIN_DEFAULTS } from './model-flags.js';

const SPLITS = ['valid', 'test', 'train'] as const;

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  data_dir: { type: 'string', metavar: 'DIR', help: "dataset: a preprocessed folder or CSV splits (default: the run's, else ../shared/data/ED_easy_4 when present, else the bundled sample)" },
  dataset_name: { type: 'string', metavar: 'NAME', help: "dataset name, for the labels of CSV splits (default: the run's, else ED_easy_4)" },
  split: { type: 'string', metavar: SPLITS.join('|'), help: 'the split to evaluate', default: 'valid' },
  limit: { type: 'int', help: 'evaluate only the first N examples of the split (default: all)' },
  eval_batch_size: { type: 'int', help: "prompts per generation batch (default: the run's, else 32)" },
  output: { type: 'string', metavar: 'FILE', help: 'also write the metrics as JSON to FILE' },
  predictions: { type: 'string', metavar: 'FILE', help: 'also write one JSON line per example (text, gold, pred, completion) to FILE' },
  json: { type: 'boolean', help: 'print the metrics JSON instead of the text report', default: false },
  max_prompt_length: { type: 'int', metavar: 'N', help: 'longest prompt in tokens; longer ones are cut (keeping the last N tokens, as TRL) or skipped, and counted (default: none; a prompt past the context is an error)' },
  long_prompts: { type: 'string', metavar: 'truncate|skip', help: 'what --max_prompt_length does to a longer prompt', default: 'truncate' },
  ...RECPO_EVAL_FLAGS,
};

const USAGE = 'rrec-emotion eval [--model=NAME|DIR] [--checkpoint=DIR | --adapter=DIR] [--split=valid|test] [flags]';
const DESCRIPTION = [
  'Greedy-decodes every example of a split, parses the <answer> tag of each completion and prints',
  'accuracy, macro-F1, per-class precision / recall / F1, the invalid-answer rate, the confusion',
  'matrix and the mean output length. With the weights of a training run (--checkpoint), the',
  "run's model, labels, system prompt, generation budget and data are the defaults. For a RecPO",
  'run (or --trainer=recpo) the same completions are also decided by hidden-state similarity to',
  'the label embeddings, and both decision rules are reported.',
].join('\n');

export function evalHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, FLAGS);
}

export interface EvalCliIO {
  out?: (text: string) => void;
}

export async function runEval(argv: string[], io: EvalCliIO = {}): Promise<number> {
  const out = io.out ?? ((t: string) => console.log(t));
  if (argv.includes('--help') || argv.includes('-h')) {
    out(evalHelp());
    return 0;
  }
  const { flags, positional } = parseFlags(argv, FLAGS);
  noPositional(positional);
  const split = oneOf(flags, 'split', SPLITS, 'valid');
  const limit = intAtLeast(flags, 'limit', 1);
  const outputFile = nonEmpty(flags, 'output');
  const predictionsFile = nonEmpty(flags, 'predictions');
  intAtLeast(flags, 'eval_batch_size', 1);
  intAtLeast(flags, 'max_new_tokens', 1);
  const maxPromptLength = intAtLeast(flags, 'max_prompt_length', 1) ?? null;
  const longPrompts = oneOf(flags, 'long_prompts', ['truncate', 'skip'] as const, 'truncate');

  const model = await loadModelFromFlags(flags);
  try {
    const run = model.run;
    const dataDir = nonEmpty(flags, 'data_dir') ?? run?.data_dir ?? defaultDataDir();
    const { dataset, arrowDir } = await openDataset(dataDir, { datasetName: nonEmpty(flags, 'dataset_name') ?? run?.config.dataset_name ?? 'ED_easy_4', labels: (flags.labels as string[] | undefined) ?? run?.config.labels ?? null });
    const dataShown = arrowDir ?? resolve(dataDir); // a CSV folder is preprocessed into a temporary folder
    if (!dataset.splitNames.includes(split)) throw new CliUsageError(`--split: the dataset at ${dataShown} has no split "${split}" (it has ${dataset.splitNames.join(', ')})`);
    const labels = promptLabels(flags, model, dataset.labelNames);
    if (labels.length !== dataset.labelNames.length)
      throw new CliUsageError(`--labels: ${labels.length} labels [${labels.join(', ')}] for the dataset at ${dataShown} with ${dataset.labelNames.length} [${dataset.labelNames.join(', ')}]`);
    const prompter = prompterFor(flags, model, labels);
    const rows = dataset.split(split);
    const n = Math.min(rows.numRows, limit ?? rows.numRows);
    const ctx = model.lm.config.maxPositions;
    const examples = Array.from({ length: n }, (_, i) => {
      const ex = rows.get(i);
      checkTextBeforeTokenizing(ex.text, model.tokenizer, ctx, `${split} row ${i}`, maxPromptLength);
      const text = maxPromptLength === null ? ex.text : boundTextForPrompt(ex.text, model.tokenizer, maxPromptLength);
      return { text: ex.text, promptIds: prompter.render({ text }).ids, label: ex.label };
    });
    const budget = maxNewTokens(flags, model);
    const engine = engineFor(model);
    checkGenerationLengths({
      engine,
      maxNewTokens: budget,
      sets: [{ split, prompts: examples.map((e) => e.promptIds) }],
      kvBudgetText: `the run's --kv_memory_budget ${run?.config.kv_memory_budget ?? TRAIN_DEFAULTS.kv_memory_budget}`,
      maxPromptLength,
      warn: (m) => out(m),
    });
    const t0 = performance.now();
    const r = await evaluate(engine, examples, {
      labels,
      adapter: model.adapter,
      maxNewTokens: budget,
      batchSize: intAtLeast(flags, 'eval_batch_size', 1, run?.config.eval_batch_size ?? 32),
      stop: ['</answer>'],
      describe: (i) => `${split} row ${i}`,
      ...(maxPromptLength !== null ? { maxPromptLength, longPrompts } : {}),
    });
    const recpo = recpoEvalSettings(flags, model.weightsDir);
    // rows skipped under --max_prompt_length have no completion: left out of both decision rules
    const skippedRows = new Set(r.skipped);
    const kept = examples.map((_, i) => i).filter((i) => !skippedRows.has(i));
    const sim = recpo ? await recpoEvaluate(model, kept.map((i) => examples[i]!), kept.map((i) => r.completions[i]!), labels, recpo) : null;
    const seconds = (performance.now() - t0) / 1000;
    const prompts = { max_prompt_length: maxPromptLength, long_prompts: maxPromptLength === null ? null : longPrompts, truncated: r.promptsTruncated, skipped: r.skipped.length, skipped_rows: r.skipped };
    const report = {
      model: model.modelDir, weights: model.weightsDir, weights_kind: model.weights?.kind ?? null, data_dir: dataShown, split, limit: limit ?? null, max_new_tokens: budget, prompts, labels, metrics: r.metrics,
      ...(sim ? { similarity_metrics: sim.metrics, similarity_temperature: recpo!.tau } : {}),
    };

    if (outputFile) await writeFileAtomic(resolve(outputFile), `${JSON.stringify(report, null, 2)}\n`);
    if (predictionsFile) {
      const lines = examples.map((ex, i) => {
        const p = r.predictions[i]!;
        const sp = sim ? { similarity_pred: sim.predictions[i]!, similarity_pred_label: labels[sim.predictions[i]!], similarity_probs: Array.from(sim.probs[i]!) } : {};
        return JSON.stringify({ index: i, text: ex.text, gold: ex.label, gold_label: labels[ex.label], pred: p, pred_label: p === INVALID_PREDICTION ? null : labels[p], ...sp, completion: r.completions[i]!.text ?? '', tokens: r.completions[i]!.tokens.length });
      });
      await writeFileAtomic(resolve(predictionsFile), lines.map((l) => `${l}\n`).join(''));
    }
    if (flags.json === true) out(JSON.stringify(report, null, 2));
    else {
      const cut = maxPromptLength === null ? [] : [`prompts  ${r.promptsTruncated} cut to ${maxPromptLength} tokens, ${r.skipped.length} skipped (not in the metrics)`];
      out([...describeModel(model), `data     ${dataShown} (${split}, ${n} of ${rows.numRows} examples)`, ...cut, `time     ${seconds.toFixed(1)} s`, ''].join('\n'));
      if (sim) {
        out(`RecPO similarity decision (tau ${recpo!.tau}): hidden state at <answer> vs the label embeddings\n`);
        out(formatEvalReport(sim.metrics, labels));
        out('\nanswer parsing of the same completions:\n');
      }
      out(formatEvalReport(r.metrics, labels));
      if (outputFile) out(`\nmetrics written to ${resolve(outputFile)}`);
      if (predictionsFile) out(`predictions written to ${resolve(predictionsFile)}`);
    }
    return 0;
  } finally {
    model.lm.free();
  }
}
