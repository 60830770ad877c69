/**
 * RecPO's own options (names from the reference project's RecPOTrainingArguments where it has
 * them) and its rollout preset. A RecPO configuration is a train configuration (src/train) plus
 * these fields: splitRecpoConfig() takes them out of the raw input, applies the preset to the
 * train fields the input leaves unset, and checks them, collecting every problem.
 */
import { TrainConfigError, type ConfigIssue } from '../train/config.js';
import { DEFAULT_SIMILARITY_TEMPERATURE } from './decision.js';

export type AdvantageType = 'gaussian' | 'loo';

export interface RecpoOptions {
  /** Weight of p(gold | reasoning) from the similarity softmax in the reward. */
  reward_softmax_weight: number;
  /** Weight of the existing answer/format reward (src/reward `format`) in the reward. */
  reward_format_weight: number;
  /** Weight of R2ec's rank reward (NDCG of the gold label among the labels by similarity). */
  reward_rank_weight: number;
  /** gaussian: (r - mean) / (std + 1e-8) per group; loo: leave-one-out baseline. */
  advantage_type: AdvantageType;
  /** Recompute the label embeddings every this many steps; 0: at start and at each evaluation. */
  item_emb_refresh_steps: number;
  /** Temperature tau of the cosine similarities. */
  similarity_temperature: number;
  /** JSON file mapping each label to a one-line description; null: the built-in ones. */
  label_descriptions: string | null;
  /** R2ec's variant: the decision loss's gradient also flows through the label embeddings (recomputed every step). */
  label_embedding_grad: boolean;
}

export const RECPO_DEFAULTS: Readonly<RecpoOptions> = Object.freeze({
  reward_softmax_weight: 1.0,
  reward_format_weight: 0,
  reward_rank_weight: 0,
  advantage_type: 'gaussian',
  item_emb_refresh_steps: 0,
  similarity_temperature: DEFAULT_SIMILARITY_TEMPERATURE,
  label_descriptions: null,
  label_embedding_grad: false,
});

/** One help line per option (the CLI's --help). */
export const RECPO_HELP: Readonly<Record<keyof RecpoOptions, string>> = Object.freeze({
  reward_softmax_weight: 'RecPO: weight of p(gold) from the similarity softmax in the reward',
  reward_format_weight: 'RecPO: weight of the answer/format reward',
  reward_rank_weight: 'RecPO: weight of the NDCG rank reward of the gold label',
  advantage_type: 'RecPO: gaussian ((r - mean) / (std + 1e-8) per group) or loo (leave-one-out)',
  item_emb_refresh_steps: 'RecPO: recompute label embeddings every this many steps; 0: at start and each evaluation',
  similarity_temperature: 'RecPO: temperature of the cosine similarities',
  label_descriptions: 'RecPO: JSON file {label: one-line description}; default: built-in ones (ED_easy_4)',
  label_embedding_grad: 'RecPO: gradient also through the label embeddings (R2ec variant)',
});

/**
 * The reference's RecPO rollout preset: train fields whose RecPO default differs from GRPO's
 * (K = 4, temperature 0.3, top-k 100, top-p 0.9, 64 new tokens, clip 0.2 / 0.28, no KL).
 * Stopping after `</answer>` is what both trainers do.
 */
export const RECPO_PRESET: Readonly<Record<string, unknown>> = Object.freeze({
  group_size: 4,
  temperature: 0.3,
  top_k: 100,
  top_p: 0.9,
  max_new_tokens: 64,
  epsilon: 0.2,
  epsilon_high: 0.28,
  beta: 0,
});

/** Reference spellings of train fields: epsilon_low is the train config's epsilon. */
const ALIASES: Readonly<Record<string, string>> = Object.freeze({ epsilon_low: 'epsilon' });

function num(issues: ConfigIssue[], field: string, v: unknown, ok: (n: number) => boolean, what: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n) || !ok(n)) {
    issues.push({ field, value: v, problem: `expected ${what}, got ${JSON.stringify(v)}` });
    return NaN;
  }
  return n;
}

