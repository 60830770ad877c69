// Group advantages: every estimator worked out by hand on rewards [1, 0, 0, 1] with G = 2 and G = 4,
// all-equal groups (exact zeros, frac_reward_zero_std), and the error cases.
import { describe, expect, it } from 'vitest';
import {
  batchStdAdvantages,
  fracRewardZeroStd,
  groupAdvantages,
  groupStdAdvantages,
  leaveOneOutAdvantages,
  meanOnlyAdvantages,
  type AdvantageVariant,
} from '../../src/grpo/index.js';

const VARIANTS: AdvantageVariant[] = ['groupStd', 'leaveOneOut', 'meanOnly', 'batchStd'];
const R = [1, 0, 0, 1];

function expectClose(actual: Float32Array, expected: number[], digits = 6): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
}

describe('advantages on [1, 0, 0, 1], G = 2 (groups [1, 0] and [0, 1])', () => {
  it('groupStd', () => {
    // each group: mean 0.5; sample std = sqrt((0.5^2 + 0.5^2) / (2 - 1)) = sqrt(0.5) = 0.70710678
    // A = +-0.5 / (0.70710678 + 1e-4) = +-0.5 / 0.70720678 = +-0.70700680
    const a = 0.5 / (Math.SQRT1_2 + 1e-4);
    expect(a).toBeCloseTo(0.7070068, 6);
    expectClose(groupStdAdvantages(R, 2), [a, -a, -a, a]);
    expectClose(groupAdvantages(R, 2, 'groupStd'), [a, -a, -a, a]);
  });
  it('leaveOneOut', () => {
    // r_i minus the other member: 1 - 0 = 1, 0 - 1 = -1, ...
    expectClose(leaveOneOutAdvantages(R, 2), [1, -1, -1, 1]);
    expectClose(groupAdvantages(R, 2, 'leaveOneOut'), [1, -1, -1, 1]);
  });
  it('meanOnly', () => {
    // r - 0.5
    expectClose(meanOnlyAdvantages(R, 2), [0.5, -0.5, -0.5, 0.5]);
    expectClose(groupAdvantages(R, 2, 'meanOnly'), [0.5, -0.5, -0.5, 0.5]);
  });
  it('batchStd', () => {
    // group means 0.5; batch: mean 0.5, sum of squared deviations 4 * 0.25 = 1, sample var 1/3,
    // std = 0.57735027; A = +-0.5 / (0.57735027 + 1e-4) = +-0.86587543
    const a = 0.5 / (Math.sqrt(1 / 3) + 1e-4);
    expect(a).toBeCloseTo(0.8658754, 6);
    expectClose(batchStdAdvantages(R, 2), [a, -a, -a, a]);
    expectClose(groupAdvantages(R, 2, 'batchStd'), [a, -a, -a, a]);
  });
  it('custom eps reaches the std-scaled variants', () => {
    // eps = 0: exactly 0.5 / sqrt(0.5) = sqrt(0.5)
    expectClose(groupAdvantages(R, 2, 'groupStd', 0), [Math.SQRT1_2, -Math.SQRT1_2, -Math.SQRT1_2, Math.SQRT1_2]);
    // eps = 0.5 for batchStd: 0.5 / (0.57735027 + 0.5) = 0.46410162
    const a = 0.5 / (Math.sqrt(1 / 3) + 0.5);
    expectClose(groupAdvantages(R, 2, 'batchStd', 0.5), [a, -a, -a, a]);
  });
});

describe('advantages on [1, 0, 0, 1], G = 4 (one group)', () => {
  it('groupStd', () => {
    // mean 0.5, sample std sqrt(1/3) = 0.57735027, A = +-0.86587543 (same numbers as batchStd above)
    const a = 0.5 / (Math.sqrt(1 / 3) + 1e-4);
    expectClose(groupAdvantages(R, 4, 'groupStd'), [a, -a, -a, a]);
  });
  it('leaveOneOut', () => {
    // r=1: others [0, 0, 1] mean 1/3 -> 2/3;  r=0: others [1, 0, 1] mean 2/3 -> -2/3
    expectClose(groupAdvantages(R, 4, 'leaveOneOut'), [2 / 3, -2 / 3, -2 / 3, 2 / 3]);
  });
  it('meanOnly', () => {
    expectClose(groupAdvantages(R, 4, 'meanOnly'), [0.5, -0.5, -0.5, 0.5]);
  });
  it('batchStd equals groupStd when the batch is one group', () => {
    const a = 0.5 / (Math.sqrt(1 / 3) + 1e-4);
    expectClose(groupAdvantages(R, 4, 'batchStd'), [a, -a, -a, a]);
  });
  it('an uneven group: [3, 0, 0, 0] G = 4', () => {
    // mean 0.75; deviations [2.25, -0.75, -0.75, -0.75]; sum sq = 5.0625 + 3 * 0.5625 = 6.75;
    // sample var 6.75 / 3 = 2.25, std 1.5; groupStd = dev / 1.5001
    expectClose(groupAdvantages([3, 0, 0, 0], 4, 'groupStd'), [2.25 / 1.5001, -0.75 / 1.5001, -0.75 / 1.5001, -0.75 / 1.5001]);
    // leaveOneOut: 3 - 0 = 3; 0 - (3 + 0 + 0) / 3 = -1
    expectClose(groupAdvantages([3, 0, 0, 0], 4, 'leaveOneOut'), [3, -1, -1, -1]);
  });
});

