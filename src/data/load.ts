/**
 * loadDataset / loadSplit: a saved DatasetDict (ours or one written by HF `datasets`
 * save_to_disk) read back as typed columns.
 *
 * Text columns stay Arrow vectors (offsets + UTF-8 bytes; `get(i)` decodes one string), labels
 * become one Int32Array, so nothing is copied into per-row objects. Only what HF itself writes is
 * relied on (dataset_dict.json, state.json `_data_files`, dataset_info.json features, the Arrow
 * stream); our extras (fingerprint scheme, label_tree, preprocess_report.json) are optional.
 */

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type LargeUtf8, type Schema, type Table, Type, type Utf8, type Vector, tableFromIPC } from 'apache-arrow';
import { DatasetError } from './errors.js';
import { DATASET_DICT_FILE, DATASET_INFO_FILE, STATE_FILE } from './hfLayout.js';
import type { LabelEdge } from './labelTree.js';

export type TextVector = Vector<Utf8 | LargeUtf8>;

export interface SplitExample {
  text: string;
  augText: string;
  label: number;
  labelName: string;
}

export interface LoadedSplit {
  split: string;
  /** The split's folder. */
  dir: string;
  numRows: number;
  /** Label names in id order, from the ClassLabel feature. */
  labelNames: readonly string[];
  text: TextVector;
  /** null when the dataset has no aug_text column. */
  augText: TextVector | null;
  /** Label id per row, each in [0, labelNames.length). */
  label: Int32Array;
  /** The label hierarchy when the dataset carries one (ours do when label_tree.tsv existed). */
  labelTree: LabelEdge[] | null;
  /** dataset_info.json as parsed. */
  info: Record<string, unknown>;
  /** All data files of the split, concatenated (batches are not copied). */
  table: Table;
  /** Row i as an object, for printing and tests; loops over many rows should use the columns. */
  get(i: number): SplitExample;
}

export interface LoadedDataset {
  dir: string;
  /** As listed in dataset_dict.json. */
  splitNames: string[];
  labelNames: readonly string[];
  splits: Record<string, LoadedSplit>;
  /** The named split; a DatasetError naming dataset_dict.json if there is none. */
  split(name: string): LoadedSplit;
}

/** Reads every split listed in dir/dataset_dict.json; all splits must share the label names. */
export async function loadDataset(dir: string): Promise<LoadedDataset> {
  const splitNames = await readSplitNames(dir);
  const splits: Record<string, LoadedSplit> = {};
  let labelNames: readonly string[] | undefined;
  for (const name of splitNames) {
    const s = await readSplitDir(path.join(dir, name), name);
    if (labelNames && !sameList(labelNames, s.labelNames)) {
      throw new DatasetError(`split ${name} has labels [${s.labelNames.join(', ')}] but split ${splitNames[0]} has [${labelNames.join(', ')}]`, {
        file: path.join(s.dir, DATASET_INFO_FILE),
      });
    }
    labelNames = s.labelNames;
    splits[name] = s;
  }
  const dictFile = path.join(dir, DATASET_DICT_FILE);
  if (!labelNames) throw new DatasetError('lists no splits', { file: dictFile });
  return {
    dir,
    splitNames,
    labelNames,
    splits,
    split(name: string): LoadedSplit {
      const s = splits[name];
      if (!s) throw new DatasetError(`has no split "${name}"; splits: ${splitNames.join(', ')}`, { file: dictFile, value: name });
      return s;
    },
  };
}

/** Reads one split of the DatasetDict saved at `dir`. */
export async function loadSplit(dir: string, split: string): Promise<LoadedSplit> {
  const names = await readSplitNames(dir);
  if (!names.includes(split)) {
    throw new DatasetError(`has no split "${split}"; splits: ${names.join(', ')}`, { file: path.join(dir, DATASET_DICT_FILE), value: split });
  }
  return readSplitDir(path.join(dir, split), split);
}

