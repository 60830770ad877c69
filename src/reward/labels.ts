/**
 * Matching an answer's text to one of the labels: normalisation and synonyms.
 *
 * Normalisation (applied to answers and labels alike): Unicode NFKC, lower case, runs of
 * whitespace to one space, and leading/trailing whitespace, punctuation and symbols stripped
 * (quotes, periods, `**bold**`, brackets, emoji). So `"Sad."`, ` JOYFUL `, `'"angry"'`,
 * `**afraid**` and `“sad”` all normalise to the bare word; inner characters (`self-conscious`)
 * stay.
 *
 * Synonyms map an alias to a canonical word (`happy -> joyful`). Two words match when their
 * canonical forms are equal, so the map works for any label spelling: with labels
 * [joy, sadness, ...] the answer "happy" finds "joy" (both are aliases of "joyful"). An answer
 * equal to a label always matches that label first. One level only: a canonical word is not looked
 * up again.
 */

/** alias -> canonical word. Keys and values are normalised when compiled. */
export type SynonymMap = Readonly<Record<string, string>>;

/** A small default: the common noun/adjective forms of the basic emotions. */
export const DEFAULT_SYNONYMS: SynonymMap = Object.freeze({
  joy: 'joyful',
  happy: 'joyful',
  happiness: 'joyful',
  joyous: 'joyful',
  sadness: 'sad',
  unhappy: 'sad',
  anger: 'angry',
  mad: 'angry',
  furious: 'angry',
  fear: 'afraid',
  fearful: 'afraid',
  scared: 'afraid',
  frightened: 'afraid',
  terrified: 'afraid',
  surprise: 'surprised',
  disgust: 'disgusted',
});

/** Merges synonym maps; for an alias in several maps the later map wins. */
export function mergeSynonyms(...maps: ReadonlyArray<SynonymMap | undefined>): SynonymMap {
  const out: Record<string, string> = {};
  for (const map of maps) {
    if (map === undefined) continue;
    for (const [alias, canonical] of Object.entries(map)) out[alias] = canonical;
  }
  return out;
}

const EDGE_JUNK = /^[\s\p{P}\p{S}]+|[\s\p{P}\p{S}]+$/gu;

/** See the file comment. Returns '' for text with nothing but whitespace, punctuation, symbols. */
export function normalizeAnswerText(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').replace(EDGE_JUNK, '');
}

export interface LabelOptions {
  /** Extra or replacement synonyms, merged over DEFAULT_SYNONYMS (unless defaultSynonyms is false). */
  synonyms?: SynonymMap;
  /** Start from DEFAULT_SYNONYMS (default true). */
  defaultSynonyms?: boolean;
}

export type LabelMatch =
  | { ok: true; index: number }
  | { ok: false; reason: 'empty' | 'unknown_label'; detail: string };

function snippet(text: string, max = 40): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

const compiledDefault = new Map<string, string>();
for (const [a, c] of Object.entries(DEFAULT_SYNONYMS)) compiledDefault.set(normalizeAnswerText(a), normalizeAnswerText(c));

function compileSynonyms(options: LabelOptions): ReadonlyMap<string, string> {
  const useDefault = options.defaultSynonyms ?? true;
  if (options.synonyms === undefined) return useDefault ? compiledDefault : new Map();
  const out = new Map(useDefault ? compiledDefault : []);
  for (const [alias, canonical] of Object.entries(options.synonyms)) {
    if (typeof canonical !== 'string') {
      throw new Error(`synonyms: "${alias}" maps to ${JSON.stringify(canonical)}, expected a word`);
    }
    out.set(normalizeAnswerText(alias), normalizeAnswerText(canonical));
  }
  return out;
}

/** A label list compiled for matching answers against it. */
export class LabelMatcher {
  readonly labels: readonly string[];
  private readonly exact = new Map<string, number>();
  private readonly canonical: string[] = [];
  private readonly synonyms: ReadonlyMap<string, string>;

  constructor(labels: readonly string[], options: LabelOptions = {}) {
    if (!Array.isArray(labels) || labels.length === 0) {
      throw new Error(`labels: expected a non-empty list of strings, got ${JSON.stringify(labels)}`);
    }
    this.labels = [...labels];
    this.synonyms = compileSynonyms(options);
    labels.forEach((label, index) => {
      const norm = typeof label === 'string' ? normalizeAnswerText(label) : '';
      if (norm === '') throw new Error(`labels: ${JSON.stringify(label)} is not a usable label (in ${JSON.stringify(labels)})`);
      const before = this.exact.get(norm);
      if (before !== undefined) {
        throw new Error(`labels: ${JSON.stringify(labels[before])} and ${JSON.stringify(label)} normalise to the same label`);
      }
      this.exact.set(norm, index);
      this.canonical.push(this.synonyms.get(norm) ?? norm);
    });
  }

  /** The label index for an answer's raw text. */
  match(raw: string): LabelMatch {
    const norm = normalizeAnswerText(raw);
    if (norm === '') return { ok: false, reason: 'empty', detail: `the answer ${snippet(raw)} holds no label` };
    const exact = this.exact.get(norm);
    if (exact !== undefined) return { ok: true, index: exact };
    const canon = this.synonyms.get(norm) ?? norm;
    const hits: number[] = [];
    this.canonical.forEach((c, i) => {
      if (c === canon) hits.push(i);
    });
    if (hits.length === 1 && hits[0] !== undefined) return { ok: true, index: hits[0] };
    if (hits.length > 1) {
      const names = hits.map((i) => JSON.stringify(this.labels[i])).join(', ');
      return { ok: false, reason: 'unknown_label', detail: `the answer ${snippet(raw)} is a synonym of several labels: ${names}` };
    }
    return {
      ok: false,
      reason: 'unknown_label',
      detail: `the answer ${snippet(raw)} is not one of ${JSON.stringify(this.labels)}`,
    };
  }
}
