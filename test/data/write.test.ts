/**
 * The saved files themselves: HF layout and JSON contents, Arrow stream format and schema
 * metadata, atomic writes (a failure before commit leaves nothing) and overwrite rules.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RecordBatchStreamReader, Type } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetError, datasetSpec, loadDataset, preprocess } from '../../src/data/index.js';
import { fixture, listTree, tempDirs } from './util.js';

const tmp = tempDirs();
afterAll(tmp.cleanup);
const ED4 = datasetSpec('ED_easy_4');
const FEATURES = {
  text: { dtype: 'string', _type: 'Value' },
  aug_text: { dtype: 'string', _type: 'Value' },
  label: { names: ['sad', 'joyful', 'angry', 'afraid'], _type: 'ClassLabel' },
};

const readJson = async (p: string): Promise<unknown> => JSON.parse(await readFile(p, 'utf8')) as unknown;

describe('saved layout', () => {
  let out: string;
  beforeAll(async () => {
    out = path.join(await tmp.make(), 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: ED4 });
  });

  it('dataset_dict.json lists the splits', async () => {
    expect(await readJson(path.join(out, 'dataset_dict.json'))).toEqual({ splits: ['train', 'valid', 'test'] });
  });

  it('state.json has the keys HF save_to_disk writes', async () => {
    const state = (await readJson(path.join(out, 'valid', 'state.json'))) as Record<string, unknown>;
    expect(Object.keys(state)).toEqual(['_data_files', '_fingerprint', '_format_columns', '_format_kwargs', '_format_type', '_output_all_columns', '_split']);
    expect(state).toMatchObject({
      _data_files: [{ filename: 'data-00000-of-00001.arrow' }],
      _format_columns: null,
      _format_kwargs: {},
      _format_type: null,
      _output_all_columns: false,
      _split: 'valid',
    });
    expect(state._fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('dataset_info.json has the features, license and split sizes', async () => {
    const info = (await readJson(path.join(out, 'train', 'dataset_info.json'))) as Record<string, unknown>;
    expect(info.features).toEqual(FEATURES);
    expect(info.license).toBe('CC BY-NC 4.0');
    expect(info.homepage).toBe('https://github.com/facebookresearch/EmpatheticDialogues');
    expect(info.citation).toContain('Rashkin');
    expect(Object.keys(info)).toEqual([...Object.keys(info)].sort());
    const splits = info.splits as Record<string, { num_examples: number }>;
    expect([splits.train?.num_examples, splits.valid?.num_examples, splits.test?.num_examples]).toEqual([14, 2, 2]);
  });

  it('the data file is an Arrow IPC stream, not the file format', async () => {
    const bytes = await readFile(path.join(out, 'train', 'data-00000-of-00001.arrow'));
    expect([...bytes.subarray(0, 4)]).toEqual([0xff, 0xff, 0xff, 0xff]); // continuation marker
    expect(bytes.subarray(0, 6).toString('latin1')).not.toBe('ARROW1');
    // the stream reader (which refuses the file format's magic) reads it
    const reader = RecordBatchStreamReader.from(bytes);
    let rows = 0;
    for (const batch of reader) rows += batch.numRows;
    expect(rows).toBe(14);
  });

  it('the Arrow schema has text/aug_text utf8, label int64, nullable, and HF features metadata', async () => {
    const ds = await loadDataset(out);
    const schema = ds.splits.train!.table.schema;
    expect(schema.fields.map((f) => [f.name, Type[f.type.typeId], f.nullable])).toEqual([
      ['text', 'Utf8', true],
      ['aug_text', 'Utf8', true],
      ['label', 'Int', true],
    ]);
    const label = schema.fields[2]!.type as { bitWidth: number; isSigned: boolean };
    expect([label.bitWidth, label.isSigned]).toEqual([64, true]);
    expect(JSON.parse(schema.metadata.get('huggingface') ?? 'null')).toEqual({ info: { features: FEATURES } });
  });

  it('the fingerprint depends on the content only', async () => {
    const again = path.join(await tmp.make(), 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: again, dataset: ED4 });
    const other = path.join(await tmp.make(), 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: other, dataset: ED4, dropDuplicates: true });
    const fp = async (dir: string, split: string): Promise<unknown> => ((await readJson(path.join(dir, split, 'state.json'))) as { _fingerprint: unknown })._fingerprint;
    expect(await fp(again, 'train')).toBe(await fp(out, 'train'));
    expect(await fp(other, 'train')).not.toBe(await fp(out, 'train'));
    expect(await fp(out, 'valid')).not.toBe(await fp(out, 'test'));
  });
});

describe('atomic write', () => {
  it('a failure after all files are written leaves no dataset and no temp folder', async () => {
    const parent = await tmp.make();
    const out = path.join(parent, 'ds');
    let seen: string[] = [];
    const err = await preprocess({
      inputDir: fixture('mini'),
      outputDir: out,
      dataset: ED4,
      beforeCommit: async (tempDir) => {
        expect(path.dirname(tempDir)).toBe(parent);
        expect(path.basename(tempDir)).toMatch(new RegExp(`^\\.ds\\.tmp-${process.pid}-[0-9a-f]+$`));
        seen = await listTree(tempDir);
        throw new Error('simulated crash');
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('simulated crash');
    expect(seen).toContain('test/data-00000-of-00001.arrow'); // the failure really was midway
    expect(existsSync(out)).toBe(false);
    expect(await readdir(parent)).toEqual([]);
  });

  it('refuses an existing output without overwrite, leaving it as it was', async () => {
    const parent = await tmp.make();
    const out = path.join(parent, 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: ED4 });
    const before = await listTree(out);
    await expect(preprocess({ inputDir: fixture('no_aug_text'), outputDir: out, dataset: ED4 })).rejects.toThrow(
      `${out}: output folder already exists; pass overwrite (--overwrite) to replace it`,
    );
    expect(await listTree(out)).toEqual(before);
    expect((await loadDataset(out)).splits.train!.numRows).toBe(14);
  });

  it('overwrite replaces the old dataset and leaves no side folders', async () => {
    const parent = await tmp.make();
    const out = path.join(parent, 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: ED4 });
    await preprocess({ inputDir: fixture('no_aug_text'), outputDir: out, dataset: ED4, overwrite: true });
    const ds = await loadDataset(out);
    expect(ds.splits.train!.numRows).toBe(2);
    expect(ds.splits.valid!.text.get(0)).toBe('the dog bit me and i was mad');
    expect(await readdir(parent)).toEqual(['ds']);
  });

  it('a failed overwrite keeps the old dataset intact', async () => {
    const parent = await tmp.make();
    const out = path.join(parent, 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: ED4 });
    const before = await readFile(path.join(out, 'train', 'data-00000-of-00001.arrow'));
    await expect(
      preprocess({
        inputDir: fixture('no_aug_text'),
        outputDir: out,
        dataset: ED4,
        overwrite: true,
        beforeCommit: () => {
          throw new Error('disk full');
        },
      }),
    ).rejects.toThrow('disk full');
    expect(await readdir(parent)).toEqual(['ds']);
    expect((await readFile(path.join(out, 'train', 'data-00000-of-00001.arrow'))).equals(before)).toBe(true);
  });

  it('overwrite refuses a non-empty folder that is not a saved dataset', async () => {
    const parent = await tmp.make();
    const out = path.join(parent, 'precious');
    await mkdir(out);
    await writeFile(path.join(out, 'notes.txt'), 'keep me');
    const err = await preprocess({ inputDir: fixture('mini'), outputDir: out, dataset: ED4, overwrite: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message).toBe(`${out}: output folder is not a saved dataset (no dataset_dict.json) and not empty; refusing to replace it`);
    expect(await readFile(path.join(out, 'notes.txt'), 'utf8')).toBe('keep me');
  });

  it('overwrite accepts an empty folder; output parents are created', async () => {
    const parent = await tmp.make();
    const empty = path.join(parent, 'empty');
    await mkdir(empty);
    await preprocess({ inputDir: fixture('mini'), outputDir: empty, dataset: ED4, overwrite: true });
    expect(existsSync(path.join(empty, 'dataset_dict.json'))).toBe(true);
    const deep = path.join(parent, 'a', 'b', 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: deep, dataset: ED4 });
    expect(existsSync(path.join(deep, 'dataset_dict.json'))).toBe(true);
  });
});
