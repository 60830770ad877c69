/**
 * writeDirAtomic: writes a folder of files so that readers see either the old folder, or the
 * complete new one, never a half-written one.
 *
 * The files go to a temporary sibling `.<name>.tmp-<pid>-<random>` (same parent, hence the same
 * file system, so rename is atomic), each fsynced, then the folder is renamed into place. With
 * `overwrite` an existing folder is first renamed aside, the new one renamed in, and the old one
 * deleted; if the second rename fails the old folder is put back. The temporary folder is removed
 * in a `finally`, so a failure at any point leaves no trace.
 *
 * Overwriting is refused for a folder that is neither empty nor a saved dataset (no
 * dataset_dict.json): a mistyped --output_dir must not delete someone's data.
 */

import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
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

export async function writeDirAtomic(outputDir: string, files: readonly OutputFile[], opts: AtomicWriteOptions = {}): Promise<void> {
  const abs = path.resolve(outputDir);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  await checkOutputDir(abs, opts.overwrite ?? false);
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${base}.tmp-${tag}`);
  await mkdir(tmp);
  try {
    const dirs = new Set<string>([tmp]);
    for (const f of files) {
      const target = path.join(tmp, ...f.path.split('/'));
      if (!target.startsWith(tmp + path.sep)) throw new Error(`output file path escapes the folder: ${f.path}`);
      const dir = path.dirname(target);
      if (!dirs.has(dir)) {
        await mkdir(dir, { recursive: true });
        dirs.add(dir);
      }
      await writeFileSynced(target, f.data);
    }
    // Directory entries must reach the disk too, or a crash after rename could show empty files.
    for (const d of [...dirs].reverse()) await fsyncDir(d);
    await opts.beforeCommit?.(tmp);

    if ((await checkOutputDir(abs, opts.overwrite ?? false)) === 'replace') {
      const old = path.join(parent, `.${base}.old-${tag}`);
      await rename(abs, old);
      try {
        await rename(tmp, abs);
      } catch (e) {
        await rename(old, abs);
        throw e;
      }
      await fsyncDir(parent);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, abs);
      await fsyncDir(parent);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function writeFileSynced(file: string, data: Uint8Array | string): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync on a folder; some platforms (Windows) refuse it, which only loses the extra guarantee. */
async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort
  } finally {
    await fh?.close();
  }
}
