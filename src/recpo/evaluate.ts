/**
 * RecPO's decision rule on given completions: each prompt + reasoning, cut or extended to end
 * with `<answer>`, is embedded by the embedding-only forward, and the predicted label is the one
 * with the highest cosine similarity (src/recpo/decision.ts). The metrics are the same
 * classification metrics as answer parsing (src/eval/metrics.ts), so the two rules compare
 * directly on the same greedy completions; the similarity rule never abstains (no invalid).
 */
import type { GeneratedSample } from '../engine/index.js';
import { classificationMetrics, type EvalMetrics } from '../eval/metrics.js';
import type { EvalExample } from '../eval/run.js';
import type { CausalLM, LoraAdapter } from '../model/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { argmax, similarityLogits, softmax } from './decision.js';
import { decisionTokens, embedSequences } from './embed.js';

export interface SimilarityEvaluation {
  metrics: EvalMetrics;
  /** Label with the highest similarity, per example. */
  predictions: Int32Array;
  /** p(label | reasoning) per example [L]. */
  probs: Float64Array[];
}

export async function similarityEvaluation(
  lm: CausalLM,
  adapter: LoraAdapter | null,
  tokenizer: Pick<Tokenizer, 'encode'>,
  examples: readonly EvalExample[],
  completions: readonly Pick<GeneratedSample, 'tokens' | 'text'>[],
  labelEmbeddings: Float64Array,
  opts: { labels: readonly string[]; tau: number; tagIds: Int32Array; maxTokens?: number },
): Promise<SimilarityEvaluation> {
  if (completions.length !== examples.length) throw new RangeError(`similarityEvaluation: ${completions.length} completions for ${examples.length} examples`);
  const hidden = await embedSequences(lm, adapter, examples.map((ex, i) => decisionTokens(ex.promptIds, completions[i]!, opts.tagIds, tokenizer)), opts.maxTokens ?? 4096);
  const probs = hidden.map((h) => softmax(similarityLogits(h, labelEmbeddings, opts.tau)));
  const predictions = Int32Array.from(probs, (p) => argmax(p));
  const metrics = classificationMetrics({
    gold: examples.map((e) => e.label),
    pred: predictions,
    numClasses: opts.labels.length,
    outputLengths: completions.map((c) => c.tokens.length),
  });
  return { metrics, predictions, probs };
}
