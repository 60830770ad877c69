/**
 * The bound on text length at preprocess: a row whose cleaned text (or aug_text) is longer than
 * `maxTextLength` characters is refused (the default, every offender named by file:line) or cut
 * to the limit (`longTexts: 'truncate'`, counted in the report).
 *
 * Why: the trainer tokenizes and templates every text up front; one 50 MB text ran it out of
 * JavaScript heap after minutes with nothing printed. The default, 8192 characters, is ~18 times
 * the longest ED_easy_4 text (460) and far more than a classifier prompt needs.
 */
import type { SplitRows } from './csv.js';
import { DatasetError } from './errors.js';

/** Characters (UTF-16 code units, as String.length counts) a cleaned text may hold by default. */
export const DEFAULT_MAX_TEXT_LENGTH = 8192;

export type LongTextPolicy = 'refuse' | 'truncate';

/** Offenders listed in the message at most. */
const LISTED = 10;

export interface TextLimitResult {
  rows: SplitRows;
  /** Rows whose text or aug_text was cut (0 under 'refuse'). */
  truncatedRows: number;
}

/** Cuts at `max` code units without splitting a surrogate pair. */
function cut(s: string, max: number): string {
  let end = max;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return s.slice(0, end);
}

/** Applies the limit to one split; throws a DatasetError naming file:line of each offender under 'refuse'. */
export function limitTextLengths(rows: SplitRows, maxTextLength: number, policy: LongTextPolicy): TextLimitResult {
  if (!Number.isInteger(maxTextLength) || maxTextLength < 1) throw new RangeError(`maxTextLength must be a positive integer, got ${maxTextLength}`);
  const long: number[] = [];
  for (let i = 0; i < rows.numRows; i++) if (rows.text[i]!.length > maxTextLength || rows.augText[i]!.length > maxTextLength) long.push(i);
  if (long.length === 0) return { rows, truncatedRows: 0 };
  if (policy === 'refuse') {
    const where = long.slice(0, LISTED).map((i) => `${rows.file}:${rows.line[i]} (${Math.max(rows.text[i]!.length, rows.augText[i]!.length)} characters)`);
    const first = long[0]!;
    throw new DatasetError(
      `${long.length} row(s) hold a text longer than ${maxTextLength} characters: ${where.join(', ')}${long.length > LISTED ? `, and ${long.length - LISTED} more` : ''}. ` +
        'Fix those rows, raise the limit (--max_text_length), or cut them to it (--long_texts=truncate)',
      { file: rows.file, line: rows.line[first]!, value: rows.text[first]!.slice(0, 80) },
    );
  }
  const text = [...rows.text];
  const augText = [...rows.augText];
  for (const i of long) {
    if (text[i]!.length > maxTextLength) text[i] = cut(text[i]!, maxTextLength);
    if (augText[i]!.length > maxTextLength) augText[i] = cut(augText[i]!, maxTextLength);
  }
  return { rows: { ...rows, text, augText }, truncatedRows: long.length };
}
