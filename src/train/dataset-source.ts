/**
 * Where the trainer and the eval / infer commands get their data: a preprocessed (Arrow, Hugging
 * Face save_to_disk layout) dataset folder, or a folder of CSV splits that is preprocessed on the
 * way in. The default is ../shared/data/ED_easy_4 beside the package when it exists, else the
 * shipped sample data/sample/ED_sample_4.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATASET_DICT_FILE, DatasetError, datasetSpec, loadDataset, preprocess, type LoadedDataset } from '../data/index.js';

/** The package's root folder (the one with package.json), from this file's location. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** ../shared/data/ED_easy_4 beside the package when it exists, else the shipped sample. */
export function defaultDataDir(): string {
  const root = packageRoot();
  const shared = resolve(root, '..', 'shared', 'data', 'ED_easy_4');
  return existsSync(join(shared, 'train.csv')) ? shared : join(root, 'data', 'sample', 'ED_sample_4');
}

/** True when `dir` is a preprocessed dataset (has dataset_dict.json). */
export function isArrowDataset(dir: string): boolean {
  return existsSync(join(dir, DATASET_DICT_FILE));
}

export interface OpenDatasetOptions {
  /** Dataset name for CSV folders (label list of built-in datasets). */
  datasetName: string;
  /** Label names in id order for a dataset that is not built in; null: the dataset's own. */
  labels?: readonly string[] | null;
  /**
   * Where to keep the preprocessed copy of a CSV folder (reused when already there). Absent: a
   * temporary folder, removed once the data is in memory.
   */
  preprocessInto?: string;
}

const CSV_SPLITS = ['train.csv', 'valid.csv', 'test.csv'];

/**
 * Throws a DatasetError unless `dir` is one of the two layouts: says whether the folder exists at
 * all, which layouts were looked for, and what the folder holds instead.
 */
export async function checkDataFolder(dir: string): Promise<'arrow' | 'csv'> {
  const layouts = `a preprocessed dataset (${DATASET_DICT_FILE}, from \`rrec-emotion preprocess\` or datasets' save_to_disk) or a folder of CSV splits (${CSV_SPLITS.join(', ')})`;
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new DatasetError(`--data_dir is not a folder; expected ${layouts}`, { file: dir });
    names = await readdir(dir);
  } catch (e) {
    if (e instanceof DatasetError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(code === 'ENOENT' ? `--data_dir: no such folder (expected ${layouts})` : `--data_dir: cannot read the folder (${code ?? String(e)})`, { file: dir, cause: e });
  }
  if (names.includes(DATASET_DICT_FILE)) return 'arrow';
  const csvs = CSV_SPLITS.filter((f) => names.includes(f));
  if (csvs.length === CSV_SPLITS.length) return 'csv';
  const shown = names.filter((n) => !n.startsWith('.')).sort();
  const holds = shown.length === 0 ? 'it is empty' : `it holds ${shown.slice(0, 8).join(', ')}${shown.length > 8 ? `, … (${shown.length} entries)` : ''}`;
  const partial = csvs.length > 0 ? `; of the CSV splits it lacks ${CSV_SPLITS.filter((f) => !csvs.includes(f)).join(', ')}` : '';
  throw new DatasetError(`--data_dir: neither layout found: looked for ${layouts}; ${holds}${partial}`, { file: dir });
}

/** Loads `dataDir` (Arrow, or CSV preprocessed first); `arrowDir` is where the Arrow data is, null when temporary. */
export async function openDataset(dataDir: string, opts: OpenDatasetOptions): Promise<{ dataset: LoadedDataset; arrowDir: string | null }> {
  const abs = resolve(dataDir);
  if ((await checkDataFolder(abs)) === 'arrow') return { dataset: await loadDataset(abs), arrowDir: abs };
  const spec = datasetSpec(opts.datasetName, opts.labels ? [...opts.labels] : undefined);
  if (opts.preprocessInto !== undefined) {
    const out = resolve(opts.preprocessInto);
    if (!isArrowDataset(out)) await preprocess({ inputDir: abs, outputDir: out, dataset: spec });
    return { dataset: await loadDataset(out), arrowDir: out };
  }
  const tmp = await mkdtemp(join(tmpdir(), 'rrec-data-'));
  try {
    const out = join(tmp, 'dataset');
    await preprocess({ inputDir: abs, outputDir: out, dataset: spec });
    return { dataset: await loadDataset(out), arrowDir: null };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
