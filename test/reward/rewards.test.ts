/** Reward functions, their weighted sum and the invalid-answer tally, checked against sums done by hand. */
import { describe, expect, it } from 'vitest';
import {
  combineRewards,
  correctnessReward,
  formatReward,
  goldIndex,
  isWellFormatted,
  makeCorrectnessReward,
  makeFormatReward,
  parseAnswer,
  RewardTally,
  scoreCompletions,
  type RewardExample,
} from '../../src/reward/index.js';

const LABELS = ['joyful', 'sad', 'angry', 'afraid'];
const SAD: RewardExample = { label: 1, labels: LABELS };
const SAD_BY_NAME: RewardExample = { label: 'Sad', labels: LABELS };

const GOOD = 'The writer lost their job and feels hopeless. <answer>sad</answer>';
const WRONG = 'The writer sounds upset at someone. <answer>angry</answer>';
const BARE = '<answer>sad</answer>';
const TWO = 'Hmm. <answer>sad</answer> or <answer>angry</answer>';

describe('correctnessReward', () => {
  it('is 1 for the gold label, by index or by name, else 0', () => {
    expect(correctnessReward(SAD, GOOD)).toBe(1);
    expect(correctnessReward(SAD_BY_NAME, GOOD)).toBe(1);
    expect(correctnessReward(SAD, 'Unhappy. <answer>Sadness</answer>')).toBe(1);
    expect(correctnessReward(SAD, WRONG)).toBe(0);
    expect(correctnessReward(SAD, BARE)).toBe(1);
    expect(correctnessReward(SAD, TWO)).toBe(0);
    expect(correctnessReward(SAD, 'no answer')).toBe(0);
    expect(correctnessReward(SAD, 'cut off <answer>sa')).toBe(0);
  });

  it('uses its own synonyms when made with makeCorrectnessReward', () => {
    const reward = makeCorrectnessReward({ synonyms: { blue: 'sad' } });
    expect(reward(SAD, 'x <answer>blue</answer>')).toBe(1);
    expect(correctnessReward(SAD, 'x <answer>blue</answer>')).toBe(0);
  });

  it('throws on a gold label that is not in the list (a data error)', () => {
    expect(() => correctnessReward({ label: 4, labels: LABELS }, GOOD)).toThrow(/index 4 is out of range/);
    expect(() => correctnessReward({ label: -1, labels: LABELS }, GOOD)).toThrow(/out of range/);
    expect(() => correctnessReward({ label: 'bored', labels: LABELS }, GOOD)).toThrow(/"bored" is not one of/);
    expect(goldIndex({ label: ' ANGRY ', labels: LABELS })).toBe(2);
  });
});

describe('formatReward', () => {
  const cases: Array<[string, number]> = [
    [GOOD, 1],
    [`${GOOD}\n  `, 1],
    ['Cues: a lost job.\n<answer>bored</answer>', 1], // format only; the label is correctness's business
    [BARE, 0], // no reasoning
    ['   \n<answer>sad</answer>', 0],
    ['Because. <answer>sad</answer> Done.', 0], // not last
    ['Because. <ANSWER>sad</ANSWER>', 0], // exact spelling only
    ['Because. < answer>sad</answer>', 0],
    ['Because. <answer>sad</answer><answer>sad</answer>', 0], // two answers
    ['Because. <answer> </answer>', 0], // empty
    ['Use <answer> tags. <answer>sad</answer>', 0], // a stray tag
    ['Because. <answer>sad', 0], // unclosed
    ['No tags at all.', 0],
  ];
  it.each(cases)('%j -> %d', (completion, want) => {
    expect(formatReward(SAD, completion)).toBe(want);
    expect(isWellFormatted(completion)).toBe(want === 1);
  });

  it('can ask for longer reasoning', () => {
    const reward = makeFormatReward({ minReasoningWords: 3 });
    expect(reward(SAD, 'Lost job. <answer>sad</answer>')).toBe(0);
    expect(reward(SAD, 'Lost my job. <answer>sad</answer>')).toBe(1);
  });
});

