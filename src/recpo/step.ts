/**
 * One RecPO optimizer step (R2ec's RecPO), what RecpoTrainer repeats:
 *
 *   engine.generate(prompts, n = K, live adapter)             completions + rollout log-probs
 *   embedding forward of prompt + reasoning + `<answer>`      rollout-policy hidden states (no grad)
 *   decision head vs the label embeddings                     p(gold), logits -> rewards, old log p(gold)
 *   groupAdvantages(rewards, K, gaussian | loo)               one advantage per completion
 *   numIterations x: lm.forward(prompt + completion, hidden rows of each group's best sample)
 *       -> token-level clipped PPO on the completion tokens (old = the rollout's log-probs)
 *        + decision-level clipped PPO on log p(gold) of the best sample of each group
 *       -> backward(dLoss/dlogp, dLoss/dhidden) -> AdamW
 *
 * The old log-probs are the rollout policy's: the sampling engine's for tokens, the no-grad
 * embedding forward's (no dropout, the weights the rollouts used) for the decision, so the ratios
 * measure how far the trained forward (with LoRA dropout, later iterations) has moved. With
 * label_embedding_grad the label embeddings are recomputed by a kept forward of this step's
 * weights and the decision loss's gradient also flows through them.
 */
import type { Engine, GeneratedSample } from '../engine/index.js';
import { countLossTokens, fracRewardZeroStd, groupAdvantages, grpoLoss, type LossType } from '../grpo/index.js';
import { packSequences, type AdamW, type CausalLM, type LoraAdapter } from '../model/index.js';
import { formatReward } from '../reward/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { microBatches, rolloutSeed, type GrpoStepConfig } from '../train/grpo-step.js';
import type { AdvantageType } from './config.js';
import { argmax, decisionHead, ndcgRankReward } from './decision.js';
import { bestOfGroups, decisionLoss } from './decision-loss.js';
import { concat, decisionTokens, embedSequences, locateDecision } from './embed.js';

/** gaussian's epsilon: (r - mean) / (std + 1e-8), as the reference. */
export const GAUSSIAN_ADVANTAGE_EPS = 1e-8;

export interface RecpoExample {
  promptIds: Int32Array;
  label: number;
}

export interface RecpoStepConfig extends Omit<GrpoStepConfig, 'advantageVariant'> {
  advantageType: AdvantageType;
  tau: number;
  rewardSoftmaxWeight: number;
  rewardFormatWeight: number;
  rewardRankWeight: number;
  labelEmbeddingGrad: boolean;
  /** Label names (for the format reward's parse). */
  labels: readonly string[];
}

export interface RecpoContext {
  lm: CausalLM;
  engine: Engine;
  tokenizer: Pick<Tokenizer, 'encode'>;
  adapter: LoraAdapter | null;
  optimizer: AdamW;
  /** [L * C] label embeddings (computed at the last refresh). */
  labelEmbeddings: Float64Array;
  /** The label chats (label_embedding_grad recomputes the embeddings from them). */
  labelChats: readonly Int32Array[];
  tagIds: Int32Array;
}

export interface RecpoStepResult {
  metrics: Record<string, number>;
  rewards: Float32Array;
  advantages: Float32Array;
  completions: GeneratedSample[][];
}

interface Seq {
  tokens: Int32Array;
  targetStart: number;
  targetEnd: number;
  /** Row of the decision state within tokens, or -1 when this sequence carries none. */
  hiddenPos: number;
  truncated: boolean;
  advantage: number;
  /** The rollout log-probs of its target tokens. */
  oldLogp: Float32Array;
  /** Decision term (best of its group), else null. */
  decision: { gold: number; oldLogpGold: number; advantage: number } | null;
}

