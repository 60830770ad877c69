// Fault family: datasets. Texts too long for training (bounded at preprocess, each offender named
// by file:line), dataset folders in neither layout (the message says what was looked for and
// whether the folder exists), and a representative set of CSV faults that already gave clear
// errors, kept so they stay that way.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPreprocess } from '../../src/cli/preprocess.js';
import { DatasetError, datasetSpec, loadDataset, preprocess } from '../../src/data/index.js';
import { openDataset } from '../../src/train/dataset-source.js';
import { fixture } from '../data/util.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const spec = datasetSpec('ED_easy_4');

let n = 0;
/** A copy of the mini fixture with extra rows appended to train.csv. */
function miniWith(extraTrainRows: string[]): string {
  const dir = join(root, `in${n++}`);
  mkdirSync(dir);
  for (const f of ['train.csv', 'valid.csv', 'test.csv', 'label_tree.tsv']) copyFileSync(join(fixture('mini'), f), join(dir, f));
  const train = readFileSync(join(dir, 'train.csv'), 'utf8');
  writeFileSync(join(dir, 'train.csv'), train.replace(/\n?$/, '\n') + extraTrainRows.join('\n') + '\n');
  return dir;
}
const trainLines = (dir: string) => readFileSync(join(dir, 'train.csv'), 'utf8').replace(/\n$/, '').split('\n').length;

describe('text length bounded at preprocess', () => {
  it('a 50 MB text is refused at once, naming file:line and the flags', async () => {
    const dir = miniWith([`${'a'.repeat(50 * 2 ** 20)},,1`]);
    const line = trainLines(dir);
    const t0 = performance.now();
    const err = await preprocess({ inputDir: dir, outputDir: join(root, 'out-50mb'), dataset: spec }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).message).toContain(`${join(dir, 'train.csv')}:${line}: 1 row(s) hold a text longer than 8192 characters: ${join(dir, 'train.csv')}:${line} (52428800 characters)`);
    expect((err as DatasetError).message).toMatch(/--max_text_length.*--long_texts=truncate/);
    expect(performance.now() - t0).toBeLessThan(60_000); // (before: ~2 minutes to a silent SIGABRT in train)
  });

  it('every offender is listed (up to 10, then a count); aug_text counts too', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => `${'b'.repeat(101 + i)},short,2`);
    rows.push(`fine text,${'c'.repeat(500)},0`);
    const dir = miniWith(rows);
    const first = trainLines(dir) - rows.length + 1;
    const err = (await preprocess({ inputDir: dir, outputDir: join(root, 'out-many'), dataset: spec, maxTextLength: 100 }).catch((e: unknown) => e)) as DatasetError;
    expect(err.message).toMatch(/13 row\(s\) hold a text longer than 100 characters/);
    expect(err.message).toContain(`train.csv:${first} (101 characters), `);
    expect(err.message).toContain(`train.csv:${first + 9} (110 characters), and 3 more`);
    expect(err.line).toBe(first);
  });

  it('--long_texts=truncate cuts to the limit and counts the rows in the report', async () => {
    const dir = miniWith([`${'d'.repeat(300)},${'e'.repeat(250)},3`, `${'f'.repeat(150)},,0`]);
    const out = join(root, 'out-cut');
    const lines: string[] = [];
    const code = await runPreprocess([`--input_dir=${dir}`, `--output_dir=${out}`, '--max_text_length=200', '--long_texts=truncate'], { out: (t) => lines.push(t), err: (t) => lines.push(t) });
    expect(code).toBe(0);
    expect(lines.join('\n')).toContain('1 row(s) cut to 200 characters (--long_texts=truncate): train 1');
    const ds = await loadDataset(out);
    const train = ds.split('train');
    const texts = Array.from({ length: train.numRows }, (_, i) => train.get(i).text);
    expect(texts).toContain('d'.repeat(200));
    expect(texts).toContain('f'.repeat(150));
    expect(Math.max(...texts.map((t) => t.length))).toBe(200);
    const report = JSON.parse(readFileSync(join(out, 'preprocess_report.json'), 'utf8'));
    expect(report.splits.train.truncatedRows).toBe(1);
    expect(report.options).toMatchObject({ maxTextLength: 200, longTexts: 'truncate' });
  });

  it('bad flag values are usage errors naming the flag', async () => {
    const errs: string[] = [];
    expect(await runPreprocess([`--input_dir=${fixture('mini')}`, '--long_texts=drop'], { err: (t) => errs.push(t) })).toBe(2);
    expect(await runPreprocess([`--input_dir=${fixture('mini')}`, '--max_text_length=0'], { err: (t) => errs.push(t) })).toBe(2);
    expect(errs[0]).toMatch(/--long_texts must be refuse or truncate, got "drop"/);
    expect(errs[1]).toMatch(/--max_text_length must be a positive integer, got 0/);
  });
});

