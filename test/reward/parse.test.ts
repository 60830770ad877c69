/** parseAnswer on hand-written completions: every invalid reason and every normalisation. */
import { describe, expect, it } from 'vitest';
import {
  createAnswerParser,
  DEFAULT_SYNONYMS,
  mergeSynonyms,
  normalizeAnswerText,
  parseAnswer,
  type InvalidReason,
} from '../../src/reward/index.js';

const LABELS = ['joyful', 'sad', 'angry', 'afraid', 'surprised', 'love'];

/** [completion, expected label (valid) or reason (invalid)] */
const CASES: Array<[string, { label: string; index: number } | InvalidReason]> = [
  // Plain and normalised answers.
  ['It sounds upbeat. <answer>joyful</answer>', { label: 'joyful', index: 0 }],
  ['<answer>Sad.</answer>', { label: 'sad', index: 1 }],
  ['<answer> JOYFUL </answer>', { label: 'joyful', index: 0 }],
  ['<answer>"angry"</answer>', { label: 'angry', index: 2 }],
  ["<answer>'afraid'</answer>", { label: 'afraid', index: 3 }],
  ['<answer>**Sad**</answer>', { label: 'sad', index: 1 }],
  ['<answer>“love”</answer>', { label: 'love', index: 5 }],
  ['<answer>\n  surprised!\n</answer>', { label: 'surprised', index: 4 }],
  ['<answer>ｓａｄ</answer>', { label: 'sad', index: 1 }], // full-width letters, NFKC
  ['<answer>(love)</answer>\n', { label: 'love', index: 5 }],
  // Lenient tag spelling.
  ['<ANSWER>sad</ANSWER>', { label: 'sad', index: 1 }],
  ['< answer >sad</ answer >', { label: 'sad', index: 1 }],
  ['<Answer>angry< /Answer>', { label: 'angry', index: 2 }],
  // Synonyms.
  ['<answer>happy</answer>', { label: 'joyful', index: 0 }],
  ['<answer>Sadness</answer>', { label: 'sad', index: 1 }],
  ['<answer>furious</answer>', { label: 'angry', index: 2 }],
  ['<answer>scared</answer>', { label: 'afraid', index: 3 }],
  ['<answer>joy 😊</answer>', { label: 'joyful', index: 0 }],
  // Several tags.
  ['<answer>sad</answer> ... so, finally: <answer>SAD</answer>', { label: 'sad', index: 1 }],
  ['<answer>sad</answer><answer>unhappy</answer>', { label: 'sad', index: 1 }],
  ['The format is <answer>emotion</answer>. Here the cues are hostile. <answer>angry</answer>', { label: 'angry', index: 2 }],
  ['Wrap it in <answer> tags: <answer>love</answer>', { label: 'love', index: 5 }],
  ['<answer>sad<answer>angry</answer>', { label: 'angry', index: 2 }],
  ['<answer>sad</answer></answer>', { label: 'sad', index: 1 }],
  ['<answer>sad</answer> or maybe <answer>angry</answer>', 'several_different'],
  ['<answer>joy</answer> hmm <answer>love</answer> no: <answer>joyful</answer>', 'several_different'],
  // No answer.
  ['No tags here, just sad.', 'none'],
  ['', 'none'],
  ['sad</answer>', 'none'],
  ['<answr>sad</answr>', 'none'],
  // Unclosed.
  ['I think it is <answer>sa', 'unclosed_tag'],
  ['<answer>sad</answer> wait, actually <answer>ang', 'unclosed_tag'],
  // Empty.
  ['<answer></answer>', 'empty'],
  ['<answer> ... </answer>', 'empty'],
  ['<answer>sad</answer> then <answer> </answer>', 'empty'],
  // Unknown label.
  ['<answer>bored</answer>', 'unknown_label'],
  ['<answer>I feel sad</answer>', 'unknown_label'],
  ['<answer>angry</answer> then <answer>bored</answer>', 'unknown_label'],
];

describe('parseAnswer table', () => {
  it('has at least 25 cases covering every reason', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25);
    const reasons = new Set(CASES.map(([, want]) => want).filter((w): w is InvalidReason => typeof w === 'string'));
    expect([...reasons].sort()).toEqual(['empty', 'none', 'several_different', 'unclosed_tag', 'unknown_label']);
  });

  it.each(CASES)('%j', (completion, want) => {
    const got = parseAnswer(completion, LABELS);
    if (typeof want === 'string') {
      expect(got).toMatchObject({ ok: false, reason: want });
      if (!got.ok) expect(got.detail.length).toBeGreaterThan(0);
    } else {
      expect(got).toMatchObject({ ok: true, ...want });
    }
  });
});

