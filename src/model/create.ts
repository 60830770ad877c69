/**
 * Writing a randomly initialised model as a Hugging Face folder (config.json + model.safetensors),
 * for the built-in small model of the main job and for benchmarks on real model shapes.
 * Initialisation follows HF's `_init_weights`: Linear and Embedding weights ~ N(0, 0.02), biases 0,
 * RMSNorm weights 1 (Gemma2 stores w for a (1 + w) scale, so 0).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from './safetensors.js';

export interface ModelShape {
  architecture: 'llama' | 'qwen2' | 'gemma2';
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Defaults to hiddenSize / numHeads (Gemma2-2b uses 256 with hidden 2304). */
  headDim?: number;
  intermediateSize: number;
  tieWordEmbeddings?: boolean;
  ropeTheta?: number;
  rmsNormEps?: number;
  maxPositions?: number;
  bosTokenId?: number | null;
  eosTokenId?: number | number[];
  /** Gemma2 only. */
  slidingWindow?: number;
  attnLogitSoftcapping?: number;
  finalLogitSoftcapping?: number;
  queryPreAttnScalar?: number;
}

/** Qwen2.5-0.5B-Instruct's shape (its config.json values). */
export const QWEN2_5_0_5B: ModelShape = {
  architecture: 'qwen2',
  vocabSize: 151936,
  hiddenSize: 896,
  numLayers: 24,
  numHeads: 14,
  numKvHeads: 2,
  intermediateSize: 4864,
  tieWordEmbeddings: true,
  ropeTheta: 1e6,
  rmsNormEps: 1e-6,
  maxPositions: 32768,
  bosTokenId: 151643,
  eosTokenId: 151645,
};

/** The config.json a Hugging Face model of this shape carries. */
export function hfConfig(s: ModelShape, torchDtype: 'float32' | 'bfloat16'): Record<string, unknown> {
  const headDim = s.headDim ?? s.hiddenSize / s.numHeads;
  if (!Number.isInteger(headDim)) throw new RangeError(`hfConfig: hiddenSize ${s.hiddenSize} is not divisible by numHeads ${s.numHeads}; give headDim`);
  const common = {
    vocab_size: s.vocabSize,
    hidden_size: s.hiddenSize,
    intermediate_size: s.intermediateSize,
    num_hidden_layers: s.numLayers,
    num_attention_heads: s.numHeads,
    num_key_value_heads: s.numKvHeads,
    max_position_embeddings: s.maxPositions ?? 4096,
    rms_norm_eps: s.rmsNormEps ?? 1e-6,
    rope_theta: s.ropeTheta ?? 10000,
    initializer_range: 0.02,
    torch_dtype: torchDtype,
    bos_token_id: s.bosTokenId ?? null,
    eos_token_id: s.eosTokenId ?? null,
    use_cache: true,
  };
  switch (s.architecture) {
    case 'qwen2':
      return { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', ...common, hidden_act: 'silu', tie_word_embeddings: s.tieWordEmbeddings ?? true, use_sliding_window: false, attention_dropout: 0 };
    case 'llama':
      return { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...common, head_dim: headDim, hidden_act: 'silu', tie_word_embeddings: s.tieWordEmbeddings ?? false, attention_bias: false, mlp_bias: false, rope_scaling: null };
    case 'gemma2':
      return {
        architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', ...common, head_dim: headDim, hidden_activation: 'gelu_pytorch_tanh',
        tie_word_embeddings: true, query_pre_attn_scalar: s.queryPreAttnScalar ?? headDim, attn_logit_softcapping: s.attnLogitSoftcapping ?? 50,
        final_logit_softcapping: s.finalLogitSoftcapping ?? 30, sliding_window: s.slidingWindow ?? 4096, attention_bias: false,
      };
  }
}

/** Normal(0, std) values from a seeded 32-bit generator (mulberry32 + Box-Muller): same bits on every machine. */
export function normalValues(n: number, std: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = next() || 1 / 4294967296;
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** The tensors (HF names and shapes) of a model of this shape, randomly initialised. */
export function randomModelTensors(s: ModelShape, seed: number): TensorToWrite[] {
  const C = s.hiddenSize, F = s.intermediateSize, D = s.headDim ?? C / s.numHeads;
  const q = s.numHeads * D, kv = s.numKvHeads * D;
  let stream = 0;
  const normal = (name: string, shape: number[]): TensorToWrite => ({ name, shape, data: normalValues(shape.reduce((x, y) => x * y, 1), 0.02, (seed * 7919 + ++stream * 104729) >>> 0) });
  const fill = (name: string, n: number, v: number): TensorToWrite => ({ name, shape: [n], data: new Float32Array(n).fill(v) });
  const normInit = s.architecture === 'gemma2' ? 0 : 1;
  const t: TensorToWrite[] = [normal('model.embed_tokens.weight', [s.vocabSize, C])];
  for (let l = 0; l < s.numLayers; l++) {
    const p = `model.layers.${l}.`;
    t.push(fill(p + 'input_layernorm.weight', C, normInit));
    t.push(normal(p + 'self_attn.q_proj.weight', [q, C]), normal(p + 'self_attn.k_proj.weight', [kv, C]), normal(p + 'self_attn.v_proj.weight', [kv, C]));
    if (s.architecture === 'qwen2') t.push(fill(p + 'self_attn.q_proj.bias', q, 0), fill(p + 'self_attn.k_proj.bias', kv, 0), fill(p + 'self_attn.v_proj.bias', kv, 0));
    t.push(normal(p + 'self_attn.o_proj.weight', [C, q]));
    t.push(fill(p + 'post_attention_layernorm.weight', C, normInit));
    if (s.architecture === 'gemma2') t.push(fill(p + 'pre_feedforward_layernorm.weight', C, 0), fill(p + 'post_feedforward_layernorm.weight', C, 0));
    t.push(normal(p + 'mlp.gate_proj.weight', [F, C]), normal(p + 'mlp.up_proj.weight', [F, C]), normal(p + 'mlp.down_proj.weight', [C, F]));
  }
  t.push(fill('model.norm.weight', C, normInit));
  const tied = s.architecture === 'gemma2' ? true : (s.tieWordEmbeddings ?? s.architecture === 'qwen2');
  if (!tied) t.push(normal('lm_head.weight', [s.vocabSize, C]));
  return t;
}

/** Config fields transformers types as float: JSON from JS writes 30.0 as 30, which its strict
 * config validation (transformers 5) refuses, so these are written with a decimal point. */
const FLOAT_FIELDS = ['rope_theta', 'rms_norm_eps', 'initializer_range', 'attention_dropout', 'attn_logit_softcapping', 'final_logit_softcapping'];

/** config.json text with float fields written as floats. */
export function configJsonText(config: Record<string, unknown>): string {
  let text = JSON.stringify(config, null, 2);
  for (const key of FLOAT_FIELDS) text = text.replace(new RegExp(`("${key}": )(-?\\d+)(,?\n)`), '$1$2.0$3');
  return text + '\n';
}

/** Writes config.json and model.safetensors of a randomly initialised model into `dir`. */
export async function createRandomModel(dir: string, shape: ModelShape, opts: { seed?: number; dtype?: 'F32' | 'BF16' } = {}): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  await mkdir(dir, { recursive: true });
  const tensors = randomModelTensors(shape, opts.seed ?? 0);
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype, metadata: { format: 'pt' } });
  await writeFile(join(dir, 'config.json'), configJsonText(hfConfig(shape, dtype === 'BF16' ? 'bfloat16' : 'float32')));
}
