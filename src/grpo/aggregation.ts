/**
 * How per-token losses are reduced to one scalar, one small function per TRL loss_type. Every
 * aggregation here is a weighted sum loss = sum_b w_b * sum_{t in b, loss token} l_t with a weight
 * w_b per sequence that does not depend on logp, so dLoss/dlogp_t = w_b * dl_t/dlogp_t exactly.
 *
 * Each function takes counts (B) = loss tokens per sequence (lossTokens.ts) and returns w (B).
 */
import type { LossType } from './types.js';

/**
 * 'grpo' (DeepSeekMath GRPO, arXiv 2402.03300 eq. 3; TRL loss_type="grpo"): mean over the B
 * sequences of each sequence's token mean, w_b = 1 / (B * max(1, n_b)). A sequence with no loss
 * tokens (all masked, or truncated under maskTruncated) adds 0 but still counts in B, exactly as
 * TRL's ((l * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean().
 */
export function grpoWeights(counts: Int32Array): Float64Array {
  const B = counts.length;
  const w = new Float64Array(B);
  for (let b = 0; b < B; b++) w[b] = 1 / (B * Math.max(1, counts[b] as number));
  return w;
}

/**
 * 'bnpo' (TRL loss_type="bnpo"): token mean over this (micro-)batch,
 * w_b = 1 / max(1, sum_b n_b). Local normaliser: micro-batches of one step are not reweighted.
 */
export function bnpoWeights(counts: Int32Array): Float64Array {
  return new Float64Array(counts.length).fill(1 / Math.max(1, sumCounts(counts)));
}

/**
 * 'dapo' (DAPO token-level policy-gradient loss, arXiv 2503.14476 eq. 8-9; TRL loss_type="dapo"):
 * token mean over the whole generation batch, w_b = 1 / max(1, numItemsInBatch), where
 * numItemsInBatch counts loss tokens over every micro-batch of the step (TRL's
 * num_items_in_batch); defaults to this batch's own count, when it is the whole batch.
 */
export function dapoWeights(counts: Int32Array, numItemsInBatch?: number): Float64Array {
  const n = numItemsInBatch ?? sumCounts(counts);
  return new Float64Array(counts.length).fill(1 / Math.max(1, n));
}

/**
 * 'dr_grpo' (Dr. GRPO, arXiv 2503.20783; TRL loss_type="dr_grpo"): sum over loss tokens divided
 * by a constant, w_b = 1 / (B * maxCompletionLength), so no length bias from per-sequence means.
 */
export function drGrpoWeights(counts: Int32Array, maxCompletionLength: number): Float64Array {
  const B = counts.length;
  return new Float64Array(B).fill(1 / (B * maxCompletionLength));
}

/** The per-sequence token weight for a loss type (inputs already validated). */
export function sequenceWeights(
  lossType: LossType,
  counts: Int32Array,
  maxCompletionLength: number | undefined,
  numItemsInBatch: number | undefined,
): Float64Array {
  switch (lossType) {
    case 'grpo':
      return grpoWeights(counts);
    case 'bnpo':
      return bnpoWeights(counts);
    case 'dapo':
      return dapoWeights(counts, numItemsInBatch);
    case 'dr_grpo':
      return drGrpoWeights(counts, maxCompletionLength as number);
  }
}

function sumCounts(counts: Int32Array): number {
  let n = 0;
  for (let b = 0; b < counts.length; b++) n += counts[b] as number;
  return n;
}
