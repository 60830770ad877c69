/**
 * Group-relative advantages: rewards (B) of B = numGroups * G completions, G consecutive ones per
 * prompt, -> one advantage per completion (B). One small pure function per estimator, side by
 * side, plus the dispatcher groupAdvantages() and fracRewardZeroStd().
 *
 * All means and standard deviations are computed in float64 (stats.ts) and the result is rounded
 * once to Float32Array. Standard deviations are the *sample* (unbiased, n - 1) standard deviation,
 * as TRL's GRPOTrainer computes them (torch.std / its nanstd apply Bessel's correction). A group
 * whose rewards are all equal gets advantages of exactly 0, never NaN.
 */
import { sliceAllEqual, sliceMean, sliceSampleStd } from './stats.js';
import type { AdvantageVariant } from './types.js';

/** TRL's default: added to the standard deviation so an all-equal group divides 0 by 1e-4. */
export const DEFAULT_ADVANTAGE_EPS = 1e-4;

const WHERE = 'src/grpo/advantages.ts';

/**
 * Checks the shape and values every estimator relies on; returns the number of groups.
 * Rewards must be finite: NaN (an unscorable completion) and +-Infinity would poison their whole
 * group (and, for batchStd, the batch), so they are rejected with their index and value.
 */
function checkRewards(rewards: ArrayLike<number>, groupSize: number, fn: string): number {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new RangeError(`${WHERE} ${fn}: groupSize must be a positive integer, got ${groupSize}`);
  }
  const n = rewards.length;
  if (n % groupSize !== 0) {
    throw new RangeError(
      `${WHERE} ${fn}: rewards.length = ${n} is not divisible by groupSize = ${groupSize}`,
    );
  }
  for (let i = 0; i < n; i++) {
    const r = rewards[i] as number;
    if (!Number.isFinite(r)) {
      throw new RangeError(`${WHERE} ${fn}: rewards[${i}] = ${r} is not a finite number`);
    }
  }
  return n / groupSize;
}

function checkEps(eps: number, fn: string): void {
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`${WHERE} ${fn}: eps must be a finite number >= 0, got ${eps}`);
  }
}

/**
 * DeepSeekMath GRPO (Shao et al. 2024, arXiv 2402.03300, "outcome supervision"); TRL
 * scale_rewards="group" (the default):
 *   A_i = (r_i - mean_g) / (std_g + eps),  std_g = sample std of the group (n - 1).
 * groupSize = 1 gives std 0 and A = 0 (TRL's convention for num_generations = 1).
 */
export function groupStdAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  eps: number = DEFAULT_ADVANTAGE_EPS,
): Float32Array {
  const numGroups = checkRewards(rewards, groupSize, 'groupStdAdvantages');
  checkEps(eps, 'groupStdAdvantages');
  const out = new Float32Array(rewards.length);
  for (let g = 0; g < numGroups; g++) {
    const start = g * groupSize;
    const end = start + groupSize;
    const mean = sliceMean(rewards, start, end);
    const denom = sliceSampleStd(rewards, start, end) + eps;
    for (let i = start; i < end; i++) out[i] = ((rewards[i] as number) - mean) / denom;
  }
  return out;
}

/**
 * RLOO, leave-one-out baseline (Kool et al. 2019, "Buy 4 REINFORCE samples, get a baseline for
 * free"; Ahmadian et al. 2024, arXiv 2402.14740; TRL RLOOTrainer):
 *   A_i = r_i - mean of the other G - 1 rewards of the group = G / (G - 1) * (r_i - mean_g).
 * The second form (algebraically equal) is what is computed, so an all-equal group gives exact 0.
 * Needs groupSize >= 2 (with one sample there is no "other" to form a baseline from).
 */
