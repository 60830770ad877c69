/**
 * Sampling-engine throughput on a Qwen2.5-0.5B-shaped model with random bf16 weights: prefill and
 * decode tokens/s with 1, 4 and 16 concurrent sequences (1 prompt x 1, 1 prompt x group 4,
 * 4 prompts x group 4), and single-sequence decode against the memory-bandwidth roofline.
 *
 * Run (writes a ~1 GB model folder under the OS temp dir once, then reuses it):
 *   npx tsc --outDir build/bench --rootDir . --module nodenext --moduleResolution nodenext \
 *     --target es2022 --skipLibCheck --types node bench/engine.ts && node build/bench/bench/engine.js
 * Options (env): RREC_BENCH_PROMPT (prompt tokens, 64), RREC_BENCH_TOKENS (new tokens, 32),
 * RREC_BENCH_BW (roofline bandwidth in GB/s, 50), RREC_BENCH_ONLY (ours | llama.cpp),
 * RREC_BENCH_TEMP (sampling temperature of both engines, 1; 0 = greedy).
 *
 * When test/reference/llama-cpp/node_modules holds node-llama-cpp (`cd test/reference/llama-cpp &&
 * npm ci`), the same weights are also written as GGUF (bf16 matrices, f32 norms and biases, as
 * convert_hf_to_gguf.py does) and llama.cpp runs the same shapes on the CPU with the same threads
 * (its default f16 KV cache; the same sampling temperature in both), and the ratio is printed.
 */
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { encodeGguf, tinyModelGgufKvs, type GgufTensor } from '../test/helpers/gguf-writer.js';
import type { TinyConfig } from '../test/helpers/tiny-models.js';
import { Engine, type GenerateRequest } from '../src/engine/index.js';
import { CausalLM } from '../src/model/index.js';
import { nativeFeatures } from '../src/index.js';

const C = 896, L = 24, HQ = 14, HK = 2, D = 64, F = 4864, V = 151936;

function config(): object {
  return {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: C, intermediate_size: F, num_hidden_layers: L,
    num_attention_heads: HQ, num_key_value_heads: HK, hidden_act: 'silu', rms_norm_eps: 1e-6, rope_theta: 1e6,
    max_position_embeddings: 32768, vocab_size: V, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false,
    sliding_window: 32768, max_window_layers: 21, bos_token_id: 151643, eos_token_id: 151645,
  };
}

interface BenchTensor {
  name: string;
  shape: number[];
  data: Uint16Array; // bf16 bits
}

/** Random bf16 tensors (uniform +-s; norms exactly 1), deterministic. */
function makeTensors(): BenchTensor[] {
  const specs: { name: string; shape: number[]; s: number }[] = [{ name: 'model.embed_tokens.weight', shape: [V, C], s: 0.05 }];
  for (let l = 0; l < L; l++) {
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

function writeSafetensorsFolder(dir: string, tensors: BenchTensor[]): void {
  mkdirSync(dir, { recursive: true });
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [off, off + t.data.byteLength] };
    off += t.data.byteLength;
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const fd = openSync(join(dir, 'model.safetensors'), 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeSync(fd, len);
  writeSync(fd, h);
  for (const t of tensors) writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  closeSync(fd);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config(), null, 2));
}

/** The GGUF llama.cpp's converter makes of the same weights: bf16 matrices, f32 vectors. */
function writeGgufFile(path: string, tensors: BenchTensor[]): void {
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
  writeFileSync(path, encodeGguf(tinyModelGgufKvs(config() as TinyConfig, 'bench-qwen2.5-0.5b'), out));
}

// The slice of node-llama-cpp's API used here (typed locally: it is not a dependency).
interface NlcSequence {
  evaluate(tokens: number[], o: Record<string, unknown>): AsyncGenerator<number, void, void>;
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: Record<string, unknown>): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<NlcModel>;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
  LlamaLogLevel: Record<string, string>;
}

/** llama.cpp: `seqs` sequences of prompts[i] generated concurrently (node-llama-cpp batches them). */
async function llamaCppRun(model: NlcModel, prompts: number[][], newTokens: number, temperature = 1): Promise<{ prefill: number; decode: number }> {
  const ctx = await model.createContext({ contextSize: prompts.length * (prompts[0]!.length + newTokens + 16), batchSize: 512, sequences: prompts.length, threads: 2, flashAttention: false });
  const t0 = performance.now();
  let firstDone = 0;
  let tFirst = 0;
  await Promise.all(
    prompts.map(async (p, i) => {
      const seq = ctx.getSequence();
      let n = 0;
      for await (const tok of seq.evaluate(p, { temperature, seed: i + 1 })) {
        void tok;
        if (++n === 1 && ++firstDone === prompts.length) tFirst = performance.now();
        if (n >= newTokens) break;
      }
    }),
  );
  const t1 = performance.now();
  await ctx.dispose();
  const seqs = prompts.length;
  return { prefill: (seqs * prompts[0]!.length) / ((tFirst - t0) / 1000), decode: (seqs * (newTokens - 1)) / ((t1 - tFirst) / 1000) };
}

