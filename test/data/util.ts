/** Paths and temp folders shared by the datasets tests. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root: two levels up from test/data. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'data');
/** The real ED_easy_4 files (not committed; CI has them next to the checkout). */
export const ED_EASY_4 = path.resolve(REPO_ROOT, '..', 'shared', 'data', 'ED_easy_4');
export const HAS_REAL_DATA = existsSync(path.join(ED_EASY_4, 'train.csv'));

export const fixture = (name: string): string => path.join(FIXTURES, name);

/** A fresh temp folder; `cleanup` removes every folder made so far. */
export function tempDirs(): { make: () => Promise<string>; cleanup: () => Promise<void> } {
  const made: string[] = [];
  return {
    make: async () => {
      const d = await mkdtemp(path.join(os.tmpdir(), 'rrec-data-test-'));
      made.push(d);
      return d;
    },
    cleanup: async () => {
      for (const d of made.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}

/** Everything under `dir`, relative, sorted (folders end with '/'). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.push(`${r}/`);
        await walk(path.join(d, e.name), r);
      } else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}
