/**
 * TrainConfig: every setting of a GRPO run, typed, documented and validated in one place.
 *
 * One table, TRAIN_CONFIG_FIELDS, holds each field's name, type, default and help line. The
 * validator (resolveTrainConfig), the CLI flag specs (trainFlagSpecs) and the --help text are all
 * generated from it, so a field cannot be documented in one place and parsed differently in
 * another. Field names and defaults follow the reference project (RREC-Emotion, a TRL GRPOTrainer
 * script) and, where it is silent, TRL's GRPOConfig / HF TrainingArguments.
 *
 * Validation collects every problem before throwing one TrainConfigError: unknown fields (with the
 * close matches), wrong types and out-of-range values, each naming the field and the value.
 *
 * A few defaults are derived from other fields (`null` in the table): run_name (model + start
 * time), eval_steps (= save_steps), epsilon_high (= epsilon), scale_rewards (from
 * advantage_variant) and sft_epochs (2 for the built-in tiny model, 0 otherwise).
 */

import path from 'node:path';
import type { FlagSpecs, FlagType, ParsedFlags } from '../cli/args.js';
import type { AdvantageVariant, LossType } from '../grpo/types.js';
import { ALL_LORA_TARGETS, type LoraTarget } from '../model/causal-lm.js';
import type { LrSchedulerType } from './schedule.js';

/** The project's own small Qwen2-architecture model, built on the fly (no download). */
export const BUILTIN_MODEL = 'tiny';

/** The seven linear layers LoRA can adapt, in the order PEFT lists them for Llama-style models (native/include/rrec/options.def). */
export const LORA_TARGET_MODULES: readonly LoraTarget[] = ALL_LORA_TARGETS;

/** Reward function names the trainer knows (see reward-registry.ts). */
export const REWARD_FUNC_NAMES = Object.freeze(['correctness', 'format'] as const);
export type RewardFuncName = (typeof REWARD_FUNC_NAMES)[number];

/** TRL's `scale_rewards`: which standard deviation divides the centred rewards. */
export type ScaleRewards = 'group' | 'batch' | 'none';

/** sft_epochs when left at its default and the model is the built-in tiny one. */
export const TINY_MODEL_SFT_EPOCHS = 2;

/** A fully resolved training configuration: every field present and checked. */
export interface TrainConfig {
  // ---- model and run ----
  /** Model: 'tiny' (the built-in small model), a name from the paths registry ('qwen', 'gemma', 'Qwen/Qwen2.5-0.5B-Instruct', ...) or a Hugging Face model folder. */
  model: string;
  /** JSON file mapping model names to folders; null: ./paths.json when it exists (see paths.ts). */
  paths_file: string | null;
  /** Run folder name under output_dir; default `<model>-<UTC yyyymmdd-HHMMSS>` of the start time. */
  run_name: string;
  /** Parent folder of run folders. */
  output_dir: string;
  /** false: start fresh; true: the latest checkpoint of output_dir/run_name; a string: that checkpoint folder. */
  resume_from_checkpoint: string | boolean;
  /** Seed of every random choice (data order, sampling, LoRA init, dropout). */
  seed: number;

  // ---- data ----
  /** Dataset name (label list and card for built-in ones, see src/data/spec.ts). */
  dataset_name: string;
  /** Folder with train/valid/test.csv, or a preprocessed dataset; null: the CLI's default (../shared/data/ED_easy_4 when present, else the bundled sample). */
  data_dir: string | null;
  /** Label names in label-id order; null: the dataset's own. */
  labels: string[] | null;
  /** System prompt; null: none (the prompter's default prompt). */
  system_prompt: string | null;

  // ---- batch sizes and length ----
  /** Prompts per optimizer step; each is sampled group_size times. */
  train_batch_size: number;
  /** Prompts per generation batch during evaluation. */
  eval_batch_size: number;
  /** Completions sampled per prompt (TRL: num_generations). */
  group_size: number;
  /** Generation budget in tokens per completion (TRL: max_completion_length). */
  max_new_tokens: number;

  // ---- optimisation ----
  /** Passes over the training prompts. */
  num_train_epochs: number;
  /** Stop after this many optimizer steps; -1: num_train_epochs decides. */
  max_steps: number;
  /** Peak learning rate of AdamW. */
  learning_rate: number;
  /** Shape of the learning rate after warm-up. */
  lr_scheduler_type: LrSchedulerType;
  /** Optimizer steps of linear warm-up from 0 to learning_rate. */
  warmup_steps: number;
  /** AdamW decoupled weight decay. */
  weight_decay: number;
  /** AdamW beta1. */
  adam_beta1: number;
  /** AdamW beta2. */
  adam_beta2: number;
  /** AdamW epsilon. */
  adam_epsilon: number;
  /** Clip the global gradient norm to this; 0: no clipping. */
  max_grad_norm: number;

