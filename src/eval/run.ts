/**
 * Evaluation run: greedy completions of every example through the sampling engine, the answer
 * parsed from each, and the classification metrics of src/eval/metrics.ts. An unparseable answer
 * counts as invalid (wrong for accuracy, its own column in the confusion matrix).
 */
import type { Engine, GeneratedSample } from '../engine/index.js';
import type { LoraAdapter } from '../model/index.js';
import { parseAnswer, type ParseOptions } from '../reward/index.js';
import { classificationMetrics, INVALID_PREDICTION, type EvalMetrics } from './metrics.js';

export interface EvalExample {
  /** Chat-templated prompt ids. */
  promptIds: ArrayLike<number>;
  /** Gold label index into `labels`. */
  label: number;
}

export interface EvaluateOptions {
  labels: readonly string[];
  adapter?: LoraAdapter | null;
  maxNewTokens: number;
  /** Prompts per generate() call (the engine batches them continuously). Default 32. */
  batchSize?: number;
  /** Stop strings (e.g. the answer's closing tag). */
  stop?: readonly string[];
  parse?: ParseOptions;
  /** Constrain decoding after `<answer>` to one of the labels (measures the choice, not the format). */
  constrainedAnswer?: boolean;
  /** Called after each batch with the number of examples done. */
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluateResult {
  metrics: EvalMetrics;
  /** Predicted label index per example (-1 = invalid answer). */
  predictions: Int32Array;
  completions: GeneratedSample[];
}

/** Greedy-decodes every example and scores the parsed answers. Needs an engine built with a tokenizer. */
export async function evaluate(engine: Engine, examples: readonly EvalExample[], opts: EvaluateOptions): Promise<EvaluateResult> {
  const batch = opts.batchSize ?? 32;
  const predictions = new Int32Array(examples.length);
  const completions: GeneratedSample[] = [];
  for (let i0 = 0; i0 < examples.length; i0 += batch) {
    const chunk = examples.slice(i0, i0 + batch);
    const results = await engine.generate(
      chunk.map((ex) => ({
        prompt: ex.promptIds,
        n: 1,
        temperature: 0,
        maxTokens: opts.maxNewTokens,
        stop: opts.stop,
        constrainedAnswer: opts.constrainedAnswer ? { labels: opts.labels } : undefined,
      })),
      { adapter: opts.adapter ?? null },
    );
    results.forEach((r, k) => {
      const s = r.samples[0]!;
      if (s.text === undefined) throw new Error('evaluate: the engine has no tokenizer, so completions have no text to parse');
      const parsed = parseAnswer(s.text, opts.labels, opts.parse);
      predictions[i0 + k] = parsed.ok ? parsed.index : INVALID_PREDICTION;
      completions.push(s);
    });
    opts.onProgress?.(Math.min(examples.length, i0 + batch), examples.length);
  }
  const metrics = classificationMetrics({
    gold: examples.map((e) => e.label),
    pred: predictions,
    numClasses: opts.labels.length,
    outputLengths: completions.map((c) => c.tokens.length),
  });
  return { metrics, predictions, completions };
}
