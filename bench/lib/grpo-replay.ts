/**
 * The rollouts of one of our GRPO steps, written for the PyTorch peer (bench/peers/torch_grpo.py)
 * to replay, and the loss check both sides compute on them.
 *
 * A replay is what grpoStep trains on after its rollouts (src/train/grpo-step.ts): every prompt +
 * completion with a completion (empty ones are skipped, as grpoStep skips them), its advantage,
 * whether it was truncated, and grpoStep's micro-batches (its own splitter, so both sides run the
 * same forward/backward shapes). Completion tokens are all loss tokens (grpoStep's mask is all 1).
 *
 * The check (checkInputs + oursOnCheck): random weights earn every completion the same reward, so
 * the step's own advantages are 0 and, with num_iterations 1, its ratio is exactly 1 and the
 * adapter has barely moved from B = 0 (lr 5e-7): the step's loss is ~0 on both sides and compares
 * nothing. So the check replays the same tokens with seeded advantages (uniform in [-1, 1]), a
 * seeded adapter (B uniform in +-0.05, so the policy is far from the reference) and old log-probs
 * = ours minus seeded offsets in [-0.4, 0.4] (ratios on both sides of the clip range), computed in
 * f32 on both sides (bf16 weights widened; bf16 products round activations at different points in
 * torch (every op's output) and here (the products' inputs), and exp(logp - old) magnifies that in
 * the loss), without dropout.
 */
import { writeFileSync } from 'node:fs';
import type { CausalLM, GeneratedSample, GrpoStepConfig, LoraAdapter } from '../../src/index.js';
import { countLossTokens, grpoLoss, packSequences, writeSafetensors } from '../../src/index.js';
import { microBatches } from '../../src/train/grpo-step.js';

export interface ReplaySeq {
  tokens: number[];
  prompt_len: number;
  truncated: 0 | 1;
}

export interface Replay {
  seqs: ReplaySeq[];
  advantages: number[];
  micro_batches: number[][];
  /** Flat over completion tokens in sequence order; the check's inputs and ours' outputs. */
  old_logp?: number[];
  policy_logp?: number[];
  ref_logp?: number[];
}

/** The batch grpoStep trains on, from its prompts and its result (completions, advantages). */
export function replayOfStep(prompts: readonly { promptIds: ArrayLike<number> }[], completions: readonly GeneratedSample[][], advantages: ArrayLike<number>, budget: number): Replay {
  const seqs: ReplaySeq[] = [];
  const adv: number[] = [];
  const G = completions[0]?.length ?? 0;
  completions.forEach((samples, i) =>
    samples.forEach((s, j) => {
      if (s.tokens.length === 0) return;
      const p = Array.from(prompts[i]!.promptIds);
      seqs.push({ tokens: [...p, ...s.tokens], prompt_len: p.length, truncated: s.finishReason === 'length' ? 1 : 0 });
      adv.push(advantages[i * G + j]!);
    }),
  );
  return { seqs, advantages: adv, micro_batches: microBatches(seqs, budget) };
}

export function writeReplay(path: string, r: Replay): void {
  writeFileSync(path, JSON.stringify(r));
}

/** Completion tokens of the replay. */
export function replayTokens(r: Replay): number {
  return r.seqs.reduce((a, s) => a + s.tokens.length - s.prompt_len, 0);
}

/** xorshift32 in [-1, 1), deterministic. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return (x / 4294967296) * 2 - 1;
  };
}

/** Sets the check's adapter: every lora_B to uniform +-0.05 (seeded), lora_A as created. */
export function perturbAdapter(adapter: LoraAdapter, seed: number): void {
  const r = seeded(seed);
  for (const p of adapter.params()) {
    if (!p.name.endsWith('lora_B.weight')) continue;
    const n = p.shape.reduce((a, b) => a * b, 1);
    adapter.setParam(p.name, Float32Array.from({ length: n }, () => 0.05 * r()));
  }
}

