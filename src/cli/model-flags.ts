/**
 * The flags `rrec-emotion eval` and `infer` share: which model (base model, trained weights) and
 * how its prompts are written. Values left out come from the run the weights belong to (its
 * run.json: model, labels, system prompt, generation budget), else from the trainer's defaults,
 * so `--checkpoint=runs/<run>/best` alone evaluates a trained model as it was trained.
 */
import { freemem } from 'node:os';
import { Engine } from '../engine/index.js';
import { Prompter } from '../prompt/index.js';
import { kvMemoryBudgetBytes, resolveTrainConfig } from '../train/config.js';
import { loadTrainedModel, type TrainedModel } from '../train/trained-model.js';
import { CliUsageError, type FlagSpecs, type ParsedFlags } from './args.js';
import { intAtLeast, nonEmpty } from './flag-values.js';

/** The trainer's defaults (what a run without run.json was most likely trained with). */
export const TRAIN_DEFAULTS = resolveTrainConfig({ run_name: 'defaults' });

export const MODEL_FLAGS: FlagSpecs = {
  model: { type: 'string', metavar: 'NAME|DIR', help: 'base model: "tiny" (built in), a name from the paths registry, or a model folder (default: the run\'s model when the weights come from a run, else tiny)' },
  checkpoint: { type: 'string', metavar: 'DIR', help: 'trained weights: <run>/checkpoint-N, <run>/best (LoRA or full fine-tune), or a run folder (its best/, else its latest checkpoint)' },
  adapter: { type: 'string', metavar: 'DIR', help: 'trained weights: a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)' },
  paths_file: { type: 'string', metavar: 'FILE', help: 'JSON file mapping model names to folders (default: ./paths.json when present)' },
  output_dir: { type: 'string', metavar: 'DIR', help: 'the built-in tiny model is built in DIR/builtin-tiny-qwen2, as train does', default: TRAIN_DEFAULTS.output_dir },
  seed: { type: 'int', help: "seed of the built-in tiny model's random weights when it is first built, as train's", default: TRAIN_DEFAULTS.seed },
  matmul_precision: { type: 'string', metavar: 'fp32|bf16', help: `products with bf16 weights (default: the run's, else ${TRAIN_DEFAULTS.matmul_precision})` },
  device: { type: 'string', metavar: 'auto|cpu|cuda|cuda:N', help: "where the model runs (default: the run's, else auto: a CUDA GPU when one is available, else the CPU)" },
  labels: { type: 'list', metavar: 'A,B,...', help: "label names in label-id order, as the prompt lists them (default: the run's, else the dataset's)" },
  system_prompt: { type: 'string', metavar: 'TEXT', help: "system prompt (default: the run's, else none)" },
  max_new_tokens: { type: 'int', help: `generation budget per completion, in tokens (default: the run's, else ${TRAIN_DEFAULTS.max_new_tokens})` },
};

/** Loads the model the flags name; `--checkpoint` and `--adapter` exclude each other. */
export async function loadModelFromFlags(flags: ParsedFlags): Promise<TrainedModel> {
  const checkpoint = nonEmpty(flags, 'checkpoint');
  const adapter = nonEmpty(flags, 'adapter');
  if (checkpoint !== undefined && adapter !== undefined) throw new CliUsageError(`pass either --checkpoint or --adapter, not both (got --checkpoint="${checkpoint}" and --adapter="${adapter}")`);
  return loadTrainedModel({
    model: nonEmpty(flags, 'model') ?? null,
    pathsFile: nonEmpty(flags, 'paths_file') ?? null,
    weights: checkpoint ?? adapter ?? null,
    outputDir: nonEmpty(flags, 'output_dir') ?? TRAIN_DEFAULTS.output_dir,
    seed: intAtLeast(flags, 'seed', 0, TRAIN_DEFAULTS.seed),
    matmulPrecision: matmulPrecisionFlag(flags),
    device: nonEmpty(flags, 'device') ?? null,
  });
}

function matmulPrecisionFlag(flags: ParsedFlags): 'fp32' | 'bf16' | null {
  const v = nonEmpty(flags, 'matmul_precision');
  if (v === undefined) return null;
  if (v !== 'fp32' && v !== 'bf16') throw new CliUsageError(`--matmul_precision must be fp32 or bf16, got "${v}"`);
  return v;
}

/** The prompt's labels: --labels, else the run's, else `fallback` (the dataset's). */
export function promptLabels(flags: ParsedFlags, model: TrainedModel, fallback?: readonly string[]): string[] {
  const given = flags.labels as string[] | undefined;
  if (given !== undefined) {
    if (given.length < 2) throw new CliUsageError(`--labels: expected at least two comma-separated names, got "${given.join(',')}"`);
    if (new Set(given).size !== given.length) throw new CliUsageError(`--labels: a name appears twice in "${given.join(',')}"`);
    return given;
  }
  const labels = model.run?.labels ?? fallback;
  if (!labels) throw new CliUsageError('--labels: needed (the weights come from no run and there is no dataset to take them from)');
  return [...labels];
}

/** The prompter for `labels`, with --system_prompt or the run's. */
export function prompterFor(flags: ParsedFlags, model: TrainedModel, labels: readonly string[]): Prompter {
  const systemPrompt = nonEmpty(flags, 'system_prompt') ?? model.run?.config.system_prompt ?? null;
  return new Prompter(model.tokenizer, { labels, ...(systemPrompt ? { systemPrompt } : {}) });
}

/** --max_new_tokens, else the run's, else the trainer's default. */
export function maxNewTokens(flags: ParsedFlags, model: TrainedModel): number {
  return intAtLeast(flags, 'max_new_tokens', 1, model.run?.config.max_new_tokens ?? TRAIN_DEFAULTS.max_new_tokens);
}

/** The sampling engine, with the trainer's KV budget (0.3 of free memory, at most 4 GiB). */
export function engineFor(model: TrainedModel): Engine {
  const budget = model.run?.config.kv_memory_budget ?? TRAIN_DEFAULTS.kv_memory_budget;
  return new Engine(model.lm, { tokenizer: model.tokenizer, kvBudgetBytes: Math.min(kvMemoryBudgetBytes(budget, freemem()), 4 * 2 ** 30) });
}

/** `model <dir>` / `weights <dir> (LoRA adapter | full fine-tune)` lines for the output. */
export function describeModel(model: TrainedModel): string[] {
  const lines = [`model    ${model.modelDir}`];
  if (model.weights) lines.push(`weights  ${model.weightsDir} (${model.weights.kind === 'adapter' ? `LoRA adapter ${model.weights.dir}` : 'full fine-tune'})`);
  return lines;
}
