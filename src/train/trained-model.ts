/**
 * loadTrainedModel: a base model with (optionally) trained weights on it, ready for the engine,
 * as `rrec-emotion eval` and `infer` use it.
 *
 * `weights` may be a checkpoint folder (`checkpoint-<step>/` or `best/`, LoRA or full fine-tune),
 * a run folder (its best/ when it has one, else its latest checkpoint) or a PEFT adapter folder.
 * The base model is the one the run was trained on (run.json beside the weights, see run-info.ts)
 * when `model` is absent or names the run's model; else `model` ('tiny', a paths-registry name or
 * a folder); else the built-in tiny model. The built-in model is built, once, into `<outputDir>/builtin-tiny-qwen2` with `seed`, as
 * the trainer does (defaults runs and 42, the trainer's).
 */
import { join, resolve } from 'node:path';
import { CausalLM, type LoraAdapter } from '../model/index.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { pathKind } from '../util/atomic-fs.js';
import { bestDir } from './best-model.js';
import { ensureBuiltinModel } from './builtin-model.js';
import { latestCheckpoint } from './checkpoint-dir.js';
import { BUILTIN_MODEL } from './config.js';
import { loadModelPaths, resolveModelPath } from './paths.js';
import { findRunInfo, RUN_INFO_FILE, type RunInfo } from './run-info.js';
import { applyWeights, locateWeights, type WeightsLocation } from './trained-weights.js';

export interface TrainedModelOptions {
  /** 'tiny', a paths-registry name or a model folder; absent: the run's model, else 'tiny'. */
  model?: string | null;
  /** The paths registry file (default ./paths.json when present). */
  pathsFile?: string | null;
  /** Trained weights: a checkpoint, best/, run or PEFT adapter folder; absent: the base model alone. */
  weights?: string | null;
  /** Parent folder of the built-in model's folder (default "runs"). */
  outputDir?: string;
  /** Seed of the built-in model's random weights when it is first built (default 42). */
  seed?: number;
  /** Products with bf16 weights (LoadOptions.matmulPrecision); absent: the run's, else 'bf16' (the trainer's default). */
  matmulPrecision?: 'fp32' | 'bf16' | null;
  /** Where the model runs (default: the run's device, else 'auto'). */
  device?: string | null;
}

export interface TrainedModel {
  lm: CausalLM;
  /** The loaded adapter; null for the base model or full fine-tune weights. */
  adapter: LoraAdapter | null;
  tokenizer: Tokenizer;
  /** The base model's folder. */
  modelDir: string;
  /** The folder the weights came from (after resolving a run folder), or null. */
  weightsDir: string | null;
  /** What the weights were. */
  weights: WeightsLocation | null;
  /** The run the weights belong to, when its run.json was found. */
  run: RunInfo | null;
}

/** A run folder (has run.json but no weights of its own) -> its best/, else its latest checkpoint. */
async function resolveWeightsDir(dir: string): Promise<string> {
  const abs = resolve(dir);
  if ((await pathKind(join(abs, RUN_INFO_FILE))) !== 'other') return abs;
  if ((await pathKind(bestDir(abs))) === 'dir') return bestDir(abs);
  const latest = await latestCheckpoint(abs);
  if (!latest) throw new Error(`${abs}: a run folder with neither best/ nor a checkpoint-<step> folder; pass a checkpoint folder`);
  return latest.dir;
}

/** Where a trained model's parts are, without loading anything: what loadTrainedModel loads. */
export interface TrainedModelLocation {
  /** The base model's folder. */
  modelDir: string;
  /** The folder the weights came from (after resolving a run folder), or null. */
  weightsDir: string | null;
  weights: WeightsLocation | null;
  /** The run the weights belong to, when its run.json was found. */
  run: RunInfo | null;
}

/** Resolves the base model folder and the trained weights as loadTrainedModel does (the built-in model is built when needed). */
export async function locateTrainedModel(opts: Omit<TrainedModelOptions, 'matmulPrecision'> = {}): Promise<TrainedModelLocation> {
  const weightsDir = opts.weights ? await resolveWeightsDir(opts.weights) : null;
  const weights = weightsDir ? await locateWeights(weightsDir) : null;
  const run = weightsDir ? ((await findRunInfo(weightsDir))?.info ?? null) : null;

  let modelDir: string;
  const model = opts.model ?? null;
  if (run !== null && (model === null || model === run.config.model)) {
    // the run's own base model (for 'tiny': the folder its random weights were built in, with its seed)
    modelDir = await resolveModelPath(run.model_dir, {});
  } else if (model === BUILTIN_MODEL || model === null) {
    modelDir = await ensureBuiltinModel(join(resolve(opts.outputDir ?? 'runs'), 'builtin-tiny-qwen2'), opts.seed ?? 42);
  } else {
    const { paths } = await loadModelPaths(opts.pathsFile ? { pathsFile: opts.pathsFile } : {});
    modelDir = await resolveModelPath(model, paths);
  }
  return { modelDir, weightsDir, weights, run };
}

export async function loadTrainedModel(opts: TrainedModelOptions = {}): Promise<TrainedModel> {
  const { modelDir, weightsDir, weights, run } = await locateTrainedModel(opts);
  const tokenizer = await loadTokenizer(modelDir);
  const matmulPrecision = opts.matmulPrecision ?? run?.config.matmul_precision ?? 'bf16';
  const lm = await CausalLM.load(modelDir, { fullFinetune: weights?.kind === 'full', matmulPrecision, device: opts.device ?? run?.config.device ?? 'auto' });
  try {
    const adapter = weights ? await applyWeights(lm, weights) : null;
    return { lm, adapter, tokenizer, modelDir, weightsDir, weights, run };
  } catch (e) {
    lm.free();
    throw e;
  }
}
