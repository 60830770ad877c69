/**
 * The answer tag the model is asked to end with, `<answer>label</answer>`. The prompt template
 * and the reward parser both read the tag name from here.
 */

export const ANSWER_TAG = 'answer';
export const ANSWER_OPEN = `<${ANSWER_TAG}>`;
export const ANSWER_CLOSE = `</${ANSWER_TAG}>`;

/** The rationale-free answer text, e.g. for an SFT target: `formatAnswer('sad')` -> `<answer>sad</answer>`. */
export function formatAnswer(label: string): string {
  return `${ANSWER_OPEN}${label}${ANSWER_CLOSE}`;
}