describe('combineRewards', () => {
  const reward = combineRewards([
    { name: 'correctness', fn: correctnessReward, weight: 1 },
    { name: 'format', fn: formatReward, weight: 0.5 },
  ]);

  it('sums weighted parts (by hand: 1*c + 0.5*f)', () => {
    expect(reward(SAD, GOOD)).toEqual({ total: 1.5, parts: { correctness: 1, format: 1 }, parsed: parseAnswer(GOOD, LABELS) });
    expect(reward(SAD, WRONG)).toMatchObject({ total: 0.5, parts: { correctness: 0, format: 1 } });
    expect(reward(SAD, BARE)).toMatchObject({ total: 1, parts: { correctness: 1, format: 0 } });
    expect(reward(SAD, TWO)).toMatchObject({ total: 0, parts: { correctness: 0, format: 0 }, parsed: { ok: false, reason: 'several_different' } });
    expect(reward.names).toEqual(['correctness', 'format']);
    expect(reward.weights).toEqual([1, 0.5]);
  });

  it('defaults weights to 1 and allows negative weights', () => {
    const r = combineRewards([
      { name: 'c', fn: correctnessReward },
      { name: 'len', fn: (_e, text) => text.length / 100, weight: -0.25 },
    ]);
    // GOOD has 66 characters: 1 - 0.25 * 0.66 = 0.835
    expect(GOOD.length).toBe(66);
    expect(r(SAD, GOOD).total).toBeCloseTo(0.835, 12);
  });

  it('refuses bad definitions and non-finite reward values', () => {
    expect(() => combineRewards([])).toThrow(/no reward functions/);
    expect(() => combineRewards([{ name: 'a', fn: formatReward }, { name: 'a', fn: formatReward }])).toThrow(/"a" is used twice/);
    expect(() => combineRewards([{ name: 'a', fn: formatReward, weight: Number.NaN }])).toThrow(/weight NaN/);
    const nan = combineRewards([{ name: 'broken', fn: () => Number.NaN }]);
    expect(() => nan(SAD, GOOD)).toThrow(/reward "broken" returned NaN/);
  });
});

describe('RewardTally and scoreCompletions', () => {
  const completions = [GOOD, WRONG, BARE, TWO, 'nothing', 'cut <answer>sa', 'x <answer></answer>', 'x <answer>meh</answer>', GOOD];

  it('counts valid answers and each invalid reason', () => {
    const tally = new RewardTally();
    for (const c of completions) tally.add(parseAnswer(c, LABELS));
    expect(tally.toJSON()).toEqual({
      total: 9,
      valid: 4,
      invalid: 5,
      invalidRate: 5 / 9,
      reasons: { none: 1, unclosed_tag: 1, empty: 1, unknown_label: 1, several_different: 1 },
    });
    const other = new RewardTally();
    other.add(parseAnswer('nothing', LABELS));
    tally.merge(other);
    expect(tally.reasons.none).toBe(2);
    expect(tally.total).toBe(10);
    tally.reset();
    expect(tally.toJSON()).toMatchObject({ total: 0, invalid: 0, invalidRate: 0 });
  });

  it('scores a batch into typed arrays', () => {
    const reward = combineRewards([
      { name: 'correctness', fn: correctnessReward, weight: 2 },
      { name: 'format', fn: formatReward, weight: 1 },
    ]);
    const scored = scoreCompletions(reward, completions.map((completion) => ({ example: SAD, completion })));
    // by hand: correctness [1,0,1,0,0,0,0,0,1], format [1,1,0,0,0,0,0,1,1]
    expect(Array.from(scored.parts['correctness'] ?? [])).toEqual([1, 0, 1, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(scored.parts['format'] ?? [])).toEqual([1, 1, 0, 0, 0, 0, 0, 1, 1]);
    expect(Array.from(scored.total)).toEqual([3, 1, 2, 0, 0, 0, 0, 1, 3]);
    expect(scored.tally.valid).toBe(4);
    expect(scored.parsed).toHaveLength(9);
  });
});
