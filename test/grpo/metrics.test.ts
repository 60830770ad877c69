// Metrics worked out by hand: rollout statistics (rewards, completion lengths) and the per-token
// loss metrics (kl, clip ratios) over loss tokens.
import { describe, expect, it } from 'vitest';
import { countLossTokens, grpoLoss, rolloutMetrics, type GrpoBatch } from '../../src/grpo/index.js';

describe('rolloutMetrics', () => {
  // 4 completions, G = 2, rewards [1, 0 | 0.5, 0.5]; token layout lengths 4, 2, 4, 2 with mask
  // zeros (padding) making the completion lengths [3, 2, 4, 1]; sequence 1 truncated.
  const input = {
    rewards: [1, 0, 0.5, 0.5],
    groupSize: 2,
    offsets: new Int32Array([0, 4, 6, 10, 12]),
    mask: new Uint8Array([1, 1, 1, 0, /**/ 1, 1, /**/ 1, 1, 1, 1, /**/ 1, 0]),
    truncated: new Uint8Array([0, 1, 0, 0]),
  };
  it('by hand', () => {
    const m = rolloutMetrics(input);
    // mean (1 + 0 + 0.5 + 0.5) / 4 = 0.5; deviations [0.5, -0.5, 0, 0], sum sq 0.5,
    // sample var 0.5 / 3 = 1/6, std = 0.40824829
    expect(m.reward).toBeCloseTo(0.5, 12);
    expect(m.reward_std).toBeCloseTo(Math.sqrt(1 / 6), 12);
    expect(m.reward_std).toBeCloseTo(0.40824829, 8);
    // group [0.5, 0.5] is flat, [1, 0] is not: 1 of 2
    expect(m.frac_reward_zero_std).toBe(0.5);
    // lengths [3, 2, 4, 1]: mean 10 / 4 = 2.5, min 1, max 4; 1 of 4 truncated
    expect(m['completions/mean_length']).toBe(2.5);
    expect(m['completions/min_length']).toBe(1);
    expect(m['completions/max_length']).toBe(4);
    expect(m['completions/clipped_ratio']).toBe(0.25);
    // terminated (sequences 0, 2, 3): lengths [3, 4, 1], mean 8 / 3
    expect(m['completions/mean_terminated_length']).toBeCloseTo(8 / 3, 12);
    expect(m['completions/min_terminated_length']).toBe(1);
    expect(m['completions/max_terminated_length']).toBe(4);
  });
  it('all truncated: terminated stats are 0; one completion: reward_std 0', () => {
    const m = rolloutMetrics({
      rewards: [2],
      groupSize: 1,
      offsets: new Int32Array([0, 3]),
      mask: new Uint8Array([1, 1, 1]),
      truncated: new Uint8Array([1]),
    });
    expect(m.reward).toBe(2);
    expect(m.reward_std).toBe(0);
    expect(m.frac_reward_zero_std).toBe(1);
    expect(m['completions/clipped_ratio']).toBe(1);
    expect(m['completions/mean_terminated_length']).toBe(0);
    expect(m['completions/max_terminated_length']).toBe(0);
  });
  it('errors', () => {
    expect(() => rolloutMetrics({ ...input, rewards: [1, 0, 1] })).toThrow(/rewards.length = 3, expected B = 4/);
    expect(() => rolloutMetrics({ ...input, rewards: [1, 0, NaN, 1] })).toThrow(/rewards\[2\] = NaN/);
    expect(() => rolloutMetrics({ ...input, groupSize: 3 })).toThrow(/not divisible/);
  });
});

describe('countLossTokens', () => {
  const layout = {
    offsets: new Int32Array([0, 3, 5, 6]),
    mask: new Uint8Array([1, 0, 1, 1, 1, 1]),
    truncated: new Uint8Array([0, 1, 0]),
  };
  it('counts mask != 0, minus truncated sequences under maskTruncated', () => {
    expect(countLossTokens(layout, false)).toBe(5); // 2 + 2 + 1
    expect(countLossTokens(layout, true)).toBe(3); // 2 + 0 + 1
  });
});

