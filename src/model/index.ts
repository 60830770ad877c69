/** The differentiable model: loading, LoRA, forward/backward, AdamW, batch packing. */
export { CausalLM, LoraAdapter, ForwardResult, AdamW, ALL_LORA_TARGETS } from './causal-lm.js';
export type { LoadOptions, LoraOptions, LoraTarget, ForwardOptions, AdamWOptions } from './causal-lm.js';
export { packSequences } from './batch.js';
export type { SequenceToPack, PackedBatch } from './batch.js';
