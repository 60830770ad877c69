/**
 * The clipped policy-gradient surrogate of one token, forward and backward as a pair.
 *
 * PPO clipped objective (Schulman et al. 2017) as used by DeepSeekMath GRPO (arXiv 2402.03300),
 * with DAPO's decoupled "clip-higher" bounds (Yu et al. 2025, arXiv 2503.14476) and TRL
 * GRPOTrainer's form:
 *
 *   ratio = exp(logp - oldLogp)
 *   surrogate = -min(ratio * A, clip(ratio, 1 - epsLow, 1 + epsHigh) * A)
 *
 * Its derivative w.r.t. logp (d ratio / d logp = ratio):
 *   0            where the clip is active and the clipped branch is the min, i.e.
 *                ratio > 1 + epsHigh with A > 0 ("high"), or ratio < 1 - epsLow with A < 0 ("low");
 *   -A * ratio   everywhere else (inside the range both branches are equal; outside it with the
 *                other sign of A the unclipped branch is the smaller one).
 *
 * Ties: at ratio exactly 1 - epsLow or 1 + epsHigh the loss is continuous but has a kink; we take
 * the unclipped side (gradient -A * ratio), which is what torch gives (clamp passes the gradient
 * at its bounds, and min splits it evenly between two equal branches that then sum to -A * ratio).
 * With A = 0 both sides are 0. The same strict inequalities define TRL's clip_ratio metrics.
 */

/** Which clip zeroes this token's gradient: -1 = low, +1 = high, 0 = none. */
export function clipSide(
  ratio: number,
  advantage: number,
  epsilonLow: number,
  epsilonHigh: number,
): -1 | 0 | 1 {
  if (advantage > 0 && ratio > 1 + epsilonHigh) return 1;
  if (advantage < 0 && ratio < 1 - epsilonLow) return -1;
  return 0;
}

/** -min(ratio * A, clip(ratio, 1 - epsLow, 1 + epsHigh) * A) for one token. */
export function surrogateForward(
  ratio: number,
  advantage: number,
  epsilonLow: number,
  epsilonHigh: number,
): number {
  const clipped = Math.min(Math.max(ratio, 1 - epsilonLow), 1 + epsilonHigh);
  return -Math.min(ratio * advantage, clipped * advantage);
}

/** d surrogateForward / d logp for one token (see the file header for the branches and ties). */
export function surrogateBackward(
  ratio: number,
  advantage: number,
  epsilonLow: number,
  epsilonHigh: number,
): number {
  return clipSide(ratio, advantage, epsilonLow, epsilonHigh) === 0 ? -advantage * ratio : 0;
}