export function leaveOneOutAdvantages(rewards: ArrayLike<number>, groupSize: number): Float32Array {
  const numGroups = checkRewards(rewards, groupSize, 'leaveOneOutAdvantages');
  if (groupSize < 2) {
    throw new RangeError(
      `${WHERE} leaveOneOutAdvantages: groupSize must be >= 2 for a leave-one-out baseline, got ${groupSize}`,
    );
  }
  const out = new Float32Array(rewards.length);
  const scale = groupSize / (groupSize - 1);
  for (let g = 0; g < numGroups; g++) {
    const start = g * groupSize;
    const end = start + groupSize;
    const mean = sliceMean(rewards, start, end);
    for (let i = start; i < end; i++) out[i] = scale * ((rewards[i] as number) - mean);
  }
  return out;
}

/**
 * Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training: A Critical Perspective",
 * arXiv 2503.20783); TRL scale_rewards="none": A_i = r_i - mean_g, no division by the std (which
 * the paper shows biases updates toward too-easy and too-hard questions).
 */
export function meanOnlyAdvantages(rewards: ArrayLike<number>, groupSize: number): Float32Array {
  const numGroups = checkRewards(rewards, groupSize, 'meanOnlyAdvantages');
  const out = new Float32Array(rewards.length);
  for (let g = 0; g < numGroups; g++) {
    const start = g * groupSize;
    const end = start + groupSize;
    const mean = sliceMean(rewards, start, end);
    for (let i = start; i < end; i++) out[i] = (rewards[i] as number) - mean;
  }
  return out;
}

/**
 * TRL scale_rewards="batch" (the "PPO Lite" recipe, Liu et al. 2025, "Tricks or Traps? A Deep
 * Dive into RL for LLM Reasoning", arXiv 2508.08221): group mean, batch std,
 *   A_i = (r_i - mean_g) / (std_batch + eps),  std_batch = sample std over all B rewards.
 * B = 1 gives std 0 (TRL's convention).
 */
export function batchStdAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  eps: number = DEFAULT_ADVANTAGE_EPS,
): Float32Array {
  const numGroups = checkRewards(rewards, groupSize, 'batchStdAdvantages');
  checkEps(eps, 'batchStdAdvantages');
  const out = new Float32Array(rewards.length);
  if (rewards.length === 0) return out;
  const denom = sliceSampleStd(rewards, 0, rewards.length) + eps;
  for (let g = 0; g < numGroups; g++) {
    const start = g * groupSize;
    const end = start + groupSize;
    const mean = sliceMean(rewards, start, end);
    for (let i = start; i < end; i++) out[i] = ((rewards[i] as number) - mean) / denom;
  }
  return out;
}

/**
 * Fraction of groups whose rewards are all exactly equal (so every estimator above gives them
 * zero advantage: no learning signal). TRL logs this as frac_reward_zero_std. 0 for an empty
 * batch.
 */
export function fracRewardZeroStd(rewards: ArrayLike<number>, groupSize: number): number {
  const numGroups = checkRewards(rewards, groupSize, 'fracRewardZeroStd');
  if (numGroups === 0) return 0;
  let zero = 0;
  for (let g = 0; g < numGroups; g++) {
    if (sliceAllEqual(rewards, g * groupSize, (g + 1) * groupSize)) zero++;
  }
  return zero / numGroups;
}

/**
 * Advantages of a batch of rewards (B) grouped by groupSize, by estimator name. `eps` is used by
 * the std-scaled variants (groupStd, batchStd) and ignored by the others.
 */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  variant: AdvantageVariant,
  eps: number = DEFAULT_ADVANTAGE_EPS,
): Float32Array {
  switch (variant) {
    case 'groupStd':
      return groupStdAdvantages(rewards, groupSize, eps);
    case 'leaveOneOut':
      return leaveOneOutAdvantages(rewards, groupSize);
    case 'meanOnly':
      return meanOnlyAdvantages(rewards, groupSize);
    case 'batchStd':
      return batchStdAdvantages(rewards, groupSize, eps);
    default: {
      const never: never = variant;
      throw new RangeError(
        `${WHERE} groupAdvantages: variant must be one of groupStd, leaveOneOut, meanOnly, batchStd; got ${String(never)}`,
      );
    }
  }
}
