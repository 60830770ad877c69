/**
 * RecPO's decision head (R2ec, "Towards Large Recommender Models with Reasoning"): the label
 * distribution given a sequence's hidden state, its log p(gold) and the gradients of that
 * log-prob, all in float64.
 *
 * Shapes: h [C] the sequence's final-norm hidden state at its last row (the `<answer>` token);
 * E [L * C] the label embeddings, row-major, one row per label (src/recpo/label-embeddings.ts).
 *
 *   u = h / |h|,  v_l = e_l / |e_l|            (L2 normalisation; cosine similarity)
 *   s_l = (u . v_l) / tau                      (similarity logits; tau = similarity_temperature)
 *   p = softmax(s),  log p_g = s_g - logsumexp(s)
 *
 * Gradients of log p_g (hand-derived; test/recpo/decision.test.ts checks them by finite
 * differences):
 *   d log p_g / d s_l = [l = g] - p_l
 *   d log p_g / d u   = (v_g - sum_l p_l v_l) / tau                   =: g_u
 *   d log p_g / d h   = (g_u - (u . g_u) u) / |h|                     (through u = h / |h|)
 *   d log p_g / d e_l = (g_l - (v_l . g_l) v_l) / |e_l|,  g_l = ([l = g] - p_l) u / tau
 * The last one is R2ec's variant with gradient through the label embeddings.
 */

/** A vector's L2 norm is floored at this before dividing (as torch's F.normalize eps). */
export const NORM_EPS = 1e-12;

/** R2ec's default similarity temperature. */
export const DEFAULT_SIMILARITY_TEMPERATURE = 0.02;

export interface DecisionOutput {
  /** s_l = cos(h, e_l) / tau [L]. */
  logits: Float64Array;
  /** softmax(logits) [L]. */
  probs: Float64Array;
  /** log p(gold). */
  logpGold: number;
  /** d log p(gold) / d h [C]. */
  dh: Float64Array;
  /** d log p(gold) / d E [L * C], only when asked for (withLabelGrad). */
  dE: Float64Array | null;
}

function norm(x: ArrayLike<number>, off: number, C: number): number {
  let s = 0;
  for (let i = 0; i < C; i++) s += (x[off + i] as number) ** 2;
  return Math.max(Math.sqrt(s), NORM_EPS);
}

function check(h: ArrayLike<number>, E: ArrayLike<number>, tau: number, fn: string): number {
  const C = h.length;
  if (C === 0) throw new RangeError(`src/recpo ${fn}: the hidden state is empty`);
  if (E.length === 0 || E.length % C !== 0)
    throw new RangeError(`src/recpo ${fn}: label embeddings have ${E.length} values, not a positive multiple of the hidden size ${C}`);
  if (!(tau > 0) || !Number.isFinite(tau)) throw new RangeError(`src/recpo ${fn}: similarity_temperature must be a finite number > 0, got ${tau}`);
  for (let i = 0; i < C; i++) if (!Number.isFinite(h[i] as number)) throw new RangeError(`src/recpo ${fn}: hidden[${i}] = ${h[i]} is not finite`);
  return E.length / C;
}

/** Similarity logits s_l = cos(h, e_l) / tau of one hidden state against every label. */
export function similarityLogits(h: ArrayLike<number>, E: ArrayLike<number>, tau: number): Float64Array {
  const C = h.length;
  const L = check(h, E, tau, 'similarityLogits');
  const nh = norm(h, 0, C);
  const s = new Float64Array(L);
  for (let l = 0; l < L; l++) {
    const ne = norm(E, l * C, C);
    let dot = 0;
    for (let i = 0; i < C; i++) dot += (h[i] as number) * (E[l * C + i] as number);
    s[l] = dot / (nh * ne) / tau;
  }
  return s;
}

/** softmax, stable, float64. */
export function softmax(s: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < s.length; i++) m = Math.max(m, s[i] as number);
  const p = new Float64Array(s.length);
  let z = 0;
  for (let i = 0; i < s.length; i++) z += p[i] = Math.exp((s[i] as number) - m);
  for (let i = 0; i < s.length; i++) p[i]! /= z;
  return p;
}

/** The label with the highest similarity (the first on ties): RecPO's decision rule. */
export function argmax(s: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < s.length; i++) if ((s[i] as number) > (s[best] as number)) best = i;
  return best;
}

/** p over labels, log p(gold) and its gradient w.r.t. h (and, withLabelGrad, w.r.t. E). */
export function decisionHead(h: ArrayLike<number>, E: ArrayLike<number>, gold: number, tau: number, opts: { withLabelGrad?: boolean } = {}): DecisionOutput {
  const C = h.length;
  const L = check(h, E, tau, 'decisionHead');
  if (!Number.isInteger(gold) || gold < 0 || gold >= L) throw new RangeError(`src/recpo decisionHead: gold label ${gold} is outside [0, ${L})`);
  const nh = norm(h, 0, C);
  const u = Float64Array.from({ length: C }, (_, i) => (h[i] as number) / nh);
  const ne = new Float64Array(L);
  const V = new Float64Array(L * C);
  const s = new Float64Array(L);
  for (let l = 0; l < L; l++) {
    ne[l] = norm(E, l * C, C);
    let dot = 0;
    for (let i = 0; i < C; i++) {
      const v = (E[l * C + i] as number) / ne[l]!;
      V[l * C + i] = v;
      dot += u[i]! * v;
    }
    s[l] = dot / tau;
  }
  const p = softmax(s);
  let m = -Infinity;
  for (const x of s) m = Math.max(m, x);
  let z = 0;
  for (const x of s) z += Math.exp(x - m);
  const logpGold = s[gold]! - (m + Math.log(z));
  // g_u = (v_g - sum_l p_l v_l) / tau, then project out u and divide by |h|
  const gu = new Float64Array(C);
  for (let l = 0; l < L; l++) {
    const w = (l === gold ? 1 : 0) - p[l]!;
    for (let i = 0; i < C; i++) gu[i]! += (w * V[l * C + i]!) / tau;
  }
  let ug = 0;
  for (let i = 0; i < C; i++) ug += u[i]! * gu[i]!;
  const dh = Float64Array.from({ length: C }, (_, i) => (gu[i]! - ug * u[i]!) / nh);
  let dE: Float64Array | null = null;
  if (opts.withLabelGrad) {
    dE = new Float64Array(L * C);
    for (let l = 0; l < L; l++) {
      const w = ((l === gold ? 1 : 0) - p[l]!) / tau; // g_l = w u
      let vg = 0;
      for (let i = 0; i < C; i++) vg += V[l * C + i]! * w * u[i]!;
      for (let i = 0; i < C; i++) dE[l * C + i] = (w * u[i]! - vg * V[l * C + i]!) / ne[l]!;
    }
  }
  return { logits: s, probs: p, logpGold, dh, dE };
}

/**
 * R2ec's rank reward: NDCG of the single relevant (gold) label in the ranking by similarity,
 * 1 / log2(rank + 1) with rank 1 for the top label (IDCG = 1). Ties rank the gold label after
 * every label with an equal or higher logit, so a flat distribution earns the lowest rank.
 */
export function ndcgRankReward(logits: ArrayLike<number>, gold: number): number {
  const g = logits[gold] as number;
  let rank = 1;
  for (let l = 0; l < logits.length; l++) if (l !== gold && (logits[l] as number) >= g) rank++;
  return 1 / Math.log2(rank + 1);
}
