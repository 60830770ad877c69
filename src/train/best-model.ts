/**
 * The best model of a run by valid accuracy: `<run>/best/`, written atomically (a temporary
 * sibling renamed into place, see checkpoint-dir.ts) each time an evaluation improves on it.
 *
 *   adapter/ or model.safetensors   the weights, as in a checkpoint (trained-weights.ts); with full
 *                                   weights also config.json and the tokenizer: a model folder
 *   best.json                       { step, accuracy, metrics }: the evaluation that chose it
 *
 * It is not a `checkpoint-<step>` folder, so save_total_limit rotation never lists or deletes it,
 * and it holds no optimizer state (it is for evaluation and use, not for resuming).
 */
import { rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EvalMetrics } from '../eval/metrics.js';
import type { CausalLM, LoraAdapter } from '../model/index.js';
import { pathKind, tempSibling, writeJsonSynced } from '../util/atomic-fs.js';
import { readJsonFile, writeDirAtomic } from './checkpoint-dir.js';
import { writeTrainedWeights } from './trained-weights.js';

export const BEST_DIR = 'best';
export const BEST_INFO_FILE = 'best.json';

/** best.json. */
export interface BestModelInfo {
  /** Optimizer steps of the model (0: before GRPO, after any SFT warm start). */
  step: number;
  /** Its valid accuracy (= metrics.accuracy). */
  accuracy: number;
  /** The full valid evaluation. */
  metrics: EvalMetrics;
}

/** `<runDir>/best`. */
export function bestDir(runDir: string): string {
  return join(resolve(runDir), BEST_DIR);
}

/** Writes (or replaces) `<runDir>/best/` atomically; returns its path. */
export async function saveBestModel(
  runDir: string,
  parts: { lm: CausalLM; adapter: LoraAdapter | null },
  info: { step: number; metrics: EvalMetrics },
  opts: { baseModelNameOrPath?: string | null } = {},
): Promise<string> {
  const dir = bestDir(runDir);
  const body: BestModelInfo = { step: info.step, accuracy: info.metrics.accuracy, metrics: info.metrics };
  await writeDirAtomic(dir, async (tmp) => {
    await writeTrainedWeights(tmp, parts, { ...opts, modelFolder: true });
    await writeJsonSynced(join(tmp, BEST_INFO_FILE), body);
  });
  return dir;
}

/** best.json of a run, or null when the run has no best/ folder. Errors name the file. */
export async function readBestModelInfo(runDir: string): Promise<BestModelInfo | null> {
  const dir = bestDir(runDir);
  if ((await pathKind(dir)) === 'absent') return null;
  const file = join(dir, BEST_INFO_FILE);
  const info = await readJsonFile<BestModelInfo>(file);
  if (!Number.isSafeInteger(info.step) || info.step < 0) throw new Error(`${file}: "step" must be a non-negative integer, got ${JSON.stringify(info.step)}`);
  if (typeof info.accuracy !== 'number' || !Number.isFinite(info.accuracy)) throw new Error(`${file}: "accuracy" must be a number, got ${JSON.stringify(info.accuracy)}`);
  return info;
}

/** Removes `<runDir>/best/` (renamed aside first, so it never appears half deleted). */
export async function removeBestModel(runDir: string): Promise<boolean> {
  const dir = bestDir(runDir);
  if ((await pathKind(dir)) === 'absent') return false;
  const doomed = tempSibling(dir, 'del');
  await rename(dir, doomed);
  await rm(doomed, { recursive: true, force: true });
  return true;
}
