/**
 * What a GRPO step logs, under TRL GRPOTrainer's metric names, as plain numbers:
 * - policyMetrics: per-token statistics of one loss evaluation (kl, clip_ratio/*), averaged over
 *   loss tokens (mask and maskTruncated applied, as TRL's completion_mask does);
 * - rolloutMetrics: statistics of one generation batch (reward, reward_std, frac_reward_zero_std,
 *   completions/*), which depend on the sampled completions only.
 * Means over nothing are 0 (TRL clamps its denominators to >= 1).
 */
import { fracRewardZeroStd } from './advantages.js';
import { lossTokensPerSequence } from './lossTokens.js';
import { sliceMean, sliceSampleStd } from './stats.js';
import { clipSide } from './surrogate.js';
import { klForward } from './kl.js';
import type { GrpoBatch, GrpoLossConfig, GrpoLossMetrics, RolloutMetrics } from './types.js';
import { checkLayout, type TokenLayout } from './validate.js';

/**
 * kl (mean k3 estimate, only when batch.refLogp is given, whatever beta is) and the clip
 * fractions: low = ratio < 1 - epsilonLow with A < 0, high = ratio > 1 + epsilonHigh with A > 0,
 * region = either (the tokens whose gradient the clip zeroes); low_min / high_max = min / max over
 * sequences that have loss tokens of that sequence's fraction. The batch must already be checked
 * (grpoLossF64 does it); values at non-loss tokens are not read.
 */
export function policyMetrics(
  batch: GrpoBatch,
  config: Pick<GrpoLossConfig, 'epsilonLow' | 'epsilonHigh' | 'maskTruncated'>,
): Omit<GrpoLossMetrics, 'loss'> {
  const { offsets, logp, oldLogp, refLogp, mask, advantages } = batch;
  const { epsilonLow, epsilonHigh } = config;
  const counts = lossTokensPerSequence(batch, config.maskTruncated);
  const B = offsets.length - 1;
  let tokens = 0;
  let low = 0;
  let high = 0;
  let klSum = 0;
  let lowMin = Infinity;
  let highMax = -Infinity;
  for (let b = 0; b < B; b++) {
    const n = counts[b] as number;
    if (n === 0) continue;
    const A = advantages[b] as number;
    let seqLow = 0;
    let seqHigh = 0;
    const end = offsets[b + 1] as number;
    for (let t = offsets[b] as number; t < end; t++) {
      if (mask[t] === 0) continue;
      const lp = logp[t] as number;
      const side = clipSide(Math.exp(lp - (oldLogp[t] as number)), A, epsilonLow, epsilonHigh);
      if (side < 0) seqLow++;
      else if (side > 0) seqHigh++;
      if (refLogp !== undefined) klSum += klForward(refLogp[t] as number, lp);
    }
    tokens += n;
    low += seqLow;
    high += seqHigh;
    lowMin = Math.min(lowMin, seqLow / n);
    highMax = Math.max(highMax, seqHigh / n);
  }
  const denom = Math.max(1, tokens);
  const metrics: Omit<GrpoLossMetrics, 'loss'> = {
    'clip_ratio/low_mean': low / denom,
    'clip_ratio/high_mean': high / denom,
    'clip_ratio/region_mean': (low + high) / denom,
    'clip_ratio/low_min': tokens > 0 ? lowMin : 0,
    'clip_ratio/high_max': tokens > 0 ? highMax : 0,
  };
  if (refLogp !== undefined) metrics.kl = klSum / denom;
  return metrics;
}

/** Inputs of rolloutMetrics: rewards (B) grouped by groupSize, and the batch's token layout. */
export interface RolloutMetricsInput extends TokenLayout {
  rewards: ArrayLike<number>;
  groupSize: number;
}

/**
 * Reward and completion-length statistics of one generation batch. Completion length of sequence
 * b = its number of tokens with mask != 0 (padding excluded; maskTruncated does not apply: a
 * truncated completion still has its length). "clipped" = truncated, TRL's name.
 */
export function rolloutMetrics(input: RolloutMetricsInput): RolloutMetrics {
  const { rewards, groupSize } = input;
  checkLayout(input, 'rolloutMetrics');
  const B = input.offsets.length - 1;
  if (rewards.length !== B) {
    throw new RangeError(`src/grpo rolloutMetrics: rewards.length = ${rewards.length}, expected B = ${B}`);
  }
  const fracZero = fracRewardZeroStd(rewards, groupSize); // also checks groupSize and finiteness
  const lengths = lossTokensPerSequence(input, false);
  const all = lengthStats(lengths, () => true);
  const terminated = lengthStats(lengths, (b) => input.truncated[b] === 0);
  let truncatedCount = 0;
  for (let b = 0; b < B; b++) if (input.truncated[b] !== 0) truncatedCount++;
  return {
    reward: B > 0 ? sliceMean(rewards, 0, B) : 0,
    reward_std: sliceSampleStd(rewards, 0, B),
    frac_reward_zero_std: fracZero,
    'completions/mean_length': all.mean,
    'completions/min_length': all.min,
    'completions/max_length': all.max,
    'completions/clipped_ratio': B > 0 ? truncatedCount / B : 0,
    'completions/mean_terminated_length': terminated.mean,
    'completions/min_terminated_length': terminated.min,
    'completions/max_terminated_length': terminated.max,
  };
}

/** mean/min/max of lengths[b] over the b that pass `keep`; all 0 when none do. */
function lengthStats(
  lengths: Int32Array,
  keep: (b: number) => boolean,
): { mean: number; min: number; max: number } {
  let n = 0;
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let b = 0; b < lengths.length; b++) {
    if (!keep(b)) continue;
    const len = lengths[b] as number;
    n++;
    sum += len;
    min = Math.min(min, len);
    max = Math.max(max, len);
  }
  return n === 0 ? { mean: 0, min: 0, max: 0 } : { mean: sum / n, min, max };
}
