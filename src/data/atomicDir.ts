/**
 * The dataset writer's policy on top of the shared atomic folder write (src/util/atomic-fs.ts):
 * readers see either the old folder or the complete new one, never a half-written one, and a
 * failure at any point leaves no trace.
 *
 * An existing output folder is replaced only with `overwrite`, and even then not when it is
 * neither empty nor a saved dataset (no dataset_dict.json): a mistyped --output_dir must not
 * delete someone's data.
 */

import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { writeDirFilesAtomic } from '../util/atomic-fs.js';
import { DatasetError } from './errors.js';
import { DATASET_DICT_FILE } from './hfLayout.js';

export interface OutputFile {
  /** Path relative to the output folder, '/'-separated. */
  path: string;
  data: Uint8Array | string;
}

export interface AtomicWriteOptions {
  overwrite?: boolean;
  /**
   * Called once every file is in the temporary folder, before anything is renamed. For tests
   * (throw to simulate a crash before commit) and for a last look at the files.
   */
  beforeCommit?: (tempDir: string) => void | Promise<void>;
}

/** Throws unless `outputDir` may be written: absent, or replaceable under `overwrite`. */
export async function checkOutputDir(outputDir: string, overwrite: boolean): Promise<'absent' | 'replace'> {
  const abs = path.resolve(outputDir);
  let isDir: boolean;
  try {
    isDir = (await lstat(abs)).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
  if (!overwrite) throw new DatasetError(`output folder already exists; pass overwrite (--overwrite) to replace it`, { file: abs });
  if (!isDir) throw new DatasetError(`output path exists and is not a folder; refusing to replace it`, { file: abs });
  const entries = await readdir(abs);
  if (entries.length > 0 && !entries.includes(DATASET_DICT_FILE)) {
    throw new DatasetError(`output folder is not a saved dataset (no ${DATASET_DICT_FILE}) and not empty; refusing to replace it`, { file: abs });
  }
  return 'replace';
}

/** Writes `files` as the whole content of `outputDir`, atomically, under checkOutputDir's rules. */
export async function writeDirAtomic(outputDir: string, files: readonly OutputFile[], opts: AtomicWriteOptions = {}): Promise<void> {
  const overwrite = opts.overwrite ?? false;
  // First so that a refusal is a DatasetError (also for a path that is not a folder).
  await checkOutputDir(outputDir, overwrite);
  await writeDirFilesAtomic(outputDir, files, {
    ...(opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {}),
    checkReplace: async (dir) => {
      await checkOutputDir(dir, overwrite);
    },
  });
}
