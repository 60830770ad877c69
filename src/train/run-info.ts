/**
 * `<run>/run.json`: what a run was trained with, written atomically by GrpoTrainer.fit() when it
 * starts, so that a checkpoint can be evaluated or used later without repeating the training
 * flags: the resolved configuration, the base model folder (for the built-in tiny model, the
 * folder its random weights were written to), the dataset folder and the label list.
 *
 *   { "config": {...TrainConfig}, "model_dir": "/abs/...", "data_dir": "/abs/...", "labels": [...] }
 */
import { dirname, join, resolve } from 'node:path';
import { pathKind, writeFileAtomic } from '../util/atomic-fs.js';
import { readJsonFile } from './checkpoint-dir.js';
import type { TrainConfig } from './config.js';

export const RUN_INFO_FILE = 'run.json';

export interface RunInfo {
  config: TrainConfig;
  /** Absolute folder of the base model. */
  model_dir: string;
  /** Absolute folder of the (preprocessed, Arrow) dataset. */
  data_dir: string;
  /** Label names in label-id order, as the prompts listed them. */
  labels: string[];
}

export async function writeRunInfo(runDir: string, info: RunInfo): Promise<void> {
  await writeFileAtomic(join(resolve(runDir), RUN_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
}

/** Reads and checks a run.json; errors name the file and the field. */
export async function readRunInfo(file: string): Promise<RunInfo> {
  const info = await readJsonFile<Partial<RunInfo>>(file);
  const bad = (field: string, want: string) => new Error(`${file}: "${field}" must be ${want}, got ${JSON.stringify((info as Record<string, unknown>)[field])}`);
  if (typeof info !== 'object' || info === null) throw new Error(`${file}: expected a JSON object`);
  if (typeof info.config !== 'object' || info.config === null) throw bad('config', 'an object');
  if (typeof info.model_dir !== 'string' || info.model_dir === '') throw bad('model_dir', 'a folder path');
  if (typeof info.data_dir !== 'string' || info.data_dir === '') throw bad('data_dir', 'a folder path');
  if (!Array.isArray(info.labels) || info.labels.length === 0 || !info.labels.every((l) => typeof l === 'string')) throw bad('labels', 'a non-empty list of strings');
  return info as RunInfo;
}

/**
 * The run.json of the run that `dir` belongs to: `dir` itself (a run folder), its parent (a
 * `checkpoint-<step>/` or `best/` folder) or its grandparent (a checkpoint's `adapter/`). Null when
 * none of them has one (weights from elsewhere).
 */
export async function findRunInfo(dir: string): Promise<{ file: string; info: RunInfo } | null> {
  let d = resolve(dir);
  for (let up = 0; up < 3; up++) {
    const file = join(d, RUN_INFO_FILE);
    if ((await pathKind(file)) === 'other') return { file, info: await readRunInfo(file) };
    const parent = dirname(d);
    if (parent === d) break;
    d = parent;
  }
  return null;
}
