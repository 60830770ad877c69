/**
 * RecPO's decision-level loss: a clipped PPO term on log p(gold | hidden state) for the
 * highest-advantage sample of each group only (R2ec's RecPO), averaged over the groups.
 *
 *   ratio_g = exp(log p_g - old log p_g)
 *   loss    = (1 / #groups) * sum_g -min(ratio_g A_g, clip(ratio_g, 1 - epsLow, 1 + epsHigh) A_g)
 *   dLoss/dh_g = (1 / #groups) * surrogate'(ratio_g) * d log p_g / d h_g   (decision.ts)
 *
 * The old log p(gold) comes from the rollout policy (the embedding forward that scored the
 * rewards, before any update), never from the model being differentiated.
 */
import { surrogateBackward, surrogateForward } from '../grpo/surrogate.js';
import { decisionHead } from './decision.js';

/** Index of the highest-advantage sample in each group of G (the first on ties). */
export function bestOfGroups(advantages: ArrayLike<number>, groupSize: number): number[] {
  if (!Number.isInteger(groupSize) || groupSize < 1 || advantages.length % groupSize !== 0)
    throw new RangeError(`src/recpo bestOfGroups: ${advantages.length} advantages do not split into groups of ${groupSize}`);
  const out: number[] = [];
  for (let g = 0; g < advantages.length / groupSize; g++) {
    let best = g * groupSize;
    for (let i = best + 1; i < (g + 1) * groupSize; i++) if ((advantages[i] as number) > (advantages[best] as number)) best = i;
    out.push(best);
  }
  return out;
}

export interface DecisionTerm {
  /** The sample's hidden state [C] under the policy being trained. */
  hidden: ArrayLike<number>;
  gold: number;
  /** log p(gold) of the same sample under the rollout policy. */
  oldLogpGold: number;
  advantage: number;
}

export interface DecisionLossResult {
  loss: number;
  /** dLoss/dhidden per term [C] each (already divided by the number of terms). */
  dhidden: Float64Array[];
  /** dLoss/dE [L * C] summed over the terms, when withLabelGrad. */
  dE: Float64Array | null;
  /** log p(gold) of each term under the current policy. */
  logpGold: number[];
  /** Fraction of terms whose clip zeroed the gradient. */
  clipFraction: number;
}

export function decisionLoss(
  terms: readonly DecisionTerm[],
  E: ArrayLike<number>,
  cfg: { tau: number; epsilonLow: number; epsilonHigh: number; withLabelGrad?: boolean },
): DecisionLossResult {
  const n = terms.length;
  let loss = 0;
  let clipped = 0;
  const dhidden: Float64Array[] = [];
  const logpGold: number[] = [];
  let dE: Float64Array | null = cfg.withLabelGrad ? new Float64Array(E.length) : null;
  terms.forEach((t, k) => {
    if (!Number.isFinite(t.oldLogpGold) || !Number.isFinite(t.advantage))
      throw new RangeError(`src/recpo decisionLoss: term ${k} has oldLogpGold ${t.oldLogpGold}, advantage ${t.advantage} (must be finite)`);
    const d = decisionHead(t.hidden, E, t.gold, cfg.tau, { withLabelGrad: cfg.withLabelGrad ?? false });
    const ratio = Math.exp(d.logpGold - t.oldLogpGold);
    loss += surrogateForward(ratio, t.advantage, cfg.epsilonLow, cfg.epsilonHigh) / n;
    // d surrogate / d logp (the ratio's derivative included), then the chain rule to h (and E)
    const g = surrogateBackward(ratio, t.advantage, cfg.epsilonLow, cfg.epsilonHigh) / n;
    if (g === 0 && t.advantage !== 0) clipped++;
    dhidden.push(d.dh.map((v) => v * g));
    if (dE && d.dE) for (let i = 0; i < dE.length; i++) dE[i]! += g * d.dE[i]!;
    logpGold.push(d.logpGold);
  });
  if (n === 0) dE = cfg.withLabelGrad ? new Float64Array(E.length) : null;
  return { loss, dhidden, dE, logpGold, clipFraction: n ? clipped / n : 0 };
}
