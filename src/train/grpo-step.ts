/**
 * One GRPO optimizer step (architecture.md section 2), the core that GrpoTrainer.fit() repeats:
 *
 *   engine.generate(prompts, n = groupSize, live adapter)   completions + sampling log-probs
 *   reward(example, completion)                             one scalar per completion (TS)
 *   groupAdvantages(rewards, groupSize, variant)            one advantage per completion
 *   lm.forward(batch, no adapter)                           reference log-probs (beta > 0 only)
 *   numIterations x: lm.forward(batch, adapter) -> grpoLoss -> backward(dLoss/dlogp) -> AdamW
 *
 * This is GRPO as in DeepSeekMath with TRL's knobs: clipped ratio with epsilon low/high (DAPO's
 * clip-higher), k3 KL to the adapter-free model with coefficient beta, the loss aggregations of
 * src/grpo. With numIterations = 1 the old policy is the current one (ratio exactly 1, as TRL's
 * detached log-probs); with more, the old log-probs are the first iteration's forward, taken before
 * any update. Micro-batches split whole sequences and are scaled so their gradients sum to the
 * full-batch gradient of the chosen loss type.
 */
import type { Engine, GeneratedSample, SamplingOptions } from '../engine/index.js';
import { countLossTokens, fracRewardZeroStd, groupAdvantages, grpoLoss, type AdvantageVariant, type LossType } from '../grpo/index.js';
import { packSequences, type AdamW, type CausalLM, type LoraAdapter } from '../model/index.js';

export interface GrpoExample {
  /** Chat-templated prompt ids. */
  promptIds: Int32Array;
}

/** A completion's reward: the weighted total and its named parts (TRL's reward_funcs). */
export interface RewardValue {
  total: number;
  parts: Record<string, number>;
}

export type GrpoReward<E extends GrpoExample> = (example: E, sample: GeneratedSample) => RewardValue;

export interface GrpoStepConfig {
  groupSize: number;
  maxNewTokens: number;
  /** Sampling parameters of the rollouts (temperature, topP, stop strings, ...). */
  sampling: Omit<SamplingOptions, 'n' | 'maxTokens' | 'seed'>;
  /** Rollout seeds derive from (seed, step, prompt index). */
  seed: number;
  beta: number;
  epsilonLow: number;
  epsilonHigh: number;
  lossType: LossType;
  advantageVariant: AdvantageVariant;
  maskTruncated: boolean;
  numIterations: number;
  lr: number;
  maxGradNorm: number;
  weightDecay: number;
  /** Token budget of one forward/backward. */
  maxTokensPerMicroBatch: number;
  /** Activation checkpointing in the training forward/backward (ForwardOptions.recomputeActivations). */
  recomputeActivations?: boolean;
}

export interface GrpoStepResult {
  /** TRL-named metrics of this step. */
  metrics: Record<string, number>;
  rewards: Float32Array;
  advantages: Float32Array;
  completions: GeneratedSample[][];
}

/** Seeds of the rollouts of one step: a pure function of (seed, step, prompt). */
export function rolloutSeed(seed: number, step: number, prompt: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [step, prompt]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

interface Sequence {
  tokens: Int32Array;
  targetStart: number;
  completionLength: number;
  truncated: boolean;
  advantage: number;
}

/** Splits sequence indices into micro-batches of at most `budget` tokens (at least one each). */
export function microBatches(seqs: readonly { tokens: ArrayLike<number> }[], budget: number): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let used = 0;
  seqs.forEach((s, i) => {
    if (cur.length > 0 && used + s.tokens.length > budget) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(i);
    used += s.tokens.length;
  });
  if (cur.length > 0) out.push(cur);
  return out;
}

