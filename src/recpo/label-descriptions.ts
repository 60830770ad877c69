/**
 * One-line label descriptions for RecPO's label embeddings: built-in ones for ED_easy_4's labels
 * (and a few other EmpatheticDialogues emotions), or a `label_descriptions` JSON file mapping
 * each label name to its line: { "sad": "feeling sorrow or unhappiness", ... }.
 */
import { readFile } from 'node:fs/promises';

/** Built-in one-liners, by label name (EmpatheticDialogues emotions). */
export const BUILTIN_LABEL_DESCRIPTIONS: Readonly<Record<string, string>> = Object.freeze({
  sad: 'feeling sorrow, grief or unhappiness about a loss or a disappointment',
  joyful: 'feeling great happiness and delight about something good',
  angry: 'feeling strong displeasure or rage at someone or something',
  afraid: 'feeling fear or dread of danger or of something bad about to happen',
});

/**
 * Descriptions of `labels`, in label order: from `file` when given (every label must be in it),
 * else the built-in ones; a label with neither is an error naming it.
 */
export async function labelDescriptions(labels: readonly string[], file: string | null): Promise<string[]> {
  if (file !== null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'));
    } catch (e) {
      throw new Error(`label_descriptions: cannot read ${file} as JSON: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error(`label_descriptions: ${file} must hold a JSON object mapping label names to descriptions, got ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
    const map = parsed as Record<string, unknown>;
    return labels.map((l) => {
      const d = map[l];
      if (typeof d !== 'string' || d.trim() === '')
        throw new Error(`label_descriptions: ${file} field "${l}" must be a non-empty string, got ${d === undefined ? 'nothing (the label is missing)' : JSON.stringify(d)}`);
      return d.trim();
    });
  }
  return labels.map((l) => {
    const d = BUILTIN_LABEL_DESCRIPTIONS[l];
    if (d === undefined)
      throw new Error(`label_descriptions: no built-in description for label "${l}" (built in: ${Object.keys(BUILTIN_LABEL_DESCRIPTIONS).join(', ')}); give a label_descriptions JSON file`);
    return d;
  });
}