describe('all-equal groups', () => {
  // 0.1 is not representable: a plain sum / n mean of [0.1, 0.1, 0.1] need not equal 0.1 exactly.
  const rewards = [0.1, 0.1, 0.1, 1, 0, 1];
  it.each(VARIANTS)('%s gives exact zeros (not NaN) for the all-equal group', (variant) => {
    const adv = groupAdvantages(rewards, 3, variant);
    for (let i = 0; i < 3; i++) expect(adv[i] === 0).toBe(true);
    for (let i = 3; i < 6; i++) expect(Number.isFinite(adv[i]) && adv[i] !== 0).toBe(true);
  });
  it.each(VARIANTS)('%s gives all zeros when the whole batch is equal', (variant) => {
    const adv = groupAdvantages([2, 2, 2, 2], 2, variant);
    expect(Array.from(adv).every((x) => x === 0)).toBe(true);
  });
  it('frac_reward_zero_std counts groups whose rewards are all equal', () => {
    expect(fracRewardZeroStd(rewards, 3)).toBe(0.5); // [0.1 x3] yes, [1, 0, 1] no
    expect(fracRewardZeroStd([1, 1, 0, 1, 0, 0, 1, 0], 2)).toBe(0.5); // [1,1] [0,1] [0,0] [1,0]
    expect(fracRewardZeroStd(R, 2)).toBe(0);
    expect(fracRewardZeroStd([5, 5, 5, 5], 4)).toBe(1);
    expect(fracRewardZeroStd([], 4)).toBe(0);
  });
  it('groupSize 1 (no group) gives zeros for the non-LOO variants', () => {
    for (const v of ['groupStd', 'meanOnly'] as const) {
      expect(Array.from(groupAdvantages([1, 0, 3], 1, v))).toEqual([0, 0, 0]);
    }
    // batchStd: r - r = 0 whatever the batch std is
    expect(Array.from(groupAdvantages([1, 0, 3], 1, 'batchStd'))).toEqual([0, 0, 0]);
  });
  it('accepts Float32Array and Float64Array rewards', () => {
    expectClose(groupAdvantages(new Float32Array(R), 2, 'meanOnly'), [0.5, -0.5, -0.5, 0.5]);
    expectClose(groupAdvantages(new Float64Array(R), 4, 'leaveOneOut'), [2 / 3, -2 / 3, -2 / 3, 2 / 3]);
  });
});

describe('advantage errors', () => {
  it.each(VARIANTS)('%s: B not divisible by G', (variant) => {
    expect(() => groupAdvantages([1, 0, 1, 0, 1], 2, variant)).toThrow(/rewards.length = 5 is not divisible by groupSize = 2/);
  });
  it.each(VARIANTS)('%s: NaN reward names its index and value', (variant) => {
    expect(() => groupAdvantages([1, 0, NaN, 1], 2, variant)).toThrow(/rewards\[2\] = NaN/);
    expect(() => groupAdvantages([1, Infinity, 0, 1], 2, variant)).toThrow(/rewards\[1\] = Infinity/);
  });
  it.each(VARIANTS)('%s: groupSize must be a positive integer', (variant) => {
    expect(() => groupAdvantages([1, 0], 0, variant)).toThrow(/groupSize must be a positive integer, got 0/);
    expect(() => groupAdvantages([1, 0], 1.5, variant)).toThrow(/groupSize must be a positive integer, got 1.5/);
  });
  it('leaveOneOut needs G >= 2', () => {
    expect(() => groupAdvantages([1, 0], 1, 'leaveOneOut')).toThrow(/groupSize must be >= 2/);
  });
  it('eps must be finite and >= 0', () => {
    expect(() => groupAdvantages(R, 2, 'groupStd', -1)).toThrow(/eps must be a finite number >= 0, got -1/);
    expect(() => groupAdvantages(R, 2, 'batchStd', NaN)).toThrow(/eps/);
  });
  it('unknown variant', () => {
    expect(() => groupAdvantages(R, 2, 'zscore' as AdvantageVariant)).toThrow(/variant must be one of .* got zscore/);
  });
  it('fracRewardZeroStd checks its inputs too', () => {
    expect(() => fracRewardZeroStd([1, 0, 1], 2)).toThrow(/not divisible/);
    expect(() => fracRewardZeroStd([1, NaN], 2)).toThrow(/rewards\[1\] = NaN/);
  });
});
