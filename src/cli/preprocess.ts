/**
 * `rrec-emotion preprocess`: CSV splits -> cleaned Arrow dataset in the HF save_to_disk layout,
 * with the flags of the reference project (--dataset_name, --output_name, --labels, ...).
 *
 * Exit codes: 0 written, 1 bad data or I/O (a DatasetError, message names file and line),
 * 2 bad usage (unknown flag, --download, conflicting flags).
 */

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { DatasetError, DEFAULT_MAX_TEXT_LENGTH, datasetSpec, formatReport, preprocess } from '../data/index.js';
import { CliUsageError, type FlagSpecs, formatHelp, parseFlags } from './args.js';

const USAGE = 'rrec-emotion preprocess [--dataset_name=NAME] [--input_dir=DIR] [--output_name=NAME | --output_dir=DIR] [flags]';
const DESCRIPTION = [
  'Reads DIR/train.csv, valid.csv, test.csv (header text,aug_text,label) and the optional',
  'label_tree.tsv, cleans the texts (HTML entities and tags, _comma_, whitespace), checks the',
  'labels, reports duplicates, conflicting labels and texts shared between splits, and writes',
  'a dataset that Python `datasets.load_from_disk` can read. Nothing is dropped unless asked.',
].join('\n');

const FLAGS: FlagSpecs = {
  dataset_name: { type: 'string', help: 'built-in dataset, or any name together with --labels', default: 'ED_easy_4', metavar: 'NAME' },
  input_dir: { type: 'string', help: 'folder with the CSV files (default: data/<dataset_name>)', metavar: 'DIR' },
  output_name: { type: 'string', help: 'write to data/<output_name> (default: <dataset_name>_processed)', metavar: 'NAME' },
  output_dir: { type: 'string', help: 'write to exactly this folder instead of data/<output_name>', metavar: 'DIR' },
  labels: { type: 'list', help: 'label names in id order, for a dataset that is not built in', metavar: 'A,B,...' },
  drop_duplicates: { type: 'boolean', help: 'drop rows repeating an earlier (text, label) of the split', default: false },
  drop_conflicts: { type: 'boolean', help: 'drop all rows of a text that has several labels in a split', default: false },
  max_text_length: { type: 'int', help: `longest text (and aug_text) in characters after cleaning (default ${DEFAULT_MAX_TEXT_LENGTH})`, metavar: 'N' },
  long_texts: { type: 'string', help: 'a longer text: refuse (name every file:line) or truncate (cut to --max_text_length, counted in the report)', default: 'refuse', metavar: 'refuse|truncate' },
  overwrite: { type: 'boolean', help: 'replace an existing saved dataset at the output folder', default: false },
  json: { type: 'boolean', help: 'print the full report as JSON instead of text', default: false },
  download: { type: 'boolean', help: 'not available offline: pass --input_dir instead', default: false },
};

export interface CliIO {
  out?: (text: string) => void;
  err?: (text: string) => void;
  /** Folder that relative paths and the data/ defaults are resolved against. */
  cwd?: string;
}

export function preprocessHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, FLAGS);
}

export async function runPreprocess(argv: string[], io: CliIO = {}): Promise<number> {
  const out = io.out ?? ((t: string) => console.log(t));
  const err = io.err ?? ((t: string) => console.error(t));
  const cwd = io.cwd ?? process.cwd();
  if (argv.includes('--help') || argv.includes('-h')) {
    out(preprocessHelp());
    return 0;
  }
  try {
    const { flags, positional } = parseFlags(argv, FLAGS);
    if (positional.length > 0) throw new CliUsageError(`unexpected argument "${positional[0]}"; flags take the form --name=value`);
    if (flags.download === true) {
      throw new CliUsageError(
        '--download: downloading is unavailable (this tool works offline and fetches nothing). ' +
          'Put train.csv, valid.csv, test.csv (and label_tree.tsv) in a folder and pass --input_dir=DIR.',
      );
    }
    const name = flags.dataset_name as string;
    if (flags.output_dir !== undefined && flags.output_name !== undefined) {
      throw new CliUsageError('pass either --output_dir or --output_name, not both');
    }
    const outputName = (flags.output_name as string | undefined) ?? `${name}_processed`;
    if (outputName === '' || /[/\\]/.test(outputName) || outputName === '.' || outputName === '..') {
      throw new CliUsageError(`--output_name must be a plain folder name, got "${outputName}"; use --output_dir for a path`);
    }
    const maxTextLength = flags.max_text_length as number | undefined;
    if (maxTextLength !== undefined && !(Number.isInteger(maxTextLength) && maxTextLength >= 1))
      throw new CliUsageError(`--max_text_length must be a positive integer, got ${maxTextLength}`);
    const longTexts = flags.long_texts as string;
    if (longTexts !== 'refuse' && longTexts !== 'truncate') throw new CliUsageError(`--long_texts must be refuse or truncate, got "${longTexts}"`);
    const spec = datasetSpec(name, flags.labels as string[] | undefined);
    const inputDir = path.resolve(cwd, (flags.input_dir as string | undefined) ?? path.join('data', name));
    if (!isDir(inputDir)) {
      const shared = path.resolve(cwd, '..', 'shared', 'data', name);
      const hint = isDir(shared) ? ` (the ${name} files are at ${shared})` : '';
      throw new DatasetError(`input folder not found; pass --input_dir=DIR${hint}`, { file: inputDir });
    }
    const outputDir = path.resolve(cwd, (flags.output_dir as string | undefined) ?? path.join('data', outputName));

    const report = await preprocess({
      inputDir,
      outputDir,
      dataset: spec,
      dropDuplicates: flags.drop_duplicates === true,
      dropConflicts: flags.drop_conflicts === true,
      overwrite: flags.overwrite === true,
      maxTextLength: maxTextLength ?? DEFAULT_MAX_TEXT_LENGTH,
      longTexts,
    });
    out(flags.json === true ? JSON.stringify(report, null, 2) : formatReport(report));
    return 0;
  } catch (e) {
    if (e instanceof CliUsageError) {
      err(`rrec-emotion preprocess: ${e.message}\nRun \`rrec-emotion preprocess --help\` for the flags.`);
      return 2;
    }
    if (e instanceof DatasetError) {
      err(`rrec-emotion preprocess: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}
