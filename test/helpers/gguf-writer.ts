// The conversion of a tiny HF model (tiny-models.ts) into the GGUF that
// llama.cpp's convert_hf_to_gguf.py would produce for it, so llama.cpp can serve as an
// independent reference for the forward pass (test/reference/).
//
// The GGUF container is the library's (src/export/gguf-file.ts, which describes the layout).
//
// What the conversion does (convert_hf_to_gguf.py + gguf-py tensor_mapping.py, read from
// ggml-org/llama.cpp; no code copied):
//   * names: model.embed_tokens -> token_embd, model.norm -> output_norm, lm_head -> output,
//     layers.{i}.input_layernorm -> blk.{i}.attn_norm, self_attn.{q,k,v,o}_proj -> attn_{q,k,v,output},
//     mlp.{gate,up,down}_proj -> ffn_{gate,up,down};
//     llama/qwen2: post_attention_layernorm -> ffn_norm;
//     gemma2: post_attention_layernorm -> post_attention_norm, pre_feedforward_layernorm -> ffn_norm,
//             post_feedforward_layernorm -> post_ffw_norm.
//   * llama: q_proj/k_proj rows permuted per head (LlamaModel.permute): llama.cpp's llama arch uses
//     "normal" RoPE rotating adjacent pairs (2i, 2i+1), HF rotates (i, i + d/2). Row h·d/2 + i of a
//     head moves to row 2i + h (h ∈ {0,1}). qwen2 and gemma2 use NeoX RoPE: no permutation.
//   * gemma2: every "*norm.weight" is stored as w + 1 (llama.cpp multiplies by the stored weight).
//     lm_head is dropped (tied). query_pre_attn_scalar is not stored: llama.cpp scales by
//     1/sqrt(head_dim) except for the 27B.
//   * metadata keys as GGUFWriter writes them (u32 sizes, f32 floats), plus a minimal byte-level
//     "gpt2" tokenizer (llama.cpp refuses a GGUF without tokenizer.ggml.model / tokens / merges).
import { writeFileSync } from 'node:fs';
import { encodeGguf as encodeGgufFile, type GgufKv, type GgufTensorInfo } from '../../src/export/gguf-file.js';
import type { TensorSpec } from './safetensors-writer.js';
import { headDim, type TinyConfig, type TinyModel } from './tiny-models.js';

// The container itself is the library's (src/export/gguf-file.ts); this file keeps the conversion
// of the tiny test models that the llama.cpp fixtures were made with.
export { GgufType, GgmlType, u32, i32, f32, str, bool, arr, GGUF_DEFAULT_ALIGNMENT, type GgufValue, type GgufKv } from '../../src/export/gguf-file.js';
import { arr, bool, f32, GGUF_DEFAULT_ALIGNMENT, str, u32 } from '../../src/export/gguf-file.js';

export interface GgufTensor extends GgufTensorInfo {
  /** Raw little-endian bytes of the tensor in ggml layout. */
  data: Buffer;
}

/** Encodes a GGUF v3 file. The alignment is taken from a `general.alignment` kv if present. */
export function encodeGguf(kvs: GgufKv[], tensors: GgufTensor[]): Buffer {
  return encodeGgufFile(kvs, tensors);
}

export function writeGguf(path: string, kvs: GgufKv[], tensors: GgufTensor[]): void {
  writeFileSync(path, encodeGguf(kvs, tensors));
}

// ── HF tiny model -> GGUF (as convert_hf_to_gguf.py) ─────────────────────────────────────────

/** The GPT-2 byte -> printable-unicode map (bytes_to_unicode), used for byte-level BPE tokens. */
export function gpt2ByteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array<string>(256);
  const isPrintable = new Set(printable);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (isPrintable.has(b)) map[b] = String.fromCodePoint(b);
    else map[b] = String.fromCodePoint(256 + n++);
  }
  return map;
}

