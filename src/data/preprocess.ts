/**
 * preprocess: raw CSV splits -> cleaned, checked dataset saved in HF `datasets` layout.
 *
 * Reads train/valid/test.csv (and label_tree.tsv if present) from `inputDir`, cleans the texts,
 * checks label ids against the spec, reports duplicates, conflicting labels and cross-split
 * leaks, optionally drops duplicates/conflicts, and writes the result atomically to `outputDir`.
 *
 * Every split is read and checked before anything is written, so a bad row in test.csv fails the
 * run without touching the disk. By default nothing is dropped (the reference numbers, 2386/358/328
 * rows for ED_easy_4, are kept); dropping is opt-in.
 */

import { createHash } from 'node:crypto';
import path from 'node:path';
import { encodeSplitArrow } from './arrowSplit.js';
import { checkOutputDir, type OutputFile, writeDirAtomic } from './atomicDir.js';
import { readSplitCsv, selectRows, type SplitRows } from './csv.js';
import { checkDuplicates, type ConflictGroup, type DropCounts, type DuplicateGroup, findLeaks, type LeakGroup, rowsToKeep } from './duplicates.js';
import { DATASET_DICT_FILE, DATASET_INFO_FILE, STATE_FILE, dataFileName, datasetDictJson, datasetInfoJson, stateJson } from './hfLayout.js';
import { type LabelEdge, readLabelTree } from './labelTree.js';
import type { DatasetSpec } from './spec.js';
import { DEFAULT_MAX_TEXT_LENGTH, limitTextLengths, type LongTextPolicy } from './text-limit.js';

