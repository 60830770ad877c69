/**
 * The GRPO loss of one (micro-)batch and its gradient dLoss/dlogp per token: the coefficients
 * TypeScript hands to the native addon's backward (docs/architecture.md sections 1-2).
 *
 *   l_t  = surrogate_t + beta * kl_t                       (surrogate.ts, kl.ts)
 *   loss = sum_b w_b * sum_{t in b, loss token} l_t        (aggregation.ts picks w per lossType)
 *   grad_t = w_b * dl_t/dlogp_t for loss tokens, 0 elsewhere
 *
 * so the gradient is the exact derivative of the returned loss (the weights do not depend on
 * logp; kinks of the clip: see surrogate.ts). grpoLossF64 is the float64 path (also what the
 * finite-difference tests differentiate); grpoLoss rounds its gradient once to Float32Array.
 */
import { sequenceWeights } from './aggregation.js';
import { klBackward, klForward } from './kl.js';
import { lossTokensPerSequence } from './lossTokens.js';
import { policyMetrics } from './metrics.js';
import { surrogateBackward, surrogateForward } from './surrogate.js';
import type { GrpoBatch, GrpoLossConfig, GrpoLossResult, GrpoLossResultF64 } from './types.js';
import { checkBatchAndConfig, checkFinite } from './validate.js';

/** Loss, float64 gradient and metrics of one batch (layout and semantics: types.ts). */
export function grpoLossF64(batch: GrpoBatch, config: GrpoLossConfig): GrpoLossResultF64 {
  const fn = 'grpoLoss';
  checkBatchAndConfig(batch, config, fn);
  const { offsets, logp, oldLogp, refLogp, mask, advantages, numItemsInBatch } = batch;
  const { beta, epsilonLow, epsilonHigh, lossType, maxCompletionLength } = config;
  const B = offsets.length - 1;
  const T = offsets[B] as number;

  const counts = lossTokensPerSequence(batch, config.maskTruncated);
  checkNormalisers(counts, lossType, maxCompletionLength, numItemsInBatch, fn);
  const w = sequenceWeights(lossType, counts, maxCompletionLength, numItemsInBatch);

  const grad = new Float64Array(T);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    if (counts[b] === 0) continue; // truncated under maskTruncated, or fully masked
    const A = advantages[b] as number;
    checkFinite(A, 'advantages', b, fn);
    const wb = w[b] as number;
    let seqSum = 0;
    const end = offsets[b + 1] as number;
    for (let t = offsets[b] as number; t < end; t++) {
      if (mask[t] === 0) continue;
      const lp = logp[t] as number;
      const old = oldLogp[t] as number;
      checkFinite(lp, 'logp', t, fn);
      checkFinite(old, 'oldLogp', t, fn);
      const ratio = Math.exp(lp - old);
      let l = surrogateForward(ratio, A, epsilonLow, epsilonHigh);
      let g = surrogateBackward(ratio, A, epsilonLow, epsilonHigh);
      if (beta > 0) {
        const ref = (refLogp as NonNullable<typeof refLogp>)[t] as number;
        checkFinite(ref, 'refLogp', t, fn);
        l += beta * klForward(ref, lp);
        g += beta * klBackward(ref, lp);
      }
      seqSum += l;
      grad[t] = wb * g;
    }
    loss += wb * seqSum;
  }
  if (refLogp !== undefined && beta === 0) checkReadRef(batch, counts, fn); // read by the kl metric
  return { loss, grad, metrics: { loss, ...policyMetrics(batch, config) } };
}

/** Loss, gradient (rounded to Float32Array for the addon) and metrics of one batch. */
export function grpoLoss(batch: GrpoBatch, config: GrpoLossConfig): GrpoLossResult {
  const { loss, grad, metrics } = grpoLossF64(batch, config);
  return { loss, grad: Float32Array.from(grad), metrics };
}

/**
 * numItemsInBatch (dapo) counts the whole generation batch, so it cannot be below this
 * micro-batch's own count; dr_grpo's constant assumes no sequence has more loss tokens than the
 * generation budget maxCompletionLength.
 */
function checkNormalisers(
  counts: Int32Array,
  lossType: GrpoLossConfig['lossType'],
  maxCompletionLength: number | undefined,
  numItemsInBatch: number | undefined,
  fn: string,
): void {
  if (numItemsInBatch !== undefined) {
    let local = 0;
    for (let b = 0; b < counts.length; b++) local += counts[b] as number;
    if (!Number.isFinite(numItemsInBatch) || numItemsInBatch < local) {
      throw new RangeError(
        `src/grpo ${fn}: batch.numItemsInBatch = ${numItemsInBatch} must be a finite count >= this batch's ` +
          `${local} loss tokens (it counts the whole generation batch; see countLossTokens)`,
      );
    }
  }
  if (lossType === 'dr_grpo') {
    const L = maxCompletionLength as number;
    for (let b = 0; b < counts.length; b++) {
      if ((counts[b] as number) > L) {
        throw new RangeError(
          `src/grpo ${fn}: sequence ${b} has ${counts[b]} loss tokens > config.maxCompletionLength = ${L}`,
        );
      }
    }
  }
}

/** With beta = 0 the loss never reads refLogp, but the kl metric does: same finiteness rule. */
function checkReadRef(batch: GrpoBatch, counts: Int32Array, fn: string): void {
  const { offsets, mask, refLogp } = batch;
  if (refLogp === undefined) return;
  for (let b = 0; b < counts.length; b++) {
    if (counts[b] === 0) continue;
    const end = offsets[b + 1] as number;
    for (let t = offsets[b] as number; t < end; t++) {
      if (mask[t] !== 0) checkFinite(refLogp[t] as number, 'refLogp', t, fn);
    }
  }
}
