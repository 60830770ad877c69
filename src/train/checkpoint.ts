/**
 * Training checkpoints: `<run>/checkpoint-<step>/` written atomically (a crash mid-write leaves the
 * previous checkpoint as it was) and read back so that training continues exactly:
 *
 *   adapter/                  the LoRA adapter in PEFT's format (LoRA runs), or
 *   model.safetensors         every trained weight, HF names (full fine-tune runs)
 *                             (these two as trained-weights.ts writes and reads them)
 *   optimizer.safetensors     AdamW moments, `<param>.exp_avg` / `<param>.exp_avg_sq`, F32
 *   trainer_state.json        step, AdamW's step count, data cursor, early-stopping state, anything else
 *
 * Values round-trip bit for bit for float32 models (F32 on disk); a float64 model is saved at F32.
 */
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type AdamW, type CausalLM, type LoraAdapter } from '../model/index.js';
import { checkpointName, readJsonFile, writeDirAtomic } from './checkpoint-dir.js';
import { ADAPTER_DIR, MODEL_FILE, applyWeights, writeTrainedWeights } from './trained-weights.js';
import { writeJsonSynced } from '../util/atomic-fs.js';

export interface TrainerState {
  /** Optimizer steps taken. */
  step: number;
  /** Anything else the trainer needs to continue (data cursor, best metric, RNG seeds, ...). */
  [key: string]: unknown;
}

export interface CheckpointParts {
  lm: CausalLM;
  /** The trained adapter; null for a full fine-tune. */
  adapter: LoraAdapter | null;
  optimizer: AdamW;
}

const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FILE = 'trainer_state.json';

/** Writes `<runDir>/checkpoint-<state.step>` atomically and returns its path. */
export async function saveCheckpoint(
  runDir: string,
  parts: CheckpointParts,
  state: TrainerState,
  opts: { baseModelNameOrPath?: string | null; beforeCommit?: (tmpDir: string) => void | Promise<void> } = {},
): Promise<string> {
  const dir = join(runDir, checkpointName(state.step));
  const holder = parts.adapter ?? parts.lm;
  const params = holder.params();
  const optState = parts.optimizer.getState();
  if (optState.m.length !== params.length) throw new Error(`saveCheckpoint: the optimizer holds ${optState.m.length} tensors, the trained parameters are ${params.length}`);
  await writeDirAtomic(
    dir,
    async (tmp) => {
      await writeTrainedWeights(tmp, parts, { baseModelNameOrPath: opts.baseModelNameOrPath ?? null });
      await writeSafetensors(
        join(tmp, OPTIMIZER_FILE),
        params.flatMap((p, i) => [
          { name: `${p.name}.exp_avg`, shape: p.shape, data: optState.m[i]! },
          { name: `${p.name}.exp_avg_sq`, shape: p.shape, data: optState.v[i]! },
        ]),
        { metadata: { format: 'pt' } },
      );
      await writeJsonSynced(join(tmp, STATE_FILE), { ...state, optimizer_step: optState.step });
    },
    opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {},
  );
  return dir;
}

/**
 * Restores a checkpoint into a loaded model: returns the adapter (a new one loaded from the
 * checkpoint for LoRA runs; null for full fine-tunes, whose weights are set in place), an optimizer
 * with its state, and the trainer state.
 */
export async function loadCheckpoint(dir: string, lm: CausalLM): Promise<{ adapter: LoraAdapter | null; optimizer: AdamW; state: TrainerState }> {
  const state = await readJsonFile<TrainerState & { optimizer_step?: number }>(join(dir, STATE_FILE));
  if (typeof state.step !== 'number' || !Number.isSafeInteger(state.step) || state.step < 0)
    throw new Error(`${join(dir, STATE_FILE)}: "step" must be a non-negative integer, got ${JSON.stringify(state.step)}`);
  const adapter = await applyWeights(lm, lm.config.fullFinetune ? { kind: 'full', file: join(dir, MODEL_FILE) } : { kind: 'adapter', dir: join(dir, ADAPTER_DIR) });
  const names = (adapter ?? lm).params().map((p) => p.name);
  const optimizer = lm.createOptimizer(adapter ?? undefined);
  const file = join(dir, OPTIMIZER_FILE);
  const moments = await readSafetensors(file);
  const get = (name: string) => {
    const t = moments.get(name);
    if (!t) throw new Error(`${file}: tensor "${name}" is missing`);
    return t.data;
  };
  optimizer.setState({ step: state.optimizer_step ?? state.step, m: names.map((n) => get(`${n}.exp_avg`)), v: names.map((n) => get(`${n}.exp_avg_sq`)) });
  const { optimizer_step: _drop, ...rest } = state;
  void _drop;
  return { adapter, optimizer, state: rest };
}
