// Deterministic tiny random causal LMs of the three architectures the addon runs (Llama, Qwen2,
// Gemma2), shaped like the real checkpoints but scaled down, written as a real Hugging Face model
// folder: config.json + model.safetensors (or model-0000k-of-0000n.safetensors + index).
//
// Tensor names and shapes follow transformers' modeling_{llama,qwen2,gemma2}.py; nn.Linear stores
// weight as [out_features, in_features] and computes y = x W^T (+ b).
//
// Values come from mulberry32 (a 32-bit integer PRNG, bit-identical on every machine), one stream
// per tensor seeded from (seed, tensor name), so a tensor's values do not depend on which other
// tensors exist. Each value is uniform in [-s, s] with s = gain / sqrt(fan_in), rounded to f32 and
// then to the stored dtype: `tensors[i].data` holds exactly the values the file holds.
//
// ───────────────────────────── the math each model computes ─────────────────────────────────
// Notation: T tokens, x_t ∈ R^hidden, H heads, K kv heads (GQA: head h reads kv head
// floor(h / (H/K))), d = head_dim, positions p = 0..T-1.
//   rms(x; w) = x / sqrt(mean(x²) + eps) ⊙ w            (mean over hidden, f32 in HF)
//   RoPE (HF "rotate_half", NeoX style; llama.cpp LLAMA_ROPE_TYPE_NEOX for qwen2/gemma2):
//     inv_freq_i = rope_theta^(-2i/d), i = 0..d/2-1;  θ = p · inv_freq_i
//     for i < d/2:  y_i = x_i cosθ_i − x_{i+d/2} sinθ_i ;  y_{i+d/2} = x_{i+d/2} cosθ_i + x_i sinθ_i
//     (pairs are (i, i + d/2), NOT adjacent (2i, 2i+1): GGUF llama uses adjacent pairs, which is
//     why convert_hf_to_gguf permutes the q/k rows of llama; see gguf-writer.ts)
//   attention per head: s_ij = (q_i · k_j) · scale, causal mask j ≤ i, softmax over j, o_i = Σ a_ij v_j
//
// llama (LlamaForCausalLM):
//   h = E[tok]                                                   (no embedding scale)
//   per layer:  a = rms(h; input_layernorm); q,k,v = a Wq^T, a Wk^T, a Wv^T; rope(q), rope(k)
//               scale = 1/sqrt(head_dim); h += o Wo^T
//               m = rms(h; post_attention_layernorm); h += (silu(m Wg^T) ⊙ (m Wu^T)) Wd^T
//   logits = rms(h; model.norm) · lm_head^T        (lm_head separate: tie_word_embeddings false)
//
// qwen2 (Qwen2ForCausalLM): exactly llama, plus biases on q, k, v (never on o):
//   q = a Wq^T + bq, k = a Wk^T + bk, v = a Wv^T + bv (bias added BEFORE rope); head_dim = hidden/heads
//   (no head_dim field); tied embeddings: logits = rms(h; model.norm) · E^T. use_sliding_window is
//   false, so sliding_window / max_window_layers are inert.
//
// gemma2 (Gemma2ForCausalLM):
//   h = E[tok] · sqrt(hidden)           (HF casts sqrt(hidden) to the activation dtype; 8 exactly here)
//   every RMSNorm multiplies by (1 + w), w stored near 0:  rmsG(x; w) = x / sqrt(mean(x²)+eps) ⊙ (1 + w)
//   per layer l:
//     a = rmsG(h; input_layernorm); q,k,v = a Wq^T, a Wk^T, a Wv^T (no bias); rope(q), rope(k)
//     s_ij = (q_i·k_j) · query_pre_attn_scalar^(-1/2)            (NOT head_dim^(-1/2) in general;
//            llama.cpp uses 1/sqrt(head_dim) for every size but 27B, so the tiny model keeps
//            query_pre_attn_scalar == head_dim == 32 to stay comparable)
//     s_ij = cap_a · tanh(s_ij / cap_a), cap_a = attn_logit_softcapping      (before the mask)
//     mask: j ≤ i, and on sliding layers also i − j < sliding_window (key i−W is the first one
//           hidden: HF masks tril(diagonal=−W) i.e. j ≤ i−W; llama.cpp masks p1 − p0 ≥ n_swa)
//     sliding layers: l even (l = 0, 2, ...): HF is_sliding = not bool(l % 2), layer_types
//           "sliding_attention" if (l+1) % 2 else "full_attention"; llama.cpp swa pattern 2
//     h = h + rmsG(o Wo^T; post_attention_layernorm)
//     m = rmsG(h; pre_feedforward_layernorm)
//     h = h + rmsG((gelu_tanh(m Wg^T) ⊙ (m Wu^T)) Wd^T; post_feedforward_layernorm)
//       gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))
//   logits = rmsG(h; model.norm) · E^T  (tied), then logits = cap_f · tanh(logits / cap_f),
//   cap_f = final_logit_softcapping
//   q/o widths are heads·head_dim = 128 ≠ hidden = 64, as in the real model (8·256 ≠ 2304).
// ─────────────────────────────────────────────────────────────────────────────────────────────
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  roundToDtype,
  type SafetensorsDtype,
  type TensorSpec,
  writeSafetensors,
  writeShardedSafetensors,
  encodeTensorData,
} from './safetensors-writer.js';