  // ---- GRPO ----
  /** KL coefficient against the reference model; 0 skips the reference forward. */
  beta: number;
  /** Lower clip range of the ratio (1 - epsilon). */
  epsilon: number;
  /** Upper clip range of the ratio (1 + epsilon_high); default = epsilon. */
  epsilon_high: number;
  /** How per-token losses are aggregated (see src/grpo/types.ts). */
  loss_type: LossType;
  /** Group-relative advantage estimator (see src/grpo/advantages.ts). */
  advantage_variant: AdvantageVariant;
  /** TRL's scale_rewards, kept consistent with advantage_variant: group = groupStd, batch = batchStd, none = meanOnly / leaveOneOut. */
  scale_rewards: ScaleRewards;
  /** Optimizer steps on each generation batch (TRL's mu). */
  num_iterations: number;
  /** Truncated completions (no EOS within max_new_tokens) take no part in the loss. */
  mask_truncated_completions: boolean;
  /** Reward functions by name, summed with reward_weights. */
  reward_funcs: RewardFuncName[];
  /** One weight per reward function; null: 1 each. */
  reward_weights: number[];

  // ---- sampling ----
  /** Sampling temperature (evaluation is greedy whatever this is). */
  temperature: number;
  /** Nucleus sampling mass; 1: off. */
  top_p: number;
  /** Keep the k most likely tokens; 0: off. */
  top_k: number;
  /** Drop tokens below min_p times the top probability; 0: off. */
  min_p: number;
  /** CTRL repetition penalty on tokens already in prompt or completion; 1: off. */
  repetition_penalty: number;
  /** KV-cache memory of the sampling engine: a fraction (0, 1] of device memory, or bytes (> 1; "8GiB" accepted). */
  kv_memory_budget: number;
  /** Accepted for the reference project's scripts: sampling always uses the built-in engine. */
  use_vllm: boolean;

  // ---- what is trained ----
  /** Train a LoRA adapter (the base weights stay frozen). */
  use_lora: boolean;
  /** Train every weight instead of an adapter (small models); excludes use_lora. */
  full_finetune: boolean;
  /** LoRA rank r. */
  lora_r: number;
  /** LoRA alpha; the update is scaled by alpha / r. */
  lora_alpha: number;
  /** Dropout on the LoRA input during training. */
  lora_dropout: number;
  /** Linear layers that get an adapter. */
  lora_target_modules: LoraTarget[];
  /**
   * Products with bf16-stored weights (training and sampling alike): 'bf16' rounds activations to
   * bf16 and uses AVX512_BF16 dot products (about 2x faster, what PyTorch computes in bf16), 'fp32'
   * keeps them f32. No effect on f32 weights (the built-in tiny model) or CPUs without AVX512_BF16.
   */
  matmul_precision: 'fp32' | 'bf16';
  /**
   * Where the model runs: 'auto' (the first available CUDA device, else the CPU), 'cpu', 'cuda',
   * 'cuda:N', or any backend nativeFeatures().backends lists. A device that is not available is
   * an error naming it and why.
   */
  device: string;
  /** Recompute each layer's activations during backward instead of keeping them (less memory, ~1 more forward). */
  gradient_checkpointing: boolean;

  // ---- supervised warm start ----
  /** Epochs of supervised fine-tuning on rationale + answer targets before GRPO; default 2 for 'tiny', else 0. */
  sft_epochs: number;
  /** Learning rate of the SFT phase. */
  sft_learning_rate: number;
  /** Examples per SFT optimizer step. */
  sft_batch_size: number;

  // ---- evaluation, checkpoints, logging ----
  /** Evaluate on valid before the first step. */
  eval_on_start: boolean;
  /** Evaluate on valid every this many steps; default = save_steps; 0: only at the end. */
  eval_steps: number;
  /** Save a checkpoint every this many steps; 0: only at the end. */
  save_steps: number;
  /** Checkpoints kept (the best by valid accuracy is never deleted); 0: keep all. */
  save_total_limit: number;
  /**
   * Stop after this many valid evaluations in a row without a strictly higher accuracy than the
   * best so far (the first evaluation sets the best; eval_on_start's counts); 0: off. Whatever it
   * is, the best model by valid accuracy is kept in <output_dir>/<run_name>/best/.
   */
  early_stopping_patience: number;
  /** At the end, evaluate the best model by valid accuracy (the final one when none was kept) on the test split. */
  eval_on_test: boolean;
  /** Log a plain progress line every this many steps (metrics JSONL gets every step). */
  logging_steps: number;
}

