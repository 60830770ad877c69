/**
 * formatReport: the preprocess report as a short text for the terminal: rows and class counts per
 * split, duplicates, conflicts, leaks, what was dropped, and where the dataset went. The full
 * detail (every duplicate group with its lines) is in <output>/preprocess_report.json.
 */

import type { PreprocessReport } from './preprocess.js';

/** At most this many duplicate/conflict/leak examples are printed per kind. */
const MAX_EXAMPLES = 3;

const clip = (s: string, n = 70): string => (s.length > n ? `${s.slice(0, n)}…` : s);

export function formatReport(r: PreprocessReport): string {
  const names = r.dataset.labels;
  const out: string[] = [`dataset ${r.dataset.name}: ${names.length} labels [${names.map((n, i) => `${i}=${n}`).join(', ')}]`, `input  ${r.inputDir}`];
  const nameW = Math.max(5, ...names.map((n) => n.length));
  out.push('', `${'split'.padEnd(6)} ${'rows'.padStart(6)}  ${names.map((n) => n.padStart(nameW)).join(' ')}   dup texts(extra rows)  conflicts(texts/rows)  dropped`);
  for (const s of Object.values(r.splits)) {
    const dropped = s.dropped.duplicates + s.dropped.conflicts;
    out.push(
      `${s.split.padEnd(6)} ${String(s.rowsWritten).padStart(6)}  ${s.classCounts.map((c) => String(c).padStart(nameW)).join(' ')}   ` +
        `${`${s.duplicates.texts}(${s.duplicates.extraRows})`.padEnd(21)}  ${`${s.conflicts.texts}/${s.conflicts.rows}`.padEnd(21)}  ${dropped}`,
    );
  }
  out.push('');
  for (const s of Object.values(r.splits)) {
    const notes: string[] = [];
    if (s.cleanedRows > 0) notes.push(`${s.cleanedRows} rows changed by text cleaning`);
    if (!s.hasAugText) notes.push('no aug_text column (stored as empty strings)');
    if (s.extraColumns.length > 0) notes.push(`ignored columns: ${s.extraColumns.join(', ')}`);
    if (notes.length > 0) out.push(`${s.split}: ${notes.join('; ')}`);
    for (const g of s.duplicates.groups.slice(0, MAX_EXAMPLES)) out.push(`  duplicate (${names[g.label]}) lines ${g.lines.join(',')}: "${clip(g.text)}"`);
    if (s.duplicates.groups.length > MAX_EXAMPLES) out.push(`  … ${s.duplicates.groups.length - MAX_EXAMPLES} more duplicate texts`);
    for (const g of s.conflicts.groups.slice(0, MAX_EXAMPLES)) {
      out.push(`  conflict lines ${g.lines.map((l, i) => `${l}=${names[g.labels[i]!]}`).join(',')}: "${clip(g.text)}"`);
    }
    if (s.conflicts.groups.length > MAX_EXAMPLES) out.push(`  … ${s.conflicts.groups.length - MAX_EXAMPLES} more conflicting texts`);
  }
  const n = r.leaks.texts;
  out.push(n === 0 ? 'no text appears in more than one split' : `${n} text${n === 1 ? ' appears' : 's appear'} in more than one split:`);
  for (const g of r.leaks.groups.slice(0, MAX_EXAMPLES)) out.push(`  ${g.occurrences.map((o) => `${o.split}:${o.line}`).join(', ')}: "${clip(g.text)}"`);
  if (r.labelTree) {
    out.push(`label tree: ${r.labelTree.edges.length} edges from ${r.labelTree.file}`);
    if (r.labelTree.labelsNotInTree.length > 0) out.push(`  labels not in the tree: ${r.labelTree.labelsNotInTree.join(', ')}`);
  }
  const anyDup = Object.values(r.splits).some((s) => s.duplicates.extraRows + s.conflicts.rows > 0);
  if (anyDup && !r.options.dropDuplicates && !r.options.dropConflicts) out.push('nothing dropped (pass --drop_duplicates / --drop_conflicts to drop)');
  const cut = Object.values(r.splits).reduce((a, s) => a + s.truncatedRows, 0);
  if (cut > 0) out.push(`${cut} row(s) cut to ${r.options.maxTextLength} characters (--long_texts=truncate): ${Object.values(r.splits).filter((s) => s.truncatedRows > 0).map((s) => `${s.split} ${s.truncatedRows}`).join(', ')}`);
  out.push(`output ${r.outputDir}`);
  return out.join('\n');
}
