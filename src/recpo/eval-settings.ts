/**
 * RecPO's decision rule in `rrec-emotion eval` / `infer`: whether it applies (a RecPO run's
 * weights, found by its recpo.json, or --trainer=recpo), with which temperature and label
 * descriptions (flags, else the run's), and the similarity-decision metrics of the greedy
 * completions that answer parsing scored, with label embeddings from the evaluated weights.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GeneratedSample } from '../engine/index.js';
import type { EvalExample } from '../eval/run.js';
import type { CausalLM, LoraAdapter } from '../model/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { FlagSpecs, ParsedFlags } from '../cli/args.js';
import { RECPO_DEFAULTS } from './config.js';
import { answerTagIds, embedLabels, labelChatIds } from './embed.js';
import { similarityEvaluation, type SimilarityEvaluation } from './evaluate.js';
import { labelDescriptions } from './label-descriptions.js';

export const RECPO_EVAL_FLAGS: FlagSpecs = {
  trainer: { type: 'string', metavar: 'grpo|recpo', help: "recpo: also decide by hidden-state similarity to the label embeddings (default: the run's trainer, else grpo)" },
  similarity_temperature: { type: 'float', help: `RecPO: temperature of the cosine similarities (default: the run's, else ${RECPO_DEFAULTS.similarity_temperature})` },
  label_descriptions: { type: 'string', metavar: 'FILE', help: "RecPO: JSON file {label: one-line description} (default: the run's, else the built-in ones)" },
};

export interface RecpoEvalSettings {
  tau: number;
  /** label -> description, from the run's recpo.json; null: take them from `file` or the built-in ones. */
  descriptions: Record<string, string> | null;
  file: string | null;
}

/** The RecPO settings for evaluating weights from `weightsDir`, or null when the rule does not apply. */
export function recpoEvalSettings(flags: ParsedFlags, weightsDir: string | null): RecpoEvalSettings | null {
  let saved: Record<string, unknown> | null = null;
  for (const d of weightsDir ? [weightsDir, dirname(weightsDir), dirname(dirname(weightsDir))] : []) {
    const f = join(d, 'recpo.json');
    if (existsSync(f)) {
      saved = JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>;
      break;
    }
  }
  const trainer = (flags.trainer as string | undefined) ?? (saved ? 'recpo' : 'grpo');
  if (trainer !== 'grpo' && trainer !== 'recpo') throw new Error(`--trainer: expected one of grpo, recpo, got "${trainer}"`);
  if (trainer === 'grpo') return null;
  const tau = (flags.similarity_temperature as number | undefined) ?? (saved?.similarity_temperature as number | undefined) ?? RECPO_DEFAULTS.similarity_temperature;
  if (!(tau > 0)) throw new Error(`--similarity_temperature: expected a number > 0, got ${tau}`);
  const file = (flags.label_descriptions as string | undefined) ?? null;
  const descriptions = file === null ? ((saved?.label_descriptions_resolved as Record<string, string> | undefined) ?? null) : null;
  return { tau, descriptions, file };
}

/** Similarity-decision metrics of the given completions under the evaluated weights. */
export async function recpoEvaluate(
  model: { lm: CausalLM; adapter: LoraAdapter | null; tokenizer: Tokenizer },
  examples: readonly EvalExample[],
  completions: readonly Pick<GeneratedSample, 'tokens' | 'text'>[],
  labels: readonly string[],
  s: RecpoEvalSettings,
): Promise<SimilarityEvaluation> {
  const desc = s.descriptions && labels.every((l) => typeof s.descriptions![l] === 'string') ? labels.map((l) => s.descriptions![l]!) : await labelDescriptions(labels, s.file);
  const E = await embedLabels(model.lm, model.adapter, labels.map((l, i) => labelChatIds(model.tokenizer, l, desc[i]!)));
  return similarityEvaluation(model.lm, model.adapter, model.tokenizer, examples, completions, E, { labels, tau: s.tau, tagIds: answerTagIds(model.tokenizer) });
}
