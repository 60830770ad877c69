// The GRPO loss and its gradient worked out by hand on a tiny batch: 2 sequences of 3 and 2
// tokens, offsets [0, 3, 5], advantages A = [1, -0.5]; then clipping on each side, the KL term,
// masking, DAPO overlong filtering, tie handling, and the error messages.
import { describe, expect, it } from 'vitest';
import { grpoLoss, grpoLossF64, type GrpoBatch, type GrpoLossConfig, type LossType } from '../../src/grpo/index.js';
import { clipSide, surrogateBackward, surrogateForward } from '../../src/grpo/surrogate.js';

const LN2 = Math.log(2);

function tiny(overrides: Partial<GrpoBatch> = {}): GrpoBatch {
  const logp = new Float32Array([-1, -2, -0.5, -1.5, -3]);
  return {
    offsets: new Int32Array([0, 3, 5]),
    logp,
    oldLogp: logp.slice(), // num_iterations = 1: ratio = 1
    mask: new Uint8Array([1, 1, 1, 1, 1]),
    advantages: new Float32Array([1, -0.5]),
    truncated: new Uint8Array([0, 0]),
    ...overrides,
  };
}

function cfg(lossType: LossType, extra: Partial<GrpoLossConfig> = {}): GrpoLossConfig {
  return { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.28, lossType, maxCompletionLength: 4, maskTruncated: false, ...extra };
}

function expectGrad(grad: Float32Array, expected: number[]): void {
  expect(grad).toBeInstanceOf(Float32Array);
  expect(grad.length).toBe(expected.length);
  expected.forEach((e, t) => expect(grad[t], `grad[${t}]`).toBeCloseTo(e, 6));
}

describe('ratio = 1 (logp == oldLogp), beta = 0: per-token loss = -A, dl/dlogp = -A', () => {
  // per-token losses: sequence 0: [-1, -1, -1], sequence 1: [0.5, 0.5]; token sum -3 + 1 = -2
  it('grpo: mean of sequence means', () => {
    // (mean(-1,-1,-1) + mean(0.5,0.5)) / 2 = (-1 + 0.5) / 2 = -0.25
    // grad: seq 0: -1 / (2 * 3) = -1/6; seq 1: 0.5 / (2 * 2) = 0.125
    const r = grpoLoss(tiny(), cfg('grpo'));
    expect(r.loss).toBeCloseTo(-0.25, 12);
    expectGrad(r.grad, [-1 / 6, -1 / 6, -1 / 6, 0.125, 0.125]);
  });
  it('bnpo: token mean over the batch', () => {
    // -2 / 5 = -0.4; grad: -1/5 = -0.2 and 0.5/5 = 0.1
    const r = grpoLoss(tiny(), cfg('bnpo'));
    expect(r.loss).toBeCloseTo(-0.4, 12);
    expectGrad(r.grad, [-0.2, -0.2, -0.2, 0.1, 0.1]);
  });
  it('dapo: token mean over the generation batch (this batch by default, else numItemsInBatch)', () => {
    const r = grpoLoss(tiny(), cfg('dapo'));
    expect(r.loss).toBeCloseTo(-0.4, 12);
    expectGrad(r.grad, [-0.2, -0.2, -0.2, 0.1, 0.1]);
    // numItemsInBatch = 10 (this micro-batch is half of the tokens): -2 / 10 = -0.2
    const r10 = grpoLoss(tiny({ numItemsInBatch: 10 }), cfg('dapo'));
    expect(r10.loss).toBeCloseTo(-0.2, 12);
    expectGrad(r10.grad, [-0.1, -0.1, -0.1, 0.05, 0.05]);
  });
  it('dr_grpo: token sum / (B * maxCompletionLength)', () => {
    // -2 / (2 * 4) = -0.25; grad: -1/8 = -0.125 and 0.5/8 = 0.0625
    const r = grpoLoss(tiny(), cfg('dr_grpo'));
    expect(r.loss).toBeCloseTo(-0.25, 12);
    expectGrad(r.grad, [-0.125, -0.125, -0.125, 0.0625, 0.0625]);
  });
  it('the gradient flows at ratio 1 even though the loss value equals -A', () => {
    expect(grpoLoss(tiny(), cfg('bnpo')).grad.every((g) => g !== 0)).toBe(true);
  });
});

