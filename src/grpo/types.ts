/**
 * Types and the data layout shared by every file in src/grpo/: a batch of completions, the loss
 * configuration, and what the loss and metrics return.
 *
 * ## Data layout (one GRPO batch)
 *
 * B completions ("sequences"), grouped: the G = groupSize consecutive sequences
 * [g*G, (g+1)*G) were sampled from the same prompt g, so B = numGroups * G. Per-sequence arrays
 * have length B and are indexed by b.
 *
 * Per-token arrays are packed ragged, completion tokens only (no prompt tokens, no padding needed):
 *
 *   offsets: Int32Array(B+1)   sequence b owns flat tokens t in [offsets[b], offsets[b+1]);
 *                              offsets[0] = 0, non-decreasing, offsets[B] = T.
 *   logp:    (T)  log pi_theta(token_t | prefix) under the policy being trained; the loss is
 *                 differentiated with respect to this array (grad has the same layout).
 *   oldLogp: (T)  log-prob under the sampling policy pi_old. With num_iterations = 1 it equals
 *                 logp, detached: pass the same values (ratio = 1, but the gradient still flows).
 *   refLogp: (T)  log-prob under the reference model; read only when beta > 0 (and for the `kl`
 *                 metric when given). May be omitted when beta = 0.
 *   mask:    Uint8Array(T)  nonzero = the token counts in the loss and metrics; 0 = padding,
 *                 tokens after truncation, tool output, ... .
 *   advantages: (B)  one advantage per sequence (see advantages.ts), broadcast to its tokens.
 *   truncated:  Uint8Array(B)  nonzero = the completion hit the length limit without EOS.
 *
 * A token counts ("loss token") iff mask[t] != 0 and not (config.maskTruncated && truncated[b]).
 * Values at tokens that do not count are never read, so they may hold anything (even NaN), and
 * their gradient is exactly 0. Values that are read must be finite; a non-finite one is an error
 * that names the array, the index and the value.
 *
 * Units: log-probs in nats. Arrays may be Float32Array (what the addon returns) or Float64Array
 * (what tests and finite differences use); all arithmetic is done in float64.
 */

/** A float array as it crosses the native boundary (f32) or as tests build it (f64). */
export type Floats = Float32Array | Float64Array;

/** One batch (or micro-batch) of completions in the layout described at the top of this file. */
export interface GrpoBatch {
  /** (B+1) token offsets of each sequence into the flat per-token arrays. */
  offsets: Int32Array;
  /** (T) new-policy log-prob of each completion token; the loss is differentiated w.r.t. this. */
  logp: Floats;
  /** (T) sampling-policy log-prob of each completion token (constant). */
  oldLogp: Floats;
  /** (T) reference-model log-prob of each completion token (constant); required when beta > 0. */
  refLogp?: Floats | undefined;
  /** (T) nonzero = token counts in the loss. */
  mask: Uint8Array;
  /** (B) advantage of each sequence. */
  advantages: Floats;
  /** (B) nonzero = completion was truncated at the length limit (no EOS). */
  truncated: Uint8Array;
  /**
   * lossType 'dapo' only: the number of loss tokens in the whole generation batch this
   * micro-batch belongs to (all micro-batches of one optimizer step, all processes), computed
   * with countLossTokens() over that whole batch. The dapo loss of this micro-batch is then
   * (sum of its per-token losses) / numItemsInBatch, so summing the micro-batch losses (and
   * grads) gives exactly the full-batch loss (and grad): TRL's `num_items_in_batch`.
   * Omitted: this batch is the whole generation batch and its own token count is used.
   */
  numItemsInBatch?: number | undefined;
}

