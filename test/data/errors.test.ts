/**
 * Every input error path, on hand-written fixtures: the error must be a DatasetError whose
 * message names the file, the line and the offending value, and nothing may be written.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetError, datasetSpec, preprocess } from '../../src/data/index.js';
import { fixture, tempDirs } from './util.js';

const tmp = tempDirs();
afterAll(tmp.cleanup);

async function failure(caseName: string): Promise<{ err: DatasetError; parent: string; out: string }> {
  const parent = await tmp.make();
  const out = path.join(parent, 'out');
  const err = await preprocess({ inputDir: fixture(caseName), outputDir: out, dataset: datasetSpec('ED_easy_4') }).then(
    () => {
      throw new Error(`preprocess of ${caseName} succeeded`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatasetError);
  return { err: err as DatasetError, parent, out };
}

interface Case {
  name: string;
  file: string;
  line: number | undefined;
  value: string | undefined;
  message: RegExp;
}

const cases: Case[] = [
  { name: 'missing_column', file: 'train.csv', line: 1, value: 'sentence,aug_text,label', message: /missing column "text"; the header has columns: "sentence", "aug_text", "label"/ },
  { name: 'empty_file', file: 'valid.csv', line: 1, value: '', message: /file is empty/ },
  { name: 'header_only', file: 'test.csv', line: 1, value: 'text,aug_text,label', message: /has a header but no rows/ },
  { name: 'bad_label', file: 'test.csv', line: 3, value: 'joy', message: /label "joy" is not an integer label id/ },
  {
    name: 'label_out_of_range',
    file: 'train.csv',
    line: 4,
    value: '4',
    message: /label "4" is out of range for dataset ED_easy_4, whose 4 labels are \[0=sad, 1=joyful, 2=angry, 3=afraid\]/,
  },
  {
    name: 'unterminated_quote',
    file: 'valid.csv',
    line: 3,
    value: '"this quote never closes,aug,1',
    message: /malformed CSV .*Quote Not Closed.*\[CSV_QUOTE_NOT_CLOSED\]; record: "\\"this quote never closes,aug,1"/,
  },
  { name: 'ragged_row', file: 'train.csv', line: 3, value: 'i was happy,to,win,1', message: /malformed CSV .*Invalid Record Length.*CSV_RECORD_INCONSISTENT_FIELDS_LENGTH/ },
  { name: 'missing_split', file: 'test.csv', line: undefined, value: undefined, message: /missing test split file/ },
  { name: 'bad_tsv', file: 'label_tree.tsv', line: 2, value: 'joyful positive', message: /bad label tree line "joyful positive": expected "child<TAB>parent"/ },
  { name: 'empty_text', file: 'train.csv', line: 3, value: '<br>  ', message: /text is empty after cleaning \(raw value "<br>  "\)/ },
];

describe('preprocess input errors', () => {
  it.each(cases)('$name: names $file, line $line and the value; writes nothing', async (c) => {
    const { err, parent } = await failure(c.name);
    const file = path.join(fixture(c.name), c.file);
    expect(err.file).toBe(file);
    expect(err.line).toBe(c.line);
    expect(err.value).toBe(c.value);
    const where = c.line === undefined ? file : `${file}:${c.line}`;
    expect(err.message.startsWith(`${where}: `)).toBe(true);
    expect(err.message).toMatch(c.message);
    // no output folder, no temp folder: the parent is as empty as it was
    expect(await readdir(parent)).toEqual([]);
  });

  it('a bad row in the last split fails before anything is written', async () => {
    // bad_label: train.csv and valid.csv are fine, test.csv line 3 is not
    const { out, parent } = await failure('bad_label');
    expect(existsSync(out)).toBe(false);
    expect(await readdir(parent)).toEqual([]);
  });

  it('a missing input folder names the file it looked for', async () => {
    const parent = await tmp.make();
    const missing = path.join(parent, 'nope');
    await expect(preprocess({ inputDir: missing, outputDir: path.join(parent, 'out'), dataset: datasetSpec('ED_easy_4') })).rejects.toThrow(
      `${path.join(missing, 'train.csv')}: missing train split file`,
    );
  });
});
