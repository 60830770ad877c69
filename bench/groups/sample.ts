/**
 * sample.*: throughput of our paged-KV sampling engine on a Qwen2.5-0.5B-shaped model with random
 * bf16 weights (bench/lib/qwen-model.ts), beside llama.cpp (node-llama-cpp, CPU, the same weights
 * as a bf16 GGUF, the same thread count, its default f16 KV cache) when installed. Both sides are
 * timed the same way, on the wall clock around a streamed generation: start -> every sequence has
 * its first token (prefill) -> every sequence has all its tokens (decode). Temperature 1, no stop
 * tokens, so every sequence generates exactly its budget. Each round runs every figure on ours,
 * then on llama.cpp.
 *   sample.prefill        1 prompt, prompt tokens / seconds to the first token
 *   sample.decode.bN      N distinct short prompts decoded together: tokens after the first / seconds
 *   sample.group4x4       GRPO's rollout shape: 4 prompts x 4 samples each, all generated tokens /
 *                         total seconds (prefill included; ours prefills each prompt once and shares
 *                         it, llama.cpp here runs 16 independent sequences)
 * sample.decode.b1 also carries weight_bytes_per_token and roofline_fraction: its median over the
 * median read bandwidth measured in the same rounds, right before each of its runs (the 512 MiB
 * read of memory.bandwidth, 2 passes): this machine's bandwidth drifts by a third within minutes,
 * so a roofline measured in another group, minutes away, moved the fraction by as much (run-all.ts
 * adds the memory.bandwidth-based figure to the note, for comparison).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, type GenerateRequest } from '../../src/engine/index.js';
import { CausalLM } from '../../src/model/index.js';
import { nativeFeatures } from '../../src/index.js';
import { makeFigure, median, type Figure } from '../lib/figures.js';
import { runGroup } from '../lib/group.js';
import { LLAMA_CPP_INSTALL_HINT, LlamaCpp, findNodeLlamaCpp, type GenerationTimes } from '../lib/llama-cpp.js';
import { kernelAddon } from '../lib/matmul.js';
import { ensureQwenModel } from '../lib/qwen-model.js';

interface Case {
  name: string;
  prompts: number;
  /** Samples per prompt (ours: n with a shared prefix; llama.cpp: repeated prompts). */
  n: number;
  promptLen: number;
  newTokens: number;
  metric: 'prefill' | 'decode' | 'total';
}

const TEMPERATURE = 1;

/** Deterministic prompt k of `len` token ids (all below 150000, no special tokens). */
const prompt = (k: number, len: number): number[] => Array.from({ length: len }, (_, i) => (i * 7919 + k * 104729) % 150000);

/** Our engine, timed exactly as LlamaCpp.generate times llama.cpp. */
async function oursGenerate(engine: Engine, c: Case): Promise<GenerationTimes> {
  const reqs: GenerateRequest[] = Array.from({ length: c.prompts }, (_, k) => ({ prompt: prompt(k, c.promptLen), n: c.n, temperature: TEMPERATURE, seed: k + 1, maxTokens: c.newTokens, stopTokenIds: [] }));
  const seqs = c.prompts * c.n;
  const counts = new Map<number, number>();
  let firstDone = 0;
  let tFirst = 0;
  let generated = 0;
  const t0 = performance.now();
  for await (const ch of engine.stream(reqs)) {
    if (ch.tokens.length === 0) continue;
    const key = ch.request * c.n + ch.sample;
    const before = counts.get(key) ?? 0;
    counts.set(key, before + ch.tokens.length);
    generated += ch.tokens.length;
    if (before === 0 && ++firstDone === seqs) tFirst = performance.now();
  }
  const t1 = performance.now();
  if (generated !== seqs * c.newTokens) throw new Error(`sample ${c.name}: generated ${generated} tokens, expected ${seqs * c.newTokens}`);
  return { firstTokenSeconds: (tFirst - t0) / 1000, decodeSeconds: (t1 - tFirst) / 1000, decodeTokens: seqs * (c.newTokens - 1), totalSeconds: (t1 - t0) / 1000, generatedTokens: generated };
}

function rate(c: Case, t: GenerationTimes): number {
  if (c.metric === 'prefill') return (c.prompts * c.n * c.promptLen) / t.firstTokenSeconds;
  if (c.metric === 'decode') return t.decodeTokens / t.decodeSeconds;
  return t.generatedTokens / t.totalSeconds;
}

