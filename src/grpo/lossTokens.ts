/**
 * Which tokens count in the loss ("loss tokens", types.ts): mask[t] != 0 and not
 * (maskTruncated && truncated[b]) — DAPO's overlong filtering drops a truncated completion whole.
 * Counts per sequence, and in total (the numItemsInBatch a dapo micro-batch needs).
 */
import { checkLayout, type TokenLayout } from './validate.js';

/** (B) number of loss tokens in each sequence. Assumes a checked layout. */
export function lossTokensPerSequence(layout: TokenLayout, maskTruncated: boolean): Int32Array {
  const { offsets, mask, truncated } = layout;
  const B = offsets.length - 1;
  const counts = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    if (maskTruncated && truncated[b] !== 0) continue;
    let n = 0;
    const end = offsets[b + 1] as number;
    for (let t = offsets[b] as number; t < end; t++) if (mask[t] !== 0) n++;
    counts[b] = n;
  }
  return counts;
}

/**
 * Number of loss tokens in a batch. Call it on the whole generation batch (all micro-batches of
 * one optimizer step) to get the numItemsInBatch each 'dapo' micro-batch needs.
 */
export function countLossTokens(layout: TokenLayout, maskTruncated: boolean): number {
  checkLayout(layout, 'countLossTokens');
  const counts = lossTokensPerSequence(layout, maskTruncated);
  let total = 0;
  for (let b = 0; b < counts.length; b++) total += counts[b] as number;
  return total;
}
