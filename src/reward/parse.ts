/**
 * Reading the emotion out of a completion: the `<answer>label</answer>` tag.
 *
 * Rules, decided here (the reference project only says "the last well-formed answer tag"):
 * - Tags are found case-insensitively and with whitespace allowed inside the brackets:
 *   `<answer>`, `<ANSWER>`, `< answer >`, `</ answer>` all count. Getting the tag's spelling
 *   exactly right is what `formatReward` judges; this parser judges which emotion was meant.
 * - A well-formed answer is an opening tag followed by a closing tag with no other opening tag in
 *   between. An opening tag followed by another opening tag is ignored (prose such as "I'll wrap it
 *   in <answer> tags: <answer>sad</answer>" parses); a closing tag with no opening tag is ignored.
 * - The LAST well-formed answer is the one that counts. It must normalise to a label (see
 *   labels.ts): blank -> 'empty', anything else that is not a label or synonym -> 'unknown_label'.
 * - 'several_different': earlier well-formed answers that name a DIFFERENT label make the
 *   completion invalid. Repeating the same label is fine, and so are earlier tags that hold no
 *   label at all (a model echoing the instruction "<answer>emotion</answer>" while reasoning is
 *   not hedging). Why invalid rather than "last wins": a completion that states two different
 *   emotions has not committed to one, and letting the last one count would reward listing
 *   guesses.
 * - 'unclosed_tag': the last opening tag is never closed, whether or not a well-formed answer
 *   came before it ("<answer>sad</answer> wait, <answer>ang"). Even then the completion is
 *   invalid: the model began another answer (or the token limit cut it off while writing one), so
 *   its final answer is unknown.
 * - 'none': no well-formed answer and no opening tag.
 */
import { ANSWER_TAG } from '../prompt/answer.js';
import { LabelMatcher, type LabelOptions } from './labels.js';

export type InvalidReason = 'none' | 'several_different' | 'unknown_label' | 'unclosed_tag' | 'empty';

/** Every invalid reason, in a fixed order (for tallies and logs). */
export const INVALID_REASONS: readonly InvalidReason[] = ['none', 'unclosed_tag', 'empty', 'unknown_label', 'several_different'];

export type ParsedAnswer =
  | {
      ok: true;
      /** The label as spelled in the label list. */
      label: string;
      /** Its index in the label list. */
      index: number;
      /** The text between the tags, as written. */
      raw: string;
    }
  | { ok: false; reason: InvalidReason; detail: string };

export type ParseOptions = LabelOptions;

/** A tag occurrence in the completion. */
interface Tag {
  close: boolean;
  /** Character offset of `<`. */
  start: number;
  /** Character offset just past `>`. */
  end: number;
}

const TAG_RE = new RegExp(`<\\s*(/?)\\s*${ANSWER_TAG}\\s*>`, 'giu');

/** All answer tags, lenient spelling, in order. */
function findTags(text: string): Tag[] {
  const tags: Tag[] = [];
  for (const m of text.matchAll(TAG_RE)) {
    const start = m.index ?? 0;
    tags.push({ close: m[1] === '/', start, end: start + m[0].length });
  }
  return tags;
}

function snippet(text: string, max = 40): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/** A parser for one label list; reuse it across completions that share the labels. */
export function createAnswerParser(labels: readonly string[], options: ParseOptions = {}): (text: string) => ParsedAnswer {
  const matcher = new LabelMatcher(labels, options);
  return (text) => parseWith(matcher, text);
}

export function parseAnswer(text: string, labels: readonly string[], options: ParseOptions = {}): ParsedAnswer {
  return parseWith(new LabelMatcher(labels, options), text);
}

function parseWith(matcher: LabelMatcher, text: string): ParsedAnswer {
  /** Text between each well-formed pair of tags, in order. */
  const pairs: Array<{ raw: string }> = [];
  let open: Tag | null = null;
  let strayCloses = 0;
  for (const tag of findTags(text)) {
    if (!tag.close) {
      open = tag; // an earlier unclosed opening tag is dropped
    } else if (open !== null) {
      pairs.push({ raw: text.slice(open.end, tag.start) });
      open = null;
    } else {
      strayCloses++;
    }
  }

  if (open !== null) {
    const after = text.slice(open.end);
    const where = pairs.length > 0 ? 'after the last complete answer' : 'and there is no complete answer';
    return {
      ok: false,
      reason: 'unclosed_tag',
      detail: `<${ANSWER_TAG}> at character ${open.start} is never closed (${where}); it is followed by ${snippet(after)}`,
    };
  }
  const last = pairs.at(-1);
  if (last === undefined) {
    const stray = strayCloses > 0 ? ` (${strayCloses} closing tag(s) without an opening tag)` : '';
    return { ok: false, reason: 'none', detail: `no <${ANSWER_TAG}>...</${ANSWER_TAG}> in the completion${stray}` };
  }

  const final = matcher.match(last.raw);
  if (!final.ok) return final;

  const named: string[] = [];
  for (const pair of pairs) {
    const m = matcher.match(pair.raw);
    if (m.ok) named.push(matcher.labels[m.index] ?? '');
  }
  const finalLabel = matcher.labels[final.index] ?? '';
  if (named.some((label) => label !== finalLabel)) {
    return {
      ok: false,
      reason: 'several_different',
      detail: `the answers name different labels: ${named.map((l) => JSON.stringify(l)).join(', ')}`,
    };
  }
  return { ok: true, label: finalLabel, index: final.index, raw: last.raw };
}
