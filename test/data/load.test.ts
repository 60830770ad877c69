/**
 * The reader on datasets we did not write: HF `datasets` save_to_disk layouts built by hand
 * (several shards, no aug_text, large_string text, older feature JSON with "id": null, extra
 * state keys), and every way a saved dataset can be broken.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Field, Int64, LargeUtf8, RecordBatch, Schema, Struct, Table, Utf8, makeData, tableToIPC, vectorFromArray, type DataType } from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { DatasetError, datasetSpec, loadDataset, loadSplit, preprocess } from '../../src/data/index.js';
import { fixture, tempDirs } from './util.js';

const tmp = tempDirs();
afterAll(tmp.cleanup);

interface Shard {
  text: string[];
  label: (number | null)[];
}

/** One Arrow stream with columns text (+ label), as pyarrow would write it. */
function arrowStream(shard: Shard, textType: DataType = new Utf8(), meta?: string, labelAsText = false): Uint8Array {
  const labelType = labelAsText ? new Utf8() : new Int64();
  const fields = [new Field('text', textType, true), new Field('label', labelType, true)];
  const schema = new Schema(fields, meta === undefined ? undefined : new Map([['huggingface', meta]]));
  const text = vectorFromArray(shard.text, textType);
  const label = labelAsText
    ? vectorFromArray(shard.label.map((l) => String(l)), new Utf8())
    : vectorFromArray(shard.label.map((l) => (l === null ? null : BigInt(l))), new Int64());
  const data = makeData({ type: new Struct(fields), length: shard.text.length, nullCount: 0, children: [text.data[0]!, label.data[0]!] });
  return tableToIPC(new Table(schema, [new RecordBatch(schema, data)]), 'stream');
}

const HF_FEATURES = {
  // the older HF spelling, with "id": null and ClassLabel's num_classes
  text: { dtype: 'string', id: null, _type: 'Value' },
  label: { num_classes: 3, names: ['neg', 'neu', 'pos'], id: null, _type: 'ClassLabel' },
};

/** A DatasetDict folder in HF's layout with the given shards per split. */
async function writeHfDataset(dir: string, splits: Record<string, Shard[]>, textType: DataType = new Utf8()): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'dataset_dict.json'), JSON.stringify({ splits: Object.keys(splits) }));
  for (const [split, shards] of Object.entries(splits)) {
    const sd = path.join(dir, split);
    await mkdir(sd);
    const names = shards.map((_, i) => `data-${String(i).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.arrow`);
    const meta = JSON.stringify({ info: { features: HF_FEATURES }, fingerprint: 'abc' });
    for (const [i, s] of shards.entries()) await writeFile(path.join(sd, names[i]!), arrowStream(s, textType, meta));
    await writeFile(
      path.join(sd, 'state.json'),
      JSON.stringify({
        _data_files: names.map((filename) => ({ filename })),
        _fingerprint: '0123456789abcdef',
        _format_columns: ['text', 'label'],
        _format_kwargs: {},
        _format_type: 'numpy',
        _indexes: {},
        _output_all_columns: false,
        _split: null,
      }),
    );
    await writeFile(
      path.join(sd, 'dataset_info.json'),
      JSON.stringify({
        builder_name: 'csv',
        citation: '',
        config_name: 'default',
        dataset_name: 'csv',
        description: '',
        features: HF_FEATURES,
        homepage: '',
        license: '',
        splits: { [split]: { name: split, num_bytes: 1, num_examples: 1, dataset_name: 'csv' } },
        version: { version_str: '0.0.0', major: 0, minor: 0, patch: 0 },
      }),
    );
  }
}

describe('reading datasets written by HF datasets', () => {
  it('reads several shards, no aug_text, older feature JSON', async () => {
    const dir = path.join(await tmp.make(), 'hf');
    await writeHfDataset(dir, {
      train: [
        { text: ['good', 'bad'], label: [2, 0] },
        { text: ['meh', 'great', 'awful'], label: [1, 2, 0] },
      ],
      validation: [{ text: ['fine'], label: [1] }],
    });
    const ds = await loadDataset(dir);
    expect(ds.splitNames).toEqual(['train', 'validation']);
    expect(ds.labelNames).toEqual(['neg', 'neu', 'pos']);
    const train = ds.splits.train!;
    expect(train.numRows).toBe(5);
    expect(Array.from(train.label)).toEqual([2, 0, 1, 2, 0]);
    expect(train.text.get(3)).toBe('great');
    expect(train.augText).toBeNull();
    expect(train.labelTree).toBeNull();
    expect(train.get(4)).toEqual({ text: 'awful', augText: '', label: 0, labelName: 'neg' });
    expect(() => train.get(5)).toThrow(RangeError);
    expect(ds.split('validation').text.get(0)).toBe('fine');
    expect(() => ds.split('test')).toThrow(`${path.join(dir, 'dataset_dict.json')}: has no split "test"; splits: train, validation`);
  });

  it('reads large_string text', async () => {
    const dir = path.join(await tmp.make(), 'hf');
    await writeHfDataset(dir, { test: [{ text: ['fiancée', 'x'], label: [0, 2] }] }, new LargeUtf8());
    const test = await loadSplit(dir, 'test');
    expect(test.text.get(0)).toBe('fiancée');
    expect(Array.from(test.label)).toEqual([0, 2]);
  });
});

