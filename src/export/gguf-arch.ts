/**
 * The model half of a GGUF export: the architecture metadata and each tensor's GGUF name, layout
 * change and stored type, as llama.cpp's convert_hf_to_gguf.py writes them for Llama (and
 * Mistral), Qwen2 and Gemma2 (read from ggml-org/llama.cpp: convert_hf_to_gguf.py, gguf-py
 * constants.py / tensor_mapping.py; no code copied):
 *
 *   names    model.embed_tokens -> token_embd, model.norm -> output_norm, lm_head -> output,
 *            layers.{i}.input_layernorm -> blk.{i}.attn_norm, self_attn.{q,k,v,o}_proj ->
 *            attn_{q,k,v,output}, mlp.{gate,up,down}_proj -> ffn_{gate,up,down};
 *            llama/qwen2 post_attention_layernorm -> ffn_norm; gemma2 post_attention_layernorm ->
 *            post_attention_norm, pre_feedforward_layernorm -> ffn_norm, post_feedforward_layernorm
 *            -> post_ffw_norm
 *   llama    q_proj / k_proj rows permuted per head (HF rotate_half -> llama.cpp's adjacent pairs)
 *   gemma2   every norm weight stored as 1 + w (llama.cpp multiplies by the stored weight); the
 *            LM head is the embedding (tied)
 *   types    1-D tensors (norms, biases) F32; 2-D ones the chosen type, Q8_0 only for rows of a
 *            multiple of 32 values (F16 otherwise, as the converter falls back)
 */
import type { NativeStoredDtype } from '../native.js';
import { f32, str, u32, type GgmlTypeName, type GgufKv } from './gguf-file.js';

export type GgufArch = 'llama' | 'qwen2' | 'gemma2';
export type GgufDtype = 'F32' | 'F16' | 'BF16' | 'Q8_0';

/** llama_ftype of a file whose 2-D tensors are of this type. */
const FILE_TYPE: Record<GgufDtype, number> = { F32: 0, F16: 1, Q8_0: 7, BF16: 32 };

/** What a config.json says, read with checks that name the field. */
export interface GgufModelFacts {
  arch: GgufArch;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** config.json has head_dim (the converter writes key/value_length only then). */
  headDimGiven: boolean;
  intermediate: number;
  vocab: number;
  contextLength: number;
  ropeTheta: number;
  rmsEps: number;
  tied: boolean;
}

export function modelFacts(config: Record<string, unknown>, file: string): GgufModelFacts {
  const bad = (field: string, want: string): never => {
    throw new Error(`${file}: "${field}" ${want}, got ${JSON.stringify(config[field])}`);
  };
  const int = (field: string, def?: number): number => {
    const v = config[field] ?? def;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) bad(field, 'must be a positive integer');
    return v as number;
  };
  const num = (field: string, def: number): number => {
    const v = config[field] ?? def;
    if (typeof v !== 'number' || !(v > 0)) bad(field, 'must be a positive number');
    return v as number;
  };
  const type = config['model_type'];
  const arch: GgufArch | null = type === 'llama' || type === 'mistral' ? 'llama' : type === 'qwen2' ? 'qwen2' : type === 'gemma2' ? 'gemma2' : null;
  if (arch === null) bad('model_type', 'must be llama, mistral, qwen2 or gemma2 for a GGUF export');
  if (config['rope_scaling'] != null && (config['rope_scaling'] as { rope_type?: unknown }).rope_type !== 'default') bad('rope_scaling', 'must be null (RoPE scaling is not exported)');
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const headDimGiven = config['head_dim'] != null;
  const headDim = headDimGiven ? int('head_dim') : hidden / heads;
  if (!Number.isInteger(headDim)) bad('hidden_size', `is not divisible by num_attention_heads (${heads}) and there is no head_dim`);
  const facts: GgufModelFacts = {
    arch: arch!, hidden, layers: int('num_hidden_layers'), heads, kvHeads: int('num_key_value_heads', heads), headDim, headDimGiven,
    intermediate: int('intermediate_size'), vocab: int('vocab_size'), contextLength: int('max_position_embeddings', 4096),
    ropeTheta: num('rope_theta', 10000), rmsEps: num('rms_norm_eps', 1e-6),
    tied: (config['tie_word_embeddings'] ?? arch === 'gemma2') === true,
  };
  if (arch === 'gemma2') {
    // llama.cpp scales Gemma-2 attention by 1/sqrt(head_dim), except for the 27B (46 layers:
    // hidden / heads); any other query_pre_attn_scalar would give a different model there.
    const qpas = num('query_pre_attn_scalar', headDim);
    const expected = facts.layers === 46 ? hidden / heads : headDim;
    if (qpas !== expected) bad('query_pre_attn_scalar', `must be ${expected} for llama.cpp's Gemma-2 (it scales attention by 1/sqrt(${expected}))`);
  }
  return facts;
}