async function readSplitNames(dir: string): Promise<string[]> {
  const file = path.join(dir, DATASET_DICT_FILE);
  const json = await readJson(file, `no saved dataset here (expected ${DATASET_DICT_FILE}, as written by preprocess or HF save_to_disk)`);
  const splits = (json as { splits?: unknown }).splits;
  if (!Array.isArray(splits) || !splits.every((s): s is string => typeof s === 'string' && s !== '' && !/[/\\]|^\.\.?$/.test(s))) {
    throw new DatasetError(`"splits" must be a list of split names, got ${JSON.stringify(splits)}`, { file });
  }
  return splits;
}

async function readSplitDir(dir: string, split: string): Promise<LoadedSplit> {
  const stateFile = path.join(dir, STATE_FILE);
  const infoFile = path.join(dir, DATASET_INFO_FILE);
  const state = (await readJson(stateFile, `missing split "${split}" (no ${STATE_FILE})`)) as { _data_files?: unknown };
  const info = (await readJson(infoFile, `missing split "${split}" metadata (no ${DATASET_INFO_FILE})`)) as Record<string, unknown>;

  const dataFiles = state._data_files;
  if (!Array.isArray(dataFiles) || dataFiles.length === 0 || !dataFiles.every((f) => typeof (f as { filename?: unknown })?.filename === 'string')) {
    throw new DatasetError(`"_data_files" must be a non-empty list of {"filename": ...}, got ${JSON.stringify(dataFiles)}`, { file: stateFile });
  }
  const features = info.features as Record<string, { _type?: unknown; dtype?: unknown; names?: unknown }> | undefined;
  if (!features || typeof features !== 'object') throw new DatasetError('has no "features"', { file: infoFile });
  const labelNames = classLabelNames(features.label, infoFile);
  for (const col of ['text', 'aug_text'] as const) {
    const f = features[col];
    if (col === 'text' && !f) throw new DatasetError(`has no "text" feature; features: ${Object.keys(features).join(', ')}`, { file: infoFile });
    if (f && !(f._type === 'Value' && (f.dtype === 'string' || f.dtype === 'large_string'))) {
      throw new DatasetError(`feature "${col}" must be a string Value, got ${JSON.stringify(f)}`, { file: infoFile });
    }
  }

  const tables: Table[] = [];
  for (const { filename } of dataFiles as { filename: string }[]) {
    const file = path.join(dir, filename);
    const table = await readArrow(file);
    checkSchema(table.schema, Object.keys(features), labelNames, file, infoFile);
    tables.push(table);
  }
  const table = tables.length === 1 ? tables[0]! : tables[0]!.concat(...tables.slice(1));
  const dataFile = path.join(dir, (dataFiles[0] as { filename: string }).filename);

  const text = table.getChild('text') as TextVector;
  const augText = (table.getChild('aug_text') as TextVector | null) ?? null;
  for (const [name, v] of [['text', text], ['aug_text', augText]] as const) {
    if (v && v.nullCount > 0) throw new DatasetError(`column "${name}" has ${v.nullCount} null value(s)`, { file: dataFile });
  }
  const label = labelsToInt32(table.getChild('label')!, labelNames.length, dataFile);

  const labelTree = parseLabelTreeInfo(info.label_tree, infoFile);
  const numRows = table.numRows;
  return {
    split,
    dir,
    numRows,
    labelNames,
    text,
    augText,
    label,
    labelTree,
    info,
    table,
    get(i: number): SplitExample {
      if (!Number.isInteger(i) || i < 0 || i >= numRows) throw new RangeError(`row ${i} out of range [0, ${numRows}) in split ${split}`);
      const l = label[i]!;
      return { text: text.get(i) ?? '', augText: augText?.get(i) ?? '', label: l, labelName: labelNames[l]! };
    },
  };
}

