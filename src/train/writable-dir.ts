/**
 * The output folder checked at start: created if missing, then probed with a file created and
 * removed, so that a read-only or foreign folder is refused before minutes of loading and
 * training, naming the flag and the real cause (mkdir into a read-only mount reports ENOENT or
 * EROFS on the child, not "read-only" on the folder the user typed).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

const WHY: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a path component is a file, not a folder',
  EEXIST: 'exists and is not a folder',
};

function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code ? `${WHY[code] ?? (e as Error).message} (${code})` : String(e);
}

/** The nearest existing ancestor of `p` (p itself when it exists). */
async function existingAncestor(p: string): Promise<string> {
  let d = p;
  for (;;) {
    try {
      await stat(d);
      return d;
    } catch {
      const up = dirname(d);
      if (up === d) return d;
      d = up;
    }
  }
}

/** Creates and removes a file in `dir`: null when that works, else the error. */
async function probeFile(dir: string): Promise<unknown> {
  const probe = join(dir, `.rrec-write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(probe, 'wx');
    await fh.close();
  } catch (e) {
    return e;
  }
  await unlink(probe).catch(() => undefined);
  return null;
}

/** Creates `dir` when missing and checks a file can be created in it; throws naming `flag`, the folder and the cause. */
export async function ensureWritableDir(dir: string, flag: string): Promise<void> {
  const abs = resolve(dir);
  try {
    await mkdir(abs, { recursive: true });
  } catch (e) {
    const base = await existingAncestor(dirname(abs));
    // mkdir -p into a read-only mount reports ENOENT for the child; the nearest existing folder's
    // own refusal is the real cause
    const real = (await probeFile(base)) ?? e;
    throw new Error(`${flag} ${abs}: cannot create the folder: ${why(real)} (the nearest existing folder is ${base})`, { cause: e });
  }
  const err = await probeFile(abs);
  if (err !== null) throw new Error(`${flag} ${abs}: the folder is not writable: ${why(err)}`, { cause: err });
}