describe('loader errors name the file', () => {
  async function saved(): Promise<string> {
    const dir = path.join(await tmp.make(), 'ds');
    await preprocess({ inputDir: fixture('mini'), outputDir: dir, dataset: datasetSpec('ED_easy_4') });
    return dir;
  }
  const rejects = async (p: Promise<unknown>, message: string): Promise<void> => {
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message).toBe(message);
  };

  it('missing dataset_dict.json', async () => {
    const dir = await tmp.make();
    await rejects(
      loadDataset(dir),
      `${path.join(dir, 'dataset_dict.json')}: no saved dataset here (expected dataset_dict.json, as written by preprocess or HF save_to_disk)`,
    );
  });

  it('a split that is not listed', async () => {
    const dir = await saved();
    await rejects(loadSplit(dir, 'validation'), `${path.join(dir, 'dataset_dict.json')}: has no split "validation"; splits: train, valid, test`);
  });

  it('a listed split whose folder is missing', async () => {
    const dir = await saved();
    await rm(path.join(dir, 'valid'), { recursive: true });
    await rejects(loadDataset(dir), `${path.join(dir, 'valid', 'state.json')}: missing split "valid" (no state.json)`);
  });

  it('a data file listed in state.json but absent', async () => {
    const dir = await saved();
    await rm(path.join(dir, 'test', 'data-00000-of-00001.arrow'));
    await rejects(loadSplit(dir, 'test'), `${path.join(dir, 'test', 'data-00000-of-00001.arrow')}: missing data file listed in state.json`);
  });

  it('invalid JSON', async () => {
    const dir = await saved();
    await writeFile(path.join(dir, 'train', 'dataset_info.json'), '{"features": ');
    const err = await loadSplit(dir, 'train').catch((e: unknown) => e);
    expect((err as Error).message).toMatch(new RegExp(`^${escape(path.join(dir, 'train', 'dataset_info.json'))}: invalid JSON: `));
  });

  it('schema mismatch: features list a column the Arrow file lacks', async () => {
    const dir = await saved();
    const infoFile = path.join(dir, 'train', 'dataset_info.json');
    const info = JSON.parse(await readFile(infoFile, 'utf8')) as { features: Record<string, unknown> };
    info.features.speaker = { dtype: 'string', _type: 'Value' };
    await writeFile(infoFile, JSON.stringify(info));
    await rejects(
      loadSplit(dir, 'train'),
      `${path.join(dir, 'train', 'data-00000-of-00001.arrow')}: schema mismatch: columns [text, aug_text, label] but ${infoFile} lists features [text, aug_text, label, speaker]`,
    );
  });

  it('schema mismatch: a label column that is not integer', async () => {
    const dir = path.join(await tmp.make(), 'hf');
    await writeHfDataset(dir, { train: [{ text: ['a'], label: [0] }] });
    const file = path.join(dir, 'train', 'data-00000-of-00001.arrow');
    await writeFile(file, arrowStream({ text: ['a'], label: [0] }, new Utf8(), undefined, true));
    await rejects(loadSplit(dir, 'train'), `${file}: schema mismatch: column "label" has type Utf8`);
  });

  it('label not a ClassLabel', async () => {
    const dir = await saved();
    const infoFile = path.join(dir, 'train', 'dataset_info.json');
    const info = JSON.parse(await readFile(infoFile, 'utf8')) as { features: Record<string, unknown> };
    info.features.label = { dtype: 'int64', _type: 'Value' };
    await writeFile(infoFile, JSON.stringify(info));
    await rejects(loadSplit(dir, 'train'), `${infoFile}: feature "label" must be a ClassLabel with names, got {"dtype":"int64","_type":"Value"}`);
  });

  it('label ids out of range or null in the Arrow data', async () => {
    const dir = path.join(await tmp.make(), 'hf');
    await writeHfDataset(dir, { train: [{ text: ['a', 'b'], label: [0, 3] }], test: [{ text: ['a', 'b', 'c'], label: [0, 1, null] }] });
    await rejects(loadSplit(dir, 'train'), `${path.join(dir, 'train', 'data-00000-of-00001.arrow')}: column "label" row 1 is 3, not a label id in [0, 3)`);
    await rejects(loadSplit(dir, 'test'), `${path.join(dir, 'test', 'data-00000-of-00001.arrow')}: column "label" row 2 is null, not a label id in [0, 3)`);
  });

  it('label names in the Arrow metadata that disagree with dataset_info.json', async () => {
    const dir = await saved();
    const infoFile = path.join(dir, 'test', 'dataset_info.json');
    const info = JSON.parse(await readFile(infoFile, 'utf8')) as { features: { label: { names: string[] } } };
    info.features.label.names = ['a', 'b', 'c', 'd'];
    await writeFile(infoFile, JSON.stringify(info));
    await rejects(
      loadSplit(dir, 'test'),
      `${path.join(dir, 'test', 'data-00000-of-00001.arrow')}: schema metadata label names [sad, joyful, angry, afraid] differ from ${infoFile}: [a, b, c, d]`,
    );
  });

  it('not an Arrow stream', async () => {
    const dir = await saved();
    const file = path.join(dir, 'valid', 'data-00000-of-00001.arrow');
    await writeFile(file, 'text,label\nnot arrow,0\n');
    const err = await loadSplit(dir, 'valid').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as Error).message.startsWith(`${file}: not a readable Arrow IPC stream`)).toBe(true);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