/** One problem found in a configuration. */
export interface ConfigIssue {
  /** The field (or alias) name as given. */
  field: string;
  /** The value as given (undefined for missing or cross-field problems). */
  value?: unknown;
  /** What is wrong, as a sentence fragment: `expected an integer >= 1, got 0`. */
  problem: string;
}

/** Every problem of a configuration at once. */
export class TrainConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  readonly source: string;

  constructor(issues: readonly ConfigIssue[], source: string) {
    const lines = issues.map((i) => `  ${i.field}: ${i.problem}`);
    super(`invalid training config (${source}), ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${lines.join('\n')}`);
    this.name = 'TrainConfigError';
    this.issues = issues;
    this.source = source;
  }
}

/** One row of the field table: what --help shows and how a value is checked. */
export interface TrainConfigField {
  readonly name: keyof TrainConfig;
  /** Type as shown in --help: int, float, bool, string, list, or the allowed values a|b|c. */
  readonly type: string;
  /** The default as a JSON value; null where it is derived from other fields (see defaultText). */
  readonly default: unknown;
  /** The default as --help shows it. */
  readonly defaultText: string;
  readonly help: string;
  /** How the CLI flag of the same name is typed (see src/cli/args.ts). */
  readonly flagType: FlagType;
  /**
   * Checks and converts a given value; throws a FieldProblem. `fromFlags`: the value came from
   * the CLI, so numbers may arrive as strings inside lists.
   */
  readonly parse: (value: unknown, fromFlags: boolean) => unknown;
}

/** Thrown by a field's parse: the problem, without the field name. */
class FieldProblem extends Error {}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? JSON.stringify(v) : String(v));

interface Range {
  min?: number;
  max?: number;
  /** min is excluded. */
  gt?: boolean;
  /** max is excluded. */
  lt?: boolean;
}

function rangeText(r: Range): string {
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`${r.gt ? '>' : '>='} ${r.min}`);
  if (r.max !== undefined) parts.push(`${r.lt ? '<' : '<='} ${r.max}`);
  return parts.join(' and ');
}

function checkRange(v: number, r: Range, what: string): number {
  const low = r.min !== undefined && (r.gt ? v <= r.min : v < r.min);
  const high = r.max !== undefined && (r.lt ? v >= r.max : v > r.max);
  if (low || high) throw new FieldProblem(`expected ${what} ${rangeText(r)}, got ${show(v)}`);
  return v;
}

function parseInt_(value: unknown, r: Range): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new FieldProblem(`expected an integer${r.min !== undefined || r.max !== undefined ? ` ${rangeText(r)}` : ''}, got ${show(value)}`);
  return checkRange(value, r, 'an integer');
}

function parseFloat_(value: unknown, r: Range): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FieldProblem(`expected a finite number${r.min !== undefined || r.max !== undefined ? ` ${rangeText(r)}` : ''}, got ${show(value)}`);
  return checkRange(value, r, 'a number');
}

function parseBool(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new FieldProblem(`expected true or false, got ${show(value)}`);
  return value;
}

function parseString(value: unknown, nullable: boolean): string | null {
  if (value === null && nullable) return null;
  if (typeof value !== 'string') throw new FieldProblem(`expected a string${nullable ? ' or null' : ''}, got ${show(value)}`);
  if (value.trim() === '') {
    if (nullable) return null;
    throw new FieldProblem(`expected a non-empty string, got ""`);
  }
  return value;
}

function parseStringList(value: unknown, nullable: boolean, allowed?: readonly string[]): string[] | null {
  if (value === null && nullable) return null;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new FieldProblem(`expected a list of strings${nullable ? ' or null' : ''}, got ${show(value)}`);
  }
  const list = value as string[];
  if (list.length === 0) throw new FieldProblem('expected a non-empty list, got []');
  const seen = new Set<string>();
  for (const s of list) {
    if (s.trim() === '' || s !== s.trim()) throw new FieldProblem(`list items must be non-empty without surrounding spaces, got ${show(s)}`);
    if (seen.has(s)) throw new FieldProblem(`${show(s)} appears twice in ${show(list)}`);
    if (allowed && !allowed.includes(s)) throw new FieldProblem(`${show(s)} is not one of ${allowed.join(', ')}`);
    seen.add(s);
  }
  return [...list];
}

