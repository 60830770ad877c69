// A GGUF v3 writer, and the conversion of a tiny HF model (tiny-models.ts) into the GGUF that
// llama.cpp's convert_hf_to_gguf.py would produce for it, so llama.cpp can serve as an
// independent reference for the forward pass (test/reference/).
//
// GGUF v3 layout (all little-endian):
//   "GGUF" | u32 version=3 | u64 tensor_count | u64 kv_count
//   kv_count × { string key | u32 value_type | value }
//   tensor_count × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   zero padding to `general.alignment` (default 32)
//   tensor data; each tensor starts at data_start + offset, offset a multiple of the alignment
// string = u64 byte length + UTF-8 bytes (no terminator); array = u32 item type + u64 count + items.
// ne[] is ggml order: ne[0] is the fastest-varying (innermost) dimension, i.e. the HF shape reversed.
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
import type { TensorSpec } from './safetensors-writer.js';
import { headDim, type TinyConfig, type TinyModel } from './tiny-models.js';

// gguf_type
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
type ScalarTypeName = Exclude<keyof typeof GgufType, 'ARRAY'>;

// ggml_type (only the float ones this writer emits)
export const GgmlType = { F32: 0, F16: 1, BF16: 30 } as const;

export type GgufValue =
  | { type: ScalarTypeName; value: number | bigint | boolean | string }
  | { type: 'ARRAY'; itemType: ScalarTypeName; values: (number | bigint | boolean | string)[] };

export interface GgufKv {
  key: string;
  value: GgufValue;
}

export interface GgufTensor {
  name: string;
  /** ggml order: ne[0] innermost. */
  ne: number[];
  type: keyof typeof GgmlType;
  /** Raw little-endian bytes of the tensor in ggml layout. */
  data: Buffer;
}

export const u32 = (value: number): GgufValue => ({ type: 'UINT32', value });
export const i32 = (value: number): GgufValue => ({ type: 'INT32', value });
export const f32 = (value: number): GgufValue => ({ type: 'FLOAT32', value });
export const str = (value: string): GgufValue => ({ type: 'STRING', value });
export const bool = (value: boolean): GgufValue => ({ type: 'BOOL', value });
export const arr = (itemType: ScalarTypeName, values: (number | bigint | boolean | string)[]): GgufValue => ({ type: 'ARRAY', itemType, values });

/** Growable little-endian byte sink. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = Buffer.alloc(cap);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.ensure(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.ensure(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  bytes(b: Buffer): void { this.ensure(b.length); b.copy(this.buf, this.length); this.length += b.length; }
  string(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  padTo(alignment: number): void { const r = this.length % alignment; if (r) { const n = alignment - r; this.ensure(n); this.buf.fill(0, this.length, this.length + n); this.length += n; } }
  result(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(w: ByteWriter, type: ScalarTypeName, v: number | bigint | boolean | string, key: string): void {
  const num = (): number => {
    if (typeof v !== 'number') throw new Error(`gguf kv ${key}: ${type} needs a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case 'UINT8': return w.u8(num());
    case 'INT8': return w.i8(num());
    case 'UINT16': return w.u16(num());
    case 'INT16': return w.i16(num());
    case 'UINT32': return w.u32(num());
    case 'INT32': return w.i32(num());
    case 'FLOAT32': return w.f32(num());
    case 'FLOAT64': return w.f64(num());
    case 'UINT64':
    case 'INT64':
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`gguf kv ${key}: ${type} needs a number or bigint`);
      return type === 'UINT64' ? w.u64(v) : w.i64(v);
    case 'BOOL':
      if (typeof v !== 'boolean') throw new Error(`gguf kv ${key}: BOOL needs a boolean`);
      return w.u8(v ? 1 : 0);
    case 'STRING':
      if (typeof v !== 'string') throw new Error(`gguf kv ${key}: STRING needs a string`);
      return w.string(v);
  }
}

export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Encodes a GGUF v3 file. The alignment is taken from a `general.alignment` kv if present. */
export function encodeGguf(kvs: GgufKv[], tensors: GgufTensor[]): Buffer {
  const alignKv = kvs.find((kv) => kv.key === 'general.alignment');
  const alignment = alignKv && alignKv.value.type === 'UINT32' ? Number(alignKv.value.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!(alignment > 0 && alignment % 8 === 0)) throw new Error(`general.alignment must be a positive multiple of 8, got ${alignment}`);

  const w = new ByteWriter();
  w.bytes(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  const keys = new Set<string>();
  for (const { key, value } of kvs) {
    if (keys.has(key)) throw new Error(`duplicate gguf key ${key}`);
    keys.add(key);
    w.string(key);
    w.u32(GgufType[value.type]);
    if (value.type === 'ARRAY') {
      w.u32(GgufType[value.itemType]);
      w.u64(value.values.length);
      for (const item of value.values) writeScalar(w, value.itemType, item, key);
    } else {
      writeScalar(w, value.type, value.value, key);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const n = t.ne.reduce((a, b) => a * b, 1);
    const bytesPer = t.type === 'F32' ? 4 : 2;
    if (t.data.length !== n * bytesPer) throw new Error(`gguf tensor ${t.name}: ${t.data.length} bytes, ne [${t.ne.join(', ')}] ${t.type} needs ${n * bytesPer}`);
    if (Buffer.byteLength(t.name, 'utf8') >= 64) throw new Error(`gguf tensor name too long (ggml limit 63 bytes): ${t.name}`);
    w.string(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(GgmlType[t.type]);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.data.length / alignment) * alignment;
  }
  w.padTo(alignment);
  const dataStart = w.length;
  tensors.forEach((t, i) => {
    if (w.length - dataStart !== offsets[i]) throw new Error('gguf writer: offset bookkeeping broke');
    w.bytes(t.data);
    w.padTo(alignment);
  });
  return w.result();
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
