/**
 * The entry point of one group of figures (bench/groups/*.ts), each run in its own process by
 * run-all.ts (so one group's memory does not weigh on the next, and peak-RSS figures are the
 * group's own). Standalone, a group prints its own table:
 *   node dist/bench/bench/groups/layer.js [--quick]
 * Under run-all it writes { figures, error } to --figures-out=FILE (atomically) instead; figures
 * emitted before a failure are kept.
 */
import { formatTable } from './table.js';
import { writeFileAtomic } from './atomic-write.js';
import type { Figure } from './figures.js';
import { repoRoot } from './paths.js';

export interface GroupContext {
  /** --quick: a smaller budget that checks the structure in well under 2 minutes in all. */
  quick: boolean;
  root: string;
  /** Progress, to stderr. */
  log(s: string): void;
  /** Adds a figure (kept even if the group fails later). */
  emit(f: Figure): void;
}

export interface GroupOutput {
  figures: Figure[];
  error: string | null;
}

export function runGroup(name: string, body: (ctx: GroupContext) => Promise<void>): void {
  const args = process.argv.slice(2);
  const out = args.find((a) => a.startsWith('--figures-out='))?.slice('--figures-out='.length) ?? null;
  const figures: Figure[] = [];
  const t0 = performance.now();
  const ctx: GroupContext = {
    quick: args.includes('--quick'),
    root: repoRoot(),
    log: (s) => process.stderr.write(`[${name} ${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}\n`),
    emit: (f) => void figures.push(f),
  };
  const finish = (error: string | null): void => {
    if (out) writeFileAtomic(out, JSON.stringify({ figures, error } satisfies GroupOutput, null, 2) + '\n');
    else if (figures.length > 0) console.log(formatTable(figures));
    if (error) console.error(`bench group ${name} failed: ${error}`);
    process.exitCode = error ? 1 : 0;
  };
  body(ctx).then(
    () => finish(null),
    (e: unknown) => finish(e instanceof Error ? (e.stack ?? e.message) : String(e)),
  );
}
