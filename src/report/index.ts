/**
 * A run's training report, `<run>/report.html` (html.ts), built from the run folder's files
 * (run-data.ts) and written atomically (a reader never sees half a page). The trainer rewrites it
 * at every logging step, after every evaluation and at the end; `rrec-emotion report RUN_DIR`
 * rebuilds it.
 */
import { join, resolve } from 'node:path';
import { pathKind, writeFileAtomic } from '../util/atomic-fs.js';
import { renderCharts } from './charts.js';
import { renderReportHtml } from './html.js';
import { readRunData } from './run-data.js';

export { readRunData, type EvalLogRecord, type RunData, type SampleCompletion } from './run-data.js';
export { chartSpecs, renderCharts, type Chart } from './charts.js';
export { renderReportHtml, splitCompletion } from './html.js';

export const REPORT_FILE = 'report.html';

/**
 * Builds and writes `<runDir>/report.html`; returns its path. `final` marks a finished run
 * (default: whether the run wrote its final evaluation, eval-end.json).
 */
export async function writeRunReport(runDir: string, opts: { final?: boolean; now?: Date } = {}): Promise<string> {
  const dir = resolve(runDir);
  const data = await readRunData(dir);
  const final = opts.final ?? (await pathKind(join(dir, 'eval-end.json'))) === 'other';
  const html = renderReportHtml(data, await renderCharts(data), { final, ...(opts.now ? { updated: opts.now } : {}) });
  const file = join(dir, REPORT_FILE);
  await writeFileAtomic(file, html);
  return file;
}

/**
 * The trainer's hook. Each call writes the report, except that a plain (logging-step) call is
 * skipped while less than ten times the last write's duration has passed since it ended, so that
 * the report costs at most ~10% of a run whose steps are shorter than its rendering; `force`
 * (evaluations, the end) always writes. A failure warns once (through `warn`) and never stops the
 * training.
 */
export function reportUpdater(runDir: string, warn: (message: string) => void, clock: () => number = () => performance.now()): (opts?: { final?: boolean; force?: boolean }) => Promise<void> {
  let warned = false;
  let nextAllowed = -Infinity;
  return async (opts = {}) => {
    const start = clock();
    if (!opts.force && !opts.final && start < nextAllowed) return;
    try {
      await writeRunReport(runDir, { final: opts.final ?? false });
    } catch (e) {
      if (!warned) warn(`warning: could not write ${join(runDir, REPORT_FILE)}: ${(e as Error).message}`);
      warned = true;
    }
    const end = clock();
    nextAllowed = end + 10 * (end - start);
  };
}
