/**
 * Per-token KL penalty against the reference model, forward and backward as a pair: the "k3"
 * estimator of KL(pi_theta || pi_ref) (Schulman 2020, "Approximating KL Divergence"), as in
 * DeepSeekMath GRPO (arXiv 2402.03300, eq. 4) and TRL GRPOTrainer:
 *
 *   kl(logp) = exp(ref - logp) - (ref - logp) - 1          (>= 0, unbiased, low variance)
 *   d kl / d logp = -exp(ref - logp) + 1
 *
 * Both use expm1 so a token whose log-probs agree (ref ~ logp) keeps full precision instead of
 * cancelling 1 - 1.
 */

/** k3 KL estimate of one token: exp(d) - d - 1 with d = ref - logp. */
export function klForward(refLogp: number, logp: number): number {
  const d = refLogp - logp;
  return Math.expm1(d) - d;
}

/** d klForward / d logp = 1 - exp(ref - logp). */
export function klBackward(refLogp: number, logp: number): number {
  return -Math.expm1(refLogp - logp);
}
