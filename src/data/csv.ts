/**
 * readSplitCsv: one split's CSV file (header `text,aug_text,label`) parsed, checked and cleaned
 * into columns.
 *
 * The result is column-oriented (one array per field, row i across all of them) because that is
 * what the Arrow writer and the duplicate checks consume; no per-row objects are built.
 *
 * `aug_text` is optional: other datasets of the family may not have it. A missing column is read
 * as empty strings (and `hasAugText` says so) rather than dropped, so every saved dataset has the
 * same three columns and downstream code never branches on the schema.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import { cleanText } from './clean.js';
import { DatasetError, quoteValue } from './errors.js';
import { LineCounter } from './lines.js';
import type { DatasetSpec } from './spec.js';

/** One split as read from CSV. All arrays have `numRows` entries. */
export interface SplitRows {
  split: string;
  /** Path of the CSV it was read from. */
  file: string;
  /** sha256 (hex) of the CSV bytes, for provenance in the report. */
  sha256: string;
  numRows: number;
  /** Cleaned text (see cleanText). */
  text: string[];
  /** Cleaned aug_text; empty strings when the file has no aug_text column. */
  augText: string[];
  /** `text` exactly as in the file, before cleaning. */
  rawText: string[];
  /** Label ids, each in [0, spec.labels.length). */
  label: Int32Array;
  /** 1-based line each row starts on in `file` (the header is line 1). */
  line: Int32Array;
  hasAugText: boolean;
  /** Header columns other than text/aug_text/label: ignored, reported. */
  extraColumns: string[];
  /** Rows whose text or aug_text changed under cleanText. */
  cleanedRows: number;
}

const REQUIRED = ['text', 'label'] as const;

export async function readSplitCsv(file: string, split: string, spec: DatasetSpec): Promise<SplitRows> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `missing ${split} split file (the input folder must hold train.csv, valid.csv and test.csv)` : `cannot read ${split} split file (${code ?? String(e)})`;
    throw new DatasetError(why, { file, cause: e });
  }
  if (buf.toString('utf8').replace(/^\uFEFF/, '').trim() === '') {
    throw new DatasetError('file is empty; expected a header line "text,aug_text,label" and rows', { file, line: 1, value: '' });
  }

  const lines = new LineCounter(buf);
  let records: string[][];
  // ends[i]: bytes consumed when record i was complete, i.e. where record i+1 starts. The last
  // one is also where a record that fails to parse starts (the error's own byte counters do not
  // say this consistently across error kinds).
  const ends: number[] = [];
  try {
    records = parse(buf, {
      bom: true,
      skip_empty_lines: true,
      on_record: (record, ctx) => {
        ends.push(ctx.bytes);
        return record;
      },
    });
  } catch (e) {
    throw wrapCsvError(e, file, lines, ends.at(-1) ?? 0);
  }

  const header = (records[0] ?? []).map((h) => h.trim());
  const headerLine = lines.recordLineAt(0); // 1 unless the file starts with blank lines
  const col = new Map<string, number>();
  for (const [i, name] of header.entries()) {
    if (col.has(name)) throw new DatasetError(`column "${name}" appears twice in the header`, { file, line: headerLine, value: header.join(',') });
    col.set(name, i);
  }
  for (const name of REQUIRED) {
    if (!col.has(name)) {
      throw new DatasetError(`missing column "${name}"; the header has columns: ${header.map((h) => JSON.stringify(h)).join(', ')}`, {
        file,
        line: headerLine,
        value: header.join(','),
      });
    }
  }
  const textCol = col.get('text')!;
  const labelCol = col.get('label')!;
  const augCol = col.get('aug_text');
  const extraColumns = header.filter((h) => h !== 'text' && h !== 'label' && h !== 'aug_text');

  const n = records.length - 1;
  if (n === 0) throw new DatasetError(`has a header but no rows`, { file, line: headerLine, value: header.join(',') });
  const text: string[] = new Array<string>(n);
  const augText: string[] = new Array<string>(n);
  const rawText: string[] = new Array<string>(n);
  const label = new Int32Array(n);
  const line = new Int32Array(n);
  let cleanedRows = 0;
  for (let i = 0; i < n; i++) {
    const rec = records[i + 1]!;
    const lineNo = lines.recordLineAt(ends[i]!);
    line[i] = lineNo;
    const raw = rec[textCol] ?? '';
    const t = cleanText(raw);
    if (t === '') throw new DatasetError(`text is empty${raw === '' ? '' : ' after cleaning'} (raw value ${quoteValue(raw)})`, { file, line: lineNo, value: raw });
    const rawAug = augCol === undefined ? '' : (rec[augCol] ?? '');
    const a = cleanText(rawAug);
    if (t !== raw || a !== rawAug) cleanedRows++;
    text[i] = t;
    augText[i] = a;
    rawText[i] = raw;
    label[i] = parseLabel(rec[labelCol] ?? '', spec, file, lineNo);
  }
  const sha256 = createHash('sha256').update(buf).digest('hex');
  return { split, file, sha256, numRows: n, text, augText, rawText, label, line, hasAugText: augCol !== undefined, extraColumns, cleanedRows };
}

function parseLabel(value: string, spec: DatasetSpec, file: string, line: number): number {
  const v = value.trim();
  if (!/^[+-]?\d+$/.test(v)) {
    throw new DatasetError(`label ${quoteValue(value)} is not an integer label id`, { file, line, value });
  }
  const id = Number.parseInt(v, 10);
  if (id < 0 || id >= spec.labels.length) {
    const names = spec.labels.map((l, i) => `${i}=${l}`).join(', ');
    throw new DatasetError(`label ${quoteValue(value)} is out of range for dataset ${spec.name}, whose ${spec.labels.length} labels are [${names}]`, {
      file,
      line,
      value,
    });
  }
  return id;
}

/** Turns a csv-parse error into a DatasetError naming the file and the line the bad record starts on. */
function wrapCsvError(e: unknown, file: string, lines: LineCounter, start: number): DatasetError {
  const err = e as { code?: unknown; message?: unknown; lines?: unknown };
  if (typeof err.code !== 'string' || (!err.code.startsWith('CSV_') && err.code !== 'INVALID_OPENING_QUOTE')) {
    return new DatasetError(`cannot parse CSV: ${String(err.message ?? e)}`, { file, cause: e });
  }
  const line = lines.recordLineAt(start);
  const value = lines.lineTextAt(start);
  const parserLine = typeof err.lines === 'number' && err.lines !== line ? ` (the parser stopped at line ${err.lines})` : '';
  return new DatasetError(`malformed CSV in the record starting here${parserLine}: ${String(err.message)} [${err.code}]; record: ${quoteValue(value)}`, {
    file,
    line,
    value,
    cause: e,
  });
}

/** The rows at indices `keep` (in that order), as a new SplitRows. */
export function selectRows(rows: SplitRows, keep: Int32Array): SplitRows {
  if (keep.length === rows.numRows && keep.every((k, i) => k === i)) return rows;
  const pick = <T>(a: readonly T[]): T[] => Array.from(keep, (k) => a[k]!);
  return {
    ...rows,
    numRows: keep.length,
    text: pick(rows.text),
    augText: pick(rows.augText),
    rawText: pick(rows.rawText),
    label: Int32Array.from(keep, (k) => rows.label[k]!),
    line: Int32Array.from(keep, (k) => rows.line[k]!),
  };
}
