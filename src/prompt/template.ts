/**
 * The user-turn wording that asks for brief reasoning and then one tagged emotion.
 *
 * Modelled on the structure of the reference project's (RREC-Emotion) prompt: what to do, the
 * two-part task (2-3 sentences of cues and context, then the tagged answer), the label list, a
 * reminder that the tag comes last, then the text. The words are our own.
 *
 * Placeholders, replaced in one pass (so a `{text}` inside the text stays as written):
 *   {labels}        the labels joined by ", ", in the order given
 *   {text}          the text to classify, verbatim
 *   {answer_open}   `<answer>`
 *   {answer_close}  `</answer>`
 * Any other `{...}` is left alone.
 */
import { ANSWER_CLOSE, ANSWER_OPEN } from './answer.js';

export const DEFAULT_PROMPT_TEMPLATE = [
  'Read the text below and reason, step by step, about the emotion it conveys. Weigh the cues in its ' +
    'wording and the situation they point to, then choose the emotion from the list that fits it best.',
  '',
  'What to do:',
  '1) Explain the cues and context in 2-3 short sentences.',
  '2) Give the final emotion between {answer_open} and {answer_close}.',
  '',
  'Pick exactly one emotion from this list: {labels}',
  '',
  'IMPORTANT: Keep your reasoning brief, and make the closing {answer_open}emotion{answer_close} tag ' +
    'the very last thing you write.',
  '',
  'Text: {text}',
].join('\n');

const PLACEHOLDER = /\{(labels|text|answer_open|answer_close)\}/g;

/** Checks a label list: non-empty, each a non-blank string, no two equal ignoring case. */
export function validateLabels(labels: readonly string[]): void {
  if (!Array.isArray(labels) || labels.length === 0) {
    throw new Error(`labels: expected a non-empty list of strings, got ${JSON.stringify(labels)}`);
  }
  const seen = new Map<string, string>();
  for (const label of labels) {
    if (typeof label !== 'string' || label.trim() === '') {
      throw new Error(`labels: every label must be a non-blank string, got ${JSON.stringify(label)} in ${JSON.stringify(labels)}`);
    }
    const key = label.trim().toLowerCase();
    const before = seen.get(key);
    if (before !== undefined) {
      throw new Error(`labels: ${JSON.stringify(before)} and ${JSON.stringify(label)} are the same label`);
    }
    seen.set(key, label);
  }
}

/** Fills a prompt template. Throws when the template has no `{text}`, which would drop the input. */
export function fillPromptTemplate(template: string, values: { text: string; labels: readonly string[] }): string {
  if (!template.includes('{text}')) {
    throw new Error(`prompt template has no {text} placeholder: ${JSON.stringify(template.slice(0, 120))}`);
  }
  validateLabels(values.labels);
  const fill: Record<string, string> = {
    labels: values.labels.join(', '),
    text: values.text,
    answer_open: ANSWER_OPEN,
    answer_close: ANSWER_CLOSE,
  };
  return template.replace(PLACEHOLDER, (_, name: string) => fill[name] ?? '');
}
