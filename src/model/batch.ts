/**
 * Packing several token sequences into one ragged batch for the native forward pass.
 *
 * Each sequence is a prompt followed by a completion; the log-probs wanted are those of the
 * completion tokens, each predicted from the row just before it. Rows are concatenated; targets
 * are listed in sequence order, so `targetOffsets` slices the flat log-prob array per sequence.
 */
import type { NativeBatch } from '../native.js';

export interface SequenceToPack {
  /** Token ids of the whole sequence (prompt + completion). */
  tokens: ArrayLike<number>;
  /** Index of the first token whose log-prob is wanted (the completion start); >= 1. */
  targetStart: number;
  /** One past the last token whose log-prob is wanted; defaults to tokens.length. */
  targetEnd?: number;
}

export interface PackedBatch extends NativeBatch {
  /** targetOffsets[i]..targetOffsets[i+1] are sequence i's entries in the flat target arrays. */
  targetOffsets: Int32Array;
}

export function packSequences(seqs: readonly SequenceToPack[]): PackedBatch {
  if (seqs.length === 0) throw new RangeError('packSequences: no sequences');
  let M = 0;
  let n = 0;
  seqs.forEach((s, i) => {
    const L = s.tokens.length;
    const end = s.targetEnd ?? L;
    if (L < 1) throw new RangeError(`packSequences: sequence ${i} is empty`);
    if (!Number.isInteger(s.targetStart) || s.targetStart < 1 || s.targetStart > end || end > L)
      throw new RangeError(`packSequences: sequence ${i} has targetStart ${s.targetStart}, targetEnd ${end} for ${L} tokens (need 1 <= start <= end <= length)`);
    M += L;
    n += end - s.targetStart;
  });
  const tokens = new Int32Array(M);
  const seqOffsets = new Int32Array(seqs.length + 1);
  const targetRows = new Int32Array(n);
  const targetTokens = new Int32Array(n);
  const targetOffsets = new Int32Array(seqs.length + 1);
  let row = 0;
  let t = 0;
  seqs.forEach((s, i) => {
    const L = s.tokens.length;
    const end = s.targetEnd ?? L;
    for (let j = 0; j < L; j++) tokens[row + j] = s.tokens[j]!;
    for (let j = s.targetStart; j < end; j++) {
      targetRows[t] = row + j - 1;
      targetTokens[t] = s.tokens[j]!;
      t++;
    }
    row += L;
    seqOffsets[i + 1] = row;
    targetOffsets[i + 1] = t;
  });
  return { tokens, seqOffsets, targetRows, targetTokens, targetOffsets };
}