async function main(): Promise<void> {
  const dir = join(tmpdir(), 'rrec-bench-qwen2_5-0_5b-bf16');
  const ggufPath = join(dir, 'model-bf16.gguf');
  const here = dirname(fileURLToPath(import.meta.url));
  const nlcCandidates = [join(here, '..', 'test', 'reference', 'llama-cpp', 'node_modules', 'node-llama-cpp'), join(here, '..', '..', '..', 'test', 'reference', 'llama-cpp', 'node_modules', 'node-llama-cpp')];
  const nlcDir = nlcCandidates.find((d) => existsSync(join(d, 'dist', 'index.js')));
  if (!existsSync(join(dir, 'model.safetensors')) || (nlcDir && !existsSync(ggufPath))) {
    const t = Date.now();
    const tensors = makeTensors();
    writeSafetensorsFolder(dir, tensors);
    if (nlcDir) writeGgufFile(ggufPath, tensors);
    console.log(`wrote ${dir} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  const promptLen = Number(process.env.RREC_BENCH_PROMPT ?? 64);
  const newTokens = Number(process.env.RREC_BENCH_TOKENS ?? 32);
  const bw = Number(process.env.RREC_BENCH_BW ?? 50);
  const temperature = Number(process.env.RREC_BENCH_TEMP ?? 1);
  const f = nativeFeatures();
  console.log(`threads ${f.threads}, simd ${f.compiledSimd}; prompt ${promptLen} tokens, ${newTokens} new tokens per sequence, temperature ${temperature}`);
  const ours: { prefill: number; decode: number }[] = [];
  const shapes: [string, number, number][] = [['1 x 1', 1, 1], ['1 x group 4', 1, 4], ['4 x group 4', 4, 4]];
  const prompt = (k: number) => Array.from({ length: promptLen }, (_, i) => (i * 7919 + k * 104729) % 150000);
  if (process.env.RREC_BENCH_ONLY !== 'llama.cpp') await runOurs();
  else shapes.forEach(() => ours.push({ prefill: NaN, decode: NaN }));

  async function runOurs(): Promise<void> {
  const lm = await CausalLM.load(dir);
  const engine = new Engine(lm, { kvBudgetBytes: 1 << 30 });
  const weightBytes = (V * C + L * (C * (HQ * D + 2 * HK * D) + HQ * D * C + 3 * C * F)) * 2;
  // warm-up (page in the weights)
  await engine.generate([{ prompt: prompt(99), maxTokens: 2, temperature: 1, seed: 1, stopTokenIds: [] }]);
  console.log('rrec-emotion engine:');
  console.log('| sequences | shape | prefill tok/s | decode tok/s | decode step ms | preemptions |');
  console.log('|---|---|---|---|---|---|');
  let single = 0;
  for (const [name, prompts, n] of shapes) {
    engine.resetStats();
    const reqs: GenerateRequest[] = Array.from({ length: prompts }, (_, k) => ({
      prompt: prompt(k), n, temperature, seed: k + 1, maxTokens: newTokens, stopTokenIds: [],
    }));
    await engine.generate(reqs);
    const s = engine.stats();
    const seqs = prompts * n;
    if (seqs === 1) single = s.decodeTokensPerSecond;
    const stepMs = s.decodeSeconds > 0 ? (1000 * s.decodeSeconds) / (s.decodeOnlyTokens / seqs) : 0;
    console.log(`| ${seqs} | ${name} | ${s.prefillTokensPerSecond.toFixed(1)} | ${s.decodeTokensPerSecond.toFixed(1)} | ${stepMs.toFixed(1)} | ${s.preemptions} |`);
    ours.push({ prefill: s.prefillTokensPerSecond, decode: s.decodeTokensPerSecond });
  }
  const roof = (bw * 1e9) / weightBytes;
  console.log(`single-sequence decode: ${single.toFixed(1)} tok/s = ${((100 * single) / roof).toFixed(0)}% of the ${bw} GB/s roofline (${roof.toFixed(1)} tok/s for ${(weightBytes / 1e6).toFixed(0)} MB of bf16 weights per token)`);
  engine.free();
  lm.free();
  }
  if (process.env.RREC_BENCH_ONLY === 'ours') return;
  if (!nlcDir) {
    console.log('llama.cpp: skipped (no node-llama-cpp under test/reference/llama-cpp/node_modules)');
    return;
  }
  const nlc = (await import(pathToFileURL(join(nlcDir, 'dist', 'index.js')).href)) as NlcModule;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: nlc.LlamaLogLevel['error'] });
  const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
  await llamaCppRun(model, [prompt(99)], 2); // warm-up
  console.log('llama.cpp (node-llama-cpp, same weights as GGUF bf16, 2 threads), and our ratio:');
  console.log('| sequences | prefill tok/s | decode tok/s | ours / llama.cpp prefill | ours / llama.cpp decode |');
  console.log('|---|---|---|---|---|');
  for (let i = 0; i < shapes.length; i++) {
    const [, prompts, n] = shapes[i]!;
    // llama.cpp has no prefix sharing: each of the n samples of a prompt is its own sequence
    const ps = Array.from({ length: prompts * n }, (_, k) => prompt(Math.floor(k / n)));
    const r = await llamaCppRun(model, ps, newTokens, temperature);
    console.log(`| ${ps.length} | ${r.prefill.toFixed(1)} | ${r.decode.toFixed(1)} | ${(ours[i]!.prefill / r.prefill).toFixed(2)} | ${(ours[i]!.decode / r.decode).toFixed(2)} |`);
  }
  await model.dispose();
  await llama.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
