// Learning-rate schedules against values worked out by hand from transformers' lr_lambda formulas
// (src/transformers/optimization.py): warm-up s / max(1, W); linear max(0, (N - s) / max(1, N - W));
// cosine max(0, 0.5 (1 + cos(pi * 0.5 * 2 * (s - W) / max(1, N - W)))).
import { describe, expect, it } from 'vitest';
import { createLrSchedule, learningRateAt, lrMultiplier } from '../../src/train/schedule.js';

describe('lrMultiplier', () => {
  it('constant with warm-up W = 4', () => {
    // s = 0 -> 0/4, 1 -> 1/4, 3 -> 3/4, then 1 for ever
    expect([0, 1, 3, 4, 5, 1000].map((s) => lrMultiplier('constant', s, 4, 10))).toEqual([0, 0.25, 0.75, 1, 1, 1]);
  });
  it('constant without warm-up is 1 from step 0', () => {
    expect(lrMultiplier('constant', 0, 0, 0)).toBe(1);
  });
  it('linear W = 2, N = 10', () => {
    // warm-up 0, 1/2; decay (10 - s) / 8: s=2 -> 1, s=3 -> 7/8, s=6 -> 4/8, s=9 -> 1/8, s=10 -> 0, s=12 -> max(0, -2/8) = 0
    const got = [0, 1, 2, 3, 6, 9, 10, 12].map((s) => lrMultiplier('linear', s, 2, 10));
    expect(got).toEqual([0, 0.5, 1, 0.875, 0.5, 0.125, 0, 0]);
  });
  it('linear W = 0, N = 4', () => {
    expect([0, 1, 2, 3, 4].map((s) => lrMultiplier('linear', s, 0, 4))).toEqual([1, 0.75, 0.5, 0.25, 0]);
  });
  it('cosine W = 2, N = 10 (num_cycles 0.5)', () => {
    // progress p = (s - 2) / 8; factor 0.5 (1 + cos(pi p))
    // s=2: p=0 -> 1; s=4: p=1/4 -> 0.5 (1 + 0.70710678) = 0.85355339; s=6: p=1/2 -> 0.5;
    // s=8: p=3/4 -> 0.5 (1 - 0.70710678) = 0.14644661; s=10: p=1 -> 0
    const want = [0, 0.5, 1, 0.85355339, 0.5, 0.14644661, 0];
    const got = [0, 1, 2, 4, 6, 8, 10].map((s) => lrMultiplier('cosine', s, 2, 10));
    want.forEach((w, i) => expect(got[i]).toBeCloseTo(w, 8));
  });
  it('cosine past N rises again, as in transformers (max(0, .) only clips below 0)', () => {
    // s=14: p=12/8=1.5 -> 0.5 (1 + cos(1.5 pi)) = 0.5
    expect(lrMultiplier('cosine', 14, 2, 10)).toBeCloseTo(0.5, 12);
  });
  it('W = N: warm-up then max(1, 0) guards the division', () => {
    // linear at s = N = W: (N - s) / max(1, 0) = 0
    expect(lrMultiplier('linear', 3, 3, 3)).toBe(0);
    expect(lrMultiplier('cosine', 3, 3, 3)).toBe(1); // p = 0 / 1 = 0
  });
  it('rejects bad steps and types', () => {
    expect(() => lrMultiplier('linear', -1, 0, 4)).toThrow(/step must be an integer >= 0, got -1/);
    expect(() => lrMultiplier('linear', 1.5, 0, 4)).toThrow(/got 1.5/);
    expect(() => lrMultiplier('step' as never, 5, 0, 4)).toThrow(/unknown lr_scheduler_type "step"/);
  });
});

describe('learningRateAt: the lr of the update after `step` completed updates', () => {
  it('the first update of a warm-up run uses lr 0 (HF: LambdaLR starts at lambda(0))', () => {
    const cfg = { type: 'linear' as const, baseLr: 5e-7, warmupSteps: 32, totalSteps: 1788 };
    expect(learningRateAt(0, cfg)).toBe(0);
    // the 17th update (16 done): 5e-7 * 16 / 32 = 2.5e-7
    expect(learningRateAt(16, cfg)).toBeCloseTo(2.5e-7, 20);
    // 32 done: peak
    expect(learningRateAt(32, cfg)).toBeCloseTo(5e-7, 20);
    // 910 done: 5e-7 * (1788 - 910) / (1788 - 32) = 5e-7 * 878 / 1756 = 2.5e-7
    expect(learningRateAt(910, cfg)).toBeCloseTo(2.5e-7, 20);
  });
  it('createLrSchedule validates up front and is pure', () => {
    expect(() => createLrSchedule({ type: 'constant', baseLr: -1, warmupSteps: 0, totalSteps: 1 })).toThrow(/baseLr/);
    const f = createLrSchedule({ type: 'cosine', baseLr: 1e-3, warmupSteps: 2, totalSteps: 10 });
    expect(f(6)).toBeCloseTo(5e-4, 15);
    expect(f(6)).toBe(f(6));
  });
});
