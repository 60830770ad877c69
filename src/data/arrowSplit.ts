/**
 * encodeSplitArrow: one split's columns as an Arrow IPC stream (text: utf8, aug_text: utf8,
 * label: int64), the bytes of `<split>/data-00000-of-00001.arrow`.
 *
 * Stream, not file format, because HF opens its data files with pyarrow's stream reader. Rows go
 * in record batches of at most 1000 rows (HF's default writer batch size), so readers meet the
 * several-batch case they also meet in HF-written files. Labels are int64, ClassLabel's storage.
 */

import { Field, Int64, RecordBatch, Schema, Struct, Table, Utf8, makeData, tableToIPC, vectorFromArray } from 'apache-arrow';
import { schemaMetadataJson } from './hfLayout.js';
import type { DatasetSpec } from './spec.js';

export const ROWS_PER_BATCH = 1000;

export interface SplitColumns {
  numRows: number;
  text: readonly string[];
  augText: readonly string[];
  label: Int32Array;
}

/** Arrow schema of a saved split, with HF's features in the "huggingface" metadata key. */
export function splitSchema(spec: DatasetSpec): Schema {
  // nullable = true: HF compares fields including nullability when it restores ClassLabel.
  const fields = [new Field('text', new Utf8(), true), new Field('aug_text', new Utf8(), true), new Field('label', new Int64(), true)];
  return new Schema(fields, new Map([['huggingface', schemaMetadataJson(spec)]]));
}

export function encodeSplitArrow(cols: SplitColumns, spec: DatasetSpec): Uint8Array {
  const schema = splitSchema(spec);
  const batches: RecordBatch[] = [];
  // At least one batch, so an empty split still has a readable stream with its schema.
  const numBatches = Math.max(1, Math.ceil(cols.numRows / ROWS_PER_BATCH));
  for (let b = 0; b < numBatches; b++) {
    const start = b * ROWS_PER_BATCH;
    const end = Math.min(start + ROWS_PER_BATCH, cols.numRows);
    const text = vectorFromArray(cols.text.slice(start, end), new Utf8());
    const augText = vectorFromArray(cols.augText.slice(start, end), new Utf8());
    const label = BigInt64Array.from(cols.label.subarray(start, end), (v) => BigInt(v));
    const children = [text.data[0]!, augText.data[0]!, makeData({ type: new Int64(), length: end - start, data: label })];
    const data = makeData({ type: new Struct(schema.fields), length: end - start, nullCount: 0, children });
    batches.push(new RecordBatch(schema, data));
  }
  return tableToIPC(new Table(schema, batches), 'stream');
}
