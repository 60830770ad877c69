// Finite-difference check of dLoss/dlogp for every lossType x beta {0, 0.04} x maskTruncated
// {off, on} x ratios {inside, outside} the clip range, plus an independent TRL-style reference
// for the loss value and the dapo micro-batch identity.
//
// Tolerance: central differences in float64 with h = 1e-6 on grpoLossF64 (the same float64 path
// grpoLoss rounds from). Truncation error ~ h^2 |l'''| ~ 1e-12 and round-off ~ 1e-16 |loss| / h
// ~ 1e-10, so we require |fd - grad| <= 1e-8 + 1e-6 |grad|. Ratios stay >= 1e-2 away from the
// clip bounds (fixtures.ts BOUNDARY_MARGIN), so no step crosses a kink.
import { describe, expect, it } from 'vitest';
import { countLossTokens, grpoLoss, grpoLossF64, type GrpoBatch, type GrpoLossConfig, type LossType } from '../../src/grpo/index.js';
import { clipSide } from '../../src/grpo/surrogate.js';
import { randomBatch, referenceLoss, sliceBatch, type RatioMode } from './fixtures.js';

const H = 1e-6;
const ABS_TOL = 1e-8;
const REL_TOL = 1e-6;
const LOSS_TYPES: LossType[] = ['grpo', 'bnpo', 'dapo', 'dr_grpo'];
const EPS_LOW = 0.2;
const EPS_HIGH = 0.28;
// 5 sequences (ragged), tokens 2 and 9 masked, sequence 1 truncated.
const LENGTHS = [4, 3, 5, 2, 3];
const TRUNCATED = [0, 1, 0, 0, 0];
const MASKED = [2, 9];

function config(lossType: LossType, beta: number, maskTruncated: boolean): GrpoLossConfig {
  return { beta, epsilonLow: EPS_LOW, epsilonHigh: EPS_HIGH, lossType, maxCompletionLength: 6, maskTruncated };
}

function isLossToken(batch: GrpoBatch, t: number, maskTruncated: boolean): boolean {
  if (batch.mask[t] === 0) return false;
  let b = 0;
  while ((batch.offsets[b + 1] as number) <= t) b++;
  return !(maskTruncated && batch.truncated[b] !== 0);
}

const cases: Array<[LossType, number, boolean, RatioMode, number]> = [];
for (const lt of LOSS_TYPES)
  for (const beta of [0, 0.04])
    for (const mt of [false, true])
      for (const mode of ['inside', 'outside'] as RatioMode[]) cases.push([lt, beta, mt, mode, 1000 + cases.length]);

describe('finite differences: grad = dLoss/dlogp', () => {
  it.each(cases)('%s beta=%s maskTruncated=%s ratios %s (seed %s)', (lossType, beta, maskTruncated, mode, seed) => {
    const batch = randomBatch({
      seed,
      lengths: LENGTHS,
      mode,
      epsilonLow: EPS_LOW,
      epsilonHigh: EPS_HIGH,
      truncated: TRUNCATED,
      maskedTokens: MASKED,
    });
    const cfg = config(lossType, beta, maskTruncated);
    const { loss, grad } = grpoLossF64(batch, cfg);
    expect(loss).toBeCloseTo(referenceLoss(batch, cfg), 12);

    const T = batch.logp.length;
    let clippedLow = 0;
    let clippedHigh = 0;
    let checked = 0;
    for (let t = 0; t < T; t++) {
      if (!isLossToken(batch, t, maskTruncated)) {
        expect(grad[t]).toBe(0); // masked or truncated-and-filtered: exactly zero
        continue;
      }
      const plus = Float64Array.from(batch.logp);
      const minus = Float64Array.from(batch.logp);
      plus[t] = (plus[t] as number) + H;
      minus[t] = (minus[t] as number) - H;
      const fd =
        (grpoLossF64({ ...batch, logp: plus }, cfg).loss - grpoLossF64({ ...batch, logp: minus }, cfg).loss) / (2 * H);
      const g = grad[t] as number;
      expect(Math.abs(fd - g), `token ${t}: fd ${fd} vs grad ${g}`).toBeLessThanOrEqual(ABS_TOL + REL_TOL * Math.abs(g));
      checked++;
      let b = 0;
      while ((batch.offsets[b + 1] as number) <= t) b++;
      const side = clipSide(
        Math.exp((batch.logp[t] as number) - (batch.oldLogp[t] as number)),
        batch.advantages[b] as number,
        EPS_LOW,
        EPS_HIGH,
      );
      if (side < 0) clippedLow++;
      if (side > 0) clippedHigh++;
      if (side !== 0 && beta === 0) expect(g).toBe(0); // the clip's zero-gradient region
    }
    expect(checked).toBeGreaterThan(8);
    if (mode === 'outside') {
      expect(clippedLow).toBeGreaterThan(0);
      expect(clippedHigh).toBeGreaterThan(0);
    } else {
      expect(clippedLow + clippedHigh).toBe(0);
    }
    // The float32 result is the float64 one rounded once.
    const f32 = grpoLoss(batch, cfg);
    expect(f32.loss).toBe(loss);
    expect(Array.from(f32.grad)).toEqual(Array.from(Float32Array.from(grad)));
  });
});

