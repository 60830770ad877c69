/**
 * Checkpoint folders on disk: atomic folder writes, listing, rotation (save_total_limit) and
 * fsynced JSON helpers. Knows nothing of what a checkpoint holds.
 *
 * Layout: `<runDir>/checkpoint-<step>/` (step = global optimizer step, decimal, no padding), as the
 * HF Trainer names them. Names starting with "." are this module's temporary folders and are
 * never listed:
 *   .<name>.tmp-<pid>-<hex>   a folder being written (left behind only if the process died)
 *   .<name>.old-<pid>-<hex>   the folder being replaced, renamed aside for a moment
 *   .<name>.del-<pid>-<hex>   a rotated-out checkpoint being deleted
 *
 * writeDirAtomic: the caller fills a temporary sibling folder; every file and folder in it is then
 * fsynced, and it is renamed into place (same parent, so the rename is atomic on POSIX file
 * systems). Readers see the previous folder or the complete new one, never a partial one. A
 * failure (the callback throws, a write fails) removes the temporary folder and leaves the
 * previous one as it was. A crash leaves at worst a `.tmp-` folder (ignored, removed by
 * cleanStaleTemps). Replacing an existing folder takes two renames; a crash between them leaves
 * the old one as `.old-`, which cleanStaleTemps renames back.
 */

import { readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  fsyncDir,
  pathKind,
  TEMP_NAME_RE,
  tempSibling,
  writeDirAtomic as writeDirAtomicShared,
  writeFileSynced,
  writeJsonSynced,
  type WriteDirOptions as SharedWriteDirOptions,
} from '../util/atomic-fs.js';

export { writeFileSynced, writeJsonSynced };

/** `checkpoint-<step>` */
export const CHECKPOINT_PREFIX = 'checkpoint-';
const CHECKPOINT_RE = /^checkpoint-(0|[1-9]\d*)$/;

export interface CheckpointInfo {
  /** Global optimizer step. */
  step: number;
  /** Folder name, `checkpoint-<step>`. */
  name: string;
  /** Absolute folder path. */
  dir: string;
}

/** `checkpoint-<step>` for a step (a non-negative integer). */
export function checkpointName(step: number): string {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`checkpoint step must be a non-negative integer, got ${step}`);
  return `${CHECKPOINT_PREFIX}${step}`;
}

/** beforeCommit: called after the folder is filled and synced, before anything is renamed (tests throw here). */
export type WriteDirOptions = Pick<SharedWriteDirOptions, 'beforeCommit'>;

/**
 * Writes `finalDir` atomically (src/util/atomic-fs.ts): `fill(tmpDir)` writes the content into an
 * empty temporary sibling, which is then synced and renamed to `finalDir`, replacing an existing
 * folder. Names starting with "." are refused: they are this module's temporary folders.
 */
export async function writeDirAtomic(finalDir: string, fill: (tmpDir: string) => Promise<void>, opts: WriteDirOptions = {}): Promise<void> {
  const abs = path.resolve(finalDir);
  if (path.basename(abs).startsWith('.')) throw new Error(`writeDirAtomic: folder names starting with "." are reserved for temporary folders: ${abs}`);
  await writeDirAtomicShared(abs, fill, opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {});
}

/** Checkpoints of a run, sorted by step (numerically); temporary and other entries are ignored. */
export async function listCheckpoints(runDir: string): Promise<CheckpointInfo[]> {
  const abs = path.resolve(runDir);
  let entries;
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: CheckpointInfo[] = [];
  for (const e of entries) {
    const m = CHECKPOINT_RE.exec(e.name);
    if (!m || !e.isDirectory()) continue;
    const step = Number(m[1]);
    if (!Number.isSafeInteger(step)) continue;
    out.push({ step, name: e.name, dir: path.join(abs, e.name) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The checkpoint with the highest step, or null when the run has none. */
export async function latestCheckpoint(runDir: string): Promise<CheckpointInfo | null> {
  const all = await listCheckpoints(runDir);
  return all[all.length - 1] ?? null;
}

/**
 * save_total_limit: deletes checkpoints beyond the newest `keep`, except `protect` (the best
 * checkpoint, by folder path or step), which is never deleted and does not count against `keep`
 * unless it is itself among the newest. keep = 0 keeps everything. Each victim is renamed to a
 * `.del-` name before it is removed, so a crash mid-delete never leaves a half checkpoint listed.
 * Returns the deleted checkpoints, oldest first.
 */
export async function rotateCheckpoints(runDir: string, keep: number, protect?: string | number | null): Promise<CheckpointInfo[]> {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`rotateCheckpoints: keep must be an integer >= 0, got ${keep}`);
  if (keep === 0) return [];
  const all = await listCheckpoints(runDir);
  const isProtected = (c: CheckpointInfo): boolean =>
    protect !== undefined && protect !== null && (typeof protect === 'number' ? c.step === protect : path.resolve(protect) === c.dir);
  const newest = new Set(all.slice(Math.max(0, all.length - keep)).map((c) => c.dir));
  const victims = all.filter((c) => !newest.has(c.dir) && !isProtected(c));
  for (const c of victims) {
    const doomed = tempSibling(c.dir, 'del');
    await rename(c.dir, doomed);
    await rm(doomed, { recursive: true, force: true });
  }
  if (victims.length > 0) await fsyncDir(path.resolve(runDir));
  return victims;
}

/**
 * Tidies what a crashed writer left in `runDir`: restores a `.X.old-` folder whose `X` is missing
 * (the crash fell between the two renames of a replacement), and removes every other temporary
 * folder. Call it once when a run starts, before anything else writes there (one writer per run
 * folder). Returns the names removed or restored.
 */
export async function cleanStaleTemps(runDir: string): Promise<{ removed: string[]; restored: string[] }> {
  const abs = path.resolve(runDir);
  const removed: string[] = [];
  const restored: string[] = [];
  let names: string[];
  try {
    names = await readdir(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { removed, restored };
    throw e;
  }
  for (const name of names.sort()) {
    const m = TEMP_NAME_RE.exec(name);
    if (!m) continue;
    const target = m[1]!;
    if (m[2] === 'old' && (await pathKind(path.join(abs, target))) === 'absent') {
      await rename(path.join(abs, name), path.join(abs, target));
      restored.push(target);
      continue;
    }
    await rm(path.join(abs, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length + restored.length > 0) await fsyncDir(abs);
  return { removed, restored };
}

/** Reads a JSON file; the error names the file and what was wrong. */
export async function readJsonFile<T = unknown>(file: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : (code ?? String(e))})`, { cause: e });
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
}
