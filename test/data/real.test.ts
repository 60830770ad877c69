/**
 * The real ED_easy_4 files (../shared/data/ED_easy_4 from the repository root): the reference
 * row and class counts survive preprocess -> Arrow -> loadDataset, and the duplicate numbers match
 * the dataset README. Skipped, with a message, where the files are absent.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedDataset, type PreprocessReport, datasetSpec, loadDataset, preprocess } from '../../src/data/index.js';
import { ED_EASY_4, HAS_REAL_DATA, tempDirs } from './util.js';

if (!HAS_REAL_DATA) console.warn(`skipping ED_easy_4 tests: ${ED_EASY_4} not found`);

describe.skipIf(!HAS_REAL_DATA)('ED_easy_4 (real data)', () => {
  const tmp = tempDirs();
  let report: PreprocessReport;
  let ds: LoadedDataset;
  beforeAll(async () => {
    const out = path.join(await tmp.make(), 'ED_easy_4_processed');
    report = await preprocess({ inputDir: ED_EASY_4, outputDir: out, dataset: datasetSpec('ED_easy_4') });
    ds = await loadDataset(out);
  });
  afterAll(tmp.cleanup);

  // From the dataset README: rows per split and per class (sad, joyful, angry, afraid).
  const EXPECTED = {
    train: { rows: 2386, classes: [608, 556, 637, 585] },
    valid: { rows: 358, classes: [100, 85, 84, 89] },
    test: { rows: 328, classes: [88, 83, 84, 73] },
  } as const;

  it.each(Object.entries(EXPECTED))('%s: row and class counts after writing and reading back', (split, want) => {
    const s = ds.splits[split]!;
    expect(s.numRows).toBe(want.rows);
    const counts = [0, 0, 0, 0];
    for (const l of s.label) counts[l]!++;
    expect(counts).toEqual([...want.classes]);
    expect(report.splits[split as keyof typeof EXPECTED].classCounts).toEqual([...want.classes]);
    expect(s.labelNames).toEqual(['sad', 'joyful', 'angry', 'afraid']);
  });

  it('duplicates and conflicts line up with the README (24 / 1 / 2, two conflicting in train)', () => {
    const { train, valid, test } = report.splits;
    // rows repeating an earlier row's (cleaned text, label): what --drop_duplicates removes
    expect([train.duplicates.extraRows, valid.duplicates.extraRows, test.duplicates.extraRows]).toEqual([24, 1, 2]);
    // rows repeating an earlier row's raw text whatever the label: the README's way of counting
    expect([train.rawRepeatedRows, valid.rawRepeatedRows, test.rawRepeatedRows]).toEqual([24, 1, 2]);
    // 19 cleaned texts occur more than once in train; in 2 of them the repeat has another label
    expect(train.duplicates.texts).toBe(17);
    expect(train.conflicts.texts).toBe(2);
    expect(train.conflicts.rows).toBe(4);
    expect(train.conflicts.groups.map((g) => [g.lines, g.labels])).toEqual([
      [[246, 248], [0, 2]],
      [[1866, 2272], [3, 2]],
    ]);
    expect(valid.conflicts.texts + test.conflicts.texts).toBe(0);
    expect(report.leaks.texts).toBe(0);
    // nothing dropped by default
    expect(train.dropped).toEqual({ duplicates: 0, conflicts: 0 });
  });

  it('reported line numbers point at the rows in the CSV file', async () => {
    const lines = (await readFile(path.join(ED_EASY_4, 'train.csv'), 'utf8')).split('\n');
    for (const g of report.splits.train.conflicts.groups) {
      for (const l of g.lines) expect(lines[l - 1]).toContain(g.text);
    }
    // the five whitespace variants of one sentence merge after cleaning
    const dark = report.splits.train.duplicates.groups.find((g) => g.text.startsWith('i used to be afraid of the dark but now'));
    expect(dark?.lines).toEqual([518, 519, 522, 523, 524]);
  });

  it('the label tree has its 10 edges', () => {
    expect(report.labelTree?.edges).toEqual([
      { child: 'positive', parent: 'root' },
      { child: 'joyful', parent: 'positive' },
      { child: 'joyful', parent: 'root' },
      { child: 'negative', parent: 'root' },
      { child: 'afraid', parent: 'negative' },
      { child: 'angry', parent: 'negative' },
      { child: 'sad', parent: 'negative' },
      { child: 'afraid', parent: 'root' },
      { child: 'angry', parent: 'root' },
      { child: 'sad', parent: 'root' },
    ]);
    expect(report.labelTree?.labelsNotInTree).toEqual([]);
    expect(ds.splits.train!.labelTree).toEqual(report.labelTree?.edges);
  });

  it('non-ASCII aug_text survives (13 values, e.g. "fiancée"), texts are trimmed and single-spaced', () => {
    const train = ds.splits.train!;
    // train.csv line 147 is data row 145
    expect(train.get(145)).toEqual({
      text: 'my friend slapped because he saw me dkscussing with his fiancee',
      augText: 'my friend was slapped because he saw me hanging out with my fiancée.',
      label: 2,
      labelName: 'angry',
    });
    let nonAsciiAug = 0;
    let nonAsciiText = 0;
    for (const s of Object.values(ds.splits)) {
      for (let i = 0; i < s.numRows; i++) {
        const t = s.text.get(i)!;
        expect(t).toBe(t.trim());
        expect(t).not.toMatch(/\s{2}/);
        if (/[^\x00-\x7f]/.test(t)) nonAsciiText++;
        if (/[^\x00-\x7f]/.test(s.augText!.get(i)!)) nonAsciiAug++;
      }
    }
    expect([nonAsciiText, nonAsciiAug]).toEqual([0, 13]);
  });

  it('crowd typos are kept as written', () => {
    const texts = Object.values(ds.splits).flatMap((s) => Array.from({ length: s.numRows }, (_, i) => s.text.get(i)!));
    expect(texts.some((t) => t.includes('didn{t'))).toBe(true);
    expect(texts.some((t) => t.includes('95%>'))).toBe(true);
  });

  it('with both drops: 2386 - 24 - 4 = 2358 train rows', async () => {
    const out = path.join(await tmp.make(), 'dropped');
    const r = await preprocess({ inputDir: ED_EASY_4, outputDir: out, dataset: datasetSpec('ED_easy_4'), dropDuplicates: true, dropConflicts: true });
    expect(r.splits.train.dropped).toEqual({ duplicates: 24, conflicts: 4 });
    expect([r.splits.train.rowsWritten, r.splits.valid.rowsWritten, r.splits.test.rowsWritten]).toEqual([2358, 357, 326]);
    expect((await loadDataset(out)).splits.train!.numRows).toBe(2358);
  });
});
