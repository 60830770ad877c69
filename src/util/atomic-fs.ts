/**
 * Crash-safe file and folder writes, shared by the dataset writer, the model savers and the
 * checkpoint writer. Only node builtins are imported.
 *
 * rename() within one file system is atomic, so every write goes to a temporary sibling (same
 * parent, hence the same file system) and is renamed into place: a reader, or a crash, sees the
 * old file/folder or the complete new one, never a partial one. Data is fsynced before the rename
 * and the parent folder after it, so the new entry survives a power loss too.
 *
 * Temporary names (all in the target's parent, all starting with a dot):
 *   .<name>.tmp-<pid>-<hex>   being written (left behind only if the process died)
 *   .<name>.old-<pid>-<hex>   the folder being replaced, renamed aside between the two renames
 *   .<name>.del-<pid>-<hex>   a folder being deleted (used by checkpoint rotation)
 * TEMP_NAME_RE matches them; a crash-recovery pass can restore an `.old-` folder whose `<name>`
 * is missing and remove everything else (see cleanStaleTemps in src/train/checkpoint-dir.ts).
 *
 * Replacing an existing folder takes two renames (old aside, new in). Between them the path is
 * briefly absent, but both copies are whole on disk; if the second rename fails the old folder is
 * renamed back. On any failure the temporary folder is removed and the previous folder is intact.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Bytes, a string (UTF-8), or chunks written one after another (avoids concatenating large buffers). */
export type FileData = Uint8Array | string | readonly Uint8Array[];

/** Kinds of temporary sibling; see the module comment. */
export type TempKind = 'tmp' | 'old' | 'del';

/** Matches a temporary sibling name; group 1 is the target's name, group 2 the kind. */
export const TEMP_NAME_RE = /^\.(.+)\.(tmp|old|del)-\d+-[0-9a-f]+$/;