/** The architecture's kvs (general.* and <arch>.*). */
export function ggufModelKvs(facts: GgufModelFacts, config: Record<string, unknown>, name: string, dtype: GgufDtype): GgufKv[] {
  const a = facts.arch;
  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: str(a) },
    { key: 'general.type', value: str('model') },
    { key: 'general.name', value: str(name) },
    { key: `${a}.context_length`, value: u32(facts.contextLength) },
    { key: `${a}.embedding_length`, value: u32(facts.hidden) },
    { key: `${a}.block_count`, value: u32(facts.layers) },
    { key: `${a}.feed_forward_length`, value: u32(facts.intermediate) },
    { key: `${a}.attention.head_count`, value: u32(facts.heads) },
    { key: `${a}.attention.head_count_kv`, value: u32(facts.kvHeads) },
    { key: `${a}.rope.freq_base`, value: f32(facts.ropeTheta) },
    { key: `${a}.attention.layer_norm_rms_epsilon`, value: f32(facts.rmsEps) },
  ];
  if (facts.headDimGiven) kvs.push({ key: `${a}.attention.key_length`, value: u32(facts.headDim) }, { key: `${a}.attention.value_length`, value: u32(facts.headDim) });
  if (a === 'llama') kvs.push({ key: 'llama.vocab_size', value: u32(facts.vocab) }, { key: 'llama.rope.dimension_count', value: u32(facts.headDim) });
  if (a === 'gemma2') {
    const cap = (k: string) => (typeof config[k] === 'number' ? (config[k] as number) : null);
    const attn = cap('attn_logit_softcapping'), fin = cap('final_logit_softcapping');
    if (attn !== null) kvs.push({ key: 'gemma2.attn_logit_softcapping', value: f32(attn) });
    if (fin !== null) kvs.push({ key: 'gemma2.final_logit_softcapping', value: f32(fin) });
    kvs.push({ key: 'gemma2.attention.sliding_window', value: u32(typeof config['sliding_window'] === 'number' ? (config['sliding_window'] as number) : 4096) });
  }
  kvs.push({ key: 'general.file_type', value: u32(FILE_TYPE[dtype]) }, { key: 'general.quantization_version', value: u32(2) });
  return kvs;
}

/** One tensor's GGUF form: name, ne, type, and the layout changes of its transform. */
export interface GgufTensorPlan {
  hfName: string;
  name: string;
  ne: number[];
  type: GgmlTypeName;
  addOne: boolean;
  permuteHeads: number;
}

const LAYER_NAMES: Record<string, string> = {
  input_layernorm: 'attn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
  pre_feedforward_layernorm: 'ffn_norm',
  post_feedforward_layernorm: 'post_ffw_norm',
};

/** The GGUF name of an HF tensor, or null for one the GGUF leaves out (Gemma-2's tied LM head). */
export function ggufTensorName(arch: GgufArch, hfName: string): string | null {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return arch === 'gemma2' ? null : 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  const mod = m?.[2];
  const base = mod === 'post_attention_layernorm' ? (arch === 'gemma2' ? 'post_attention_norm' : 'ffn_norm') : mod !== undefined ? LAYER_NAMES[mod] : undefined;
  if (!m || !base || (arch !== 'gemma2' && (mod === 'pre_feedforward_layernorm' || mod === 'post_feedforward_layernorm')))
    throw new Error(`GGUF export: tensor "${hfName}" has no ${arch} GGUF name`);
  return `blk.${m[1]}.${base}.${m[3]}`;
}

/** Plans one tensor (shape in HF order). */
export function planGgufTensor(facts: GgufModelFacts, hfName: string, shape: readonly number[], dtype: GgufDtype): GgufTensorPlan | null {
  const name = ggufTensorName(facts.arch, hfName);
  if (name === null) return null;
  const ne = [...shape].reverse();
  let type: GgmlTypeName = 'F32';
  if (shape.length >= 2) type = dtype === 'Q8_0' && ne[0]! % 32 !== 0 ? 'F16' : dtype;
  let permuteHeads = 0;
  if (facts.arch === 'llama') {
    if (/\.q_proj\.(weight|bias)$/.test(hfName)) permuteHeads = facts.heads;
    if (/\.k_proj\.(weight|bias)$/.test(hfName)) permuteHeads = facts.kvHeads;
  }
  return { hfName, name, ne, type, addOne: facts.arch === 'gemma2' && hfName.endsWith('norm.weight'), permuteHeads };
}

/** The native transform's output dtype for a planned GGUF type. */
export function transformDtype(type: GgmlTypeName): NativeStoredDtype | 'Q8_0' {
  return type;
}
