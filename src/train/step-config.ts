/**
 * The GRPO step configuration a TrainConfig describes: what GrpoTrainer.fit() passes to grpoStep
 * every step (with that step's learning rate), and what the benchmark's grpo.step runs.
 */
import type { TrainConfig } from './config.js';
import type { GrpoStepConfig } from './grpo-step.js';

/** Token budget of one training forward/backward (gradient accumulation splits larger batches). */
export const MAX_TOKENS_PER_MICRO_BATCH = 4096;

export function grpoStepConfigFrom(cfg: TrainConfig): Omit<GrpoStepConfig, 'lr'> {
  return {
    groupSize: cfg.group_size,
    maxNewTokens: cfg.max_new_tokens,
    sampling: { temperature: cfg.temperature, topP: cfg.top_p, topK: cfg.top_k, minP: cfg.min_p, repetitionPenalty: cfg.repetition_penalty, stop: ['</answer>'] },
    seed: cfg.seed,
    beta: cfg.beta,
    epsilonLow: cfg.epsilon,
    epsilonHigh: cfg.epsilon_high,
    lossType: cfg.loss_type,
    advantageVariant: cfg.advantage_variant,
    maskTruncated: cfg.mask_truncated_completions,
    numIterations: cfg.num_iterations,
    maxGradNorm: cfg.max_grad_norm,
    weightDecay: cfg.weight_decay,
    maxTokensPerMicroBatch: MAX_TOKENS_PER_MICRO_BATCH,
    recomputeActivations: cfg.gradient_checkpointing,
  };
}