const mean = (xs: ArrayLike<number>) => (xs.length ? Array.from(xs).reduce((a, b) => a + b, 0) / xs.length : 0);
const std = (xs: ArrayLike<number>) => {
  const m = mean(xs);
  return xs.length > 1 ? Math.sqrt(Array.from(xs).reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
};

export async function recpoStep(ctx: RecpoContext, examples: readonly RecpoExample[], cfg: RecpoStepConfig, step: number): Promise<RecpoStepResult> {
  const G = cfg.groupSize;
  const { adapter, lm } = ctx;
  const t0 = performance.now();
  // ---- rollouts
  const results = await ctx.engine.generate(
    examples.map((ex, i) => ({ ...cfg.sampling, prompt: ex.promptIds, n: G, maxTokens: cfg.maxNewTokens, seed: rolloutSeed(cfg.seed, step, i) })),
    { adapter },
  );
  const completions = results.map((r) => r.samples);
  const t1 = performance.now();
  // ---- rollout-policy decision states, rewards, advantages
  const flat = completions.flatMap((samples, i) => samples.map((s) => ({ s, i })));
  const B = flat.length;
  const hidden0 = await embedSequences(lm, adapter, flat.map(({ s, i }) => decisionTokens(examples[i]!.promptIds, s, ctx.tagIds, ctx.tokenizer)), cfg.maxTokensPerMicroBatch);
  const rewards = new Float32Array(B);
  const parts = { embedding: new Float64Array(B), format: new Float64Array(B), rank: new Float64Array(B) };
  const oldLogpGold = new Float64Array(B);
  let simCorrect = 0;
  let pGoldSum = 0;
  flat.forEach(({ s, i }, b) => {
    const gold = examples[i]!.label;
    const d = decisionHead(hidden0[b]!, ctx.labelEmbeddings, gold, cfg.tau);
    oldLogpGold[b] = d.logpGold;
    const pGold = Math.exp(d.logpGold);
    pGoldSum += pGold;
    if (argmax(d.logits) === gold) simCorrect++;
    parts.embedding[b] = cfg.rewardSoftmaxWeight * pGold;
    parts.format[b] = cfg.rewardFormatWeight > 0 ? cfg.rewardFormatWeight * formatReward({ label: gold, labels: cfg.labels }, s.text ?? '') : 0;
    parts.rank[b] = cfg.rewardRankWeight > 0 ? cfg.rewardRankWeight * ndcgRankReward(d.logits, gold) : 0;
    rewards[b] = parts.embedding[b]! + parts.format[b]! + parts.rank[b]!;
  });
  const advantages = cfg.advantageType === 'loo' ? groupAdvantages(rewards, G, 'leaveOneOut') : groupAdvantages(rewards, G, 'groupStd', GAUSSIAN_ADVANTAGE_EPS);
  const best = new Set(bestOfGroups(advantages, G));
  const t2 = performance.now();
  // ---- training sequences: prompt + completion (token loss), hidden rows for each group's best
  const seqs: Seq[] = [];
  flat.forEach(({ s, i }, b) => {
    const p = examples[i]!.promptIds;
    const isBest = best.has(b);
    const decision = isBest ? { gold: examples[i]!.label, oldLogpGold: oldLogpGold[b]!, advantage: advantages[b]! } : null;
    const base = { truncated: s.finishReason === 'length', advantage: advantages[b]!, oldLogp: s.logprobs };
    const site = isBest ? locateDecision(s, ctx.tagIds) : null;
    if (site?.kind === 'separate') {
      // the tag's tokens differ from the sampled ones: its own sequence (no targets) for the decision
      seqs.push({ ...base, tokens: decisionTokens(p, s, ctx.tagIds, ctx.tokenizer), targetStart: 0, targetEnd: 0, hiddenPos: -2, oldLogp: new Float32Array(0), decision });
      if (s.tokens.length > 0) seqs.push({ ...base, tokens: concat(p, s.tokens), targetStart: p.length, targetEnd: p.length + s.tokens.length, hiddenPos: -1, decision: null });
      return;
    }
    if (s.tokens.length === 0 && !isBest) return;
    const tokens = site?.kind === 'append' ? concat(concat(p, s.tokens), ctx.tagIds) : concat(p, s.tokens);
    const hiddenPos = site === null ? -1 : site.kind === 'inplace' ? p.length + site.end : tokens.length - 1;
    seqs.push({ ...base, tokens, targetStart: p.length, targetEnd: p.length + s.tokens.length, hiddenPos, decision });
  });
  for (const s of seqs) if (s.hiddenPos === -2) s.hiddenPos = s.tokens.length - 1;
  const groups = microBatches(seqs, cfg.maxTokensPerMicroBatch);
  const layouts = groups.map((idx) => {
    const packed = packSequences(idx.map((k) => ({ tokens: seqs[k]!.tokens, targetStart: Math.max(1, seqs[k]!.targetStart), targetEnd: Math.max(1, seqs[k]!.targetEnd) })));
    const withHidden = idx.filter((k) => seqs[k]!.decision !== null);
    const hiddenRows = Int32Array.from(withHidden, (k) => packed.seqOffsets[idx.indexOf(k)]! + seqs[k]!.hiddenPos);
    const T = packed.targetRows.length;
    const oldLogp = new Float32Array(T);
    idx.forEach((k, j) => oldLogp.set(seqs[k]!.oldLogp, packed.targetOffsets[j]!));
    return {
      batch: { ...packed, hiddenRows },
      terms: withHidden.map((k) => seqs[k]!.decision!),
      offsets: packed.targetOffsets,
      mask: new Uint8Array(T).fill(1),
      oldLogp,
      truncated: Uint8Array.from(idx, (k) => (seqs[k]!.truncated ? 1 : 0)),
      advantages: Float32Array.from(idx, (k) => seqs[k]!.advantage),
      numSeqs: idx.length,
    };
  });
  const numGroups = examples.length;
  // grpo / dr_grpo average over sequences: those with completion tokens (decision-only ones have none)
  const tokenSeqs = seqs.filter((s) => s.targetEnd > s.targetStart).length;
  const totalTokens = layouts.reduce((a, l) => a + countLossTokens({ offsets: l.offsets, mask: l.mask, truncated: l.truncated }, cfg.maskTruncated), 0);
  const refLogps = cfg.beta > 0 ? await Promise.all(layouts.map(async (l) => (await lm.forward({ ...l.batch, hiddenRows: undefined }, { keepForBackward: false })).logp)) : null;
  // ---- policy updates
  const holder = adapter ?? lm;
  let tokenLoss = 0;
  let decLoss = 0;
  let decClip = 0;
  let gradNorm = 0;
  let optimizerMs = 0;
  const policy: Record<string, number> = {};
  for (let it = 0; it < cfg.numIterations; it++) {
    holder.zeroGrad();
    // label_embedding_grad: this step's label embeddings from a kept forward, differentiated at the end
    let labelPass: Awaited<ReturnType<CausalLM['forward']>> | null = null;
    let E = ctx.labelEmbeddings;
    if (cfg.labelEmbeddingGrad) {
      const packed = packSequences(ctx.labelChats.map((tokens) => ({ tokens, targetStart: tokens.length })));
      labelPass = await lm.forward({ ...packed, hiddenRows: Int32Array.from(ctx.labelChats, (_, l) => packed.seqOffsets[l + 1]! - 1) }, { adapter });
      E = Float64Array.from(labelPass.hidden!);
    }
    const dE = cfg.labelEmbeddingGrad ? new Float64Array(E.length) : null;
    for (let g = 0; g < layouts.length; g++) {
      const l = layouts[g]!;
      const pass = await lm.forward(l.batch, { adapter, loraDropout: adapter !== null, dropoutSeed: rolloutSeed(cfg.seed + 1, step, it * 1024 + g), recomputeActivations: cfg.recomputeActivations ?? false });
      // token-level clipped PPO; sequences without targets (decision-only) have no loss tokens
      // grpoLoss weighs grpo / dr_grpo by 1 / (sequences in this micro-batch): rescaled to 1 / tokenSeqs
      const scale = cfg.lossType === 'dapo' ? 1 : cfg.lossType === 'bnpo' ? 1 / layouts.length : l.numSeqs / Math.max(1, tokenSeqs);
      let tokenGrad: Float32Array = new Float32Array(pass.logp.length);
      if (pass.logp.length > 0) {
        const out = grpoLoss(
          { offsets: l.offsets, logp: pass.logp, oldLogp: l.oldLogp, refLogp: refLogps?.[g], mask: l.mask, advantages: l.advantages, truncated: l.truncated, numItemsInBatch: cfg.lossType === 'dapo' ? Math.max(1, totalTokens) : undefined },
          { beta: cfg.beta, epsilonLow: cfg.epsilonLow, epsilonHigh: cfg.epsilonHigh, lossType: cfg.lossType as LossType, maskTruncated: cfg.maskTruncated, maxCompletionLength: cfg.maxNewTokens },
        );
        tokenGrad = out.grad;
        if (scale !== 1) for (let t = 0; t < tokenGrad.length; t++) tokenGrad[t]! *= scale;
        if (it === 0) {
          tokenLoss += out.loss * scale;
          for (const [k, v] of Object.entries(out.metrics)) if (k !== 'loss' && typeof v === 'number') policy[k] = (policy[k] ?? 0) + v / layouts.length;
        }
      }
      // decision-level clipped PPO on log p(gold) of the best samples in this micro-batch
      const C = lm.config.hiddenSize;
      const terms = l.terms.map((t, j) => ({ ...t, hidden: pass.hidden!.subarray(j * C, (j + 1) * C) }));
      let dhidden: Float64Array | undefined;
      if (terms.length > 0) {
        const d = decisionLoss(terms, E, { tau: cfg.tau, epsilonLow: cfg.epsilonLow, epsilonHigh: cfg.epsilonHigh, withLabelGrad: cfg.labelEmbeddingGrad });
        const w = terms.length / numGroups; // decisionLoss averages over its terms; the step averages over every group
        dhidden = new Float64Array(terms.length * C);
        d.dhidden.forEach((row, j) => row.forEach((v, e) => (dhidden![j * C + e] = v * w)));
        if (dE && d.dE) for (let i = 0; i < dE.length; i++) dE[i]! += w * d.dE[i]!;
        if (it === 0) {
          decLoss += d.loss * w;
          decClip += d.clipFraction * w;
        }
      }
      await pass.backward(tokenGrad, dhidden);
    }
    if (labelPass) await labelPass.backward(new Float64Array(0), dE!);
    const tOpt = performance.now();
    gradNorm = await ctx.optimizer.step({ lr: cfg.lr, maxGradNorm: cfg.maxGradNorm, weightDecay: cfg.weightDecay });
    optimizerMs += performance.now() - tOpt;
  }
  holder.zeroGrad();
  const t3 = performance.now();
  const lengths = completions.flat().map((s) => s.tokens.length);
  const generated = lengths.reduce((a, b) => a + b, 0);
  const trainedTokens = seqs.reduce((a, s) => a + s.tokens.length, 0) * cfg.numIterations;
  const metrics: Record<string, number> = {
    loss: tokenLoss + decLoss,
    'loss/token': tokenLoss,
    'loss/decision': decLoss,
    'decision/clip_ratio': decClip,
    reward: mean(rewards),
    reward_std: std(rewards),
    'rewards/embedding/mean': mean(parts.embedding),
    'rewards/embedding/std': std(parts.embedding),
    'rewards/format/mean': mean(parts.format),
    'rewards/rank/mean': mean(parts.rank),
    'advantages/mean': mean(advantages),
    'advantages/std': std(advantages),
    'similarity/accuracy': B ? simCorrect / B : 0,
    'similarity/p_gold': B ? pGoldSum / B : 0,
    frac_reward_zero_std: fracRewardZeroStd(rewards, G),
    'completions/mean_length': mean(lengths),
    'completions/max_length': lengths.length ? Math.max(...lengths) : 0,
    'completions/clipped_ratio': mean(completions.flat().map((s) => (s.finishReason === 'length' ? 1 : 0))),
    grad_norm: gradNorm,
    learning_rate: cfg.lr,
    ...policy,
    'time/generate': (t1 - t0) / 1000,
    'time/score': (t2 - t1) / 1000,
    'time/train': (t3 - t2) / 1000,
    'time/optimizer': optimizerMs / 1000,
    'tokens_per_second/generate': generated / Math.max(1e-9, (t1 - t0) / 1000),
    'tokens_per_second/train': trainedTokens / Math.max(1e-9, (t3 - t2) / 1000),
  };
  return { metrics, rewards, advantages, completions };
}