export type Arch = 'llama' | 'qwen2' | 'gemma2';
export const ARCHS: readonly Arch[] = ['llama', 'qwen2', 'gemma2'];

interface CommonConfig {
  architectures: string[];
  model_type: Arch;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  vocab_size: number;
  tie_word_embeddings: boolean;
  torch_dtype: 'float32' | 'bfloat16' | 'float16';
  bos_token_id: number;
  eos_token_id: number | number[];
  attention_dropout: number;
  initializer_range: number;
  use_cache: boolean;
}

export interface LlamaConfig extends CommonConfig {
  model_type: 'llama';
  head_dim: number;
  hidden_act: 'silu';
  attention_bias: boolean;
  mlp_bias: boolean;
  pretraining_tp: number;
  rope_scaling: null;
}

export interface Qwen2Config extends CommonConfig {
  model_type: 'qwen2';
  hidden_act: 'silu';
  use_sliding_window: boolean;
  sliding_window: number;
  max_window_layers: number;
}

export interface Gemma2Config extends CommonConfig {
  model_type: 'gemma2';
  head_dim: number;
  hidden_act: 'gelu_pytorch_tanh';
  hidden_activation: 'gelu_pytorch_tanh';
  query_pre_attn_scalar: number;
  attn_logit_softcapping: number | null;
  final_logit_softcapping: number | null;
  sliding_window: number;
  attention_bias: boolean;
  pad_token_id: number;
  cache_implementation: 'hybrid';
}

export type TinyConfig = LlamaConfig | Qwen2Config | Gemma2Config;
export type ConfigFor<A extends Arch> = A extends 'llama' ? LlamaConfig : A extends 'qwen2' ? Qwen2Config : Gemma2Config;

export interface TinyModelOptions<A extends Arch = Arch> {
  /** PRNG seed (uint32). Default 1. */
  seed?: number;
  /** Stored dtype of every tensor. Default F32. */
  dtype?: SafetensorsDtype;
  /** writeTinyModel only: number of safetensors shards (>= 2 writes the sharded layout). */
  sharded?: number;
  /** Fields replacing the defaults below (shapes follow them). */
  overrides?: Partial<ConfigFor<A>>;
}

export interface TinyModel<A extends Arch = Arch> {
  arch: A;
  seed: number;
  dtype: SafetensorsDtype;
  config: ConfigFor<A>;
  tensors: TensorSpec[];
}

