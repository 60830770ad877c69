/**
 * readLabelTree: label_tree.tsv, the optional label hierarchy (`child<TAB>parent` per line, no
 * header), e.g. `joyful<TAB>positive`, `positive<TAB>root`.
 *
 * The edges are kept as read (order and all) and stored with the saved dataset; nothing here
 * interprets the hierarchy. A file that is absent gives `null`, a present but malformed one is an
 * error, since a half-read tree would be worse than none.
 */

import { readFile } from 'node:fs/promises';
import { DatasetError, quoteValue } from './errors.js';

export interface LabelEdge {
  child: string;
  parent: string;
}

export async function readLabelTree(file: string): Promise<LabelEdge[] | null> {
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DatasetError(`cannot read label tree (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file, cause: e });
  }
  return parseLabelTree(content.replace(/^\uFEFF/, ''), file);
}

/** Parses label_tree.tsv content; blank lines are skipped, every other line must be two non-empty fields. */
export function parseLabelTree(content: string, file: string): LabelEdge[] {
  const edges: LabelEdge[] = [];
  const lines = content.split('\n');
  for (const [i, rawLine] of lines.entries()) {
    const l = rawLine.replace(/\r$/, '');
    if (l.trim() === '') continue;
    const fields = l.split('\t');
    const child = fields[0]?.trim() ?? '';
    const parent = fields[1]?.trim() ?? '';
    if (fields.length !== 2 || child === '' || parent === '') {
      throw new DatasetError(
        `bad label tree line ${quoteValue(l)}: expected "child<TAB>parent" (two non-empty fields separated by one tab), got ${fields.length} field(s)`,
        { file, line: i + 1, value: l },
      );
    }
    edges.push({ child, parent });
  }
  return edges;
}