function parseFloatList(value: unknown, fromFlags: boolean): number[] | null {
  if (value === null) return null;
  if (!Array.isArray(value) || value.length === 0) throw new FieldProblem(`expected a non-empty list of numbers or null, got ${show(value)}`);
  return value.map((v) => {
    const n = fromFlags && typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw new FieldProblem(`expected a list of finite numbers, got ${show(value)}`);
    return n;
  });
}

function parseEnum<T extends string>(value: unknown, values: readonly T[]): T {
  if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
    throw new FieldProblem(`expected one of ${values.join(', ')}, got ${show(value)}`);
  }
  return value as T;
}

/** resume_from_checkpoint: a boolean, or a folder path; "true"/"false"/"latest" strings from the CLI. */
function parseResume(value: unknown): string | boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') throw new FieldProblem(`expected true, false or a checkpoint folder, got ${show(value)}`);
  const t = value.trim().toLowerCase();
  if (t === 'true' || t === 'latest') return true;
  if (t === 'false' || t === '') return false;
  return value;
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/**
 * kv_memory_budget: a number in (0, 1] is a fraction of device memory, a number > 1 is bytes
 * (an integer). Strings: a plain number, or a number with a unit (`512MiB`, `8GB`, `2.5GiB`).
 */
export function parseMemoryBudget(value: unknown): number {
  let v: unknown = value;
  if (typeof value === 'string') {
    const m = /^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([a-z]*)\s*$/i.exec(value);
    const unit = m?.[2]?.toLowerCase() ?? '';
    const scale = unit === '' ? 1 : BYTE_UNITS[unit];
    if (!m || scale === undefined) {
      throw new FieldProblem(`expected a fraction in (0, 1], a byte count, or a size such as "8GiB", got ${show(value)}`);
    }
    v = Number(m[1]) * scale;
    if (unit !== '') v = Math.floor(v as number);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new FieldProblem(`expected a fraction in (0, 1] or a byte count > 1, got ${show(value)}`);
  }
  if (v > 1 && !Number.isInteger(v)) throw new FieldProblem(`a byte count must be an integer, got ${show(value)}`);
  return v;
}

/** Bytes for the KV cache from a resolved kv_memory_budget and the device's total memory. */
export function kvMemoryBudgetBytes(budget: number, deviceBytes: number): number {
  return budget <= 1 ? Math.floor(budget * deviceBytes) : budget;
}

/** run_name and other folder names: one path segment, no leading dot (temp folders use those). */
function parseFolderName(value: unknown): string {
  const s = parseString(value, false) as string;
  if (s.includes('/') || s.includes('\\') || s.startsWith('.') || s !== s.trim()) {
    throw new FieldProblem(`expected a folder name (no "/", "\\", leading "." or surrounding spaces), got ${show(s)}`);
  }
  return s;
}

// Builders for table rows.
type Row = Omit<TrainConfigField, 'name'>;
const int = (def: number | null, help: string, r: Range = {}, defaultText?: string): Row => ({
  type: 'int', default: def, defaultText: defaultText ?? String(def), help, flagType: 'int', parse: (v) => (v === null && def === null ? null : parseInt_(v, r)),
});
const float = (def: number | null, help: string, r: Range = {}, defaultText?: string): Row => ({
  type: 'float', default: def, defaultText: defaultText ?? String(def), help, flagType: 'float', parse: (v) => (v === null && def === null ? null : parseFloat_(v, r)),
});
const bool = (def: boolean, help: string): Row => ({
  type: 'bool', default: def, defaultText: String(def), help, flagType: 'boolean', parse: parseBool,
});
const str = (def: string | null, help: string, defaultText?: string): Row => ({
  type: 'string', default: def, defaultText: defaultText ?? (def === null ? 'none' : def), help, flagType: 'string', parse: (v) => parseString(v, def === null),
});
const choice = <T extends string>(def: T, values: readonly T[], help: string): Row => ({
  type: values.join('|'), default: def, defaultText: def, help, flagType: 'string', parse: (v) => parseEnum(v, values),
});