const TORCH_DTYPE = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' } as const;

/** The default tiny config for an arch (the fixtures in test/fixtures/llamacpp use these). */
export function defaultTinyConfig<A extends Arch>(arch: A, dtype: SafetensorsDtype = 'F32'): ConfigFor<A> {
  const torch_dtype = TORCH_DTYPE[dtype];
  const common = { attention_dropout: 0.0, initializer_range: 0.02, use_cache: true, torch_dtype };
  let c: TinyConfig;
  switch (arch) {
    case 'llama':
      c = {
        ...common,
        architectures: ['LlamaForCausalLM'],
        model_type: 'llama',
        vocab_size: 256,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        hidden_act: 'silu',
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        rope_scaling: null,
        max_position_embeddings: 512,
        tie_word_embeddings: false,
        attention_bias: false,
        mlp_bias: false,
        pretraining_tp: 1,
        bos_token_id: 1,
        eos_token_id: 2,
      } satisfies LlamaConfig;
      break;
    case 'qwen2':
      c = {
        ...common,
        architectures: ['Qwen2ForCausalLM'],
        model_type: 'qwen2',
        vocab_size: 256,
        hidden_size: 64,
        intermediate_size: 160,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        hidden_act: 'silu',
        rms_norm_eps: 1e-6,
        rope_theta: 1000000.0,
        max_position_embeddings: 512,
        tie_word_embeddings: true,
        use_sliding_window: false,
        sliding_window: 512,
        max_window_layers: 2,
        // Qwen2.5 puts <|endoftext|> / <|im_end|> at the top of its vocab; the tiny one does too.
        bos_token_id: 254,
        eos_token_id: 255,
      } satisfies Qwen2Config;
      break;
    case 'gemma2':
      c = {
        ...common,
        architectures: ['Gemma2ForCausalLM'],
        model_type: 'gemma2',
        vocab_size: 256,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 32,
        hidden_act: 'gelu_pytorch_tanh',
        hidden_activation: 'gelu_pytorch_tanh',
        query_pre_attn_scalar: 32,
        attn_logit_softcapping: 5.0,
        final_logit_softcapping: 3.0,
        sliding_window: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10000.0,
        max_position_embeddings: 512,
        tie_word_embeddings: true,
        attention_bias: false,
        pad_token_id: 0,
        bos_token_id: 2,
        eos_token_id: [1, 107], // <eos>, <end_of_turn> in Gemma-2-2b-it
        cache_implementation: 'hybrid',
      } satisfies Gemma2Config;
      break;
    default:
      throw new Error(`unknown arch ${String(arch)}`);
  }
  return c as ConfigFor<A>;
}

/** head_dim as the HF modeling code derives it (Qwen2 has no field: hidden / heads). */
export function headDim(c: TinyConfig): number {
  return 'head_dim' in c ? c.head_dim : c.hidden_size / c.num_attention_heads;
}

// ── PRNG ──────────────────────────────────────────────────────────────────────────────────────

/** mulberry32: 32-bit state, full period 2^32, integer-only so every machine gives the same bits. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** FNV-1a 32-bit of a string's UTF-16 code units, mixed with a seed: a per-tensor stream seed. */
export function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** n values uniform in [center - s, center + s) from the (seed, name) stream, rounded to dtype. */
export function uniformTensorValues(seed: number, name: string, n: number, s: number, center: number, dtype: SafetensorsDtype): Float32Array {
  const next = mulberry32(streamSeed(seed, name));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = next() / 4294967296; // [0, 1)
    out[i] = roundToDtype(center + (2 * u - 1) * s, dtype);
  }
  return out;
}

/**
 * Per-tensor scale knobs. s = gain / sqrt(fan_in). The gains keep activations O(1); for gemma2
 * the q/k gain makes raw attention scores reach ~±7 (std ≈ gain²/3) against the cap of 5, and the
 * embedding range makes raw final logits reach ~±4 against the cap of 3, so both softcaps bite.
 */
