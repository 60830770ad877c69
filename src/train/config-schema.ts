/**
 * The training configuration, described once as a zod schema.
 *
 * One table, FIELDS, holds each field's zod schema (what a value may be, with the error message of
 * every check), its default, its --help line and its --help group. From it come:
 * - the static input type TrainConfigInput (GrpoTrainer's constructor takes it, so a misspelt field
 *   fails tsc) and the resolved type TrainConfig,
 * - the runtime validation (resolveTrainConfig in config.ts parses each field with its schema),
 * - the JSON Schema for editors (trainConfigJsonSchema(), shipped as train-config.schema.json),
 * - the CLI flags and the grouped --help (train-flags.ts).
 *
 * To add a field: one row in FIELDS (a builder below: int, float, bool, str, choice, ...), with a
 * doc comment, then its use in the trainer. Field names and defaults follow the reference project
 * (RREC-Emotion, a TRL GRPOTrainer script) and, where it is silent, TRL's GRPOConfig / HF
 * TrainingArguments.
 *
 * A few defaults are derived from other fields (`null` in the table, see DerivedField): run_name
 * (model + start time), eval_steps (= save_steps), epsilon_high (= epsilon), scale_rewards (from
 * advantage_variant), sft_epochs (2 for the built-in tiny model, 0 otherwise) and reward_weights.
 */
import { z } from 'zod';
import type { FlagType } from '../cli/args.js';
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

/** The --help groups, in the order --help prints them. */
export const CONFIG_GROUPS = Object.freeze({
  model: 'model and device',
  data: 'data',
  grpo: 'GRPO',
  sampling: 'sampling',
  lora: 'LoRA and what is trained',
  schedule: 'schedule and optimizer',
  checkpoints: 'checkpoints and evaluation',
  output: 'output and logging',
} as const);
export type ConfigGroup = keyof typeof CONFIG_GROUPS;

/** `"text"` for strings and lists, String(v) otherwise: how a value is quoted in an error. */
export const show = (v: unknown): string => (typeof v === 'string' || Array.isArray(v) ? JSON.stringify(v) : String(v));

/** One row of the table: the schema of a field's value and what --help says about it. */
export interface FieldRow<S extends z.ZodType = z.ZodType> {
  /** What a given value may be (null where the default is derived); the messages of its checks name the value. */
  readonly schema: S;
  /** The default as a JSON value; null where it is derived from other fields (see defaultText). */
  readonly default: unknown;
  /** The default as --help shows it. */
  readonly defaultText: string;
  /** Type as shown in --help: int, float, bool, string, list, or the allowed values a|b|c. */
  readonly type: string;
  readonly help: string;
  /** The --help group. */
  readonly group: ConfigGroup;
  /** How the CLI flag of the same name is typed (see src/cli/args.ts). */
  readonly flagType: FlagType;
  /** For lists: the problem of an item of the wrong type, said of the whole list (`expected a list of strings`). */
  readonly listProblem?: string;
}

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

/** A zod error option whose message is `<what>, got <value>`. */
const got = (what: string) => ({ error: (iss: { input?: unknown }) => `${what}, got ${show(iss.input)}` });

/** A number schema with the range checks of r, each failing with `expected <what> <range>, got v`. */
function ranged(base: z.ZodNumber, r: Range, what: string): z.ZodNumber {
  const e = got(`expected ${what} ${rangeText(r)}`);
  let s = base;
  if (r.min !== undefined) s = r.gt ? s.gt(r.min, e) : s.gte(r.min, e);
  if (r.max !== undefined) s = r.lt ? s.lt(r.max, e) : s.lte(r.max, e);
  return s;
}

const hasRange = (r: Range): boolean => r.min !== undefined || r.max !== undefined;

/** Adds the JSON Schema description and default; `nullable` lets null ask for a derived default. */
function described<S extends z.ZodType>(schema: S, help: string, def: unknown): S {
  return schema.meta({ description: help, ...(def === null ? {} : { default: def as never }) }) as S;
}

// ---- builders of rows (the field name comes from the key in FIELDS)

function intSchema(r: Range): z.ZodNumber {
  const typeMsg = got(`expected an integer${hasRange(r) ? ` ${rangeText(r)}` : ''}`);
  return ranged(z.number(typeMsg).int(typeMsg), r, 'an integer');
}
function floatSchema(r: Range): z.ZodNumber {
  return ranged(z.number(got(`expected a finite number${hasRange(r) ? ` ${rangeText(r)}` : ''}`)), r, 'a number');
}

