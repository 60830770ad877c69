/**
 * One trainer per run folder: `<run>/.rrec-train.lock`, created exclusively (open 'wx') and holding
 * the owner's pid, host and start time as JSON. A second trainer pointed at the same folder is
 * refused with a message naming the owner; a lock whose process is gone (a kill -9, a power loss)
 * is stale and is taken over. Released when fit() ends, however it ends.
 *
 * Staleness is judged by `process.kill(pid, 0)` on the same host; a lock from another host (a
 * shared file system) is never taken over automatically: the message says how to remove it.
 */
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const RUN_LOCK_FILE = '.rrec-train.lock';

export interface RunLockOwner {
  pid: number;
  host: string;
  started: string;
}

export class RunLockedError extends Error {
  constructor(
    message: string,
    readonly lockFile: string,
    readonly owner: RunLockOwner | null,
  ) {
    super(message);
    this.name = 'RunLockedError';
  }
}

export interface RunLock {
  readonly file: string;
  /** Removes the lock file (only if it still holds this lock). Idempotent. */
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

async function readOwner(file: string): Promise<RunLockOwner | null> {
  try {
    const o = JSON.parse(await readFile(file, 'utf8')) as Partial<RunLockOwner>;
    return typeof o.pid === 'number' && Number.isInteger(o.pid) && o.pid > 0 && typeof o.host === 'string' ? { pid: o.pid, host: o.host, started: String(o.started ?? '?') } : null;
  } catch {
    return null;
  }
}

/** Takes the lock of `runDir` (which must exist), or throws RunLockedError naming the holder. */
export async function acquireRunLock(runDir: string): Promise<RunLock> {
  const file = join(runDir, RUN_LOCK_FILE);
  const me: RunLockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const text = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(file, 'wx');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      let released = false;
      return {
        file,
        release: async () => {
          if (released) return;
          released = true;
          const now = await readOwner(file);
          if (now?.pid === me.pid && now.host === me.host && now.started === me.started) await unlink(file).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = await readOwner(file);
    if (owner === null) {
      // being written this instant, or garbage left by a crash between open and write: look again once
      if (attempt === 0) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      await unlink(file).catch(() => undefined);
      continue;
    }
    if (owner.host === me.host && !alive(owner.pid)) {
      await unlink(file).catch(() => undefined); // stale: its process is gone
      continue;
    }
    const where = owner.host === me.host ? `process ${owner.pid}` : `process ${owner.pid} on host ${owner.host}`;
    throw new RunLockedError(
      `${runDir} is in use: ${where} has been training into it since ${owner.started} (lock ${file}). ` +
        `Wait for it to finish, or pick another --run_name / --output_dir${owner.host === me.host ? '' : `; if that process is gone, delete ${file}`}`,
      file,
      owner,
    );
  }
  throw new RunLockedError(`${file}: could not take the run folder's lock (it keeps reappearing)`, file, null);
}
