/** Where things are: the repository root (from src/ or from the compiled dist/bench/ copy). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding rrec-emotion's package.json above this file. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rrec-emotion') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('bench: cannot find the rrec-emotion package.json above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}