export async function grpoStep<E extends GrpoExample>(
  ctx: { lm: CausalLM; engine: Engine; adapter: LoraAdapter | null; optimizer: AdamW; reward: GrpoReward<E> },
  examples: readonly E[],
  cfg: GrpoStepConfig,
  step: number,
): Promise<GrpoStepResult> {
  const G = cfg.groupSize;
  const adapter = ctx.adapter;
  const t0 = performance.now();
  // ---- rollouts
  let results;
  try {
    results = await ctx.engine.generate(
      examples.map((ex, i) => ({ ...cfg.sampling, prompt: ex.promptIds, n: G, maxTokens: cfg.maxNewTokens, seed: rolloutSeed(cfg.seed, step, i) })),
      { adapter },
    );
  } catch (e) {
    throw new Error(`grpoStep (step ${step + 1}): sampling the rollouts of the batch's prompts failed: ${(e as Error).message}`, { cause: e });
  }
  const t1 = performance.now();
  // ---- rewards and advantages
  const B = examples.length * G;
  const rewards = new Float32Array(B);
  const parts: Record<string, number[]> = {};
  const completions = results.map((r) => r.samples);
  completions.forEach((samples, i) =>
    samples.forEach((s, j) => {
      const r = ctx.reward(examples[i]!, s);
      if (!Number.isFinite(r.total)) throw new Error(`grpoStep: reward of prompt ${i} sample ${j} is ${r.total}`);
      rewards[i * G + j] = r.total;
      for (const [k, v] of Object.entries(r.parts)) (parts[k] ??= []).push(v);
    }),
  );
  const advantages = groupAdvantages(rewards, G, cfg.advantageVariant);
  const t2 = performance.now();
  // ---- the packed batch of every (prompt + completion); completions of length 0 are skipped
  const seqs: Sequence[] = [];
  completions.forEach((samples, i) =>
    samples.forEach((s, j) => {
      if (s.tokens.length === 0) return;
      const p = examples[i]!.promptIds;
      const tokens = new Int32Array(p.length + s.tokens.length);
      tokens.set(p, 0);
      tokens.set(s.tokens, p.length);
      seqs.push({ tokens, targetStart: p.length, completionLength: s.tokens.length, truncated: s.finishReason === 'length', advantage: advantages[i * G + j]! });
    }),
  );
  const groups = microBatches(seqs, cfg.maxTokensPerMicroBatch);
  const layouts = groups.map((idx) => {
    const batch = packSequences(idx.map((k) => ({ tokens: seqs[k]!.tokens, targetStart: seqs[k]!.targetStart })));
    const T = batch.targetRows.length;
    return {
      batch,
      offsets: batch.targetOffsets,
      mask: new Uint8Array(T).fill(1),
      truncated: Uint8Array.from(idx, (k) => (seqs[k]!.truncated ? 1 : 0)),
      advantages: Float32Array.from(idx, (k) => seqs[k]!.advantage),
    };
  });
  const totalTokens = layouts.reduce((a, l) => a + countLossTokens({ offsets: l.offsets, mask: l.mask, truncated: l.truncated }, cfg.maskTruncated), 0);
  const tRef = performance.now();
  const refLogps = cfg.beta > 0 ? await Promise.all(layouts.map(async (l) => (await ctx.lm.forward(l.batch, { keepForBackward: false })).logp)) : null;
  refLogps?.forEach((lp) => checkFiniteLogp(lp, step, "the reference model's log-probs (for the KL term)"));
  const refMs = performance.now() - tRef;
  let optimizerMs = 0;
  // ---- policy updates
  const holder = adapter ?? ctx.lm;
  let oldLogps: (Float32Array | Float64Array)[] | null = null;
  let loss = 0;
  let gradNorm = 0;
  const policy: Record<string, number> = {};
  for (let it = 0; it < cfg.numIterations; it++) {
    holder.zeroGrad();
    const current: (Float32Array | Float64Array)[] = [];
    for (let g = 0; g < layouts.length; g++) {
      const l = layouts[g]!;
      const pass = await ctx.lm.forward(l.batch, { adapter, loraDropout: adapter !== null, dropoutSeed: rolloutSeed(cfg.seed + 1, step, it * 1024 + g), recomputeActivations: cfg.recomputeActivations ?? false });
      checkFiniteLogp(pass.logp, step, `the policy's log-probs (iteration ${it + 1}, micro-batch ${g + 1})`);
      current.push(pass.logp);
      const old = oldLogps ? oldLogps[g]! : pass.logp;
      const scale = cfg.lossType === 'dapo' ? 1 : cfg.lossType === 'bnpo' ? 1 / layouts.length : groups[g]!.length / seqs.length;
      const out = grpoLoss(
        { offsets: l.offsets, logp: pass.logp, oldLogp: old, refLogp: refLogps?.[g], mask: l.mask, advantages: l.advantages, truncated: l.truncated, numItemsInBatch: cfg.lossType === 'dapo' ? Math.max(1, totalTokens) : undefined },
        { beta: cfg.beta, epsilonLow: cfg.epsilonLow, epsilonHigh: cfg.epsilonHigh, lossType: cfg.lossType, maskTruncated: cfg.maskTruncated, maxCompletionLength: cfg.maxNewTokens },
      );
      if (scale !== 1) for (let t = 0; t < out.grad.length; t++) out.grad[t]! *= scale;
      await pass.backward(out.grad);
      if (it === 0) {
        loss += out.loss * scale;
        for (const [k, v] of Object.entries(out.metrics)) if (k !== 'loss' && typeof v === 'number') policy[k] = (policy[k] ?? 0) + v / layouts.length;
      }
    }
    if (cfg.numIterations > 1 && oldLogps === null) oldLogps = current;
    const tOpt = performance.now();
    gradNorm = await ctx.optimizer.step({ lr: cfg.lr, maxGradNorm: cfg.maxGradNorm, weightDecay: cfg.weightDecay });
    if (!Number.isFinite(gradNorm))
      throw new Error(`grpoStep (step ${step + 1}): the gradient norm is ${gradNorm} (iteration ${it + 1}): the loss or its gradient overflowed; the weights are no longer trustworthy, resume from the last checkpoint with a lower learning_rate`);
    optimizerMs += performance.now() - tOpt;
  }
  holder.zeroGrad();
  const t3 = performance.now();
  // ---- metrics (TRL's names where they exist)
  const lengths = completions.flat().map((s) => s.tokens.length);
  const mean = (xs: ArrayLike<number>) => (xs.length ? Array.from(xs).reduce((a, b) => a + b, 0) / xs.length : 0);
  const std = (xs: ArrayLike<number>) => {
    const m = mean(xs);
    return xs.length > 1 ? Math.sqrt(Array.from(xs).reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  };
  const generated = lengths.reduce((a, b) => a + b, 0);
  const trainedTokens = seqs.reduce((a, s) => a + s.tokens.length, 0) * cfg.numIterations;
  const metrics: Record<string, number> = {
    loss,
    reward: mean(rewards),
    reward_std: std(rewards),
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
    // parts of time/train: the reference forward (beta > 0) and the optimizer updates
    'time/reference': refMs / 1000,
    'time/optimizer': optimizerMs / 1000,
    'tokens_per_second/generate': generated / Math.max(1e-9, (t1 - t0) / 1000),
    'tokens_per_second/train': trainedTokens / Math.max(1e-9, (t3 - t2) / 1000),
  };
  for (const [k, v] of Object.entries(parts)) {
    metrics[`rewards/${k}/mean`] = mean(v);
    metrics[`rewards/${k}/std`] = std(v);
  }
  return { metrics, rewards, advantages, completions };
}

/** Throws naming the step and what was computed when a log-prob row is NaN or infinite (never a silent NaN loss). */
function checkFiniteLogp(lp: ArrayLike<number>, step: number, what: string): void {
  for (let i = 0; i < lp.length; i++) {
    if (!Number.isFinite(lp[i]!))
      throw new Error(`grpoStep (step ${step + 1}): ${what} hold a non-finite value (${lp[i]} at target row ${i}): the model's logits are not finite (NaN or infinite weights, or an overflow)`);
  }
}