/**
 * Permutes the rows of an HF q_proj/k_proj weight [nHead·d, in] (or bias [nHead·d]) from HF's
 * rotate_half pairing to llama.cpp's adjacent-pair RoPE: within each head, row h·(d/2) + i
 * (h ∈ {0, 1}, i < d/2) goes to row 2i + h.
 */
export function permuteForGgufLlamaRope(data: Float32Array, nHead: number, rowLen: number): Float32Array {
  const rows = data.length / rowLen;
  const d = rows / nHead;
  if (!Number.isInteger(d) || d % 2 !== 0) throw new Error(`permute: ${rows} rows do not split into ${nHead} heads of even size`);
  const half = d / 2;
  const out = new Float32Array(data.length);
  for (let head = 0; head < nHead; head++) {
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < half; i++) {
        const src = head * d + h * half + i;
        const dst = head * d + 2 * i + h;
        out.set(data.subarray(src * rowLen, (src + 1) * rowLen), dst * rowLen);
      }
    }
  }
  return out;
}

function ggufTensorName(arch: TinyConfig['model_type'], hfName: string): string | null {
  if (hfName === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hfName === 'model.norm.weight') return 'output_norm.weight';
  if (hfName === 'lm_head.weight') return arch === 'gemma2' ? null : 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hfName);
  if (!m) throw new Error(`gguf convert: unexpected tensor ${hfName}`);
  const [, layer, mod, kind] = m;
  const table: Record<string, string> = {
    input_layernorm: 'attn_norm',
    'self_attn.q_proj': 'attn_q',
    'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output',
    'mlp.gate_proj': 'ffn_gate',
    'mlp.up_proj': 'ffn_up',
    'mlp.down_proj': 'ffn_down',
    post_attention_layernorm: arch === 'gemma2' ? 'post_attention_norm' : 'ffn_norm',
    pre_feedforward_layernorm: 'ffn_norm',
    post_feedforward_layernorm: 'post_ffw_norm',
  };
  const base = table[mod!];
  if (!base) throw new Error(`gguf convert: no GGUF name for ${hfName}`);
  return `blk.${layer}.${base}.${kind}`;
}

function f32Bytes(data: Float32Array): Buffer {
  const b = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) b.writeFloatLE(data[i]!, i * 4);
  return b;
}