interface Gains {
  embed: number; // absolute half-range of embedding values
  qk: number;
  vo: number;
  bias: number; // absolute half-range (qwen2 q/k/v biases)
  mlpIn: number;
  mlpOut: number;
  lmHead: number;
  normSpread: number; // norm weights: 1 ± spread (llama/qwen2) or 0 ± spread (gemma2, used as 1 + w)
}

const GAINS: Record<Arch, Gains> = {
  llama: { embed: 1.0, qk: 2.0, vo: 1.5, bias: 0, mlpIn: 1.5, mlpOut: 1.5, lmHead: 3.0, normSpread: 0.2 },
  qwen2: { embed: 0.6, qk: 2.0, vo: 1.5, bias: 0.3, mlpIn: 1.5, mlpOut: 1.5, lmHead: 0, normSpread: 0.2 },
  gemma2: { embed: 0.8, qk: 4.5, vo: 1.5, bias: 0, mlpIn: 1.5, mlpOut: 1.5, lmHead: 0, normSpread: 0.1 },
};

/** HF tensor names and shapes of an arch's config, in the order the modules are declared. */
export function tensorShapes(c: TinyConfig): { name: string; shape: number[] }[] {
  const hidden = c.hidden_size;
  const d = headDim(c);
  const qOut = c.num_attention_heads * d;
  const kvOut = c.num_key_value_heads * d;
  const inter = c.intermediate_size;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocab_size, hidden] }];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    out.push({ name: `${p}.self_attn.q_proj.weight`, shape: [qOut, hidden] });
    if (c.model_type === 'qwen2') out.push({ name: `${p}.self_attn.q_proj.bias`, shape: [qOut] });
    out.push({ name: `${p}.self_attn.k_proj.weight`, shape: [kvOut, hidden] });
    if (c.model_type === 'qwen2') out.push({ name: `${p}.self_attn.k_proj.bias`, shape: [kvOut] });
    out.push({ name: `${p}.self_attn.v_proj.weight`, shape: [kvOut, hidden] });
    if (c.model_type === 'qwen2') out.push({ name: `${p}.self_attn.v_proj.bias`, shape: [kvOut] });
    out.push({ name: `${p}.self_attn.o_proj.weight`, shape: [hidden, qOut] });
    out.push({ name: `${p}.mlp.gate_proj.weight`, shape: [inter, hidden] });
    out.push({ name: `${p}.mlp.up_proj.weight`, shape: [inter, hidden] });
    out.push({ name: `${p}.mlp.down_proj.weight`, shape: [hidden, inter] });
    out.push({ name: `${p}.input_layernorm.weight`, shape: [hidden] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [hidden] });
    if (c.model_type === 'gemma2') {
      out.push({ name: `${p}.pre_feedforward_layernorm.weight`, shape: [hidden] });
      out.push({ name: `${p}.post_feedforward_layernorm.weight`, shape: [hidden] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [hidden] });
  if (!c.tie_word_embeddings) out.push({ name: 'lm_head.weight', shape: [c.vocab_size, hidden] });
  return out;
}

function initRange(arch: Arch, name: string, shape: number[]): { s: number; center: number } {
  const g = GAINS[arch];
  const fanIn = shape.length === 2 ? shape[1]! : shape[0]!;
  const k = 1 / Math.sqrt(fanIn);
  if (name.endsWith('norm.weight')) return { s: g.normSpread, center: arch === 'gemma2' ? 0 : 1 };
  if (name === 'model.embed_tokens.weight') return { s: g.embed, center: 0 };
  if (name === 'lm_head.weight') return { s: g.lmHead * k, center: 0 };
  if (name.endsWith('.bias')) return { s: g.bias, center: 0 };
  if (/\.(q|k)_proj\.weight$/.test(name)) return { s: g.qk * k, center: 0 };
  if (/\.(v|o)_proj\.weight$/.test(name)) return { s: g.vo * k, center: 0 };
  if (/\.(gate|up)_proj\.weight$/.test(name)) return { s: g.mlpIn * k, center: 0 };
  if (name.endsWith('.down_proj.weight')) return { s: g.mlpOut * k, center: 0 };
  throw new Error(`no init rule for tensor ${name}`);
}