describe('mask and maskTruncated', () => {
  // token 2 (third of sequence 0) masked: sequence 0 now [-1, -1], sequence 1 [0.5, 0.5]; sum -1
  const masked = (): GrpoBatch => tiny({ mask: new Uint8Array([1, 1, 0, 1, 1]) });
  it('masked tokens do not count and get zero gradient', () => {
    // grpo: (-1 + 0.5) / 2 = -0.25, grad seq 0: -1/(2*2) = -0.25, seq 1: 0.125
    const g = grpoLoss(masked(), cfg('grpo'));
    expect(g.loss).toBeCloseTo(-0.25, 12);
    expectGrad(g.grad, [-0.25, -0.25, 0, 0.125, 0.125]);
    // bnpo: -1 / 4 = -0.25, grad -1/4 and 0.5/4
    const b = grpoLoss(masked(), cfg('bnpo'));
    expect(b.loss).toBeCloseTo(-0.25, 12);
    expectGrad(b.grad, [-0.25, -0.25, 0, 0.125, 0.125]);
    // dr_grpo: -1 / 8 = -0.125 (the normaliser ignores the mask)
    const d = grpoLoss(masked(), cfg('dr_grpo'));
    expect(d.loss).toBeCloseTo(-0.125, 12);
    expectGrad(d.grad, [-0.125, -0.125, 0, 0.0625, 0.0625]);
  });
  it('values at masked tokens are never read (NaN allowed there)', () => {
    const batch = masked();
    const logp = Float32Array.from(batch.logp);
    logp[2] = NaN;
    const r = grpoLoss({ ...batch, logp, refLogp: new Float32Array([-1, -2, NaN, -1.5, -3]) }, cfg('bnpo', { beta: 0.04 }));
    expect(r.loss).toBeCloseTo(-0.25, 12); // ref == logp on loss tokens: kl = 0
    expect(r.grad[2]).toBe(0);
  });
  const truncated = (): GrpoBatch => tiny({ truncated: new Uint8Array([0, 1]) });
  it('maskTruncated drops truncated sequences whole (DAPO overlong filtering)', () => {
    // grpo: (-1 + 0) / 2 = -0.5 (the dropped sequence still counts in B, as in TRL)
    const g = grpoLoss(truncated(), cfg('grpo', { maskTruncated: true }));
    expect(g.loss).toBeCloseTo(-0.5, 12);
    expectGrad(g.grad, [-1 / 6, -1 / 6, -1 / 6, 0, 0]);
    // bnpo: -3 / 3 = -1
    const b = grpoLoss(truncated(), cfg('bnpo', { maskTruncated: true }));
    expect(b.loss).toBeCloseTo(-1, 12);
    expectGrad(b.grad, [-1 / 3, -1 / 3, -1 / 3, 0, 0]);
    // dapo: same as bnpo here
    expect(grpoLoss(truncated(), cfg('dapo', { maskTruncated: true })).loss).toBeCloseTo(-1, 12);
    // dr_grpo: -3 / (2 * 4) = -0.375
    const d = grpoLoss(truncated(), cfg('dr_grpo', { maskTruncated: true }));
    expect(d.loss).toBeCloseTo(-0.375, 12);
    expectGrad(d.grad, [-0.125, -0.125, -0.125, 0, 0]);
  });
  it('maskTruncated off: truncated sequences count as usual', () => {
    expect(grpoLoss(truncated(), cfg('grpo')).loss).toBeCloseTo(-0.25, 12);
    expect(grpoLoss(truncated(), cfg('bnpo')).loss).toBeCloseTo(-0.4, 12);
  });
  it('a batch whose tokens are all filtered has loss 0 and zero gradient', () => {
    for (const lt of ['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const) {
      const r = grpoLoss(tiny({ truncated: new Uint8Array([1, 1]) }), cfg(lt, { maskTruncated: true }));
      expect(r.loss).toBe(0);
      expect(r.grad.every((g) => g === 0)).toBe(true);
      expect(r.metrics['clip_ratio/region_mean']).toBe(0);
    }
  });
  it('an empty batch (B = 0) has loss 0', () => {
    const empty: GrpoBatch = {
      offsets: new Int32Array([0]),
      logp: new Float32Array(0),
      oldLogp: new Float32Array(0),
      mask: new Uint8Array(0),
      advantages: new Float32Array(0),
      truncated: new Uint8Array(0),
    };
    for (const lt of ['grpo', 'bnpo', 'dapo', 'dr_grpo'] as const) {
      const r = grpoLoss(empty, cfg(lt));
      expect(r.loss).toBe(0);
      expect(r.grad.length).toBe(0);
    }
  });
});

describe('clipping on each side (epsilonLow 0.2, epsilonHigh 0.28: range [0.8, 1.28])', () => {
  // oldLogp = -1 everywhere, logp = -1 + ln(ratio), ratios [1.5, 1.1, 0.5 | 0.5, 1.5], A = [1, -1]
  //  t  ratio  A   -min(r*A, clip(r)*A)              dl/dlogp
  //  0  1.5   +1   -min(1.5, 1.28)   = -1.28  high   0      (clip active, clipped branch)
  //  1  1.1   +1   -min(1.1, 1.1)    = -1.1          -1.1
  //  2  0.5   +1   -min(0.5, 0.8)    = -0.5          -0.5   (below range but A > 0: unclipped)
  //  3  0.5   -1   -min(-0.5, -0.8)  =  0.8   low    0      (clip active, clipped branch)
  //  4  1.5   -1   -min(-1.5, -1.28) =  1.5          +1.5   (above range but A < 0: unclipped)
  // token sum: -1.28 - 1.1 - 0.5 + 0.8 + 1.5 = -0.58
  const ratios = [1.5, 1.1, 0.5, 0.5, 1.5];
  const batch = (): GrpoBatch =>
    tiny({
      oldLogp: new Float64Array(5).fill(-1),
      logp: Float64Array.from(ratios, (r) => -1 + Math.log(r)),
      advantages: new Float64Array([1, -1]),
    });
  it('bnpo: -0.58 / 5 = -0.116', () => {
    const r = grpoLoss(batch(), cfg('bnpo'));
    expect(r.loss).toBeCloseTo(-0.116, 12);
    expectGrad(r.grad, [0, -0.22, -0.1, 0, 0.3]);
  });
  it('grpo: (-2.88/3 + 2.3/2) / 2 = (-0.96 + 1.15) / 2 = 0.095', () => {
    const r = grpoLoss(batch(), cfg('grpo'));
    expect(r.loss).toBeCloseTo(0.095, 12);
    expectGrad(r.grad, [0, -1.1 / 6, -0.5 / 6, 0, 1.5 / 4]);
  });
  it('dr_grpo (maxCompletionLength 3): -0.58 / 6', () => {
    const r = grpoLoss(batch(), cfg('dr_grpo', { maxCompletionLength: 3 }));
    expect(r.loss).toBeCloseTo(-0.58 / 6, 12);
    expectGrad(r.grad, [0, -1.1 / 6, -0.5 / 6, 0, 1.5 / 6]);
  });
  it('clip metrics: one low and one high token of five', () => {
    const m = grpoLoss(batch(), cfg('bnpo')).metrics;
    expect(m.loss).toBeCloseTo(-0.116, 12);
    expect(m['clip_ratio/low_mean']).toBeCloseTo(0.2, 12);
    expect(m['clip_ratio/high_mean']).toBeCloseTo(0.2, 12);
    expect(m['clip_ratio/region_mean']).toBeCloseTo(0.4, 12);
    expect(m['clip_ratio/low_min']).toBe(0); // sequence 0 has no low-clipped token
    expect(m['clip_ratio/high_max']).toBeCloseTo(1 / 3, 12); // sequence 0: 1 of 3
    expect(m.kl).toBeUndefined(); // no refLogp
  });
  it('float32 inputs give the same numbers to float32 precision', () => {
    const b = batch();
    const r = grpoLoss({ ...b, logp: Float32Array.from(b.logp), oldLogp: Float32Array.from(b.oldLogp) }, cfg('bnpo'));
    expect(r.loss).toBeCloseTo(-0.116, 6);
    expectGrad(r.grad, [0, -0.22, -0.1, 0, 0.3]);
  });
});

describe('KL term (beta = 0.04, refLogp = logp + ln 2)', () => {
  // per token: d = ref - logp = ln 2, k3 = e^d - d - 1 = 2 - ln 2 - 1 = 0.30685282,
  // dk3/dlogp = 1 - e^d = -1
  const batch = (): GrpoBatch => {
    const b = tiny();
    return { ...b, refLogp: Float64Array.from(b.logp, (x) => x + LN2) };
  };
  const k3 = 1 - LN2;
  it('bnpo: -0.4 + 0.04 * 0.30685282 = -0.38772589', () => {
    const r = grpoLoss(batch(), cfg('bnpo', { beta: 0.04 }));
    expect(r.loss).toBeCloseTo(-0.4 + 0.04 * k3, 12);
    expect(r.loss).toBeCloseTo(-0.38772589, 8);
    // grad: seq 0 (-1 + 0.04 * -1) / 5 = -0.208; seq 1 (0.5 - 0.04) / 5 = 0.092
    expectGrad(r.grad, [-0.208, -0.208, -0.208, 0.092, 0.092]);
    expect(r.metrics.kl).toBeCloseTo(k3, 12);
  });
  it('grpo: -0.25 + 0.04 * 0.30685282', () => {
    const r = grpoLoss(batch(), cfg('grpo', { beta: 0.04 }));
    expect(r.loss).toBeCloseTo(-0.25 + 0.04 * k3, 12);
    // grad: seq 0 -1.04 / 6, seq 1 0.46 / 4 = 0.115
    expectGrad(r.grad, [-1.04 / 6, -1.04 / 6, -1.04 / 6, 0.115, 0.115]);
  });
  it('beta = 0 ignores refLogp in the loss but still reports kl when given', () => {
    const r = grpoLoss(batch(), cfg('bnpo'));
    expect(r.loss).toBeCloseTo(-0.4, 12);
    expect(r.metrics.kl).toBeCloseTo(k3, 12);
  });
  it('beta = 0 works without refLogp', () => {
    expect(grpoLoss(tiny(), cfg('bnpo')).metrics.kl).toBeUndefined();
  });
});

describe('ties at the clip bounds take the unclipped side', () => {
  // ratio exactly 1 + epsHigh = 1.25 with A > 0: not clipped, gradient -A * ratio (torch's clamp
  // passes the gradient at its bounds); strictly beyond it the gradient is 0.
  it('upper bound', () => {
    expect(clipSide(1.25, 2, 0.25, 0.25)).toBe(0);
    expect(surrogateBackward(1.25, 2, 0.25, 0.25)).toBe(-2.5);
    expect(surrogateForward(1.25, 2, 0.25, 0.25)).toBe(-2.5);
    expect(surrogateBackward(1.2500001, 2, 0.25, 0.25)).toBe(0);
    expect(surrogateForward(1.2500001, 2, 0.25, 0.25)).toBe(-2.5);
  });
  it('lower bound', () => {
    expect(clipSide(0.75, -2, 0.25, 0.25)).toBe(0);
    expect(surrogateBackward(0.75, -2, 0.25, 0.25)).toBe(1.5);
    expect(surrogateBackward(0.7499999, -2, 0.25, 0.25)).toBe(0);
    expect(surrogateForward(0.7499999, -2, 0.25, 0.25)).toBe(1.5);
  });
  it('A = 0 gives zero loss and gradient at any ratio', () => {
    for (const r of [0.1, 1, 5]) {
      expect(surrogateForward(r, 0, 0.2, 0.28) === 0).toBe(true);
      expect(surrogateBackward(r, 0, 0.2, 0.28) === 0).toBe(true);
    }
  });
});

describe('loss errors name the field and value', () => {
  it('beta > 0 without refLogp', () => {
    expect(() => grpoLoss(tiny(), cfg('bnpo', { beta: 0.04 }))).toThrow(/config.beta = 0.04 > 0 needs batch.refLogp/);
  });
  it('array lengths', () => {
    expect(() => grpoLoss(tiny({ oldLogp: new Float32Array(4) }), cfg('grpo'))).toThrow(/oldLogp.length = 4, expected offsets\[B\] = 5/);
    expect(() => grpoLoss(tiny({ mask: new Uint8Array(6) }), cfg('grpo'))).toThrow(/mask.length = 6/);
    expect(() => grpoLoss(tiny({ advantages: new Float32Array(3) }), cfg('grpo'))).toThrow(/advantages.length = 3, expected B = 2/);
    expect(() => grpoLoss(tiny({ truncated: new Uint8Array(1) }), cfg('grpo'))).toThrow(/truncated.length = 1/);
    expect(() => grpoLoss(tiny({ refLogp: new Float32Array(2) }), cfg('grpo'))).toThrow(/refLogp.length = 2/);
  });
  it('offsets', () => {
    expect(() => grpoLoss(tiny({ offsets: new Int32Array([1, 3, 5]) }), cfg('grpo'))).toThrow(/offsets\[0\] must be 0, got 1/);
    expect(() => grpoLoss(tiny({ offsets: new Int32Array([0, 4, 3]) }), cfg('grpo'))).toThrow(/offsets\[1\] = 4 > offsets\[2\] = 3/);
  });
  it('non-finite values at loss tokens', () => {
    const logp = new Float32Array([-1, NaN, -0.5, -1.5, -3]);
    expect(() => grpoLoss(tiny({ logp }), cfg('grpo'))).toThrow(/logp\[1\] = NaN is not finite/);
    expect(() => grpoLoss(tiny({ advantages: new Float32Array([1, Infinity]) }), cfg('grpo'))).toThrow(/advantages\[1\] = Infinity/);
    const refLogp = new Float32Array([-1, -2, -0.5, -Infinity, -3]);
    expect(() => grpoLoss(tiny({ refLogp }), cfg('grpo', { beta: 0.1 }))).toThrow(/refLogp\[3\] = -Infinity/);
    expect(() => grpoLoss(tiny({ refLogp }), cfg('grpo'))).toThrow(/refLogp\[3\] = -Infinity/); // kl metric reads it
  });
  it('config values', () => {
    expect(() => grpoLoss(tiny(), cfg('grpo', { beta: -1 }))).toThrow(/config.beta must be a finite number >= 0, got -1/);
    expect(() => grpoLoss(tiny(), cfg('grpo', { epsilonLow: -0.1 }))).toThrow(/config.epsilonLow .* got -0.1/);
    expect(() => grpoLoss(tiny(), cfg('grpo', { epsilonHigh: NaN }))).toThrow(/config.epsilonHigh .* got NaN/);
    expect(() => grpoLoss(tiny(), cfg('ppo' as LossType))).toThrow(/config.lossType must be one of .* got ppo/);
  });
  it('dr_grpo needs maxCompletionLength, at least every sequence length', () => {
    expect(() => grpoLoss(tiny(), cfg('dr_grpo', { maxCompletionLength: undefined }))).toThrow(
      /config.maxCompletionLength must be a positive integer for lossType 'dr_grpo', got undefined/,
    );
    expect(() => grpoLoss(tiny(), cfg('dr_grpo', { maxCompletionLength: 2 }))).toThrow(
      /sequence 0 has 3 loss tokens > config.maxCompletionLength = 2/,
    );
  });
  it('numItemsInBatch: dapo only, and not below this batch count', () => {
    expect(() => grpoLoss(tiny({ numItemsInBatch: 10 }), cfg('bnpo'))).toThrow(/numItemsInBatch = 10 is only used by lossType 'dapo'/);
    expect(() => grpoLoss(tiny({ numItemsInBatch: 4 }), cfg('dapo'))).toThrow(/numItemsInBatch = 4 must be a finite count >= this batch's 5 loss tokens/);
  });
  it('grpoLossF64 shares the same checks', () => {
    expect(() => grpoLossF64(tiny(), cfg('bnpo', { beta: 0.04 }))).toThrow(/needs batch.refLogp/);
  });
});
