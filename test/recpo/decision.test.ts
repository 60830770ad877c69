// RecPO's decision head and decision loss (src/recpo/decision.ts, decision-loss.ts) against
// hand-derived values and central finite differences of the float64 functions.
import { describe, expect, it } from 'vitest';
import { argmax, decisionHead, ndcgRankReward, similarityLogits, softmax } from '../../src/recpo/decision.js';
import { bestOfGroups, decisionLoss } from '../../src/recpo/decision-loss.js';
import { mulberry32 } from '../helpers/tiny-models.js';

function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}

describe('decision head by hand', () => {
  it('two orthogonal labels, h along the first', () => {
    // u = (1, 0), v0 = (1, 0), v1 = (0, 1), tau = 0.5: s = (2, 0),
    // p1 = 1 / (e^2 + 1), log p0 = 2 - log(e^2 + 1),
    // g_u = ((1 - p0) v0 - p1 v1) / tau = (2 p1, -2 p1); u . g_u = 2 p1; dh = (0, -2 p1) / |h|
    const h = [3, 0]; // |h| = 3
    const E = [5, 0, 0, 0.5]; // norms do not matter
    const d = decisionHead(h, E, 0, 0.5, { withLabelGrad: true });
    const p1 = 1 / (Math.exp(2) + 1);
    expect(d.logits[0]).toBeCloseTo(2, 14);
    expect(d.logits[1]).toBeCloseTo(0, 14);
    expect(d.probs[1]).toBeCloseTo(p1, 14);
    expect(d.logpGold).toBeCloseTo(2 - Math.log(Math.exp(2) + 1), 14);
    expect(d.dh[0]).toBeCloseTo(0, 14);
    expect(d.dh[1]).toBeCloseTo((-2 * p1) / 3, 14);
    // dE: g_0 = (1 - p0) u / tau = (2 p1, 0), v0 = (1, 0): projection removes it all -> (0, 0);
    // g_1 = -p1 u / tau = (-2 p1, 0), v1 = (0, 1): stays, divided by |e_1| = 0.5 -> (-4 p1, 0)
    expect(Array.from(d.dE!).map((x) => +x.toFixed(12))).toEqual([0, 0, +(-4 * p1).toFixed(12), 0]);
  });

  it('cosine similarity is scale-free and bounded by 1 / tau', () => {
    const s = similarityLogits([1, 2, 3], [2, 4, 6, -1, -2, -3, 3, -1, 0], 0.02);
    expect(s[0]).toBeCloseTo(50, 10);
    expect(s[1]).toBeCloseTo(-50, 10);
    expect(s[2]).toBeCloseTo((3 - 2) / (Math.sqrt(14) * Math.sqrt(10)) / 0.02, 10);
    expect(argmax(s)).toBe(0);
    const p = softmax([1000, 1000, -1000]);
    expect(p[0]).toBeCloseTo(0.5, 14);
    expect(p[2]).toBe(0);
  });

  it('NDCG rank reward: 1 at rank 1, 1/log2(3) at rank 2, ties rank gold last', () => {
    expect(ndcgRankReward([3, 1, 2], 0)).toBe(1);
    expect(ndcgRankReward([3, 1, 2], 2)).toBeCloseTo(1 / Math.log2(3), 14);
    expect(ndcgRankReward([3, 1, 2], 1)).toBeCloseTo(0.5, 14);
    expect(ndcgRankReward([1, 1, 1, 1], 2)).toBeCloseTo(1 / Math.log2(5), 14);
  });

  it('rejects bad input with the value', () => {
    expect(() => decisionHead([1, 2], [1, 2, 3], 0, 0.02)).toThrow(/3 values, not a positive multiple of the hidden size 2/);
    expect(() => decisionHead([1, 2], [1, 2, 3, 4], 2, 0.02)).toThrow(/gold label 2 is outside \[0, 2\)/);
    expect(() => decisionHead([1, NaN], [1, 2, 3, 4], 0, 0.02)).toThrow(/hidden\[1\] = NaN/);
    expect(() => decisionHead([1, 2], [1, 2, 3, 4], 0, 0)).toThrow(/similarity_temperature must be a finite number > 0, got 0/);
  });
});