describe('independent TRL-style reference for the loss value', () => {
  it.each(LOSS_TYPES)('%s over 20 random batches', (lossType) => {
    for (let seed = 0; seed < 20; seed++) {
      const batch = randomBatch({
        seed,
        lengths: [1 + (seed % 5), 3, 6, 2],
        mode: seed % 2 === 0 ? 'inside' : 'outside',
        epsilonLow: EPS_LOW,
        epsilonHigh: EPS_HIGH,
        truncated: [seed % 3 === 0 ? 1 : 0, 0, 1, 0],
        maskedTokens: [seed % 4],
      });
      for (const beta of [0, 0.1]) {
        for (const maskTruncated of [false, true]) {
          const cfg = config(lossType, beta, maskTruncated);
          expect(grpoLossF64(batch, cfg).loss).toBeCloseTo(referenceLoss(batch, cfg), 12);
        }
      }
    }
  });
});

describe('dapo micro-batches with numItemsInBatch sum to the full batch', () => {
  it.each([false, true])('maskTruncated=%s', (maskTruncated) => {
    const full = randomBatch({
      seed: 77,
      lengths: [4, 3, 5, 2, 3, 6],
      mode: 'outside',
      epsilonLow: EPS_LOW,
      epsilonHigh: EPS_HIGH,
      truncated: [0, 1, 0, 0, 1, 0],
      maskedTokens: [3, 10],
    });
    for (const beta of [0, 0.04]) {
      const bnpoFull = grpoLossF64(full, config('bnpo', beta, maskTruncated));
      const dapoFull = grpoLossF64(full, config('dapo', beta, maskTruncated));
      // Over the whole generation batch, dapo and bnpo are the same token mean.
      expect(dapoFull.loss).toBeCloseTo(bnpoFull.loss, 14);

      const numItemsInBatch = countLossTokens(full, maskTruncated);
      const cuts = [0, 2, 3, 6]; // micro-batches of 2, 1 and 3 sequences
      let sum = 0;
      const grads: number[] = [];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const micro = { ...sliceBatch(full, cuts[i]!, cuts[i + 1]!), numItemsInBatch };
        const r = grpoLossF64(micro, config('dapo', beta, maskTruncated));
        sum += r.loss;
        grads.push(...r.grad);
      }
      expect(sum).toBeCloseTo(dapoFull.loss, 14);
      expect(sum).toBeCloseTo(bnpoFull.loss, 14);
      grads.forEach((g, t) => expect(g).toBeCloseTo(dapoFull.grad[t] as number, 14));

      // bnpo normalises each micro-batch by its own count, so it does not sum to the full batch.
      let bnpoSum = 0;
      for (let i = 0; i + 1 < cuts.length; i++) {
        bnpoSum += grpoLossF64(sliceBatch(full, cuts[i]!, cuts[i + 1]!), config('bnpo', beta, maskTruncated)).loss;
      }
      expect(Math.abs(bnpoSum - bnpoFull.loss)).toBeGreaterThan(1e-3);
    }
  });
});