function int(def: number, group: ConfigGroup, help: string, r?: Range): FieldRow<z.ZodNumber>;
function int(def: null, group: ConfigGroup, help: string, r: Range, defaultText: string): FieldRow<z.ZodNullable<z.ZodNumber>>;
function int(def: number | null, group: ConfigGroup, help: string, r: Range = {}, defaultText?: string): FieldRow {
  const s = intSchema(r);
  return { schema: described(def === null ? s.nullable() : s, help, def), default: def, defaultText: defaultText ?? String(def), type: 'int', help, group, flagType: 'int' };
}

function float(def: number, group: ConfigGroup, help: string, r?: Range): FieldRow<z.ZodNumber>;
function float(def: null, group: ConfigGroup, help: string, r: Range, defaultText: string): FieldRow<z.ZodNullable<z.ZodNumber>>;
function float(def: number | null, group: ConfigGroup, help: string, r: Range = {}, defaultText?: string): FieldRow {
  const s = floatSchema(r);
  return { schema: described(def === null ? s.nullable() : s, help, def), default: def, defaultText: defaultText ?? String(def), type: 'float', help, group, flagType: 'float' };
}

function bool(def: boolean, group: ConfigGroup, help: string): FieldRow<z.ZodBoolean> {
  return { schema: described(z.boolean(got('expected true or false')), help, def), default: def, defaultText: String(def), type: 'bool', help, group, flagType: 'boolean' };
}

/** A non-empty string. */
function str(def: string, group: ConfigGroup, help: string): FieldRow<z.ZodString> {
  const s = z.string(got('expected a string')).refine((v) => v.trim() !== '', got('expected a non-empty string'));
  return { schema: described(s, help, def), default: def, defaultText: def, type: 'string', help, group, flagType: 'string' };
}

/** A string, or null (also "") for the default. */
function optStr(group: ConfigGroup, help: string, defaultText = 'none') {
  const s = z
    .string(got('expected a string or null'))
    .nullable()
    .transform((v) => (v === null || v.trim() === '' ? null : v));
  return { schema: described(s, help, null), default: null, defaultText, type: 'string', help, group, flagType: 'string' } satisfies FieldRow;
}

function choice<const T extends readonly [string, ...string[]]>(def: T[number], values: T, group: ConfigGroup, help: string): FieldRow<z.ZodEnum<{ [K in T[number]]: K }>> {
  const s = z.enum(values, got(`expected one of ${values.join(', ')}`));
  return { schema: described(s, help, def), default: def, defaultText: def, type: values.join('|'), help, group, flagType: 'string' };
}

/** A non-empty list of distinct, trimmed strings; each one of `allowed` when given. */
function stringList<I extends z.ZodType<string, string>>(item: I, nullable: boolean) {
  return z
    .array(item, got(`expected a list of strings${nullable ? ' or null' : ''}`))
    .superRefine((list, ctx) => {
      if (list.length === 0) return void ctx.addIssue({ code: 'custom', message: 'expected a non-empty list, got []', input: list });
      const seen = new Set<string>();
      for (const s of list) {
        if (s.trim() === '' || s !== s.trim()) return void ctx.addIssue({ code: 'custom', message: `list items must be non-empty without surrounding spaces, got ${show(s)}`, input: list });
        if (seen.has(s)) return void ctx.addIssue({ code: 'custom', message: `${show(s)} appears twice in ${show(list)}`, input: list });
        seen.add(s);
      }
    });
}

/** Names from a fixed list. */
function enumItems<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: (iss: { input?: unknown }) => `${show(iss.input)} is not one of ${values.join(', ')}` });
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** Thrown by parseMemoryBudget: what is wrong with the value. */
export class MemoryBudgetError extends Error {}

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
      throw new MemoryBudgetError(`expected a fraction in (0, 1], a byte count, or a size such as "8GiB", got ${show(value)}`);
    }
    v = Number(m[1]) * scale;
    if (unit !== '') v = Math.floor(v as number);
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new MemoryBudgetError(`expected a fraction in (0, 1] or a byte count > 1, got ${show(value)}`);
  }
  if (v > 1 && !Number.isInteger(v)) throw new MemoryBudgetError(`a byte count must be an integer, got ${show(value)}`);
  return v;
}

/** Bytes for the KV cache from a resolved kv_memory_budget and the device's total memory. */
export function kvMemoryBudgetBytes(budget: number, deviceBytes: number): number {
  return budget <= 1 ? Math.floor(budget * deviceBytes) : budget;
}

