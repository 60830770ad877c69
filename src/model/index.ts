/** The differentiable model: loading, LoRA, forward/backward, AdamW, batch packing. */
export { CausalLM, LoraAdapter, ForwardResult, AdamW, ALL_LORA_TARGETS } from './causal-lm.js';
export type { LoadOptions, LoraOptions, LoraTarget, ForwardOptions, AdamWOptions } from './causal-lm.js';
export type { MatmulPrecision } from '../native.js';
export { packSequences } from './batch.js';
export type { SequenceToPack, PackedBatch } from './batch.js';
export { saveAdapter, loadAdapter, readAdapterConfig, AdapterError, ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME } from './peft.js';
export type { SaveAdapterOptions, LoadedAdapterConfig } from './peft.js';
export { SafetensorsFile, readSafetensors, writeSafetensors, SafetensorsError } from './safetensors.js';
export type { DecodedTensor, TensorToWrite } from './safetensors.js';
export { createRandomModel, randomModelTensors, hfConfig, configJsonText, normalValues, QWEN2_5_0_5B, type ModelShape } from './create.js';
