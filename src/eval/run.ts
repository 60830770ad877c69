/**
 * Evaluation run: greedy completions of every example through the sampling engine, the answer
 * parsed from each, and the classification metrics of src/eval/metrics.ts. An unparseable answer
 * counts as invalid (wrong for accuracy, its own column in the confusion matrix).
 */
import { EngineRequestError, type Engine, type GeneratedSample } from '../engine/index.js';
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
  /** Names example i in errors, e.g. "valid row 17"; default "example i". */
  describe?: (index: number) => string;
  /**
   * Longest prompt in tokens (TRL's max_prompt_length); a longer one is cut (`longPrompts`
   * 'truncate', the default: TRL keeps the last max_prompt_length tokens, so the chat template's
   * assistant header stays) or skipped (left out of the metrics). Counted in the result.
   * Absent: a prompt that does not fit the model's context is an error naming the example.
   */
  maxPromptLength?: number;
  longPrompts?: 'truncate' | 'skip';
}

export interface EvaluateResult {
  metrics: EvalMetrics;
  /** Predicted label index per example (-1 = invalid answer). */
  predictions: Int32Array;
  completions: GeneratedSample[];
  /** Examples whose prompt was cut to maxPromptLength. */
  promptsTruncated: number;
  /** Examples skipped for a prompt longer than maxPromptLength: not in the metrics (prediction -1, an empty completion). */
  skipped: number[];
}

/** Prompts cut or skipped under maxPromptLength (truncate: the last maxLength tokens, as TRL). */
export function limitPrompts<E extends { promptIds: ArrayLike<number> }>(
  examples: readonly E[],
  maxLength: number,
  mode: 'truncate' | 'skip',
): { prompts: (ArrayLike<number> | null)[]; truncated: number; skipped: number[] } {
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`max_prompt_length must be a positive integer, got ${maxLength}`);
  let truncated = 0;
  const skipped: number[] = [];
  const prompts = examples.map((ex, i) => {
    const p = ex.promptIds;
    if (p.length <= maxLength) return p;
    if (mode === 'skip') {
      skipped.push(i);
      return null;
    }
    truncated++;
    return Int32Array.from(p).subarray(p.length - maxLength);
  });
  return { prompts, truncated, skipped };
}

/** Greedy-decodes every example and scores the parsed answers. Needs an engine built with a tokenizer. */
export async function evaluate(engine: Engine, examples: readonly EvalExample[], opts: EvaluateOptions): Promise<EvaluateResult> {
  const batch = opts.batchSize ?? 32;
  const describe = opts.describe ?? ((i: number) => `example ${i}`);
  const limited = opts.maxPromptLength !== undefined ? limitPrompts(examples, opts.maxPromptLength, opts.longPrompts ?? 'truncate') : null;
  const prompts = limited?.prompts ?? examples.map((e) => e.promptIds);
  const predictions = new Int32Array(examples.length);
  const completions: GeneratedSample[] = new Array(examples.length);
  const todo = prompts.flatMap((p, i) => (p === null ? [] : [i]));
  for (const i of limited?.skipped ?? []) {
    predictions[i] = INVALID_PREDICTION;
    completions[i] = { tokens: new Int32Array(0), logprobs: new Float32Array(0), finishReason: 'abort', text: '' };
  }
  for (let j0 = 0; j0 < todo.length; j0 += batch) {
    const chunk = todo.slice(j0, j0 + batch);
    let results;
    try {
      results = await engine.generate(
        chunk.map((i) => ({
          prompt: prompts[i]!,
          n: 1,
          temperature: 0,
          maxTokens: opts.maxNewTokens,
          stop: opts.stop,
          constrainedAnswer: opts.constrainedAnswer ? { labels: opts.labels } : undefined,
        })),
        { adapter: opts.adapter ?? null },
      );
    } catch (e) {
      if (e instanceof EngineRequestError) {
        const i = chunk[e.request]!;
        const hint = e.kind === 'prompt_too_long' ? '; pass --max_prompt_length (with --long_prompts=truncate or skip) to cut or skip such prompts' : '';
        throw new Error(`evaluate: ${describe(i)}: ${e.message.replace(/^Engine: requests\[\d+\]:? /, '')}${hint}`, { cause: e });
      }
      throw e;
    }
    results.forEach((r, k) => {
      const s = r.samples[0]!;
      if (s.text === undefined) throw new Error('evaluate: the engine has no tokenizer, so completions have no text to parse');
      const parsed = parseAnswer(s.text, opts.labels, opts.parse);
      predictions[chunk[k]!] = parsed.ok ? parsed.index : INVALID_PREDICTION;
      completions[chunk[k]!] = s;
    });
    opts.onProgress?.(Math.min(todo.length, j0 + batch), todo.length);
  }
  const metrics = classificationMetrics({
    gold: todo.map((i) => examples[i]!.label),
    pred: Int32Array.from(todo, (i) => predictions[i]!),
    numClasses: opts.labels.length,
    outputLengths: todo.map((i) => completions[i]!.tokens.length),
  });
  return { metrics, predictions, completions, promptsTruncated: limited?.truncated ?? 0, skipped: limited?.skipped ?? [] };
}
