/**
 * The on-disk layout of a Hugging Face `datasets` DatasetDict saved with `save_to_disk`, so that
 * Python's `datasets.load_from_disk(dir)` reads what we write and we read what it writes:
 *
 *   dir/dataset_dict.json                      {"splits": [...]}
 *   dir/<split>/data-00000-of-00001.arrow      Arrow IPC *stream* (what HF's ArrowWriter emits)
 *   dir/<split>/dataset_info.json              DatasetInfo as a dict: features, card text, splits
 *   dir/<split>/state.json                     data file list, fingerprint, format, split name
 *
 * Conventions taken from huggingface/datasets (arrow_dataset.py save_to_disk/load_from_disk,
 * info.py DatasetInfo, features.py Value/ClassLabel, arrow_writer.py _build_metadata):
 *  - features JSON: Value -> {"dtype": "string", "_type": "Value"}; ClassLabel ->
 *    {"names": [...], "_type": "ClassLabel"}, stored as int64;
 *  - the Arrow schema carries metadata key "huggingface" = JSON {"info": {"features": ...}};
 *    HF rebuilds ClassLabel from it only when the Arrow field equals the one the feature implies,
 *    which includes nullable = true, so every field is written nullable;
 *  - json files: top-level keys sorted, indent 2 (HF's json.dump(..., indent=2, sort_keys=True)).
 */

import type { LabelEdge } from './labelTree.js';
import type { DatasetSpec } from './spec.js';

export const DATASET_DICT_FILE = 'dataset_dict.json';
export const DATASET_INFO_FILE = 'dataset_info.json';
export const STATE_FILE = 'state.json';
/** File name of shard `index` of `count`, as HF names them. */
export const dataFileName = (index = 0, count = 1): string =>
  `data-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.arrow`;

/** The column names we write, in order. */
export const COLUMNS = ['text', 'aug_text', 'label'] as const;

export type FeatureJson = { dtype: string; _type: 'Value'; id?: string | null } | { names: string[]; _type: 'ClassLabel'; id?: string | null };
export type FeaturesJson = Record<string, FeatureJson>;

export function featuresJson(spec: DatasetSpec): FeaturesJson {
  return {
    text: { dtype: 'string', _type: 'Value' },
    aug_text: { dtype: 'string', _type: 'Value' },
    label: { names: [...spec.labels], _type: 'ClassLabel' },
  };
}

/** Value of the Arrow schema metadata key "huggingface". */
export function schemaMetadataJson(spec: DatasetSpec): string {
  return JSON.stringify({ info: { features: featuresJson(spec) } });
}

export interface SplitSize {
  split: string;
  numExamples: number;
  /** Bytes of the split's Arrow data (HF's num_bytes is the table's in-memory size; close enough). */
  numBytes: number;
}

/**
 * dataset_info.json for one split. Fields HF would leave at their defaults are omitted, as its
 * asdict does. `label_tree` is ours: HF's DatasetInfo.from_dict ignores keys it does not know.
 */
export function datasetInfoJson(spec: DatasetSpec, sizes: readonly SplitSize[], labelTree: readonly LabelEdge[] | null): string {
  const info: Record<string, unknown> = {
    citation: spec.citation,
    dataset_name: spec.name,
    dataset_size: sizes.reduce((a, s) => a + s.numBytes, 0),
    description: spec.description,
    features: featuresJson(spec),
    homepage: spec.homepage,
    license: spec.license,
    splits: Object.fromEntries(
      sizes.map((s) => [s.split, { name: s.split, num_bytes: s.numBytes, num_examples: s.numExamples, shard_lengths: null, dataset_name: spec.name }]),
    ),
  };
  if (labelTree) info.label_tree = labelTree.map((e) => [e.child, e.parent]);
  return jsonText(sortKeys(info));
}

/** state.json for one split stored in a single shard. */
export function stateJson(split: string, fingerprint: string): string {
  return jsonText({
    _data_files: [{ filename: dataFileName() }],
    _fingerprint: fingerprint,
    _format_columns: null,
    _format_kwargs: {},
    _format_type: null,
    _output_all_columns: false,
    _split: split,
  });
}

export function datasetDictJson(splits: readonly string[]): string {
  return JSON.stringify({ splits: [...splits] });
}

function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

function jsonText(o: unknown): string {
  return JSON.stringify(o, null, 2);
}