/**
 * How per-token losses become one scalar (TRL GRPOConfig.loss_type semantics):
 * - 'grpo'    mean over the B sequences of each sequence's token mean (DeepSeekMath GRPO).
 * - 'bnpo'    sum over loss tokens / number of loss tokens in this (micro-)batch.
 * - 'dapo'    sum over loss tokens / number of loss tokens in the whole generation batch (DAPO).
 * - 'dr_grpo' sum over loss tokens / (B * maxCompletionLength) (Dr. GRPO).
 */
export type LossType = 'grpo' | 'bnpo' | 'dapo' | 'dr_grpo';

/** Static loss configuration (the same for every step of a run). */
export interface GrpoLossConfig {
  /** KL coefficient (>= 0). 0 skips the reference model entirely. */
  beta: number;
  /** Lower clip: ratios below 1 - epsilonLow are clipped (PPO epsilon; >= 0). */
  epsilonLow: number;
  /** Upper clip: ratios above 1 + epsilonHigh are clipped (DAPO clip-higher; >= 0). */
  epsilonHigh: number;
  /** Aggregation over tokens and sequences. */
  lossType: LossType;
  /** Generation length budget in tokens; required (positive integer) for lossType 'dr_grpo'. */
  maxCompletionLength?: number | undefined;
  /** DAPO overlong filtering: truncated completions contribute nothing (loss, grad, metrics). */
  maskTruncated: boolean;
}

/**
 * Metrics of one loss evaluation, under TRL's names. Means are over loss tokens (0 when there
 * are none); `kl` is present only when refLogp was given.
 */
export interface GrpoLossMetrics {
  /** The returned loss. */
  loss: number;
  /** Mean k3 KL estimate per loss token (present iff refLogp was given, whatever beta is). */
  kl?: number;
  /** Fraction of loss tokens with ratio < 1 - epsilonLow and advantage < 0 (gradient zeroed). */
  'clip_ratio/low_mean': number;
  /** Fraction of loss tokens with ratio > 1 + epsilonHigh and advantage > 0 (gradient zeroed). */
  'clip_ratio/high_mean': number;
  /** low_mean + high_mean: fraction of loss tokens whose gradient the clip zeroes. */
  'clip_ratio/region_mean': number;
  /** Smallest per-sequence low-clip fraction over sequences with loss tokens (0 if none). */
  'clip_ratio/low_min': number;
  /** Largest per-sequence high-clip fraction over sequences with loss tokens (0 if none). */
  'clip_ratio/high_max': number;
}

/** What grpoLoss returns. */
export interface GrpoLossResult {
  /** The scalar loss (float64). */
  loss: number;
  /** (T) dLoss/dlogp per token, 0 where the token does not count: what the addon backprops. */
  grad: Float32Array;
  metrics: GrpoLossMetrics;
}

/** What grpoLossF64 returns: the same, with the gradient kept in float64. */
export interface GrpoLossResultF64 {
  loss: number;
  grad: Float64Array;
  metrics: GrpoLossMetrics;
}

/** Group-relative advantage estimators (see advantages.ts). */
export type AdvantageVariant = 'groupStd' | 'leaveOneOut' | 'meanOnly' | 'batchStd';

/** Metrics of one generation batch (rewards and completion lengths), under TRL's names. */
export interface RolloutMetrics {
  /** Mean reward over the batch. */
  reward: number;
  /** Sample (unbiased, n-1) standard deviation of the rewards over the batch; 0 when B < 2. */
  reward_std: number;
  /** Fraction of groups whose rewards are all equal (zero advantage, no learning signal). */
  frac_reward_zero_std: number;
  /** Completion length = number of tokens with mask != 0 in the sequence (truncation ignored). */
  'completions/mean_length': number;
  'completions/min_length': number;
  'completions/max_length': number;
  /** Fraction of completions that were truncated (TRL calls these "clipped"). */
  'completions/clipped_ratio': number;
  /** Length statistics over completions that ended with EOS (0 when there are none). */
  'completions/mean_terminated_length': number;
  'completions/min_terminated_length': number;
  'completions/max_terminated_length': number;
}