describe('dataset folders in neither layout', () => {
  const open = (dir: string) => openDataset(dir, { datasetName: 'ED_easy_4' });

  it('a missing folder says so (not "missing train.csv")', async () => {
    const dir = join(root, 'no-such-data');
    await expect(open(dir)).rejects.toThrow(`${dir}: --data_dir: no such folder (expected a preprocessed dataset (dataset_dict.json`);
  });

  it('an empty folder: both layouts named, "it is empty"', async () => {
    const dir = join(root, 'empty-data');
    mkdirSync(dir);
    await expect(open(dir)).rejects.toThrow(
      `${dir}: --data_dir: neither layout found: looked for a preprocessed dataset (dataset_dict.json, from \`rrec-emotion preprocess\` or datasets' save_to_disk) or a folder of CSV splits (train.csv, valid.csv, test.csv); it is empty`,
    );
  });

  it('a folder of other things, and one lacking a CSV split, list what is there', async () => {
    const other = join(root, 'other-data');
    mkdirSync(join(other, 'train'), { recursive: true });
    writeFileSync(join(other, 'notes.txt'), 'x');
    await expect(open(other)).rejects.toThrow(/neither layout found: .*; it holds notes\.txt, train$/);
    const partial = join(root, 'partial-data');
    mkdirSync(partial);
    copyFileSync(join(fixture('mini'), 'train.csv'), join(partial, 'train.csv'));
    await expect(open(partial)).rejects.toThrow(/it holds train\.csv; of the CSV splits it lacks valid\.csv, test\.csv/);
  });

  it('a file given as the folder', async () => {
    const f = join(root, 'a-file.csv');
    writeFileSync(f, 'text,label\n');
    await expect(open(f)).rejects.toThrow(`${f}: --data_dir is not a folder`);
  });
});

describe('CSV faults that already gave clear errors (kept)', () => {
  const cases: [string, RegExp][] = [
    ['bad_label', /bad_label\/test\.csv:3: label "joy" is not an integer label id/],
    ['label_out_of_range', /train\.csv:\d+: label .*(out of range|not a label id|0 \.\. 3|\[0, 4\))/],
    ['empty_text', /train\.csv:\d+: text is empty/],
    ['missing_column', /train\.csv:1: .*label/],
    ['missing_split', /(valid|test)\.csv: missing (valid|test) split file/],
    ['unterminated_quote', /unterminated_quote\/valid\.csv:3: malformed CSV in the record starting here \(the parser stopped at line 4\)/],
    ['ragged_row', /train\.csv:\d+: /],
    ['header_only', /header_only\/test\.csv:1: has a header but no rows/],
    ['empty_file', /empty_file\/valid\.csv:1: file is empty; expected a header line "text,aug_text,label"/],
  ];
  for (const [name, re] of cases) {
    it(name, async () => {
      await expect(preprocess({ inputDir: fixture(name), outputDir: join(root, `out-${name}`), dataset: spec })).rejects.toThrow(re);
    });
  }
});