const FIELDS = {
  model: str(BUILTIN_MODEL, 'model: "tiny" (built in), a name from the paths registry, or a model folder'),
  paths_file: str(null, 'JSON file mapping model names to folders', './paths.json if present'),
  run_name: { ...str(null, 'run folder name under output_dir', '<model>-<yyyymmdd-HHMMSS> (UTC)'), parse: (v: unknown) => (v === null ? null : parseFolderName(v)) },
  output_dir: str('runs', 'parent folder of run folders'),
  resume_from_checkpoint: { type: 'bool|path', default: false, defaultText: 'false', help: 'true: latest checkpoint of the run; or a checkpoint folder', flagType: 'string', parse: parseResume },
  seed: int(42, 'seed of every random choice', { min: 0 }),

  dataset_name: str('ED_easy_4', 'dataset name (labels and card of built-in datasets)'),
  data_dir: str(null, 'dataset folder (CSV splits or preprocessed)', '../shared/data/ED_easy_4 if present, else data/sample/ED_sample_4'),
  labels: { type: 'list', default: null, defaultText: "the dataset's", help: 'label names in label-id order', flagType: 'list', parse: (v: unknown) => parseStringList(v, true) },
  system_prompt: str(null, 'system prompt'),

  train_batch_size: int(4, 'prompts per optimizer step', { min: 1 }),
  eval_batch_size: int(32, 'prompts per generation batch in evaluation', { min: 1 }),
  group_size: int(4, 'completions sampled per prompt (TRL num_generations)', { min: 1 }),
  max_new_tokens: int(300, 'generation budget per completion, in tokens', { min: 1 }),

  num_train_epochs: int(3, 'passes over the training prompts', { min: 1 }),
  max_steps: { ...int(-1, 'stop after this many optimizer steps; -1: num_train_epochs decides', { min: -1 }), parse: (v: unknown) => {
    const n = parseInt_(v, { min: -1 });
    if (n === 0) throw new FieldProblem('expected -1 (off) or a positive integer, got 0');
    return n;
  } },
  learning_rate: float(5e-7, 'peak AdamW learning rate', { min: 0, gt: true }),
  lr_scheduler_type: choice<LrSchedulerType>('linear', ['constant', 'linear', 'cosine'], 'learning-rate shape after warm-up'),
  warmup_steps: int(32, 'optimizer steps of linear warm-up from 0', { min: 0 }),
  weight_decay: float(0, 'AdamW decoupled weight decay', { min: 0 }),
  adam_beta1: float(0.9, 'AdamW beta1', { min: 0, max: 1, lt: true }),
  adam_beta2: float(0.999, 'AdamW beta2', { min: 0, max: 1, lt: true }),
  adam_epsilon: float(1e-8, 'AdamW epsilon', { min: 0, gt: true }),
  max_grad_norm: float(1.0, 'clip the global gradient norm to this; 0: no clipping', { min: 0 }),

  beta: float(0.04, 'KL coefficient; 0 skips the reference model', { min: 0 }),
  epsilon: float(0.2, 'lower clip of the ratio (1 - epsilon)', { min: 0, max: 1, lt: true }),
  epsilon_high: float(null, 'upper clip of the ratio (1 + epsilon_high)', { min: 0 }, '= epsilon'),
  loss_type: choice<LossType>('dapo', ['grpo', 'bnpo', 'dapo', 'dr_grpo'], 'token aggregation of the loss'),
  advantage_variant: choice<AdvantageVariant>('groupStd', ['groupStd', 'leaveOneOut', 'meanOnly', 'batchStd'], 'group-relative advantage estimator'),
  scale_rewards: { type: 'group|batch|none', default: null, defaultText: 'from advantage_variant', help: "TRL's scale_rewards (true = group, false = none); sets advantage_variant", flagType: 'string', parse: (v: unknown) => {
    if (v === null) return null;
    if (v === true || v === 'true') return 'group';
    if (v === false || v === 'false') return 'none';
    return parseEnum<ScaleRewards>(v, ['group', 'batch', 'none']);
  } },
  num_iterations: int(1, 'optimizer steps per generation batch (mu)', { min: 1 }),
  mask_truncated_completions: bool(false, 'leave truncated completions out of the loss'),
  reward_funcs: { type: 'list', default: ['correctness', 'format'], defaultText: 'correctness,format', help: `reward functions (${REWARD_FUNC_NAMES.join(', ')})`, flagType: 'list', parse: (v: unknown) => parseStringList(v, false, REWARD_FUNC_NAMES) },
  reward_weights: { type: 'list', default: null, defaultText: '1 each', help: 'one weight per reward function', flagType: 'list', parse: (v: unknown, fromFlags: boolean) => parseFloatList(v, fromFlags) },

  temperature: float(1.0, 'sampling temperature', { min: 0, gt: true }),
  top_p: float(1.0, 'nucleus sampling mass; 1: off', { min: 0, max: 1, gt: true }),
  top_k: int(0, 'keep the k most likely tokens; 0: off', { min: 0 }),
  min_p: float(0, 'drop tokens below min_p x the top probability; 0: off', { min: 0, max: 1, lt: true }),
  repetition_penalty: float(1.0, 'repetition penalty; 1: off', { min: 0, gt: true }),
  kv_memory_budget: { type: 'float|size', default: 0.3, defaultText: '0.3', help: 'KV-cache memory: fraction (0, 1] of device memory, or bytes ("8GiB")', flagType: 'string', parse: (v: unknown) => {
    try {
      return parseMemoryBudget(v);
    } catch (e) {
      throw new FieldProblem((e as Error).message);
    }
  } },
  use_vllm: bool(false, 'accepted for compatibility: sampling always uses the built-in engine'),

  use_lora: bool(true, 'train a LoRA adapter'),
  full_finetune: bool(false, 'train all weights instead of an adapter'),
  lora_r: int(8, 'LoRA rank', { min: 1 }),
  lora_alpha: float(16, 'LoRA alpha (scale alpha / r)', { min: 0, gt: true }),
  lora_dropout: float(0.05, 'dropout on the LoRA input', { min: 0, max: 1, lt: true }),
  lora_target_modules: { type: 'list', default: [...LORA_TARGET_MODULES], defaultText: LORA_TARGET_MODULES.join(','), help: 'layers that get an adapter', flagType: 'list', parse: (v: unknown) => parseStringList(v, false, LORA_TARGET_MODULES) },
  matmul_precision: choice('bf16', ['fp32', 'bf16'] as const, 'products with bf16 weights: bf16 (AVX512_BF16, ~2x faster, as PyTorch bf16) or fp32 (exact)'),
  device: str('auto', "where the model runs: auto (a CUDA GPU when one is available, else the CPU), cpu, cuda, cuda:N"),
  gradient_checkpointing: bool(false, 'recompute layer activations in backward (less memory, ~1 more forward)'),

  sft_epochs: int(null, 'supervised warm-start epochs before GRPO', { min: 0 }, `${TINY_MODEL_SFT_EPOCHS} for tiny, else 0`),
  sft_learning_rate: float(1e-4, 'learning rate of the warm start', { min: 0, gt: true }),
  sft_batch_size: int(8, 'examples per warm-start step', { min: 1 }),

  eval_on_start: bool(false, 'evaluate on valid before the first step'),
  eval_steps: int(null, 'evaluate every this many steps; 0: only at the end', { min: 0 }, '= save_steps'),
  save_steps: int(20, 'save a checkpoint every this many steps; 0: only at the end', { min: 0 }),
  save_total_limit: int(3, 'checkpoints kept (never the best); 0: all', { min: 0 }),
  early_stopping_patience: int(0, 'stop after this many valid evaluations in a row without a higher accuracy; 0: off', { min: 0 }),
  eval_on_test: bool(false, 'at the end, evaluate the best model (by valid accuracy) on the test split'),
  logging_steps: int(1, 'plain progress line every this many steps', { min: 1 }),
} satisfies Record<keyof TrainConfig, Row>;