const memoryBudget = z
  .union([z.number(), z.string()], got('expected a fraction in (0, 1] or a byte count > 1'))
  .transform((v, ctx) => {
    try {
      return parseMemoryBudget(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message, input: v });
      return z.NEVER;
    }
  });

/** resume_from_checkpoint: a boolean, or a checkpoint folder; "true" / "latest" / "false" strings (the CLI). */
const resume = z.union([z.boolean(), z.string()], got('expected true, false or a checkpoint folder')).transform((v): string | boolean => {
  if (typeof v === 'boolean') return v;
  const t = v.trim().toLowerCase();
  if (t === 'true' || t === 'latest') return true;
  if (t === 'false' || t === '') return false;
  return v;
});

/** run_name: one path segment, no leading dot (temp folders use those); null: the default. */
const folderName = z
  .string(got('expected a string or null'))
  .nullable()
  .superRefine((s, ctx) => {
    if (s === null) return;
    if (s.trim() === '') ctx.addIssue({ code: 'custom', message: 'expected a non-empty string, got ""', input: s });
    else if (s.includes('/') || s.includes('\\') || s.startsWith('.') || s !== s.trim())
      ctx.addIssue({ code: 'custom', message: `expected a folder name (no "/", "\\", leading "." or surrounding spaces), got ${show(s)}`, input: s });
  });

/** TRL's scale_rewards: group | batch | none, or true (= group) / false (= none); null: from advantage_variant. */
const scaleRewards = z
  .union([z.enum(['group', 'batch', 'none']), z.boolean(), z.enum(['true', 'false'])], got('expected one of group, batch, none'))
  .nullable()
  .transform((v): ScaleRewards | null => (v === true || v === 'true' ? 'group' : v === false || v === 'false' ? 'none' : v));

const rewardWeights = z
  .array(z.number(), got('expected a non-empty list of numbers or null'))
  .min(1, got('expected a non-empty list of numbers or null'))
  .nullable();

const maxSteps = intSchema({ min: -1 }).refine((n) => n !== 0, got('expected -1 (off) or a positive integer'));

/** metric_for_best_model: accuracy or macro_f1, also with TRL's "eval_" prefix. */
const bestMetric = z
  .enum(['accuracy', 'macro_f1', 'eval_accuracy', 'eval_macro_f1'], got('expected one of accuracy, macro_f1 (or eval_accuracy, eval_macro_f1)'))
  .transform((v): 'accuracy' | 'macro_f1' => (v.startsWith('eval_') ? (v.slice(5) as 'accuracy' | 'macro_f1') : (v as 'accuracy' | 'macro_f1')));

/** report_to: none or all (a list of them too, as TRL takes). */
const reportTo = z
  .union([z.enum(['none', 'all']), z.array(z.enum(['none', 'all'])).length(1)], got('expected none (metrics.jsonl and report.html are written in the run folder; no wandb or tensorboard integration exists)'))
  .transform((): 'none' => 'none');