/** Split names, in the order they are read and written; the files are `<split>.csv`. */
export const SPLITS = ['train', 'valid', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export const LABEL_TREE_FILE = 'label_tree.tsv';
/** Our full report, saved next to dataset_dict.json (HF's loader ignores files it does not know). */
export const REPORT_FILE = 'preprocess_report.json';

export interface ProgressEvent {
  stage: 'read' | 'check' | 'write' | 'done';
  split?: SplitName;
  message: string;
}

export interface PreprocessOptions {
  inputDir: string;
  outputDir: string;
  dataset: DatasetSpec;
  /** Drop rows repeating an earlier row's (text, label) in the same split, keeping the first. */
  dropDuplicates?: boolean;
  /** Drop every row of a text that carries more than one label in the same split. */
  dropConflicts?: boolean;
  /** Replace an existing saved dataset at outputDir. */
  overwrite?: boolean;
  /** Longest cleaned text (or aug_text) in characters; default DEFAULT_MAX_TEXT_LENGTH (8192). */
  maxTextLength?: number;
  /** A longer text: refused naming every file:line (default), or cut to maxTextLength. */
  longTexts?: LongTextPolicy;
  onProgress?: (event: ProgressEvent) => void;
  /** Called with the temporary folder once all files are in it, before it is renamed into place. */
  beforeCommit?: (tempDir: string) => void | Promise<void>;
}

export interface SplitReport {
  split: SplitName;
  file: string;
  sha256: string;
  rowsRead: number;
  rowsWritten: number;
  /** Rows written per label id. */
  classCounts: number[];
  /** Rows whose text or aug_text was changed by cleanText. */
  cleanedRows: number;
  /** Found on the rows read (before any drop); see duplicates.ts for the definitions. */
  duplicates: { texts: number; extraRows: number; groups: DuplicateGroup[] };
  conflicts: { texts: number; rows: number; groups: ConflictGroup[] };
  /** Rows repeating an earlier row's raw text, whatever the label (how the dataset README counts). */
  rawRepeatedRows: number;
  dropped: DropCounts;
  /** Rows whose text or aug_text was cut to maxTextLength (longTexts 'truncate'). */
  truncatedRows: number;
  hasAugText: boolean;
  extraColumns: string[];
}

export interface PreprocessReport {
  dataset: { name: string; labels: string[] };
  inputDir: string;
  outputDir: string;
  options: { dropDuplicates: boolean; dropConflicts: boolean; maxTextLength: number; longTexts: LongTextPolicy };
  splits: Record<SplitName, SplitReport>;
  /** Texts in more than one split, among the rows written. */
  leaks: { texts: number; groups: LeakGroup[] };
  labelTree: { file: string; edges: LabelEdge[]; labelsNotInTree: string[] } | null;
  /** Files written, relative to outputDir. */
  files: string[];
}

export async function preprocess(opts: PreprocessOptions): Promise<PreprocessReport> {
  const spec = opts.dataset;
  const inputDir = path.resolve(opts.inputDir);
  const outputDir = path.resolve(opts.outputDir);
  const dropDuplicates = opts.dropDuplicates ?? false;
  const dropConflicts = opts.dropConflicts ?? false;
  const progress = opts.onProgress ?? (() => {});
  const maxTextLength = opts.maxTextLength ?? DEFAULT_MAX_TEXT_LENGTH;
  const longTexts = opts.longTexts ?? 'refuse';
  // Fail before the reading work if the output cannot be written anyway.
  await checkOutputDir(outputDir, opts.overwrite ?? false);

  const read: SplitRows[] = [];
  for (const split of SPLITS) {
    const file = path.join(inputDir, `${split}.csv`);
    progress({ stage: 'read', split, message: `reading ${file}` });
    read.push(await readSplitCsv(file, split, spec));
  }
  // Before anything else looks at the texts: a huge one is refused here, not minutes later in training.
  const truncatedRows: number[] = [];
  for (const [i, rows] of read.entries()) {
    const limited = limitTextLengths(rows, maxTextLength, longTexts);
    read[i] = limited.rows;
    truncatedRows.push(limited.truncatedRows);
  }
  const treeFile = path.join(inputDir, LABEL_TREE_FILE);
  const edges = await readLabelTree(treeFile);

  const kept: SplitRows[] = [];
  const reports = {} as Record<SplitName, SplitReport>;
  for (const [i, split] of SPLITS.entries()) {
    const rows = read[i]!;
    progress({ stage: 'check', split, message: `checking ${split}: ${rows.numRows} rows` });
    const check = checkDuplicates(rows);
    const { keep, dropped } = rowsToKeep(rows, { dropDuplicates, dropConflicts });
    const out = selectRows(rows, keep);
    kept.push(out);
    reports[split] = {
      split,
      file: rows.file,
      sha256: rows.sha256,
      rowsRead: rows.numRows,
      rowsWritten: out.numRows,
      classCounts: countClasses(out.label, spec.labels.length),
      cleanedRows: rows.cleanedRows,
      duplicates: check.duplicates,
      conflicts: check.conflicts,
      rawRepeatedRows: check.rawRepeatedRows,
      dropped,
      truncatedRows: truncatedRows[i]!,
      hasAugText: rows.hasAugText,
      extraColumns: rows.extraColumns,
    };
  }
  const leakGroups = findLeaks(kept);

  progress({ stage: 'write', message: `encoding ${SPLITS.length} splits` });
  const arrows = kept.map((rows) => encodeSplitArrow(rows, spec));
  const sizes = SPLITS.map((split, i) => ({ split, numExamples: kept[i]!.numRows, numBytes: arrows[i]!.byteLength }));
  const infoJson = datasetInfoJson(spec, sizes, edges);
  const files: OutputFile[] = [{ path: DATASET_DICT_FILE, data: datasetDictJson(SPLITS) }];
  for (const [i, split] of SPLITS.entries()) {
    const arrow = arrows[i]!;
    // Content hash as the fingerprint: same data, same fingerprint, like HF's deterministic ones.
    const fingerprint = createHash('sha256').update(split).update(arrow).digest('hex').slice(0, 16);
    files.push(
      { path: `${split}/${dataFileName()}`, data: arrow },
      { path: `${split}/${DATASET_INFO_FILE}`, data: infoJson },
      { path: `${split}/${STATE_FILE}`, data: stateJson(split, fingerprint) },
    );
  }

  const report: PreprocessReport = {
    dataset: { name: spec.name, labels: [...spec.labels] },
    inputDir,
    outputDir,
    options: { dropDuplicates, dropConflicts, maxTextLength, longTexts },
    splits: reports,
    leaks: { texts: leakGroups.length, groups: leakGroups },
    labelTree: edges && {
      file: treeFile,
      edges,
      labelsNotInTree: spec.labels.filter((l) => !edges.some((e) => e.child === l)),
    },
    files: [...files.map((f) => f.path), REPORT_FILE],
  };
  files.push({ path: REPORT_FILE, data: JSON.stringify(report, null, 2) });

  progress({ stage: 'write', message: `writing ${outputDir}` });
  await writeDirAtomic(outputDir, files, { overwrite: opts.overwrite ?? false, beforeCommit: opts.beforeCommit });
  progress({ stage: 'done', message: `wrote ${outputDir}` });
  return report;
}

function countClasses(label: Int32Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const l of label) counts[l] = (counts[l] ?? 0) + 1;
  return counts;
}