/** Every field, in the order --help lists them. */
export const TRAIN_CONFIG_FIELDS: readonly TrainConfigField[] = Object.freeze(
  (Object.keys(FIELDS) as (keyof TrainConfig)[]).map((name) => Object.freeze({ name, ...FIELDS[name] })),
);

const FIELD_BY_NAME = new Map<string, TrainConfigField>(TRAIN_CONFIG_FIELDS.map((f) => [f.name, f]));

/**
 * Other names accepted for a field: TRL / vLLM spellings used by the reference project's scripts.
 * `convert` maps the alias value to the field's value before the field's own check.
 */
interface Alias {
  field: keyof TrainConfig;
  note: string;
  convert?: (value: unknown) => unknown;
}
export const TRAIN_CONFIG_ALIASES: Readonly<Record<string, Alias>> = Object.freeze({
  vllm_gpu_memory_utilization: {
    field: 'kv_memory_budget',
    note: 'a fraction of device memory for the KV cache',
    convert: (v: unknown) => {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 1) {
        throw new FieldProblem(`expected a fraction in (0, 1], got ${show(v)}`);
      }
      return n;
    },
  },
  num_generations: { field: 'group_size', note: "TRL's name" },
  max_completion_length: { field: 'max_new_tokens', note: "TRL's name" },
  lora_rank: { field: 'lora_r', note: 'PEFT-style name' },
});

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** Known names close to `name`: small edit distance, or one contains the other. At most 3. */
export function closeFieldNames(name: string): string[] {
  const n = name.toLowerCase().replace(/-/g, '_');
  const known = [...FIELD_BY_NAME.keys(), ...Object.keys(TRAIN_CONFIG_ALIASES)];
  return known
    .map((k) => ({ k, d: editDistance(n, k) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(k.length / 4)) || (n.length >= 4 && (k.includes(n) || n.includes(k))))
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, 3)
    .map(({ k }) => k);
}