describe('decision head by finite differences', () => {
  const C = 16;
  const L = 5;
  const rand = uniform(3);
  const h = Array.from({ length: C }, () => rand() * 2 - 1);
  const E = Array.from({ length: L * C }, () => rand() * 2 - 1);
  const step = 1e-6;

  it.each([0.02, 0.3])('d log p(gold) / dh and / dE match (tau %s)', (tau) => {
    const d = decisionHead(h, E, 3, tau, { withLabelGrad: true });
    const f = (hh: number[], EE: number[]) => decisionHead(hh, EE, 3, tau).logpGold;
    for (let i = 0; i < C; i++) {
      const up = [...h];
      const dn = [...h];
      up[i]! += step;
      dn[i]! -= step;
      const fd = (f(up, E) - f(dn, E)) / (2 * step);
      expect(Math.abs(fd - d.dh[i]!), `dh[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    }
    for (let i = 0; i < L * C; i++) {
      const up = [...E];
      const dn = [...E];
      up[i]! += step;
      dn[i]! -= step;
      const fd = (f(h, up) - f(h, dn)) / (2 * step);
      expect(Math.abs(fd - d.dE![i]!), `dE[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    }
    // the gradient is orthogonal to h (scaling h leaves the cosine unchanged)
    expect(Math.abs(d.dh.reduce((a, v, i) => a + v * h[i]!, 0))).toBeLessThan(1e-10);
  });

  it('decision loss: clipped PPO value and dLoss/dh match finite differences, inside and outside the clip', () => {
    const hs = [0, 1, 2].map(() => Array.from({ length: C }, () => rand() * 2 - 1));
    const golds = [0, 4, 2];
    const logp0 = hs.map((x, k) => decisionHead(x, E, golds[k]!, 0.1).logpGold);
    // old log-probs: equal (ratio 1), far below (ratio > 1 + epsHigh, A > 0: clipped, no gradient), slightly off
    const old = [logp0[0]!, logp0[1]! - 1, logp0[2]! + 0.05];
    const adv = [0.7, 1.3, -0.4];
    const cfg = { tau: 0.1, epsilonLow: 0.2, epsilonHigh: 0.28 };
    const terms = (xs: number[][]) => xs.map((x, k) => ({ hidden: x, gold: golds[k]!, oldLogpGold: old[k]!, advantage: adv[k]! }));
    const r = decisionLoss(terms(hs), E, cfg);
    // by hand: term 0 -> -0.7, term 1 -> -(1.28 * 1.3), term 2 -> -min(ratio A, clip A) with ratio = e^-0.05 (inside)
    const want = (-0.7 - 1.28 * 1.3 - Math.exp(-0.05) * -0.4) / 3;
    expect(r.loss).toBeCloseTo(want, 12);
    expect(r.clipFraction).toBeCloseTo(1 / 3, 14);
    expect(r.dhidden[1]!.every((v) => v === 0)).toBe(true);
    for (let k = 0; k < 3; k++)
      for (let i = 0; i < C; i++) {
        const up = hs.map((x) => [...x]);
        const dn = hs.map((x) => [...x]);
        up[k]![i]! += step;
        dn[k]![i]! -= step;
        const fd = (decisionLoss(terms(up), E, cfg).loss - decisionLoss(terms(dn), E, cfg).loss) / (2 * step);
        expect(Math.abs(fd - r.dhidden[k]![i]!), `term ${k} dh[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      }
  });

  it('best of each group by advantage', () => {
    expect(bestOfGroups([0.1, 0.5, -1, 0.5, 2, 0, 0, 0], 4)).toEqual([1, 4]);
    expect(() => bestOfGroups([1, 2, 3], 2)).toThrow(/3 advantages do not split into groups of 2/);
  });
});