const LOSS_TYPES = ['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const satisfies readonly LossType[];
const ADVANTAGE_VARIANTS = ['groupStd', 'leaveOneOut', 'meanOnly', 'batchStd'] as const satisfies readonly AdvantageVariant[];
const LR_SCHEDULERS = ['constant', 'linear', 'cosine'] as const satisfies readonly LrSchedulerType[];
const LORA_TARGETS = LORA_TARGET_MODULES as unknown as readonly [LoraTarget, ...LoraTarget[]];

/** A row with its own schema (the builders above do not fit). */
function row<S extends z.ZodType>(schema: S, r: Omit<FieldRow, 'schema' | 'flagType'> & { flagType?: FlagType }): FieldRow<S> {
  return { flagType: 'string', ...r, schema: described(schema, r.help, r.default) };
}

/**
 * Every field, in the order --help lists them within a group. The doc comment of each is what an
 * editor shows for it in TrainConfigInput and TrainConfig.
 */
export const FIELDS = {
  // ---- model and run ----
  /** Model: 'tiny' (the built-in small model), a name from the paths registry ('qwen', 'gemma', 'Qwen/Qwen2.5-0.5B-Instruct', ...) or a Hugging Face model folder. */
  model: str(BUILTIN_MODEL, 'model', 'model: "tiny" (built in), a name from the paths registry, or a model folder'),
  /** JSON file mapping model names to folders; null: ./paths.json when it exists (see paths.ts). */
  paths_file: optStr('model', 'JSON file mapping model names to folders', './paths.json if present'),
  /** Run folder name under output_dir; default `<model>-<UTC yyyymmdd-HHMMSS>` of the start time. */
  run_name: row(folderName, { default: null, defaultText: '<model>-<yyyymmdd-HHMMSS> (UTC)', type: 'string', help: 'run folder name under output_dir', group: 'output' }),
  /** Parent folder of run folders. */
  output_dir: str('runs', 'output', 'parent folder of run folders'),
  /** false: start fresh; true: the latest checkpoint of output_dir/run_name; a string: that checkpoint folder. */
  resume_from_checkpoint: row(resume, { default: false, defaultText: 'false', type: 'bool|path', help: 'true: latest checkpoint of the run; or a checkpoint folder', group: 'checkpoints' }),
  /** Seed of every random choice (data order, sampling, LoRA init, dropout). */
  seed: int(42, 'schedule', 'seed of every random choice', { min: 0 }),

  // ---- data ----
  /** Dataset name (label list and card for built-in ones, see src/data/spec.ts). */
  dataset_name: str('ED_easy_4', 'data', 'dataset name (labels and card of built-in datasets)'),
  /** Folder with train/valid/test.csv, or a preprocessed dataset; null: the CLI's default (../shared/data/ED_easy_4 when present, else the bundled sample). */
  data_dir: optStr('data', 'dataset folder (CSV splits or preprocessed)', '../shared/data/ED_easy_4 if present, else data/sample/ED_sample_4'),
  /** Label names in label-id order; null: the dataset's own. */
  labels: row(stringList(z.string(), true).nullable(), { default: null, defaultText: "the dataset's", type: 'list', help: 'label names in label-id order', group: 'data', flagType: 'list', listProblem: 'expected a list of strings or null' }),
  /** System prompt; null: none (the prompter's default prompt). */
  system_prompt: optStr('data', 'system prompt'),

  // ---- batch sizes and length ----
  /** Prompts per optimizer step; each is sampled group_size times. */
  train_batch_size: int(4, 'grpo', 'prompts per optimizer step', { min: 1 }),
  /**
   * TRL's per_device_train_batch_size: completions (not prompts) per micro-step on the one device.
   * Given, it sets train_batch_size = per_device_train_batch_size x gradient_accumulation_steps /
   * group_size prompts per optimizer step (the product must be a multiple of group_size, as TRL
   * requires); null: train_batch_size decides.
   */
  per_device_train_batch_size: int(null, 'grpo', 'TRL: completions per micro-step; sets train_batch_size = this x gradient_accumulation_steps / group_size', { min: 1 }, 'none (train_batch_size decides)'),
  /** TRL's gradient_accumulation_steps: micro-steps of per_device_train_batch_size completions per optimizer step (only with per_device_train_batch_size). */
  gradient_accumulation_steps: int(1, 'grpo', 'TRL: micro-steps per optimizer step (with per_device_train_batch_size)', { min: 1 }),
  /** Prompts per generation batch during evaluation. */
  eval_batch_size: int(32, 'checkpoints', 'prompts per generation batch in evaluation', { min: 1 }),
  /** Completions sampled per prompt (TRL: num_generations). */
  group_size: int(4, 'grpo', 'completions sampled per prompt (TRL num_generations)', { min: 1 }),
  /** Generation budget in tokens per completion (TRL: max_completion_length). */
  max_new_tokens: int(300, 'sampling', 'generation budget per completion, in tokens', { min: 1 }),
  /**
   * Longest prompt in tokens (TRL's max_prompt_length). A longer prompt is cut to its last N tokens
   * (long_prompts 'truncate', as TRL does: the chat template's assistant header stays) or left out
   * (long_prompts 'skip': not trained on, not in the metrics); both are counted. null: no limit, and a
   * prompt that does not fit the model's context is an error naming its split and row.
   */
  max_prompt_length: int(null, 'sampling', 'longest prompt in tokens; longer ones are cut to their last N tokens (as TRL) or skipped (--long_prompts), and counted', { min: 1 }, 'none'),
  /** What max_prompt_length does to a longer prompt. */
  long_prompts: choice('truncate', ['truncate', 'skip'] as const, 'sampling', 'what --max_prompt_length does to a longer prompt: truncate (keep the last N tokens) or skip'),

  // ---- optimisation ----
  /** Passes over the training prompts. */
  num_train_epochs: int(3, 'schedule', 'passes over the training prompts', { min: 1 }),
  /** Stop after this many optimizer steps; -1: num_train_epochs decides. */
  max_steps: row(maxSteps, { default: -1, defaultText: '-1', type: 'int', help: 'stop after this many optimizer steps; -1: num_train_epochs decides', group: 'schedule', flagType: 'int' }),
  /** Peak learning rate of AdamW. */
  learning_rate: float(5e-7, 'schedule', 'peak AdamW learning rate', { min: 0, gt: true }),
  /** Shape of the learning rate after warm-up. */
  lr_scheduler_type: choice('linear', LR_SCHEDULERS, 'schedule', 'learning-rate shape after warm-up'),
  /** Optimizer steps of linear warm-up from 0 to learning_rate. */
  warmup_steps: int(32, 'schedule', 'optimizer steps of linear warm-up from 0 (TRL: 0)', { min: 0 }),
  /** HF's warmup_ratio: warm-up over ceil(ratio x the run's steps) steps instead of warmup_steps; null: warmup_steps decides. */
  warmup_ratio: float(null, 'schedule', "warm-up over this fraction of the run's steps (replaces warmup_steps)", { min: 0, max: 1 }, 'none (warmup_steps decides)'),
  /** AdamW decoupled weight decay. */
  weight_decay: float(0, 'schedule', 'AdamW decoupled weight decay', { min: 0 }),
  /** AdamW beta1. */
  adam_beta1: float(0.9, 'schedule', 'AdamW beta1', { min: 0, max: 1, lt: true }),
  /** AdamW beta2. */
  adam_beta2: float(0.999, 'schedule', 'AdamW beta2', { min: 0, max: 1, lt: true }),
  /** AdamW epsilon. */
  adam_epsilon: float(1e-8, 'schedule', 'AdamW epsilon', { min: 0, gt: true }),
  /** Clip the global gradient norm to this; 0: no clipping. */
  max_grad_norm: float(1.0, 'schedule', 'clip the global gradient norm to this; 0: no clipping', { min: 0 }),

  // ---- GRPO ----
  /** KL coefficient against the reference model; 0 skips the reference forward. */
  beta: float(0.04, 'grpo', 'KL coefficient; 0 skips the reference model (TRL: 0.0)', { min: 0 }),
  /** Lower clip range of the ratio (1 - epsilon). */
  epsilon: float(0.2, 'grpo', 'lower clip of the ratio (1 - epsilon)', { min: 0, max: 1, lt: true }),
  /** Upper clip range of the ratio (1 + epsilon_high); default = epsilon. */
  epsilon_high: float(null, 'grpo', 'upper clip of the ratio (1 + epsilon_high)', { min: 0 }, '= epsilon'),
  /** How per-token losses are aggregated (see src/grpo/types.ts). */
  loss_type: choice('dapo', LOSS_TYPES, 'grpo', 'token aggregation of the loss'),
  /** Group-relative advantage estimator (see src/grpo/advantages.ts). */
  advantage_variant: choice('groupStd', ADVANTAGE_VARIANTS, 'grpo', 'group-relative advantage estimator'),
  /** TRL's scale_rewards, kept consistent with advantage_variant: group = groupStd, batch = batchStd, none = meanOnly / leaveOneOut. */
  scale_rewards: row(scaleRewards, { default: null, defaultText: 'from advantage_variant', type: 'group|batch|none', help: "TRL's scale_rewards (true = group, false = none); sets advantage_variant", group: 'grpo' }),
  /** Optimizer steps on each generation batch (TRL's mu). */
  num_iterations: int(1, 'grpo', 'optimizer steps per generation batch (mu)', { min: 1 }),
  /** Truncated completions (no EOS within max_new_tokens) take no part in the loss. */
  mask_truncated_completions: bool(false, 'grpo', 'leave truncated completions out of the loss'),
  /** Reward functions by name, summed with reward_weights. */
  reward_funcs: row(stringList(enumItems(REWARD_FUNC_NAMES as unknown as readonly [RewardFuncName, ...RewardFuncName[]]), false), {
    default: ['correctness', 'format'], defaultText: 'correctness,format', type: 'list', help: `reward functions (${REWARD_FUNC_NAMES.join(', ')})`, group: 'grpo', flagType: 'list', listProblem: 'expected a list of strings',
  }),
  /** One weight per reward function; null: 1 each. */
  reward_weights: row(rewardWeights, { default: null, defaultText: '1 each', type: 'list', help: 'one weight per reward function', group: 'grpo', flagType: 'list', listProblem: 'expected a list of finite numbers' }),

  // ---- sampling ----
  /** Sampling temperature (evaluation is greedy whatever this is). */
  temperature: float(1.0, 'sampling', 'sampling temperature', { min: 0, gt: true }),
  /** Nucleus sampling mass; 1: off. */
  top_p: float(1.0, 'sampling', 'nucleus sampling mass; 1: off', { min: 0, max: 1, gt: true }),
  /** Keep the k most likely tokens; 0: off. */
  top_k: int(0, 'sampling', 'keep the k most likely tokens; 0: off', { min: 0 }),
  /** Drop tokens below min_p times the top probability; 0: off. */
  min_p: float(0, 'sampling', 'drop tokens below min_p x the top probability; 0: off', { min: 0, max: 1, lt: true }),
  /** CTRL repetition penalty on tokens already in prompt or completion; 1: off. */
  repetition_penalty: float(1.0, 'sampling', 'repetition penalty; 1: off', { min: 0, gt: true }),
  /** KV-cache memory of the sampling engine: a fraction (0, 1] of device memory, or bytes (> 1; "8GiB" accepted). */
  kv_memory_budget: row(memoryBudget, { default: 0.3, defaultText: '0.3', type: 'float|size', help: 'KV-cache memory: fraction (0, 1] of device memory, or bytes ("8GiB")', group: 'sampling' }),
  /** Accepted for the reference project's scripts: sampling always uses the built-in engine. */
  use_vllm: bool(false, 'sampling', 'accepted for compatibility: sampling always uses the built-in engine'),

  // ---- what is trained ----
  /** Train a LoRA adapter (the base weights stay frozen). */
  use_lora: bool(true, 'lora', 'train a LoRA adapter'),
  /** Train every weight instead of an adapter (small models); excludes use_lora. */
  full_finetune: bool(false, 'lora', 'train all weights instead of an adapter'),
  /** LoRA rank r. */
  lora_r: int(8, 'lora', 'LoRA rank', { min: 1 }),
  /** LoRA alpha; the update is scaled by alpha / r. */
  lora_alpha: float(16, 'lora', 'LoRA alpha (scale alpha / r)', { min: 0, gt: true }),
  /** Dropout on the LoRA input during training. */
  lora_dropout: float(0.05, 'lora', 'dropout on the LoRA input', { min: 0, max: 1, lt: true }),
  /** Linear layers that get an adapter. */
  lora_target_modules: row(stringList(enumItems(LORA_TARGETS), false), {
    default: [...LORA_TARGET_MODULES], defaultText: LORA_TARGET_MODULES.join(','), type: 'list', help: 'layers that get an adapter', group: 'lora', flagType: 'list', listProblem: 'expected a list of strings',
  }),
  /**
   * Products with bf16-stored weights (training and sampling alike): 'bf16' rounds activations to
   * bf16 and uses AVX512_BF16 dot products (about 2x faster, what PyTorch computes in bf16), 'fp32'
   * keeps them f32. No effect on f32 weights (the built-in tiny model) or CPUs without AVX512_BF16.
   */
  matmul_precision: choice('bf16', ['fp32', 'bf16'] as const, 'model', 'products with bf16 weights: bf16 (AVX512_BF16, ~2x faster, as PyTorch bf16) or fp32 (exact)'),
  /**
   * Where the model runs: 'auto' (the first available CUDA device, else the CPU), 'cpu', 'cuda',
   * 'cuda:N', or any backend nativeFeatures().backends lists. A device that is not available is
   * an error naming it and why.
   */
  device: str('auto', 'model', 'where the model runs: auto (a CUDA GPU when one is available, else the CPU), cpu, cuda, cuda:N'),
  /** Recompute each layer's activations during backward instead of keeping them (less memory, ~1 more forward). */
  gradient_checkpointing: bool(false, 'model', 'recompute layer activations in backward (less memory, ~1 more forward)'),

  // ---- supervised warm start ----
  /** Epochs of supervised fine-tuning on rationale + answer targets before GRPO; default 2 for 'tiny', else 0. */
  sft_epochs: int(null, 'schedule', 'supervised warm-start epochs before GRPO', { min: 0 }, `${TINY_MODEL_SFT_EPOCHS} for tiny, else 0`),
  /** Learning rate of the SFT phase. */
  sft_learning_rate: float(1e-4, 'schedule', 'learning rate of the warm start', { min: 0, gt: true }),
  /** Examples per SFT optimizer step. */
  sft_batch_size: int(8, 'schedule', 'examples per warm-start step', { min: 1 }),

  // ---- evaluation, checkpoints, logging ----
  /** HF's eval_strategy: 'steps' (every eval_steps), 'epoch' (at the end of every epoch) or 'no' (only the final evaluation). */
  eval_strategy: choice('steps', ['steps', 'epoch', 'no'] as const, 'checkpoints', 'when valid is evaluated: steps (every eval_steps), epoch, no (only the final evaluation)'),
  /** HF's save_strategy: 'steps' (every save_steps), 'epoch', 'best' (only best/ and the final checkpoint) or 'no' (only the final checkpoint). */
  save_strategy: choice('steps', ['steps', 'epoch', 'best', 'no'] as const, 'checkpoints', 'when checkpoints are saved: steps (every save_steps), epoch, best or no (best/ and the final checkpoint only)'),
  /** HF's metric_for_best_model: the valid metric that picks best/ and drives early stopping ("eval_" prefix accepted). */
  metric_for_best_model: row(bestMetric, { default: 'accuracy', defaultText: 'accuracy', type: 'accuracy|macro_f1', help: 'valid metric that picks best/ and drives early stopping (eval_ prefix accepted)', group: 'checkpoints' }),
  /** HF's load_best_model_at_end: the best model (best/) replaces the final one for the final valid evaluation, the test split and the result. */
  load_best_model_at_end: bool(false, 'checkpoints', 'the best model replaces the final one at the end (final evaluation, test split, result)'),
  /** Evaluate on valid before the first step. */
  eval_on_start: bool(false, 'checkpoints', 'evaluate on valid before the first step'),
  /** Evaluate on valid every this many steps; default = save_steps; 0: only at the end. */
  eval_steps: int(null, 'checkpoints', 'evaluate every this many steps; 0: only at the end', { min: 0 }, '= save_steps'),
  /** Save a checkpoint every this many steps; 0: only at the end. */
  save_steps: int(20, 'checkpoints', 'save a checkpoint every this many steps; 0: only at the end', { min: 0 }),
  /** Checkpoints kept (the best by valid accuracy is never deleted); 0: keep all. */
  save_total_limit: int(3, 'checkpoints', 'checkpoints kept (never the best); 0: all', { min: 0 }),
  /**
   * Stop after this many valid evaluations in a row without a strictly higher accuracy than the
   * best so far (the first evaluation sets the best; eval_on_start's counts); 0: off. Whatever it
   * is, the best model by valid accuracy is kept in <output_dir>/<run_name>/best/.
   */
  early_stopping_patience: int(0, 'checkpoints', 'stop after this many valid evaluations in a row without a higher accuracy; 0: off', { min: 0 }),
  /** At the end, evaluate the best model by valid accuracy (the final one when none was kept) on the test split. */
  eval_on_test: bool(false, 'checkpoints', 'at the end, evaluate the best model (by valid accuracy) on the test split'),
  /** TRL's log_completions: print one sampled completion with its reward at every logging step. */
  log_completions: bool(false, 'output', 'print a sampled completion and its reward at every logging step'),
  /** TRL's report_to: rrec-emotion writes metrics.jsonl and report.html in the run folder; no other integration exists, so only none (or all: the same) is accepted. */
  report_to: row(reportTo, { default: 'none', defaultText: 'none', type: 'none|all', help: 'logging integrations: none (metrics.jsonl and report.html are always written)', group: 'output' }),
  /** Log a plain progress line every this many steps (metrics JSONL gets every step). */
  logging_steps: int(1, 'output', 'plain progress line every this many steps (TRL: 10)', { min: 1 }),
} as const satisfies Record<string, FieldRow>;

export type FieldName = keyof typeof FIELDS;

/** Fields whose default (null in the table) is derived from other fields by resolveTrainConfig. */
export type DerivedField = 'run_name' | 'eval_steps' | 'epsilon_high' | 'scale_rewards' | 'sft_epochs' | 'reward_weights';

type Fields = typeof FIELDS;

/** A fully resolved training configuration: every field present and checked (resolveTrainConfig's result). */
export type TrainConfig = {
  -readonly [K in FieldName]: K extends DerivedField ? NonNullable<z.output<Fields[K]['schema']>> : z.output<Fields[K]['schema']>;
};

/**
 * Other names accepted for a field: TRL / vLLM / PEFT spellings used by the reference project's
 * scripts. `schema`, when present, checks and converts the alias value before the field's own check.
 */
export interface ConfigAlias {
  readonly field: FieldName;
  readonly note: string;
  readonly schema?: z.ZodType;
  /** The CLI flag's type when it is not the field's. */
  readonly flagType?: FlagType;
}

const bf16 = z
  .union([z.boolean(), z.enum(['true', 'false'])])
  .transform((v): 'bf16' | 'fp32' => (v === true || v === 'true' ? 'bf16' : 'fp32'))
  .meta({ description: "TRL's bf16" });

const fraction = z
  .union([z.number(), z.string()])
  .transform((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v))
  .pipe(z.number().gt(0).lte(1))
  .meta({ description: 'a fraction of device memory for the KV cache' });

export const TRAIN_CONFIG_ALIASES = Object.freeze({
  vllm_gpu_memory_utilization: { field: 'kv_memory_budget', note: 'a fraction of device memory for the KV cache', schema: fraction, flagType: 'float' },
  bf16: { field: 'matmul_precision', note: "TRL's bf16: true = bf16 products, false = fp32", schema: bf16, flagType: 'boolean' },
  evaluation_strategy: { field: 'eval_strategy', note: "older TrainingArguments name" },
  num_generations: { field: 'group_size', note: "TRL's name" },
  max_completion_length: { field: 'max_new_tokens', note: "TRL's name" },
  lora_rank: { field: 'lora_r', note: 'PEFT-style name' },
} as const satisfies Record<string, ConfigAlias>);

/** The error of an alias value that its schema refuses. */
export const ALIAS_PROBLEMS: Readonly<Partial<Record<keyof typeof TRAIN_CONFIG_ALIASES, string>>> = {
  vllm_gpu_memory_utilization: 'expected a fraction in (0, 1]',
  bf16: 'expected true or false',
};

type Aliases = typeof TRAIN_CONFIG_ALIASES;
type AliasInput<A> = A extends { schema: z.ZodType } ? z.input<A['schema']> : A extends { field: infer F extends FieldName } ? z.input<Fields[F]['schema']> : never;

/**
 * What GrpoTrainer and resolveTrainConfig accept: any subset of the fields (undefined counts as
 * absent; null asks for a derived default), or their aliases. A misspelt name fails tsc.
 */
export type TrainConfigInput = { [K in FieldName]?: z.input<Fields[K]['schema']> | undefined } & { [K in keyof Aliases]?: AliasInput<Aliases[K]> | undefined };

/** The schema of a whole input object (unknown keys refused), for the JSON Schema. */
export const trainConfigInputSchema = z
  .object({
    ...Object.fromEntries(Object.entries(FIELDS).map(([k, r]) => [k, (r.schema as z.ZodType).optional()])),
    ...Object.fromEntries(
      Object.entries(TRAIN_CONFIG_ALIASES).map(([k, a]) => [k, ((a as ConfigAlias).schema ?? (FIELDS[a.field].schema as z.ZodType)).meta({ description: `= ${a.field} (${a.note})` }).optional()]),
    ),
  })
  .strict() as unknown as z.ZodType<TrainConfig, TrainConfigInput>;

/**
 * The JSON Schema (draft 2020-12) of a config file (`rrec-emotion train --config run.json|yaml`):
 * every field and alias with its description and default; a `$schema` key is allowed so that a
 * file can name this schema.
 */
export function trainConfigJsonSchema(): Record<string, unknown> {
  const js = z.toJSONSchema(trainConfigInputSchema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
  const properties: Record<string, Record<string, unknown>> = { $schema: { type: 'string', description: 'the JSON Schema of this file' } };
  for (const [name, p] of Object.entries(js.properties)) {
    const f = (FIELDS as Record<string, FieldRow>)[name];
    // A transform's input side carries no default; an alias has none of its own.
    if (f) properties[name] = f.default === null ? p : { ...p, default: f.default };
    else {
      const { default: _, ...rest } = p;
      properties[name] = rest;
    }
  }
  return {
    ...js,
    title: 'rrec-emotion train config',
    description: 'The configuration of `rrec-emotion train --config FILE` and `new GrpoTrainer(config)`. Field names follow TRL GRPOConfig / TrainingArguments where they exist.',
    properties,
  };
}

/** The file name of the JSON Schema in the package (package.json exports it as `rrec-emotion/train-config.schema.json`). */
export const TRAIN_CONFIG_SCHEMA_FILE = 'train-config.schema.json';