runGroup('sample', async (ctx) => {
  const q = ctx.quick;
  const layers = q ? 1 : 24;
  const rounds = 5;
  const cases: Case[] = [
    { name: 'sample.prefill', prompts: 1, n: 1, promptLen: q ? 64 : 256, newTokens: 1, metric: 'prefill' },
    { name: 'sample.decode.b1', prompts: 1, n: 1, promptLen: 16, newTokens: q ? 16 : 48, metric: 'decode' },
    { name: 'sample.decode.b4', prompts: 4, n: 1, promptLen: 16, newTokens: q ? 12 : 32, metric: 'decode' },
    { name: 'sample.decode.b16', prompts: 16, n: 1, promptLen: q ? 8 : 16, newTokens: q ? 8 : 24, metric: 'decode' },
    { name: 'sample.group4x4', prompts: 4, n: 4, promptLen: q ? 32 : 128, newTokens: q ? 8 : 32, metric: 'total' },
  ];
  const threads = nativeFeatures().threads;
  const nlcDir = findNodeLlamaCpp(ctx.root);
  const model = ensureQwenModel(layers, { gguf: nlcDir !== null }, ctx.log);
  // bf16 products (the trainer's default), as llama.cpp multiplies bf16 weights with bf16-rounded activations
  const lm = await CausalLM.load(model.dir, { matmulPrecision: 'bf16' });
  const engine = new Engine(lm, { kvBudgetBytes: 1 << 30 });
  const llama = nlcDir ? await LlamaCpp.load(nlcDir, model.gguf!, threads) : null;
  const nlcVersion = nlcDir ? (JSON.parse(readFileSync(join(nlcDir, 'package.json'), 'utf8')) as { version?: string }).version ?? '?' : null;
  // warm-up: page the weights in, first-touch the KV pools and scratch buffers
  await oursGenerate(engine, { ...cases[4]!, newTokens: 2 });
  if (llama) await llama.generate([prompt(99, 16)], 2, TEMPERATURE);
  const ours = cases.map(() => [] as number[]);
  const theirs = cases.map(() => [] as number[]);
  const bandwidth: number[] = []; // GB/s, read right before each decode.b1 run of ours
  const addon = kernelAddon();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i]!;
      if (c.name === 'sample.decode.b1') bandwidth.push(addon._memReadBandwidth(512, 2));
      ours[i]!.push(rate(c, await oursGenerate(engine, c)));
      if (llama) {
        const ps = Array.from({ length: c.prompts * c.n }, (_, k) => prompt(Math.floor(k / c.n), c.promptLen));
        theirs[i]!.push(rate(c, await llama.generate(ps, c.newTokens, TEMPERATURE)));
      }
    }
    ctx.log(`round ${r + 1}/${rounds}: ${cases.map((c, i) => `${c.name.slice(7)} ${ours[i]![r]!.toFixed(0)}${llama ? `/${theirs[i]![r]!.toFixed(0)}` : ''}`).join(', ')} tok/s (ours${llama ? '/llama.cpp' : ''})`);
  }
  engine.free();
  lm.free();
  await llama?.dispose();
  const depth = layers === 24 ? 'Qwen2.5-0.5B-shaped (24 layers)' : `Qwen2.5-0.5B-shaped with ${layers} of its 24 layers (--quick)`;
  cases.forEach((c, i) => {
    const shape =
      c.metric === 'prefill'
        ? `${c.promptLen}-token prompt, seconds to the first token`
        : c.metric === 'decode'
          ? `${c.prompts} sequence${c.prompts > 1 ? 's' : ''} of ${c.promptLen}-token prompts, ${c.newTokens} new tokens each, decode after the first token`
          : `4 prompts of ${c.promptLen} tokens x 4 samples, ${c.newTokens} new tokens each, all generated tokens / total seconds (prefill included; ours shares each prompt's prefill, llama.cpp prefills 16)`;
    const f: Figure = makeFigure({
      name: c.name,
      unit: 'tok/s',
      higherIsBetter: true,
      samples: ours[i]!,
      peer: llama ? { name: `llama.cpp (node-llama-cpp ${nlcVersion}, bf16 GGUF)`, samples: theirs[i]! } : null,
      note: `${depth}, random bf16 weights, ${threads} threads, temperature ${TEMPERATURE}; ${shape}; ${rounds} rounds${llama ? '' : `; ${LLAMA_CPP_INSTALL_HINT}`}`,
    });
    if (c.name === 'sample.decode.b1') {
      const bw = median(bandwidth);
      f.weight_bytes_per_token = model.weightBytesPerToken;
      f.roofline_fraction = (f.ours.median * model.weightBytesPerToken) / (bw * 1e9);
      f.note += `; roofline ${((bw * 1e9) / model.weightBytesPerToken).toFixed(1)} tok/s = ${bw.toFixed(1)} GB/s (median read bandwidth measured before each of these runs) / ${(model.weightBytesPerToken / 1e6).toFixed(0)} MB of bf16 weights per token`;
    }
    ctx.emit(f);
  });
});