/**
 * Splits a raw RecPO configuration into the train configuration's input (preset applied) and the
 * checked RecPO options. Throws a TrainConfigError listing every bad RecPO field.
 */
export function splitRecpoConfig(input: unknown, source = 'config'): { train: Record<string, unknown>; recpo: RecpoOptions } {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input)))
    throw new TrainConfigError([{ field: '(config)', value: input, problem: 'expected an object' }], source);
  const raw: Record<string, unknown> = { ...((input ?? {}) as Record<string, unknown>) };
  const issues: ConfigIssue[] = [];
  for (const [alias, field] of Object.entries(ALIASES)) {
    if (raw[alias] === undefined) continue;
    if (raw[field] !== undefined && raw[field] !== raw[alias])
      issues.push({ field: alias, value: raw[alias], problem: `conflicts with ${field} = ${JSON.stringify(raw[field])} (the same setting)` });
    raw[field] = raw[alias];
    delete raw[alias];
  }
  const given: Partial<Record<keyof RecpoOptions, unknown>> = {};
  for (const k of Object.keys(RECPO_DEFAULTS) as (keyof RecpoOptions)[]) {
    if (raw[k] !== undefined) given[k] = raw[k];
    delete raw[k];
  }
  delete raw.trainer;
  const o: RecpoOptions = { ...RECPO_DEFAULTS };
  const nonneg = (n: number) => n >= 0;
  if (given.reward_softmax_weight !== undefined) o.reward_softmax_weight = num(issues, 'reward_softmax_weight', given.reward_softmax_weight, nonneg, 'a finite number >= 0');
  if (given.reward_format_weight !== undefined) o.reward_format_weight = num(issues, 'reward_format_weight', given.reward_format_weight, nonneg, 'a finite number >= 0');
  if (given.reward_rank_weight !== undefined) o.reward_rank_weight = num(issues, 'reward_rank_weight', given.reward_rank_weight, nonneg, 'a finite number >= 0');
  if (given.item_emb_refresh_steps !== undefined)
    o.item_emb_refresh_steps = num(issues, 'item_emb_refresh_steps', given.item_emb_refresh_steps, (n) => Number.isSafeInteger(n) && n >= 0, 'an integer >= 0');
  if (given.similarity_temperature !== undefined) o.similarity_temperature = num(issues, 'similarity_temperature', given.similarity_temperature, (n) => n > 0, 'a finite number > 0');
  if (given.advantage_type !== undefined) {
    if (given.advantage_type === 'gaussian' || given.advantage_type === 'loo') o.advantage_type = given.advantage_type;
    else issues.push({ field: 'advantage_type', value: given.advantage_type, problem: `expected one of gaussian, loo, got ${JSON.stringify(given.advantage_type)}` });
  }
  if (given.label_descriptions !== undefined) {
    const v = given.label_descriptions;
    if (v === null || (typeof v === 'string' && v.trim() !== '')) o.label_descriptions = v as string | null;
    else issues.push({ field: 'label_descriptions', value: v, problem: `expected a file path or null, got ${JSON.stringify(v)}` });
  }
  if (given.label_embedding_grad !== undefined) {
    const v = given.label_embedding_grad === 'true' ? true : given.label_embedding_grad === 'false' ? false : given.label_embedding_grad;
    if (typeof v === 'boolean') o.label_embedding_grad = v;
    else issues.push({ field: 'label_embedding_grad', value: v, problem: `expected true or false, got ${JSON.stringify(v)}` });
  }
  if (o.reward_softmax_weight === 0 && o.reward_format_weight === 0 && o.reward_rank_weight === 0 && issues.length === 0)
    issues.push({ field: 'reward_softmax_weight', value: 0, problem: 'reward_softmax_weight, reward_format_weight and reward_rank_weight are all 0: no reward' });
  if (issues.length) throw new TrainConfigError(issues, source);
  const train: Record<string, unknown> = { ...RECPO_PRESET };
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) train[k] = v;
  return { train, recpo: o };
}
