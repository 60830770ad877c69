/**
 * Reward functions: pure functions of (example, completion text) -> number, and their weighted
 * sum, in the manner of TRL's `reward_funcs` + `reward_weights`.
 *
 * `completion` is the generated text only (no prompt), decoded without the stop token.
 *
 * - correctnessReward: 1 when the parsed answer is the gold label, else 0 (invalid answers: 0).
 * - formatReward: 1 when the completion is "reasoning, then exactly one answer tag, then nothing",
 *   else 0. Binary on purpose (no partial credit): one clear target is easier to read in logs and
 *   to weigh against correctness. It is strict where the parser is lenient: the tags must be
 *   spelled exactly `<answer>` and `</answer>`, and no other answer tag may appear anywhere. It
 *   does not ask whether the answer is a valid label; that is correctness's job.
 */
import { ANSWER_CLOSE, ANSWER_OPEN, ANSWER_TAG } from '../prompt/answer.js';
import { normalizeAnswerText } from './labels.js';
import { createAnswerParser, parseAnswer, type ParseOptions, type ParsedAnswer } from './parse.js';

export interface RewardExample {
  /** The gold label: its index in `labels`, or the label itself. */
  label: number | string;
  labels: readonly string[];
}

export type RewardFn = (example: RewardExample, completion: string) => number;

/** The gold label's index; throws (a data error, not a model error) when it is not in the list. */
export function goldIndex(example: RewardExample): number {
  const { label, labels } = example;
  if (typeof label === 'number') {
    if (!Number.isInteger(label) || label < 0 || label >= labels.length) {
      throw new Error(`gold label index ${label} is out of range for labels ${JSON.stringify(labels)}`);
    }
    return label;
  }
  const want = normalizeAnswerText(label);
  const index = labels.findIndex((l) => normalizeAnswerText(l) === want);
  if (index < 0) throw new Error(`gold label ${JSON.stringify(label)} is not one of ${JSON.stringify(labels)}`);
  return index;
}

/** correctnessReward with other synonyms. */
export function makeCorrectnessReward(options: ParseOptions = {}): RewardFn {
  return (example, completion) => {
    const gold = goldIndex(example);
    const parsed = parseAnswer(completion, example.labels, options);
    return parsed.ok && parsed.index === gold ? 1 : 0;
  };
}

/** 1 if the parsed answer is the gold label, else 0. */
export const correctnessReward: RewardFn = makeCorrectnessReward();

export interface FormatOptions {
  /** Words (runs of letters/digits) the reasoning before the tag needs. Default 1. */
  minReasoningWords?: number;
}

const ANY_TAG = new RegExp(`<\\s*/?\\s*${ANSWER_TAG}\\s*>`, 'giu');
const WORD = /[\p{L}\p{N}]+/gu;

/** True when `completion` is reasoning, then one exact `<answer>x</answer>`, then only whitespace. */
export function isWellFormatted(completion: string, options: FormatOptions = {}): boolean {
  const tags = [...completion.matchAll(ANY_TAG)];
  const [open, close] = tags;
  if (tags.length !== 2 || open === undefined || close === undefined) return false;
  if (open[0] !== ANSWER_OPEN || close[0] !== ANSWER_CLOSE) return false;
  const openAt = open.index ?? 0;
  const closeAt = close.index ?? 0;
  if (completion.slice(closeAt + close[0].length).trim() !== '') return false;
  if (completion.slice(openAt + open[0].length, closeAt).trim() === '') return false;
  const words = completion.slice(0, openAt).match(WORD)?.length ?? 0;
  return words >= (options.minReasoningWords ?? 1);
}

/** formatReward with another minimum reasoning length. */
export function makeFormatReward(options: FormatOptions = {}): RewardFn {
  return (_example, completion) => (isWellFormatted(completion, options) ? 1 : 0);
}

/** 1 for reasoning followed by exactly one final `<answer>...</answer>`, else 0. */
export const formatReward: RewardFn = makeFormatReward();

export interface WeightedReward {
  /** Key in `parts`; unique. */
  name: string;
  fn: RewardFn;
  /** Default 1. */
  weight?: number;
}

export interface CombinedReward {
  /** Σ weight × part. */
  total: number;
  /** Each reward's unweighted value, by name. */
  parts: Record<string, number>;
  /** The completion's answer, parsed once with the combiner's parse options (for tallies). */
  parsed: ParsedAnswer;
}

export type CombinedRewardFn = ((example: RewardExample, completion: string) => CombinedReward) & {
  readonly names: readonly string[];
  readonly weights: readonly number[];
};

/**
 * Weighted sum of rewards. A reward that returns a non-finite number throws, naming it: a NaN
 * would otherwise spread through the group advantages.
 */
export function combineRewards(rewards: readonly WeightedReward[], parseOptions: ParseOptions = {}): CombinedRewardFn {
  if (rewards.length === 0) throw new Error('combineRewards: no reward functions');
  const names = rewards.map((r) => r.name);
  const weights = rewards.map((r) => r.weight ?? 1);
  names.forEach((name, i) => {
    if (typeof name !== 'string' || name === '') throw new Error(`combineRewards: reward ${i} has no name`);
    if (names.indexOf(name) !== i) throw new Error(`combineRewards: the name "${name}" is used twice`);
    const w = weights[i];
    if (typeof w !== 'number' || !Number.isFinite(w)) {
      throw new Error(`combineRewards: reward "${name}" has weight ${String(w)}; expected a finite number`);
    }
  });
  const fn = (example: RewardExample, completion: string): CombinedReward => {
    const parts: Record<string, number> = {};
    let total = 0;
    rewards.forEach((r, i) => {
      const value = r.fn(example, completion);
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(`reward "${r.name}" returned ${String(value)}; expected a finite number`);
      }
      parts[r.name] = value;
      total += (weights[i] ?? 1) * value;
    });
    return { total, parts, parsed: createAnswerParser(example.labels, parseOptions)(completion) };
  };
  return Object.assign(fn, { names: Object.freeze([...names]), weights: Object.freeze([...weights]) });
}