/** The metadata convert_hf_to_gguf.py writes for the tiny model, plus the minimal tokenizer. */
export function tinyModelGgufKvs(config: TinyConfig, name = `tiny-${config.model_type}`): GgufKv[] {
  const a = config.model_type;
  const d = headDim(config);
  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: str(a) },
    { key: 'general.name', value: str(name) },
    { key: 'general.alignment', value: u32(GGUF_DEFAULT_ALIGNMENT) },
    { key: 'general.file_type', value: u32(0) }, // LLAMA_FTYPE_ALL_F32
    { key: `${a}.context_length`, value: u32(config.max_position_embeddings) },
    { key: `${a}.embedding_length`, value: u32(config.hidden_size) },
    { key: `${a}.block_count`, value: u32(config.num_hidden_layers) },
    { key: `${a}.feed_forward_length`, value: u32(config.intermediate_size) },
    { key: `${a}.attention.head_count`, value: u32(config.num_attention_heads) },
    { key: `${a}.attention.head_count_kv`, value: u32(config.num_key_value_heads) },
    { key: `${a}.rope.freq_base`, value: f32(config.rope_theta) },
    { key: `${a}.attention.layer_norm_rms_epsilon`, value: f32(config.rms_norm_eps) },
  ];
  // The converter writes key/value_length only where config.json has head_dim (not Qwen2, whose
  // head_dim llama.cpp derives as embedding_length / head_count).
  if ('head_dim' in config) {
    kvs.push({ key: `${a}.attention.key_length`, value: u32(d) }, { key: `${a}.attention.value_length`, value: u32(d) });
  }
  if (a === 'llama') {
    kvs.push({ key: 'llama.vocab_size', value: u32(config.vocab_size) });
    kvs.push({ key: 'llama.rope.dimension_count', value: u32(d) });
  }
  if (config.model_type === 'gemma2') {
    if (config.attn_logit_softcapping != null) kvs.push({ key: 'gemma2.attn_logit_softcapping', value: f32(config.attn_logit_softcapping) });
    if (config.final_logit_softcapping != null) kvs.push({ key: 'gemma2.final_logit_softcapping', value: f32(config.final_logit_softcapping) });
    kvs.push({ key: 'gemma2.attention.sliding_window', value: u32(config.sliding_window) });
  }

  // Tokenizer: one byte-level BPE token per id (GPT-2's byte -> unicode map), no merges, so every
  // id < 256 is a valid token and "\n" maps to a token (llama.cpp looks for a newline token).
  if (config.vocab_size < 256) throw new Error(`gguf tokenizer needs vocab_size >= 256, got ${config.vocab_size}`);
  const byteChars = gpt2ByteToUnicode();
  const tokens: string[] = [];
  for (let i = 0; i < config.vocab_size; i++) tokens.push(i < 256 ? byteChars[i]! : `<extra_${i}>`);
  const eos = Array.isArray(config.eos_token_id) ? config.eos_token_id[0]! : config.eos_token_id;
  kvs.push(
    { key: 'tokenizer.ggml.model', value: str('gpt2') },
    { key: 'tokenizer.ggml.pre', value: str('default') },
    { key: 'tokenizer.ggml.tokens', value: arr('STRING', tokens) },
    { key: 'tokenizer.ggml.token_type', value: arr('INT32', tokens.map((_, i) => (i < 256 ? 1 : 4))) }, // NORMAL / USER_DEFINED
    { key: 'tokenizer.ggml.merges', value: arr('STRING', []) },
    { key: 'tokenizer.ggml.bos_token_id', value: u32(config.bos_token_id) },
    { key: 'tokenizer.ggml.eos_token_id', value: u32(eos) },
    { key: 'tokenizer.ggml.add_bos_token', value: bool(false) },
  );
  if ('pad_token_id' in config) kvs.push({ key: 'tokenizer.ggml.padding_token_id', value: u32(config.pad_token_id) });
  return kvs;
}

/** The GGUF tensors of a tiny model (F32), converted the way convert_hf_to_gguf.py does. */
export function tinyModelGgufTensors(model: TinyModel): GgufTensor[] {
  const c = model.config;
  const arch = c.model_type;
  const out: GgufTensor[] = [];
  for (const t of model.tensors as TensorSpec[]) {
    const name = ggufTensorName(arch, t.name);
    if (name === null) continue;
    let data: Float32Array = Float32Array.from(t.data);
    if (arch === 'llama') {
      const rowLen = t.shape.length === 2 ? t.shape[1]! : 1;
      if (/\.q_proj\.(weight|bias)$/.test(t.name)) data = permuteForGgufLlamaRope(data, c.num_attention_heads, rowLen);
      if (/\.k_proj\.(weight|bias)$/.test(t.name)) data = permuteForGgufLlamaRope(data, c.num_key_value_heads, rowLen);
    }
    if (arch === 'gemma2' && t.name.endsWith('norm.weight')) {
      // Computed in f32 like torch's `data_torch + 1` on an f32 tensor.
      data = data.map((v) => Math.fround(v + 1));
    }
    out.push({ name, ne: [...t.shape].reverse(), type: 'F32', data: f32Bytes(data) });
  }
  return out;
}

/** Writes the GGUF (all tensors F32) that llama.cpp's converter would make of `model`. */
export function writeTinyModelGguf(path: string, arch: TinyConfig['model_type'], model: TinyModel): void {
  if (model.arch !== arch || model.config.model_type !== arch) throw new Error(`writeTinyModelGguf: arch ${arch} but model is ${model.arch}`);
  writeGguf(path, tinyModelGgufKvs(model.config), tinyModelGgufTensors(model));
}
