/**
 * Supervised warm start: teach a model that never emits `<answer>` the output format, so GRPO has
 * a reward signal to start from. Targets are prompt -> short rationale -> `<answer>label</answer>`
 * -> end of turn; the loss is the mean negative log-likelihood over all completion tokens of the
 * batch (token mean, as TRL's SFTTrainer), computed by the same native forward/backward and
 * optimizer as GRPO.
 */
import { packSequences, type AdamW, type CausalLM, type LoraAdapter } from '../model/index.js';
import { formatAnswer } from '../prompt/index.js';

/**
 * A short, label-conditioned rationale followed by the answer tag. Without a teacher model the
 * rationale cannot explain the text; it only shows the shape of the expected output (reason in a
 * sentence, then the tag last), which is what the warm start is for.
 */
export function sftCompletionText(label: string): string {
  return `The situation the speaker describes and the way they talk about it point to feeling ${label}. ${formatAnswer(label)}`;
}

export interface SftExample {
  /** Chat-templated prompt ids (ending with the generation prompt). */
  promptIds: ArrayLike<number>;
  /** Completion ids to learn, including the end-of-turn token. */
  completionIds: ArrayLike<number>;
}

export interface SftStepOptions {
  adapter: LoraAdapter | null;
  optimizer: AdamW;
  lr: number;
  maxGradNorm?: number;
  weightDecay?: number;
  /** Token budget of one forward/backward (gradient accumulation splits the batch). */
  maxTokensPerMicroBatch?: number;
  /** Seeds LoRA dropout; give a different value per step (e.g. the global step). */
  dropoutSeed?: number;
  /** Activation checkpointing (ForwardOptions.recomputeActivations). */
  recomputeActivations?: boolean;
}

export interface SftStepResult {
  /** Mean NLL per completion token, before the update. */
  loss: number;
  /** Completion tokens in the batch. */
  tokens: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
}

/** Splits examples, in order, into micro-batches of at most `budget` tokens (at least one example each). */
export function microBatches<T extends SftExample>(examples: readonly T[], budget: number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let used = 0;
  for (const ex of examples) {
    const len = ex.promptIds.length + ex.completionIds.length;
    if (cur.length > 0 && used + len > budget) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(ex);
    used += len;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** One optimizer step of supervised fine-tuning on `examples`. */
export async function sftStep(lm: CausalLM, examples: readonly SftExample[], opts: SftStepOptions): Promise<SftStepResult> {
  if (examples.length === 0) throw new RangeError('sftStep: no examples');
  let tokens = 0;
  examples.forEach((ex, i) => {
    if (ex.promptIds.length < 1) throw new RangeError(`sftStep: example ${i} has an empty prompt`);
    if (ex.completionIds.length < 1) throw new RangeError(`sftStep: example ${i} has an empty completion`);
    tokens += ex.completionIds.length;
  });
  const holder = opts.adapter ?? lm;
  holder.zeroGrad();
  let nll = 0;
  const groups = microBatches(examples, opts.maxTokensPerMicroBatch ?? 8192);
  for (let g = 0; g < groups.length; g++) {
    const batch = packSequences(
      groups[g]!.map((ex) => {
        const ids = new Int32Array(ex.promptIds.length + ex.completionIds.length);
        ids.set(Array.from(ex.promptIds), 0);
        ids.set(Array.from(ex.completionIds), ex.promptIds.length);
        return { tokens: ids, targetStart: ex.promptIds.length };
      }),
    );
    const pass = await lm.forward(batch, {
      adapter: opts.adapter,
      loraDropout: opts.adapter !== null,
      dropoutSeed: (opts.dropoutSeed ?? 0) * 1024 + g,
      recomputeActivations: opts.recomputeActivations ?? false,
    });
    for (const lp of pass.logp) nll -= lp;
    // d(mean NLL)/dlogp_t = -1 / tokens for every completion token of the whole batch
    await pass.backward(new Float32Array(pass.logp.length).fill(-1 / tokens));
  }
  const gradNorm = await opts.optimizer.step({ lr: opts.lr, maxGradNorm: opts.maxGradNorm ?? 0, weightDecay: opts.weightDecay ?? 0 });
  holder.zeroGrad();
  return { loss: nll / tokens, tokens, gradNorm };
}
