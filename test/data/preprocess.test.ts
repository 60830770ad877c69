/**
 * preprocess on the hand-written `mini` fixture: cleaning, quoting, duplicates, conflicts, leaks,
 * drops and the label tree, checked against values worked out by hand from the CSV text.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoadedDataset, type PreprocessReport, datasetSpec, loadDataset, preprocess } from '../../src/data/index.js';
import { fixture, listTree, tempDirs } from './util.js';

const tmp = tempDirs();
afterAll(tmp.cleanup);
const ED4 = datasetSpec('ED_easy_4');

async function run(input: string, opts: { dropDuplicates?: boolean; dropConflicts?: boolean } = {}): Promise<{ report: PreprocessReport; out: string }> {
  const out = path.join(await tmp.make(), 'ds');
  const report = await preprocess({ inputDir: input, outputDir: out, dataset: ED4, ...opts });
  return { report, out };
}

// mini/train.csv, row by row: [start line, cleaned text, cleaned aug_text, label]
const MINI_TRAIN: [number, string, string, number][] = [
  [2, 'hello, world', 'hi world', 1],
  [3, 'she said "wow" to me', 'she said "wow"', 1],
  [4, 'i was sad & tired', "i'm sad & tired", 0],
  [5, 'i was sad', 'sad again', 0],
  [6, 'so angry <3', 'angry', 2],
  [7, 'he scored 95%> on the test', 'fiancée test', 1],
  [8, 'we went out, then home', 'went out', 1],
  [9, 'lots of spaces', 'multi line aug', 3], // record spans lines 9-10
  [11, 'i was sad & tired', 'dup', 0],
  [12, 'i was sad & tired', 'conflict', 2],
  [13, 'hello, world', 'again', 1],
  [14, 'a<bad>b &notice unbelievable', 'x', 3],
  [15, 'x y', 'z', 0],
  [16, 'i am <so> mad', 'y', 2],
];

describe('preprocess on the mini fixture (default: drop nothing)', () => {
  let report: PreprocessReport;
  let out: string;
  let ds: LoadedDataset;
  beforeAll(async () => {
    ({ report, out } = await run(fixture('mini')));
    ds = await loadDataset(out);
  });

  it('keeps every row, cleaned, with aug_text', () => {
    const train = ds.splits.train!;
    expect(train.numRows).toBe(MINI_TRAIN.length);
    for (const [i, [, text, aug, label]] of MINI_TRAIN.entries()) {
      expect(train.text.get(i)).toBe(text);
      expect(train.augText?.get(i)).toBe(aug);
      expect(train.label[i]).toBe(label);
    }
    expect(train.get(5)).toEqual({ text: 'he scored 95%> on the test', augText: 'fiancée test', label: 1, labelName: 'joyful' });
  });

  it('reports rows and class counts per split', () => {
    expect(report.splits.train.rowsRead).toBe(14);
    expect(report.splits.train.rowsWritten).toBe(14);
    // labels in MINI_TRAIN: 0 x4, 1 x5, 2 x3, 3 x2
    expect(report.splits.train.classCounts).toEqual([4, 5, 3, 2]);
    expect(report.splits.valid.classCounts).toEqual([0, 1, 0, 1]);
    expect(report.splits.test.classCounts).toEqual([1, 1, 0, 0]);
    expect(report.splits.train.hasAugText).toBe(true);
  });

  it('reports duplicates and conflicts with their lines', () => {
    const t = report.splits.train;
    expect(t.duplicates.texts).toBe(2);
    expect(t.duplicates.extraRows).toBe(2);
    expect(t.duplicates.groups).toEqual([
      { text: 'hello, world', label: 1, lines: [2, 13] },
      { text: 'i was sad & tired', label: 0, lines: [4, 11] },
    ]);
    expect(t.conflicts).toEqual({ texts: 1, rows: 3, groups: [{ text: 'i was sad & tired', lines: [4, 11, 12], labels: [0, 0, 2] }] });
    // raw text: only line 11 repeats an earlier raw text exactly (line 12 has extra spaces, 13 too)
    expect(t.rawRepeatedRows).toBe(1);
    expect(t.dropped).toEqual({ duplicates: 0, conflicts: 0 });
    expect(report.splits.valid.duplicates.extraRows).toBe(0);
  });

  it('reports texts shared between splits', () => {
    expect(report.leaks.texts).toBe(1);
    expect(report.leaks.groups[0]).toEqual({
      text: 'hello, world',
      occurrences: [
        { split: 'train', line: 2, label: 1 },
        { split: 'train', line: 13, label: 1 },
        { split: 'valid', line: 3, label: 1 },
      ],
    });
  });

  it('reads the label tree, skipping the blank line, and stores it with the dataset', () => {
    const edges = [
      { child: 'joyful', parent: 'positive' },
      { child: 'positive', parent: 'root' },
      { child: 'sad', parent: 'negative' },
      { child: 'negative', parent: 'root' },
    ];
    expect(report.labelTree?.edges).toEqual(edges);
    expect(report.labelTree?.labelsNotInTree).toEqual(['angry', 'afraid']);
    expect(ds.splits.test!.labelTree).toEqual(edges);
  });

  it('writes the HF layout and the report', async () => {
    expect(await listTree(out)).toEqual([
      'dataset_dict.json',
      'preprocess_report.json',
      'test/',
      'test/data-00000-of-00001.arrow',
      'test/dataset_info.json',
      'test/state.json',
      'train/',
      'train/data-00000-of-00001.arrow',
      'train/dataset_info.json',
      'train/state.json',
      'valid/',
      'valid/data-00000-of-00001.arrow',
      'valid/dataset_info.json',
      'valid/state.json',
    ]);
    expect(ds.splitNames).toEqual(['train', 'valid', 'test']);
  });
});

describe('preprocess drops on request', () => {
  it('--drop_duplicates keeps the first of each repeated (text, label)', async () => {
    const { report, out } = await run(fixture('mini'), { dropDuplicates: true });
    const t = report.splits.train;
    expect(t.dropped).toEqual({ duplicates: 2, conflicts: 0 });
    expect(t.rowsWritten).toBe(12);
    // the numbers describe the rows read, not the rows kept
    expect(t.duplicates.extraRows).toBe(2);
    const train = (await loadDataset(out)).splits.train!;
    const lines = MINI_TRAIN.filter(([l]) => l !== 11 && l !== 13);
    expect(Array.from({ length: train.numRows }, (_, i) => train.text.get(i))).toEqual(lines.map(([, t]) => t));
    expect(t.classCounts).toEqual([3, 4, 3, 2]);
  });

  it('--drop_conflicts drops every row of a text with several labels', async () => {
    const { report } = await run(fixture('mini'), { dropConflicts: true });
    expect(report.splits.train.dropped).toEqual({ duplicates: 0, conflicts: 3 });
    expect(report.splits.train.rowsWritten).toBe(11);
    expect(report.splits.train.classCounts).toEqual([2, 5, 2, 2]);
  });

  it('both: conflicts first, then duplicates among the rest', async () => {
    const { report, out } = await run(fixture('mini'), { dropDuplicates: true, dropConflicts: true });
    expect(report.splits.train.dropped).toEqual({ duplicates: 1, conflicts: 3 });
    expect(report.splits.train.rowsWritten).toBe(10);
    const train = (await loadDataset(out)).splits.train!;
    expect(train.numRows).toBe(10);
    // leak check runs on the rows written: "hello, world" is still in train (line 2) and valid
    expect(report.leaks.groups[0]?.occurrences.map((o) => `${o.split}:${o.line}`)).toEqual(['train:2', 'valid:3']);
  });
});

describe('preprocess input variants', () => {
  it('a file without aug_text gives empty strings and says so', async () => {
    const { report, out } = await run(fixture('no_aug_text'));
    expect(report.splits.valid.hasAugText).toBe(false);
    expect(report.splits.train.hasAugText).toBe(true);
    const valid = (await loadDataset(out)).splits.valid!;
    expect(valid.augText?.get(0)).toBe('');
    expect(valid.text.get(1)).toBe('i heard a noise at night');
  });

  it('handles CRLF line ends, a BOM, blank lines and extra columns', async () => {
    const dir = await tmp.make();
    const input = path.join(dir, 'in');
    await mkdir(input);
    const csv = '\uFEFFtext,aug_text,label,source\r\n"multi\r\nline",a,0,x\r\n\r\nsecond ,b,1,y\r\n';
    for (const s of ['train', 'valid', 'test']) await writeFile(path.join(input, `${s}.csv`), csv);
    await writeFile(path.join(input, 'label_tree.tsv'), 'sad\tnegative\r\njoyful\tpositive\r\n');
    const out = path.join(dir, 'out');
    const report = await preprocess({ inputDir: input, outputDir: out, dataset: ED4 });
    expect(report.splits.train.extraColumns).toEqual(['source']);
    expect(report.labelTree?.edges).toEqual([
      { child: 'sad', parent: 'negative' },
      { child: 'joyful', parent: 'positive' },
    ]);
    // rows start on lines 2 and 5 (line 4 is blank)
    expect(report.leaks.groups.map((g) => g.occurrences.filter((o) => o.split === 'train').map((o) => o.line))).toEqual([[2], [5]]);
    const train = (await loadDataset(out)).splits.train!;
    expect([train.text.get(0), train.text.get(1)]).toEqual(['multi line', 'second']);
  });

  it('works for a dataset that is not built in, given its labels', async () => {
    const out = path.join(await tmp.make(), 'ds');
    const spec = datasetSpec('ED_custom', ['a', 'b', 'c', 'd', 'e']);
    const report = await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: spec });
    expect(report.dataset).toEqual({ name: 'ED_custom', labels: ['a', 'b', 'c', 'd', 'e'] });
    expect(report.splits.train.classCounts).toEqual([4, 5, 3, 2, 0]);
    expect((await loadDataset(out)).labelNames).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('reports progress', async () => {
    const out = path.join(await tmp.make(), 'ds');
    const stages: string[] = [];
    await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: ED4, onProgress: (e) => stages.push(`${e.stage}:${e.split ?? ''}`) });
    expect(stages.slice(0, 3)).toEqual(['read:train', 'read:valid', 'read:test']);
    expect(stages.at(-1)).toBe('done:');
  });
});
