/**
 * `rrec-emotion report RUN_DIR`: rebuilds `<run>/report.html` (src/report/) from the run folder's
 * run.json, metrics.jsonl and eval.jsonl, e.g. for a run of an older version or one that was
 * stopped, and prints its path.
 *
 * Exit codes: 0 written, 1 not a run folder / I/O problem, 2 bad usage.
 */
import { writeRunReport } from '../report/index.js';
import { CliUsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';

const FLAGS: FlagSpecs = {};
const USAGE = 'rrec-emotion report RUN_DIR';
const DESCRIPTION = [
  'Writes RUN_DIR/report.html: reward, valid accuracy and macro-F1, loss, KL, clip ratio, completion',
  'length, learning rate and gradient norm over the steps, the best checkpoint\'s confusion matrix,',
  'sample completions of the last evaluation and the configuration; one self-contained page.',
].join('\n');

export function reportHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, FLAGS);
}

export async function runReport(argv: string[], io: { out?: (text: string) => void } = {}): Promise<number> {
  const out = io.out ?? ((t: string) => console.log(t));
  if (argv.includes('--help') || argv.includes('-h')) {
    out(reportHelp());
    return 0;
  }
  const { positional } = parseFlags(argv, FLAGS);
  if (positional.length !== 1) throw new CliUsageError(`expected one run folder, got ${positional.length === 0 ? 'none' : positional.map((p) => `"${p}"`).join(' ')}`);
  const file = await writeRunReport(positional[0]!);
  out(`wrote ${file}`);
  return 0;
}