export interface ResolveOptions {
  /** Where the values came from, for error messages: a file path, "command line", ... */
  source?: string;
  /** The run's start time, for the default run_name (default: now). Inject it for determinism. */
  now?: Date;
  /** The values came from CLI flags (see configFromFlags). */
  fromFlags?: boolean;
}

/** `2026-11-24T22:46:07Z` -> `20261124-224607` (UTC). */
function timestamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** A folder-name-safe short form of a model name: its last path segment, lower case. */
export function modelSlug(model: string): string {
  const last = model.replace(/[\\/]+$/, '').split(/[\\/]/).pop() ?? model;
  const slug = last.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[.-]+|-+$/g, '');
  return slug === '' ? 'model' : slug;
}

/** The default run_name: `<modelSlug>-<yyyymmdd-HHMMSS>` of `now` in UTC. */
export function defaultRunName(model: string, now: Date): string {
  return `${modelSlug(model)}-${timestamp(now)}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

/**
 * Checks `partial` (any subset of the fields, by their snake_case names, or an alias) and returns
 * the full configuration with defaults filled in. Throws a TrainConfigError listing every problem.
 * `undefined` values count as absent; `null` asks for the default of a field whose default is null.
 */
export function resolveTrainConfig(partial: unknown, options: ResolveOptions = {}): TrainConfig {
  const source = options.source ?? 'config';
  const fromFlags = options.fromFlags ?? false;
  if (!isPlainObject(partial)) {
    throw new TrainConfigError([{ field: '(config)', value: partial, problem: `expected an object of fields, got ${show(partial)}` }], source);
  }
  const issues: ConfigIssue[] = [];
  // Parsed values of the fields given (directly or through an alias), with the name used.
  const given = new Map<keyof TrainConfig, { value: unknown; as: string }>();

  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    const direct = FIELD_BY_NAME.get(key);
    const alias = TRAIN_CONFIG_ALIASES[key];
    const field = direct ?? (alias ? FIELD_BY_NAME.get(alias.field) : undefined);
    if (!field) {
      const close = closeFieldNames(key);
      issues.push({ field: key, value, problem: `unknown field${close.length > 0 ? `; did you mean ${close.join(', ')}?` : ''}` });
      continue;
    }
    let parsed: unknown;
    try {
      parsed = field.parse(!direct && alias?.convert ? alias.convert(value) : value, fromFlags);
    } catch (e) {
      if (!(e instanceof FieldProblem)) throw e;
      issues.push({ field: key, value, problem: e.message });
      continue;
    }
    const prev = given.get(field.name);
    if (prev && JSON.stringify(prev.value) !== JSON.stringify(parsed)) {
      const [a, b] = direct ? [prev, { as: key, value: parsed }] : [{ as: key, value: parsed }, prev];
      issues.push({ field: a.as, value: a.value, problem: `conflicts with ${b.as} = ${show(b.value)} (${a.as === field.name ? b.as : a.as} is another name for ${field.name})` });
      continue;
    }
    given.set(field.name, { value: parsed, as: key });
  }

  const out: Record<string, unknown> = {};
  for (const f of TRAIN_CONFIG_FIELDS) {
    const g = given.get(f.name);
    out[f.name] = g === undefined ? structuredClone(f.default) : g.value;
  }
  const explicit = (name: keyof TrainConfig): boolean => given.has(name) && given.get(name)!.value !== null;
  const cfg = out as unknown as Omit<TrainConfig, 'epsilon_high' | 'eval_steps' | 'run_name' | 'scale_rewards' | 'sft_epochs' | 'reward_weights'> & {
    epsilon_high: number | null; eval_steps: number | null; run_name: string | null; scale_rewards: ScaleRewards | null; sft_epochs: number | null; reward_weights: number[] | null;
  };

  // Derived defaults.
  const epsilonHigh = cfg.epsilon_high ?? cfg.epsilon;
  const evalSteps = cfg.eval_steps ?? cfg.save_steps;
  const runName = cfg.run_name ?? defaultRunName(cfg.model, options.now ?? new Date());
  const sftEpochs = cfg.sft_epochs ?? (cfg.model === BUILTIN_MODEL ? TINY_MODEL_SFT_EPOCHS : 0);

  // advantage_variant and TRL's scale_rewards describe the same choice.
  const implied: Record<AdvantageVariant, ScaleRewards> = { groupStd: 'group', batchStd: 'batch', meanOnly: 'none', leaveOneOut: 'none' };
  let variant = cfg.advantage_variant;
  let scale: ScaleRewards = implied[variant];
  if (cfg.scale_rewards !== null) {
    const fromScale: Record<ScaleRewards, AdvantageVariant> = { group: 'groupStd', batch: 'batchStd', none: 'meanOnly' };
    if (!explicit('advantage_variant')) {
      variant = fromScale[cfg.scale_rewards];
      scale = cfg.scale_rewards;
    } else if (implied[variant] !== cfg.scale_rewards) {
      issues.push({ field: 'scale_rewards', value: cfg.scale_rewards, problem: `conflicts with advantage_variant = ${show(variant)}, which means scale_rewards = ${show(implied[variant])}` });
    }
  }

  const weights = cfg.reward_weights ?? cfg.reward_funcs.map(() => 1);
  if (weights.length !== cfg.reward_funcs.length) {
    issues.push({ field: 'reward_weights', value: cfg.reward_weights, problem: `has ${weights.length} weight(s) for ${cfg.reward_funcs.length} reward function(s) [${cfg.reward_funcs.join(', ')}]` });
  }

  // Cross-field rules.
  let useLora = cfg.use_lora;
  if (cfg.full_finetune) {
    if (explicit('use_lora') && cfg.use_lora) issues.push({ field: 'full_finetune', value: true, problem: 'conflicts with use_lora = true; choose one' });
    useLora = false;
  } else if (!cfg.use_lora) {
    issues.push({ field: 'use_lora', value: false, problem: 'nothing would be trained: set use_lora = true or full_finetune = true' });
  }
  if (cfg.group_size < 2 && variant !== 'batchStd') {
    issues.push({ field: 'group_size', value: cfg.group_size, problem: `advantage_variant ${variant} needs group_size >= 2 (with one completion per prompt every advantage is 0)` });
  }
  if (cfg.resume_from_checkpoint === true && !explicit('run_name')) {
    issues.push({ field: 'resume_from_checkpoint', value: true, problem: 'resuming the latest checkpoint needs run_name (the run to resume); or pass the checkpoint folder' });
  }

  if (issues.length > 0) throw new TrainConfigError(issues, source);
  return {
    ...(cfg as unknown as TrainConfig),
    epsilon_high: epsilonHigh,
    eval_steps: evalSteps,
    run_name: runName,
    sft_epochs: sftEpochs,
    advantage_variant: variant,
    scale_rewards: scale,
    reward_weights: weights,
    use_lora: useLora,
  };
}

/** --help placeholder: the allowed values as written (they are case-sensitive), else the type in capitals. */
function metavarOf(f: TrainConfigField): string | undefined {
  if (f.flagType !== 'string' && f.flagType !== 'list') return undefined; // args.ts prints INT / FLOAT
  return ['string', 'list', 'bool|path', 'float|size'].includes(f.type) ? f.type.toUpperCase() : f.type;
}

/** CLI flag specs (for src/cli/args.ts parseFlags / formatHelp), one per field and alias. */
export function trainFlagSpecs(): FlagSpecs {
  const specs: FlagSpecs = {};
  // No `default` on purpose: parseFlags would fill it in and every field would look explicitly
  // given; the defaults live in resolveTrainConfig and are shown in the help text instead.
  for (const f of TRAIN_CONFIG_FIELDS) {
    specs[f.name] = { type: f.flagType, help: `${f.help} (default: ${f.defaultText})`, metavar: metavarOf(f) };
  }
  for (const [name, a] of Object.entries(TRAIN_CONFIG_ALIASES)) {
    const target = FIELD_BY_NAME.get(a.field)!;
    specs[name] = { type: name === 'vllm_gpu_memory_utilization' ? 'float' : target.flagType, help: `= --${a.field} (${a.note})` };
  }
  return specs;
}

/**
 * The configuration from parsed CLI flags (parseFlags(argv, trainFlagSpecs()).flags). Flags that
 * are not config fields (e.g. `help`) must be removed by the caller; they are reported as unknown.
 */
export function configFromFlags(flags: ParsedFlags, options: Omit<ResolveOptions, 'fromFlags'> = {}): TrainConfig {
  return resolveTrainConfig({ ...flags }, { source: 'command line', ...options, fromFlags: true });
}

/** `field  type  default  help` lines for documentation (README tables, --help of library users). */
export function formatTrainConfigFields(): string {
  const w = Math.max(...TRAIN_CONFIG_FIELDS.map((f) => f.name.length));
  return TRAIN_CONFIG_FIELDS.map((f) => `${f.name.padEnd(w)}  ${f.help} [${f.type}; default: ${f.defaultText}]`).join('\n');
}

/** The run folder of a resolved config: output_dir/run_name. */
export function runDir(cfg: Pick<TrainConfig, 'output_dir' | 'run_name'>): string {
  return path.join(cfg.output_dir, cfg.run_name);
}