describe('parseAnswer details', () => {
  it('returns the raw text between the last tags', () => {
    expect(parseAnswer('x <answer>sad</answer> y <answer> Sad. </answer>', LABELS)).toEqual({ ok: true, label: 'sad', index: 1, raw: ' Sad. ' });
  });

  it('explains each failure', () => {
    expect(parseAnswer('<answer>sad</answer> <answer>angry</answer>', LABELS)).toEqual({
      ok: false,
      reason: 'several_different',
      detail: 'the answers name different labels: "sad", "angry"',
    });
    expect(parseAnswer('<answer>bored</answer>', LABELS)).toMatchObject({ detail: expect.stringContaining('"bored" is not one of') });
    expect(parseAnswer('ab <answer>ang', LABELS)).toMatchObject({ detail: expect.stringContaining('at character 3 is never closed') });
    expect(parseAnswer('sad</answer>', LABELS)).toMatchObject({ detail: expect.stringContaining('1 closing tag(s) without an opening tag') });
  });

  it('keeps label spelling and order from the list', () => {
    expect(parseAnswer('<answer>sad</answer>', ['Happy', 'Sad'])).toMatchObject({ ok: true, label: 'Sad', index: 1 });
  });

  it('createAnswerParser gives the same results', () => {
    const parse = createAnswerParser(LABELS);
    for (const [completion] of CASES) expect(parse(completion)).toEqual(parseAnswer(completion, LABELS));
  });
});

describe('synonyms', () => {
  it('finds a label spelled differently in the dataset (both sides are mapped)', () => {
    const dair = ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'];
    expect(parseAnswer('<answer>happy</answer>', dair)).toMatchObject({ ok: true, label: 'joy', index: 1 });
    expect(parseAnswer('<answer>joyful</answer>', dair)).toMatchObject({ ok: true, label: 'joy' });
    expect(parseAnswer('<answer>sad</answer>', dair)).toMatchObject({ ok: true, label: 'sadness' });
    expect(parseAnswer('<answer>afraid</answer>', dair)).toMatchObject({ ok: true, label: 'fear' });
    expect(parseAnswer('<answer>surprised</answer>', dair)).toMatchObject({ ok: true, label: 'surprise' });
  });

  it('prefers an exact label, and refuses a synonym of two labels', () => {
    const labels = ['joy', 'happy', 'sad'];
    expect(parseAnswer('<answer>happy</answer>', labels)).toMatchObject({ ok: true, label: 'happy' });
    expect(parseAnswer('<answer>joyful</answer>', labels)).toMatchObject({
      ok: false,
      reason: 'unknown_label',
      detail: expect.stringContaining('synonym of several labels: "joy", "happy"'),
    });
  });

  it('merges custom synonyms over the defaults, or replaces them', () => {
    expect(parseAnswer('<answer>glad</answer>', LABELS)).toMatchObject({ ok: false, reason: 'unknown_label' });
    expect(parseAnswer('<answer>glad</answer>', LABELS, { synonyms: { glad: 'joyful' } })).toMatchObject({ ok: true, label: 'joyful' });
    expect(parseAnswer('<answer>happy</answer>', LABELS, { synonyms: { glad: 'joyful' } })).toMatchObject({ ok: true, label: 'joyful' });
    expect(parseAnswer('<answer>happy</answer>', LABELS, { defaultSynonyms: false })).toMatchObject({ ok: false, reason: 'unknown_label' });
    expect(parseAnswer('<answer>mad</answer>', LABELS, { synonyms: { mad: 'crazy' } })).toMatchObject({ ok: false, reason: 'unknown_label' });
    expect(parseAnswer('<answer>Glad!</answer>', LABELS, { synonyms: { ' GLAD ': 'Joyful.' } })).toMatchObject({ ok: true, label: 'joyful' });
  });

  it('mergeSynonyms: later maps win', () => {
    expect(mergeSynonyms(DEFAULT_SYNONYMS, { mad: 'crazy' }, undefined, { glad: 'joyful' })).toMatchObject({ mad: 'crazy', glad: 'joyful', happy: 'joyful' });
  });
});

describe('normalisation and labels', () => {
  it('normalizeAnswerText', () => {
    expect(normalizeAnswerText('  "Sad." ')).toBe('sad');
    expect(normalizeAnswerText('Self-Conscious')).toBe('self-conscious');
    expect(normalizeAnswerText('no \n  emotion')).toBe('no emotion');
    expect(normalizeAnswerText('?!…')).toBe('');
  });

  it('refuses label lists it cannot match against', () => {
    expect(() => parseAnswer('x', [])).toThrow(/non-empty list/);
    expect(() => parseAnswer('x', ['sad', 'Sad.'])).toThrow(/"sad" and "Sad\." normalise to the same label/);
    expect(() => parseAnswer('x', ['sad', '...'])).toThrow(/not a usable label/);
  });
});