export async function writeAdapter(path: string, adapter: LoraAdapter): Promise<void> {
  await writeSafetensors(path, adapter.params().map((p) => ({ name: p.name, shape: p.shape, data: adapter.getParam(p.name) })), { dtype: 'F32' });
}

export interface OursCheck {
  loss: number;
  gradNorm: number;
}

/**
 * Ours on the check's replay: the reference and policy log-probs (written into `r`, with the old
 * log-probs = policy - seeded offsets, advantages replaced by seeded ones), then grpoStep's loss
 * loop (grpoLoss per micro-batch, its scale, backward) and the adapter's gradient norm.
 */
export async function oursOnCheck(lm: CausalLM, adapter: LoraAdapter, r: Replay, cfg: GrpoStepConfig, seed: number): Promise<OursCheck> {
  const rnd = seeded(seed);
  r.advantages = r.seqs.map(() => Math.fround(rnd())); // f32, as grpoStep hands them to grpoLoss
  const layouts = r.micro_batches.map((idx) => {
    const batch = packSequences(idx.map((k) => ({ tokens: r.seqs[k]!.tokens, targetStart: r.seqs[k]!.prompt_len })));
    const T = batch.targetRows.length;
    return { idx, batch, offsets: batch.targetOffsets, mask: new Uint8Array(T).fill(1), truncated: Uint8Array.from(idx, (k) => r.seqs[k]!.truncated), advantages: Float32Array.from(idx, (k) => r.advantages[k]!) };
  });
  const total = layouts.reduce((a, l) => a + countLossTokens({ offsets: l.offsets, mask: l.mask, truncated: l.truncated }, cfg.maskTruncated), 0);
  // flat completion-token offset of each sequence (sequence order, as the replay lists them)
  const start: number[] = [0];
  for (const s of r.seqs) start.push(start[start.length - 1]! + s.tokens.length - s.prompt_len);
  const n = start[r.seqs.length]!;
  const pol = new Array<number>(n);
  const ref = new Array<number>(n);
  const old = new Array<number>(n);
  for (let k = 0; k < n; k++) old[k] = 0.4 * rnd(); // offsets; the log-probs are added below
  const optimizer = lm.createOptimizer(adapter);
  adapter.zeroGrad();
  let loss = 0;
  for (const l of layouts) {
    const refLp = (await lm.forward(l.batch, { keepForBackward: false })).logp;
    const pass = await lm.forward(l.batch, { adapter, loraDropout: false });
    const oldLp = new Float32Array(pass.logp.length);
    l.idx.forEach((k, j) => {
      for (let t = l.offsets[j]!; t < l.offsets[j + 1]!; t++) {
        const f = start[k]! + t - l.offsets[j]!;
        pol[f] = pass.logp[t]!;
        ref[f] = refLp[t]!;
        oldLp[t] = pass.logp[t]! - old[f]!;
        old[f] = oldLp[t]!;
      }
    });
    const scale = cfg.lossType === 'dapo' ? 1 : cfg.lossType === 'bnpo' ? 1 / layouts.length : l.idx.length / r.seqs.length;
    const out = grpoLoss(
      { offsets: l.offsets, logp: pass.logp, oldLogp: oldLp, refLogp: cfg.beta > 0 ? refLp : undefined, mask: l.mask, advantages: l.advantages, truncated: l.truncated, numItemsInBatch: cfg.lossType === 'dapo' ? Math.max(1, total) : undefined },
      { beta: cfg.beta, epsilonLow: cfg.epsilonLow, epsilonHigh: cfg.epsilonHigh, lossType: cfg.lossType, maskTruncated: cfg.maskTruncated, maxCompletionLength: cfg.maxNewTokens },
    );
    if (scale !== 1) for (let t = 0; t < out.grad.length; t++) out.grad[t]! *= scale;
    await pass.backward(out.grad);
    loss += out.loss * scale;
  }
  const gradNorm = optimizer.gradNorm();
  adapter.zeroGrad();
  Object.assign(r, { policy_logp: pol, ref_logp: ref, old_logp: old });
  return { loss, gradNorm };
}