/** `<pid>-<8 hex>`: unique per call, and names the process that made the temporary. */
export function tempTag(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** `<parent>/.<name>.<kind>-<tag>` for the absolute path `target`. */
export function tempSibling(target: string, kind: TempKind, tag: string = tempTag()): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${kind}-${tag}`);
}

/** What is at `p`, without following a final symlink. */
export async function pathKind(p: string): Promise<'absent' | 'dir' | 'other'> {
  try {
    return (await lstat(p)).isDirectory() ? 'dir' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
}

/** fsync on a folder, so that new entries and renames reach the disk; best effort (Windows refuses). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // best effort: losing it only loses the extra guarantee
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** fsync on an existing file (e.g. one written without syncing). */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface WriteSyncedOptions {
  /** Fail (EEXIST) rather than overwrite an existing file. */
  exclusive?: boolean;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EIO: 'input/output error',
};

/**
 * The error of a failed write with the file named: node's write() and fsync() errors carry no
 * path ("ENOSPC: no space left on device, write"). The code is kept (`.code`), the original is
 * the cause.
 */
export function fileWriteError(e: unknown, file: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.path === 'string' && err.path === file) return err;
  const code = err?.code;
  const what = code ? `${ERRNO_TEXT[code] ?? err.message} (${code})` : String(err?.message ?? e);
  const out = new Error(`${file}: cannot write: ${what}`, { cause: e }) as NodeJS.ErrnoException;
  if (code) out.code = code;
  out.path = file;
  return out;
}

/** Writes a file and fsyncs it (not its folder: a later commit, or writeFileAtomic, syncs that). */
export async function writeFileSynced(file: string, data: FileData, opts: WriteSyncedOptions = {}): Promise<void> {
  const fh = await open(file, opts.exclusive ? 'wx' : 'w');
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) await fh.writeFile(data);
    else for (const chunk of data) await fh.writeFile(chunk);
    await fh.sync();
  } catch (e) {
    throw fileWriteError(e, file);
  } finally {
    await fh.close();
  }
}

/** Writes `value` as pretty JSON (2 spaces, trailing newline), fsynced. */
export async function writeJsonSynced(file: string, value: unknown): Promise<void> {
  await writeFileSynced(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** fsyncs every regular file under `dir` (unless `files` is false), then every folder bottom-up. */
export async function syncTree(dir: string, files = true): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await syncTree(p, files);
    else if (files && e.isFile()) await fsyncFile(p);
  }
  await fsyncDir(dir);
}

/**
 * Writes `file` atomically: `.name.tmp-<pid>-<hex>` beside it, fsync, rename over `file`, fsync
 * the folder. On failure the temporary file is removed and `file` is as it was.
 */
export async function writeFileAtomic(file: string, data: FileData): Promise<void> {
  const abs = path.resolve(file);
  const tmp = tempSibling(abs, 'tmp');
  try {
    await writeFileSynced(tmp, data, { exclusive: true });
    await rename(tmp, abs);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    // name the file the caller asked for, not the temporary one
    throw (e as NodeJS.ErrnoException).path === tmp ? fileWriteError((e as Error).cause ?? e, abs) : e;
  }
  await fsyncDir(path.dirname(abs));
}

export interface WriteDirOptions {
  /**
   * Called once the temporary folder is filled and synced, before anything is renamed. Throwing
   * aborts the write: the temporary folder is removed and the target is untouched. For tests
   * (simulate a crash just before the commit) and for a last check of the files.
   */
  beforeCommit?: (tmpDir: string) => void | Promise<void>;
  /**
   * The caller's policy for an existing folder: throws (with a message naming it) when it may not
   * be replaced. Called before anything is written and again right before the commit. Without it
   * an existing folder is replaced. A path that exists and is not a folder is always refused.
   */
  checkReplace?: (existingDir: string) => void | Promise<void>;
}

/** Internal: skip the per-file fsync when the filler already synced every file it wrote. */
interface FillOptions extends WriteDirOptions {
  filesSynced?: boolean;
}

async function checkTarget(abs: string, checkReplace: WriteDirOptions['checkReplace']): Promise<'absent' | 'dir'> {
  const kind = await pathKind(abs);
  if (kind === 'other') throw new Error(`${abs}: exists and is not a folder; refusing to replace it`);
  if (kind === 'dir') await checkReplace?.(abs);
  return kind;
}

async function fillAndCommit(dir: string, fill: (tmpDir: string) => Promise<void>, opts: FillOptions): Promise<void> {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  if (abs === parent) throw new Error(`writeDirAtomic: cannot replace the root folder ${abs}`);
  // Refuse early, before the (possibly long) fill; checked again right before the commit.
  await checkTarget(abs, opts.checkReplace);
  await mkdir(parent, { recursive: true });
  const tag = tempTag();
  const tmp = tempSibling(abs, 'tmp', tag);
  await mkdir(tmp);
  try {
    await fill(tmp);
    // Files and folder entries must reach the disk before the rename, or a crash after it could
    // show empty or missing files under the new name.
    await syncTree(tmp, !opts.filesSynced);
    await opts.beforeCommit?.(tmp);
    if ((await checkTarget(abs, opts.checkReplace)) === 'dir') {
      const old = tempSibling(abs, 'old', tag);
      await rename(abs, old);
      try {
        await rename(tmp, abs);
      } catch (e) {
        try {
          await rename(old, abs);
        } catch (e2) {
          throw new Error(`${abs}: replacing failed (${(e as Error).message}) and so did restoring the previous folder, which is left at ${old} (${(e2 as Error).message})`, { cause: e });
        }
        await fsyncDir(parent);
        throw e;
      }
      await fsyncDir(parent);
      // Committed: failing to delete the old copy must not report the write as failed (a
      // leftover `.old-` beside an existing target is what a crash-recovery pass removes).
      await rm(old, { recursive: true, force: true }).catch(() => undefined);
    } else {
      await rename(tmp, abs);
      await fsyncDir(parent);
    }
  } finally {
    // After a commit tmp no longer exists; after a failure this removes it.
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Writes folder `dir` atomically: `fill(tmpDir)` writes the content into an empty temporary
 * sibling, every file and folder in it is fsynced, and it is renamed to `dir`, replacing an
 * existing folder (subject to `checkReplace`).
 */
export async function writeDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>, opts: WriteDirOptions = {}): Promise<void> {
  await fillAndCommit(dir, fill, { ...opts, filesSynced: false });
}

export interface DirFile {
  /** Path relative to the folder, '/'-separated; no empty, "." or ".." segment, no backslash. */
  path: string;
  data: FileData;
}

/** Throws unless `rel` is a safe '/'-separated relative path (stays inside the folder). */
export function checkRelativePath(rel: string): void {
  const segs = rel.split('/');
  if (rel.length === 0 || rel.includes('\\') || rel.includes('\0') || segs.some((s) => s === '' || s === '.' || s === '..'))
    throw new Error(`writeDirFilesAtomic: "${rel}" is not a relative path inside the folder`);
}

/**
 * writeDirAtomic for a list of files: `files` become the whole content of `dir` (sub-folders are
 * created as needed). Each file is created exclusively (a path listed twice fails) and fsynced.
 */
export async function writeDirFilesAtomic(dir: string, files: readonly DirFile[], opts: WriteDirOptions = {}): Promise<void> {
  const seen = new Set<string>();
  for (const f of files) {
    checkRelativePath(f.path);
    if (seen.has(f.path)) throw new Error(`writeDirFilesAtomic: "${f.path}" is listed twice`);
    seen.add(f.path);
  }
  const fill = async (tmp: string): Promise<void> => {
    const made = new Set<string>([tmp]);
    for (const f of files) {
      const target = path.join(tmp, ...f.path.split('/'));
      const sub = path.dirname(target);
      if (!made.has(sub)) {
        await mkdir(sub, { recursive: true });
        made.add(sub);
      }
      await writeFileSynced(target, f.data, { exclusive: true });
    }
  };
  await fillAndCommit(dir, fill, { ...opts, filesSynced: true });
}
