// Test helpers for test/grpo: a seeded PRNG, a random ragged batch builder, and an independent
// reference loss written the way TRL's GRPOTrainer writes it (padded (B, L) matrices, mask
// multiplication, torch-style clamp/min), sharing no code with src/grpo.
import type { GrpoBatch, GrpoLossConfig } from '../../src/grpo/index.js';

/** mulberry32: small deterministic PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type RatioMode = 'inside' | 'outside';

export interface RandomBatchOptions {
  seed: number;
  lengths: number[];
  /** 'inside': every ratio within [1 - epsLow, 1 + epsHigh]; 'outside': most ratios outside it. */
  mode: RatioMode;
  epsilonLow: number;
  epsilonHigh: number;
  truncated: number[];
  /** Flat indices whose mask is 0 (their float values are set to NaN: they must never be read). */
  maskedTokens?: number[];
}

/** Margin kept between any ratio and a clip bound, so h = 1e-6 never crosses a kink. */
export const BOUNDARY_MARGIN = 1e-2;

/** A random float64 batch in the src/grpo layout. */
export function randomBatch(o: RandomBatchOptions): GrpoBatch {
  const r = rng(o.seed);
  const B = o.lengths.length;
  const offsets = new Int32Array(B + 1);
  for (let b = 0; b < B; b++) offsets[b + 1] = (offsets[b] as number) + (o.lengths[b] as number);
  const T = offsets[B] as number;
  const logp = new Float64Array(T);
  const oldLogp = new Float64Array(T);
  const refLogp = new Float64Array(T);
  const mask = new Uint8Array(T).fill(1);
  const lo = 1 - o.epsilonLow;
  const hi = 1 + o.epsilonHigh;
  for (let t = 0; t < T; t++) {
    oldLogp[t] = -0.1 - 3 * r();
    let ratio: number;
    if (o.mode === 'inside') {
      ratio = lo + BOUNDARY_MARGIN + (hi - lo - 2 * BOUNDARY_MARGIN) * r();
    } else {
      // cycle: far above, far below, inside, so both clip directions and the unclipped branch occur
      const k = t % 3;
      ratio = k === 0 ? hi + 0.05 + r() : k === 1 ? lo - 0.05 - 0.5 * lo * r() : 1 + 0.05 * (r() - 0.5);
    }
    if (Math.abs(ratio - lo) < BOUNDARY_MARGIN || Math.abs(ratio - hi) < BOUNDARY_MARGIN) {
      throw new Error(`fixture: ratio ${ratio} too close to a clip bound`);
    }
    logp[t] = (oldLogp[t] as number) + Math.log(ratio);
    refLogp[t] = (logp[t] as number) + 0.6 * (r() - 0.5);
  }
  for (const t of o.maskedTokens ?? []) {
    mask[t] = 0;
    logp[t] = NaN;
    oldLogp[t] = NaN;
    refLogp[t] = NaN;
  }
  // advantages of both signs, never 0, alternating so each sequence in a pair differs in sign
  const advantages = new Float64Array(B);
  for (let b = 0; b < B; b++) advantages[b] = (b % 2 === 0 ? 1 : -1) * (0.2 + r());
  return { offsets, logp, oldLogp, refLogp, mask, advantages, truncated: Uint8Array.from(o.truncated) };
}

/**
 * TRL GRPOTrainer._compute_loss, transcribed over padded (B, L) arrays: per_token_loss =
 * -min(coef_1 * A, clamp(coef_1, 1 - eps_low, 1 + eps_high) * A) + beta * k3, then the loss_type's
 * reduction. mask_truncated_completions zeroes the completion_mask rows of truncated sequences;
 * num_items_in_batch is (completion_mask).sum() of the whole batch unless given.
 */
export function referenceLoss(batch: GrpoBatch, config: GrpoLossConfig): number {
  const B = batch.offsets.length - 1;
  let L = 0;
  for (let b = 0; b < B; b++) L = Math.max(L, (batch.offsets[b + 1] as number) - (batch.offsets[b] as number));
  const perTokenLoss: number[][] = [];
  const m: number[][] = [];
  for (let b = 0; b < B; b++) {
    const rowLoss: number[] = [];
    const rowMask: number[] = [];
    const start = batch.offsets[b] as number;
    const len = (batch.offsets[b + 1] as number) - start;
    const A = batch.advantages[b] as number;
    for (let j = 0; j < L; j++) {
      const inSeq = j < len;
      let maskVal = inSeq ? ((batch.mask[start + j] as number) !== 0 ? 1 : 0) : 0;
      if (config.maskTruncated && batch.truncated[b] !== 0) maskVal = 0;
      rowMask.push(maskVal);
      if (maskVal === 0) {
        rowLoss.push(0); // torch would hold garbage * 0 here; NaN * 0 = NaN, so keep padding finite
        continue;
      }
      const lp = batch.logp[start + j] as number;
      const coef1 = Math.exp(lp - (batch.oldLogp[start + j] as number));
      const coef2 = Math.min(Math.max(coef1, 1 - config.epsilonLow), 1 + config.epsilonHigh);
      let l = -Math.min(coef1 * A, coef2 * A);
      if (config.beta !== 0) {
        const d = (batch.refLogp as Float64Array)[start + j]! - lp;
        l += config.beta * (Math.exp(d) - d - 1);
      }
      rowLoss.push(l);
    }
    perTokenLoss.push(rowLoss);
    m.push(rowMask);
  }
  const rowSum = (b: number) => perTokenLoss[b]!.reduce((s, x, j) => s + x * m[b]![j]!, 0);
  const rowCount = (b: number) => m[b]!.reduce((s, x) => s + x, 0);
  let total = 0;
  let count = 0;
  for (let b = 0; b < B; b++) {
    total += rowSum(b);
    count += rowCount(b);
  }
  switch (config.lossType) {
    case 'grpo': {
      let s = 0;
      for (let b = 0; b < B; b++) s += rowSum(b) / Math.max(1, rowCount(b));
      return s / B;
    }
    case 'bnpo':
      return total / Math.max(1, count);
    case 'dapo':
      return total / Math.max(1, batch.numItemsInBatch ?? count);
    case 'dr_grpo':
      return total / (B * (config.maxCompletionLength as number));
  }
}

/** A sub-batch of sequences [b0, b1), offsets rebased to 0 (how a trainer cuts micro-batches). */
export function sliceBatch(batch: GrpoBatch, b0: number, b1: number): GrpoBatch {
  const t0 = batch.offsets[b0] as number;
  const t1 = batch.offsets[b1] as number;
  const offsets = batch.offsets.slice(b0, b1 + 1).map((x) => x - t0);
  return {
    offsets,
    logp: batch.logp.slice(t0, t1),
    oldLogp: batch.oldLogp.slice(t0, t1),
    refLogp: batch.refLogp?.slice(t0, t1),
    mask: batch.mask.slice(t0, t1),
    advantages: batch.advantages.slice(b0, b1),
    truncated: batch.truncated.slice(b0, b1),
  };
}
