/**
 * resolveTrainConfig: a given configuration (TrainConfigInput) checked against the schema
 * (config-schema.ts), with the defaults and the derived defaults filled in and the cross-field
 * rules applied.
 *
 * Validation collects every problem before throwing one TrainConfigError: unknown fields (with the
 * close matches), wrong types and out-of-range values, each naming the field and the value. The
 * CLI flags and --help are in train-flags.ts.
 */
import path from 'node:path';
import type { AdvantageVariant } from '../grpo/types.js';
import { closeNames } from '../util/close-names.js';
import {
  ALIAS_PROBLEMS,
  BUILTIN_MODEL,
  FIELDS,
  TINY_MODEL_SFT_EPOCHS,
  TRAIN_CONFIG_ALIASES,
  show,
  type ConfigAlias,
  type FieldName,
  type FieldRow,
  type ScaleRewards,
  type TrainConfig,
} from './config-schema.js';

export {
  BUILTIN_MODEL,
  CONFIG_GROUPS,
  LORA_TARGET_MODULES,
  REWARD_FUNC_NAMES,
  TINY_MODEL_SFT_EPOCHS,
  TRAIN_CONFIG_ALIASES,
  kvMemoryBudgetBytes,
  parseMemoryBudget,
  trainConfigJsonSchema,
  type ConfigAlias,
  type ConfigGroup,
  type DerivedField,
  type FieldName,
  type RewardFuncName,
  type ScaleRewards,
  type TrainConfig,
  type TrainConfigInput,
} from './config-schema.js';

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

/** A field of the table with its name: what --help shows and how a value is checked. */
export type TrainConfigField = FieldRow & { readonly name: FieldName };

/** Every field, in the table's order. */
export const TRAIN_CONFIG_FIELDS: readonly TrainConfigField[] = Object.freeze(
  (Object.keys(FIELDS) as FieldName[]).map((name) => Object.freeze({ name, ...(FIELDS[name] as FieldRow) })),
);

const FIELD_BY_NAME = new Map<string, TrainConfigField>(TRAIN_CONFIG_FIELDS.map((f) => [f.name, f]));
const ALIASES: Readonly<Record<string, ConfigAlias>> = TRAIN_CONFIG_ALIASES;

/** Known field and alias names close to `name`. At most 3. */
export function closeFieldNames(name: string): string[] {
  return closeNames(name, [...FIELD_BY_NAME.keys(), ...Object.keys(ALIASES)]);
}

export interface ResolveOptions {
  /** Where the values came from, for error messages: a file path, "command line", ... */
  source?: string;
  /** The run's start time, for the default run_name (default: now). Inject it for determinism. */
  now?: Date;
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

/** Parses one field's value with its schema; the problem as a sentence fragment on failure. */
function parseField(f: FieldRow, value: unknown): { ok: true; value: unknown } | { ok: false; problem: string } {
  const r = f.schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0]!;
  // An item of the wrong type inside a list is said of the whole list.
  if (issue.path.length > 0 && issue.code === 'invalid_type' && f.listProblem) return { ok: false, problem: `${f.listProblem}, got ${show(value)}` };
  return { ok: false, problem: issue.message };
}

/**
 * Checks `partial` (any subset of the fields, by their snake_case names, or an alias) and returns
 * the full configuration with defaults filled in. Throws a TrainConfigError listing every problem.
 * `undefined` values count as absent; `null` asks for the default of a field whose default is null.
 * It takes `unknown` because it is the runtime check of what a file or a caller hands over (the
 * typed entry point is GrpoTrainer's constructor, which takes a TrainConfigInput).
 */
export function resolveTrainConfig(partial: unknown, options: ResolveOptions = {}): TrainConfig {
  const source = options.source ?? 'config';
  if (!isPlainObject(partial)) {
    throw new TrainConfigError([{ field: '(config)', value: partial, problem: `expected an object of fields, got ${show(partial)}` }], source);
  }
  const issues: ConfigIssue[] = [];
  // Parsed values of the fields given (directly or through an alias), with the name used.
  const given = new Map<FieldName, { value: unknown; as: string }>();

  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    const direct = FIELD_BY_NAME.get(key);
    const alias = direct ? undefined : ALIASES[key];
    const field = direct ?? (alias ? FIELD_BY_NAME.get(alias.field) : undefined);
    if (!field) {
      const close = closeFieldNames(key);
      issues.push({ field: key, value, problem: `unknown field${close.length > 0 ? `; did you mean ${close.join(', ')}?` : ''}` });
      continue;
    }
    let input: unknown = value;
    if (alias?.schema) {
      const a = alias.schema.safeParse(value);
      if (!a.success) {
        issues.push({ field: key, value, problem: `${ALIAS_PROBLEMS[key as keyof typeof ALIAS_PROBLEMS] ?? a.error.issues[0]!.message}, got ${show(value)}` });
        continue;
      }
      input = a.data;
    }
    const r = parseField(field, input);
    if (!r.ok) {
      issues.push({ field: key, value, problem: r.problem });
      continue;
    }
    const parsed = r.value;
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
    out[f.name] = g === undefined ? structuredClone(f.default as object | null) : g.value;
  }
  const explicit = (name: FieldName): boolean => given.has(name) && given.get(name)!.value !== null;
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

  // TRL's batch: per_device_train_batch_size x gradient_accumulation_steps completions per optimizer step.
  let trainBatchSize = cfg.train_batch_size;
  if (cfg.per_device_train_batch_size !== null) {
    const completions = cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps;
    if (completions % cfg.group_size !== 0) {
      issues.push({ field: 'per_device_train_batch_size', value: cfg.per_device_train_batch_size, problem: `x gradient_accumulation_steps ${cfg.gradient_accumulation_steps} = ${completions} completions per step, not a multiple of group_size ${cfg.group_size} (every prompt is sampled group_size times)` });
    } else {
      trainBatchSize = completions / cfg.group_size;
      if (explicit('train_batch_size') && cfg.train_batch_size !== trainBatchSize) {
        issues.push({ field: 'train_batch_size', value: cfg.train_batch_size, problem: `conflicts with per_device_train_batch_size ${cfg.per_device_train_batch_size} x gradient_accumulation_steps ${cfg.gradient_accumulation_steps} / group_size ${cfg.group_size} = ${trainBatchSize} prompts per step; give one of them` });
      }
    }
  } else if (cfg.gradient_accumulation_steps !== 1) {
    issues.push({ field: 'gradient_accumulation_steps', value: cfg.gradient_accumulation_steps, problem: 'counts micro-steps of per_device_train_batch_size completions: give per_device_train_batch_size too (or set train_batch_size, prompts per optimizer step)' });
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
    train_batch_size: trainBatchSize,
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

/** The run folder of a resolved config: output_dir/run_name. */
export function runDir(cfg: Pick<TrainConfig, 'output_dir' | 'run_name'>): string {
  return path.join(cfg.output_dir, cfg.run_name);
}
