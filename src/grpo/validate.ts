/**
 * Shape and value checks for a GrpoBatch and a GrpoLossConfig (layout: see types.ts). Every error
 * names the file, the field, the index and the value that was wrong.
 */
import type { Floats, GrpoBatch, GrpoLossConfig } from './types.js';

const WHERE = 'src/grpo';

/** The part of a batch that says which tokens exist and which count. */
export type TokenLayout = Pick<GrpoBatch, 'offsets' | 'mask' | 'truncated'>;

/** offsets (B+1) start at 0, never decrease; mask has offsets[B] entries, truncated has B. */
export function checkLayout(layout: TokenLayout, fn: string): void {
  const { offsets, mask, truncated } = layout;
  if (offsets.length < 1) {
    throw new RangeError(`${WHERE} ${fn}: offsets must have B + 1 >= 1 entries, got length 0`);
  }
  if (offsets[0] !== 0) {
    throw new RangeError(`${WHERE} ${fn}: offsets[0] must be 0, got ${offsets[0]}`);
  }
  const B = offsets.length - 1;
  for (let b = 0; b < B; b++) {
    if ((offsets[b + 1] as number) < (offsets[b] as number)) {
      throw new RangeError(
        `${WHERE} ${fn}: offsets must not decrease, got offsets[${b}] = ${offsets[b]} > offsets[${b + 1}] = ${offsets[b + 1]}`,
      );
    }
  }
  const T = offsets[B] as number;
  if (mask.length !== T) {
    throw new RangeError(`${WHERE} ${fn}: mask.length = ${mask.length}, expected offsets[B] = ${T}`);
  }
  if (truncated.length !== B) {
    throw new RangeError(`${WHERE} ${fn}: truncated.length = ${truncated.length}, expected B = ${B}`);
  }
}

/** Lengths of the per-token and per-sequence float arrays, and the config's numbers. */
export function checkBatchAndConfig(batch: GrpoBatch, config: GrpoLossConfig, fn: string): void {
  checkLayout(batch, fn);
  const B = batch.offsets.length - 1;
  const T = batch.offsets[B] as number;
  const perToken: Array<[string, Floats | undefined]> = [
    ['logp', batch.logp],
    ['oldLogp', batch.oldLogp],
    ['refLogp', batch.refLogp],
  ];
  for (const [name, arr] of perToken) {
    if (arr !== undefined && arr.length !== T) {
      throw new RangeError(`${WHERE} ${fn}: ${name}.length = ${arr.length}, expected offsets[B] = ${T}`);
    }
  }
  if (batch.advantages.length !== B) {
    throw new RangeError(`${WHERE} ${fn}: advantages.length = ${batch.advantages.length}, expected B = ${B}`);
  }

  const { beta, epsilonLow, epsilonHigh, lossType, maxCompletionLength } = config;
  if (!Number.isFinite(beta) || beta < 0) {
    throw new RangeError(`${WHERE} ${fn}: config.beta must be a finite number >= 0, got ${beta}`);
  }
  if (beta > 0 && batch.refLogp === undefined) {
    throw new RangeError(
      `${WHERE} ${fn}: config.beta = ${beta} > 0 needs batch.refLogp (reference-model log-probs), got undefined`,
    );
  }
  if (!Number.isFinite(epsilonLow) || epsilonLow < 0) {
    throw new RangeError(`${WHERE} ${fn}: config.epsilonLow must be a finite number >= 0, got ${epsilonLow}`);
  }
  if (!Number.isFinite(epsilonHigh) || epsilonHigh < 0) {
    throw new RangeError(`${WHERE} ${fn}: config.epsilonHigh must be a finite number >= 0, got ${epsilonHigh}`);
  }
  if (lossType !== 'grpo' && lossType !== 'bnpo' && lossType !== 'dapo' && lossType !== 'dr_grpo') {
    throw new RangeError(
      `${WHERE} ${fn}: config.lossType must be one of grpo, bnpo, dapo, dr_grpo; got ${String(lossType)}`,
    );
  }
  if (lossType === 'dr_grpo') {
    if (maxCompletionLength === undefined || !Number.isInteger(maxCompletionLength) || maxCompletionLength < 1) {
      throw new RangeError(
        `${WHERE} ${fn}: config.maxCompletionLength must be a positive integer for lossType 'dr_grpo', got ${maxCompletionLength}`,
      );
    }
  }
  if (batch.numItemsInBatch !== undefined && lossType !== 'dapo') {
    throw new RangeError(
      `${WHERE} ${fn}: batch.numItemsInBatch = ${batch.numItemsInBatch} is only used by lossType 'dapo' ` +
        `(lossType '${lossType}' normalises by this batch alone, as TRL does); leave it undefined`,
    );
  }
}

/** Throws if a value the loss reads is not finite. */
export function checkFinite(value: number, name: string, index: number, fn: string): void {
  if (!Number.isFinite(value)) {
    throw new RangeError(`${WHERE} ${fn}: ${name}[${index}] = ${value} is not finite (a loss token reads it)`);
  }
}