function validateConfig(c: TinyConfig): void {
  const bad = (field: string, why: string) => new Error(`tiny ${c.model_type} config: ${field} ${why}`);
  for (const f of ['hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'vocab_size'] as const) {
    if (!Number.isInteger(c[f]) || c[f] <= 0) throw bad(f, `must be a positive integer, got ${c[f]}`);
  }
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw bad('num_key_value_heads', `(${c.num_key_value_heads}) must divide num_attention_heads (${c.num_attention_heads})`);
  }
  const d = headDim(c);
  if (!Number.isInteger(d) || d % 2 !== 0) throw bad('head_dim', `must be an even integer, got ${d}`);
  if (c.model_type === 'qwen2' && c.hidden_size % c.num_attention_heads !== 0) {
    throw bad('hidden_size', `(${c.hidden_size}) must be divisible by num_attention_heads (${c.num_attention_heads})`);
  }
}

/** Builds a tiny model in memory. Same (arch, seed, dtype, overrides) -> the same bits. */
export function makeTinyModel<A extends Arch>(arch: A, opts: TinyModelOptions<A> = {}): TinyModel<A> {
  const seed = (opts.seed ?? 1) >>> 0;
  const dtype = opts.dtype ?? 'F32';
  const config = { ...defaultTinyConfig(arch, dtype), ...(opts.overrides ?? {}) } as ConfigFor<A>;
  if (config.model_type !== arch) throw new Error(`overrides.model_type ${config.model_type} does not match arch ${arch}`);
  validateConfig(config);
  const tensors: TensorSpec[] = tensorShapes(config).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const { s, center } = initRange(arch, name, shape);
    return { name, dtype, shape, data: uniformTensorValues(seed, name, n, s, center, dtype) };
  });
  return { arch, seed, dtype, config, tensors };
}

/** Name -> tensor lookup that throws on a missing name. */
export function tensorGetter(model: { tensors: TensorSpec[] }): (name: string) => TensorSpec {
  const map = new Map(model.tensors.map((t) => [t.name, t]));
  return (name) => {
    const t = map.get(name);
    if (!t) throw new Error(`tensor ${name} not in model`);
    return t;
  };
}

/** config.json text as written (stable key order, 2-space indent). */
export function configJson(config: TinyConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}

/** sha256 of config.json's text. */
export function configDigest(config: TinyConfig): string {
  return createHash('sha256').update(configJson(config)).digest('hex');
}

/** sha256 over every tensor's name, dtype, shape and stored bytes, in order. */
export function weightsDigest(model: { tensors: TensorSpec[] }): string {
  const h = createHash('sha256');
  for (const t of model.tensors) {
    h.update(`${t.name}|${t.dtype}|${t.shape.join(',')}\n`);
    h.update(encodeTensorData(t));
  }
  return h.digest('hex');
}

/**
 * Writes `dir`/config.json and the weights (model.safetensors, or `sharded` shards + index) and
 * returns the model it wrote.
 */
export function writeTinyModel<A extends Arch>(dir: string, arch: A, opts: TinyModelOptions<A> = {}): TinyModel<A> {
  const model = makeTinyModel(arch, opts);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), configJson(model.config));
  const shards = opts.sharded ?? 1;
  if (shards >= 2) writeShardedSafetensors(dir, model.tensors, shards, { format: 'pt' });
  else writeSafetensors(join(dir, 'model.safetensors'), model.tensors, { format: 'pt' });
  return model;
}