describe('loss metrics by hand', () => {
  // 2 sequences: [3 tokens | 3 tokens], A = [+1, -1], epsilonLow 0.2, epsilonHigh 0.2;
  // oldLogp = 0, logp = ln(ratio): ratios [1.5, 1.0, 0.5 | 0.5, 0.5, 1.5]; token 2 masked;
  // refLogp - logp = d with d = [0, ln 2, (masked), 0, ln 2, -ln 2]
  //   k3 = e^d - d - 1: [0, 1 - ln 2, -, 0, 1 - ln 2, 0.5 + ln 2 - 1 = ln 2 - 0.5]
  //   kl mean over 5 loss tokens = (2 (1 - ln 2) + ln 2 - 0.5) / 5 = (1.5 - ln 2) / 5 = 0.16137056
  //   high (r > 1.2, A > 0): token 0 -> 1 of 5; low (r < 0.8, A < 0): tokens 3, 4 -> 2 of 5
  //   token 2 would be low-side-but-A>0 and is masked anyway; token 5 (r 1.5, A < 0) is not clipped
  //   per sequence: seq 0 high 1/2, low 0;  seq 1 high 0, low 2/3
  const ratios = [1.5, 1.0, 0.5, 0.5, 0.5, 1.5];
  const d = [0, Math.LN2, 0, 0, Math.LN2, -Math.LN2];
  const logp = Float64Array.from(ratios, Math.log);
  const batch: GrpoBatch = {
    offsets: new Int32Array([0, 3, 6]),
    logp,
    oldLogp: new Float64Array(6),
    refLogp: Float64Array.from(logp, (x, t) => x + d[t]!),
    mask: new Uint8Array([1, 1, 0, 1, 1, 1]),
    advantages: new Float64Array([1, -1]),
    truncated: new Uint8Array([0, 0]),
  };
  const config = { beta: 0.1, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'bnpo' as const, maskTruncated: false };
  it('kl and clip ratios', () => {
    const m = grpoLoss(batch, config).metrics;
    expect(m.kl).toBeCloseTo((1.5 - Math.LN2) / 5, 12);
    expect(m.kl).toBeCloseTo(0.16137056, 8);
    expect(m['clip_ratio/high_mean']).toBeCloseTo(1 / 5, 12);
    expect(m['clip_ratio/low_mean']).toBeCloseTo(2 / 5, 12);
    expect(m['clip_ratio/region_mean']).toBeCloseTo(3 / 5, 12);
    expect(m['clip_ratio/low_min']).toBe(0);
    expect(m['clip_ratio/high_max']).toBeCloseTo(1 / 2, 12);
    // loss: per-token surrogate -min(rA, clip(r)A): [-1.2, -1.0, -, 0.8, 0.8, 1.5] sum 0.9;
    // beta * kl sum = 0.1 * (1.5 - ln 2); bnpo: (0.9 + 0.1 (1.5 - ln 2)) / 5
    expect(m.loss).toBeCloseTo((0.9 + 0.1 * (1.5 - Math.LN2)) / 5, 12);
  });
  it('maskTruncated removes a truncated sequence from the metrics too', () => {
    const m = grpoLoss({ ...batch, truncated: new Uint8Array([0, 1]) }, { ...config, maskTruncated: true }).metrics;
    // only tokens 0, 1 remain: kl (0 + 1 - ln 2) / 2; high 1/2; low 0
    expect(m.kl).toBeCloseTo((1 - Math.LN2) / 2, 12);
    expect(m['clip_ratio/high_mean']).toBeCloseTo(0.5, 12);
    expect(m['clip_ratio/low_mean']).toBe(0);
    expect(m['clip_ratio/low_min']).toBe(0);
    expect(m['clip_ratio/high_max']).toBeCloseTo(0.5, 12);
  });
});
