/**
 * Duplicate and conflict checks within a split, and leakage checks across splits, all on cleaned
 * text (so " i was sad" and "i was sad " count as the same text).
 *
 * Definitions (the numbers the report prints):
 *  - duplicate: a row whose (text, label) pair already occurred on an earlier row of the split.
 *    `extraRows` counts those rows (what dropping duplicates removes; the first row is kept);
 *    `texts` counts the distinct (text, label) pairs that occur more than once.
 *  - conflict: a text that occurs with more than one label in the split. `texts` counts such
 *    texts, `rows` every row carrying one (what dropping conflicts removes: no row of the text
 *    can be trusted).
 *  - leak: a text that occurs in more than one split.
 * On ED_easy_4's train split: 24 duplicate rows and 2 conflicting texts. The dataset README's
 * "24 duplicate texts" counts rows repeating an earlier row's raw text whatever the label (24 =
 * 22 same-label + 2 conflicting repeats); after cleaning, whitespace variants of one sentence
 * merge and the same-label repeats become 24. `rawRepeatedRows` reports the README's count.
 */

import type { SplitRows } from './csv.js';

export interface DuplicateGroup {
  text: string;
  label: number;
  /** File lines of every occurrence, in file order; the first is the one kept. */
  lines: number[];
}

export interface ConflictGroup {
  text: string;
  /** File lines of every occurrence, in file order. */
  lines: number[];
  /** The label on each of those lines. */
  labels: number[];
}

export interface DuplicateCheck {
  duplicates: { texts: number; extraRows: number; groups: DuplicateGroup[] };
  conflicts: { texts: number; rows: number; groups: ConflictGroup[] };
  /** Rows whose raw (uncleaned) text repeats an earlier row's, whatever the label. */
  rawRepeatedRows: number;
}

type SplitText = Pick<SplitRows, 'numRows' | 'text' | 'rawText' | 'label' | 'line'>;

/** Row indices grouped by cleaned text, in first-occurrence order. */
function groupByText(rows: SplitText): Map<string, number[]> {
  const byText = new Map<string, number[]>();
  for (let i = 0; i < rows.numRows; i++) {
    const t = rows.text[i]!;
    const g = byText.get(t);
    if (g) g.push(i);
    else byText.set(t, [i]);
  }
  return byText;
}

export function checkDuplicates(rows: SplitText): DuplicateCheck {
  const dupGroups: DuplicateGroup[] = [];
  const conflictGroups: ConflictGroup[] = [];
  let extraRows = 0;
  let conflictRows = 0;
  for (const [text, idx] of groupByText(rows)) {
    if (idx.length < 2) continue;
    const byLabel = new Map<number, number[]>();
    for (const i of idx) {
      const l = rows.label[i]!;
      const g = byLabel.get(l);
      if (g) g.push(i);
      else byLabel.set(l, [i]);
    }
    for (const [label, li] of byLabel) {
      if (li.length < 2) continue;
      extraRows += li.length - 1;
      dupGroups.push({ text, label, lines: li.map((i) => rows.line[i]!) });
    }
    if (byLabel.size > 1) {
      conflictRows += idx.length;
      conflictGroups.push({ text, lines: idx.map((i) => rows.line[i]!), labels: idx.map((i) => rows.label[i]!) });
    }
  }
  const seenRaw = new Set<string>();
  let rawRepeatedRows = 0;
  for (const t of rows.rawText) {
    if (seenRaw.has(t)) rawRepeatedRows++;
    else seenRaw.add(t);
  }
  return {
    duplicates: { texts: dupGroups.length, extraRows, groups: dupGroups },
    conflicts: { texts: conflictGroups.length, rows: conflictRows, groups: conflictGroups },
    rawRepeatedRows,
  };
}

export interface DropCounts {
  duplicates: number;
  conflicts: number;
}

/**
 * Indices of the rows to keep, in file order. Conflicting texts go first (all their rows), then
 * repeats of an earlier (text, label) pair; a row is counted under the first rule that drops it.
 */
export function rowsToKeep(rows: SplitText, opts: { dropDuplicates: boolean; dropConflicts: boolean }): { keep: Int32Array; dropped: DropCounts } {
  const conflicting = new Set<string>();
  if (opts.dropConflicts) {
    for (const [text, idx] of groupByText(rows)) {
      const l0 = rows.label[idx[0]!]!;
      if (idx.some((i) => rows.label[i] !== l0)) conflicting.add(text);
    }
  }
  const labelsSeen = new Map<string, Set<number>>(); // text -> labels already kept for it
  const keep: number[] = [];
  const dropped: DropCounts = { duplicates: 0, conflicts: 0 };
  for (let i = 0; i < rows.numRows; i++) {
    const t = rows.text[i]!;
    if (conflicting.has(t)) {
      dropped.conflicts++;
      continue;
    }
    if (opts.dropDuplicates) {
      const label = rows.label[i]!;
      let labels = labelsSeen.get(t);
      if (!labels) labelsSeen.set(t, (labels = new Set<number>()));
      if (labels.has(label)) {
        dropped.duplicates++;
        continue;
      }
      labels.add(label);
    }
    keep.push(i);
  }
  return { keep: Int32Array.from(keep), dropped };
}

export interface LeakGroup {
  text: string;
  occurrences: { split: string; line: number; label: number }[];
}

/** Texts found in more than one split, each with every row it occurs on. */
export function findLeaks(splits: readonly (SplitText & { split: string })[]): LeakGroup[] {
  const where = new Map<string, { split: string; line: number; label: number }[]>();
  for (const s of splits) {
    for (let i = 0; i < s.numRows; i++) {
      const t = s.text[i]!;
      const occ = { split: s.split, line: s.line[i]!, label: s.label[i]! };
      const g = where.get(t);
      if (g) g.push(occ);
      else where.set(t, [occ]);
    }
  }
  const leaks: LeakGroup[] = [];
  for (const [text, occurrences] of where) {
    if (new Set(occurrences.map((o) => o.split)).size > 1) leaks.push({ text, occurrences });
  }
  return leaks;
}