function classLabelNames(f: { _type?: unknown; names?: unknown } | undefined, infoFile: string): string[] {
  if (!f) throw new DatasetError('has no "label" feature', { file: infoFile });
  if (f._type !== 'ClassLabel' || !Array.isArray(f.names) || f.names.length === 0 || !f.names.every((n) => typeof n === 'string')) {
    throw new DatasetError(`feature "label" must be a ClassLabel with names, got ${JSON.stringify(f)}`, { file: infoFile });
  }
  return f.names as string[];
}

async function readJson(file: string, missing: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetError(missing, { file, cause: e });
    throw new DatasetError(`cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file, cause: e });
  }
  try {
    const v: unknown = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new DatasetError(`invalid JSON: ${(e as Error).message}`, { file, cause: e });
  }
}

async function readArrow(file: string): Promise<Table> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? 'missing data file listed in state.json' : `cannot read (${code ?? String(e)})`, { file, cause: e });
  }
  try {
    // tableFromIPC reads both the stream format (HF's) and the file format.
    return tableFromIPC(buf);
  } catch (e) {
    throw new DatasetError(`not a readable Arrow IPC stream: ${(e as Error).message}`, { file, cause: e });
  }
}

const isString = (t: { typeId: Type }): boolean => t.typeId === Type.Utf8 || t.typeId === Type.LargeUtf8;

/** The Arrow columns must be the features' columns, with string text and integer labels. */
function checkSchema(schema: Schema, featureNames: string[], labelNames: readonly string[], file: string, infoFile: string): void {
  const cols = schema.fields.map((f) => f.name);
  const same = cols.length === featureNames.length && featureNames.every((n) => cols.includes(n));
  if (!same) {
    throw new DatasetError(`schema mismatch: columns [${cols.join(', ')}] but ${infoFile} lists features [${featureNames.join(', ')}]`, { file });
  }
  for (const f of schema.fields) {
    const ok = f.name === 'label' ? f.type.typeId === Type.Int : f.name === 'text' || f.name === 'aug_text' ? isString(f.type) : true;
    if (!ok) throw new DatasetError(`schema mismatch: column "${f.name}" has type ${String(f.type)}`, { file, value: String(f.type) });
  }
  // If the file carries HF features metadata, its label names must agree with dataset_info.json.
  const meta = schema.metadata.get('huggingface');
  if (meta !== undefined) {
    let names: unknown;
    try {
      names = (JSON.parse(meta) as { info?: { features?: { label?: { names?: unknown } } } }).info?.features?.label?.names;
    } catch (e) {
      throw new DatasetError(`schema metadata "huggingface" is not JSON: ${(e as Error).message}`, { file, cause: e });
    }
    if (Array.isArray(names) && !sameList(names, labelNames)) {
      throw new DatasetError(`schema metadata label names [${names.join(', ')}] differ from ${infoFile}: [${labelNames.join(', ')}]`, { file });
    }
  }
}

/** Integer label column (any width, one or many chunks) -> Int32Array, range-checked. */
function labelsToInt32(col: Vector, numClasses: number, file: string): Int32Array {
  const out = new Int32Array(col.length);
  let k = 0;
  for (const d of col.data) {
    const values = d.values as ArrayLike<number | bigint>;
    for (let j = 0; j < d.length; j++, k++) {
      const v = Number(values[j]);
      if (!d.getValid(j) || !(v >= 0 && v < numClasses)) {
        const shown = d.getValid(j) ? String(values[j]) : 'null';
        throw new DatasetError(`column "label" row ${k} is ${shown}, not a label id in [0, ${numClasses})`, { file, value: shown });
      }
      out[k] = v;
    }
  }
  return out;
}

function parseLabelTreeInfo(v: unknown, infoFile: string): LabelEdge[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || !v.every((e) => Array.isArray(e) && e.length === 2 && e.every((x) => typeof x === 'string'))) {
    throw new DatasetError(`"label_tree" must be a list of [child, parent] pairs`, { file: infoFile });
  }
  return (v as [string, string][]).map(([child, parent]) => ({ child, parent }));
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
