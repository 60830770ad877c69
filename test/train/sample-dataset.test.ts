// The bundled sample dataset (data/sample/ED_sample_4) preprocesses cleanly with the real
// preprocess(): balanced counts per split and class, nothing cleaned, no duplicates, conflicts or
// leaks across splits, the label tree read, and the rows read back from the saved dataset.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetSpec, loadSplit, preprocess, type PreprocessReport } from '../../src/data/index.js';

const SAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'sample', 'ED_sample_4');

let tmp: string;
let out: string;
let report: PreprocessReport;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rrec-sample-test-'));
  out = path.join(tmp, 'ED_sample_4_processed');
  report = await preprocess({ inputDir: SAMPLE, outputDir: out, dataset: datasetSpec('ED_easy_4') });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('data/sample/ED_sample_4', () => {
  it('120 / 40 / 40 rows, balanced over sad, joyful, angry, afraid', () => {
    expect(report.splits.train.rowsWritten).toBe(120);
    expect(report.splits.valid.rowsWritten).toBe(40);
    expect(report.splits.test.rowsWritten).toBe(40);
    expect(report.splits.train.classCounts).toEqual([30, 30, 30, 30]);
    expect(report.splits.valid.classCounts).toEqual([10, 10, 10, 10]);
    expect(report.splits.test.classCounts).toEqual([10, 10, 10, 10]);
  });
  it('clean: nothing changed by cleaning, no duplicates, conflicts or cross-split leaks', () => {
    for (const s of Object.values(report.splits)) {
      expect(s.cleanedRows).toBe(0);
      expect(s.duplicates.texts).toBe(0);
      expect(s.conflicts.texts).toBe(0);
      expect(s.rawRepeatedRows).toBe(0);
      expect(s.hasAugText).toBe(true);
      expect(s.extraColumns).toEqual([]);
    }
    expect(report.leaks.texts).toBe(0);
  });
  it('label tree: every label under negative or positive, both under root', () => {
    expect(report.labelTree?.edges).toEqual([
      { child: 'sad', parent: 'negative' },
      { child: 'angry', parent: 'negative' },
      { child: 'afraid', parent: 'negative' },
      { child: 'joyful', parent: 'positive' },
      { child: 'negative', parent: 'root' },
      { child: 'positive', parent: 'root' },
    ]);
    expect(report.labelTree?.labelsNotInTree).toEqual([]);
  });
  it('reads back: lower-case first-person sentences, quoted fields intact', async () => {
    const test = await loadSplit(out, 'test');
    expect(test.numRows).toBe(40);
    expect(test.labelNames).toEqual(['sad', 'joyful', 'angry', 'afraid']);
    const texts = Array.from({ length: test.numRows }, (_, i) => test.get(i).text);
    expect(texts).toContain('the pilot announced an emergency landing and told us to "brace for impact" .');
    expect(texts).toContain('i was picked to sing the solo at the winter concert , in front of the whole town .');
    for (const split of ['train', 'valid', 'test'] as const) {
      const s = await loadSplit(out, split);
      for (let i = 0; i < s.numRows; i++) {
        const t = s.get(i).text;
        expect(t).toBe(t.toLowerCase());
        expect(t, `${split} row ${i}`).toMatch(/\b(i|my|me|we|our|us)\b/);
      }
    }
  });
});
