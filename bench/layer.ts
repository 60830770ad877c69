/**
 * LoRA forward + backward of one Qwen2.5-0.5B-shaped decoder layer (hidden 896, 14 heads, 2 KV
 * heads, head dim 64, intermediate 4864), batch 4 x 256 tokens, rank 8 on all seven projections,
 * bf16 weights — beside PyTorch on the CPU (Debian python3-torch, bench/peers/torch_layer.py, same
 * shapes and thread count) when it is installed. Runs are interleaved (ours, peer, ours, ...);
 * medians of --rounds (default 5).
 *
 * Ours runs through the public API on a 1-layer model with a 512-token vocabulary and one target
 * per sequence, so embedding, final norm and LM head add < 1% of the work.
 * FLOPs counted (forward + backward to the inputs; LoRA trains no base weights), see flops():
 *   projections 2 x 2 x tokens x (C (q + 2 kv) + q C + 3 C F)  (forward, and backward to inputs)
 *   attention   3 x 2 x 2 x B x T(T+1)/2 x Hq x D             (QK^T and PV on the causal half;
 *                                                             backward counted as twice forward)
 *   LoRA        small (rank 8).  For 4 x 256 tokens: 63.1 GFLOP.
 *
 * Run from the repository root after `npm install`:
 *   npm run bench -- --only=layer   (or: node dist/bench/bench/layer.js after one npm run bench)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CausalLM, createRandomModel, nativeFeatures } from '../src/index.js';

const args = process.argv.slice(2);
const option = (name: string, def: number): number => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : def;
};
const rounds = option('rounds', 5);
const B = option('batch', 4);
const T = option('seq', 256);
const rank = option('rank', 8);
const C = 896, Hq = 14, Hk = 2, D = 64, F = 4864;

/** Forward + backward-to-input FLOPs of the layer (the work both sides must do). */
function flops(): number {
  const tokens = B * T;
  const proj = 2 * tokens * (C * (Hq * D + 2 * Hk * D) + Hq * D * C + 3 * C * F);
  const lora = 2 * tokens * rank * 7 * (C + C) * 3; // A and B products, forward + two backward
  const attn = 2 * 2 * B * ((T * (T + 1)) / 2) * Hq * D; // QK^T and PV over the causal half
  return proj * 2 + attn * 3 + lora; // backward to inputs: one product per forward product; attention backward ~2x forward
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = join(tmpdir(), 'rrec-bench-qwen05-layer1');
  if (!existsSync(join(dir, 'model.safetensors'))) {
    await createRandomModel(dir, { architecture: 'qwen2', vocabSize: 512, hiddenSize: C, numLayers: 1, numHeads: Hq, numKvHeads: Hk, intermediateSize: F, ropeTheta: 1e6 }, { seed: 1, dtype: 'BF16' });
  }
  const lm = await CausalLM.load(dir);
  const adapter = lm.createLora({ rank, alpha: 2 * rank });
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % 512);
  const seqOffsets = Int32Array.from({ length: B + 1 }, (_, i) => i * T);
  const targetRows = Int32Array.from({ length: B }, (_, i) => i * T + T - 2);
  const targetTokens = Int32Array.from({ length: B }, (_, i) => tokens[i * T + T - 1]!);
  const ours = async (): Promise<number> => {
    const t0 = performance.now();
    const pass = await lm.forward({ tokens, seqOffsets, targetRows, targetTokens }, { adapter });
    await pass.backward(new Float32Array(B).fill(-1 / B));
    const ms = performance.now() - t0;
    adapter.zeroGrad();
    return ms;
  };
  const threads = nativeFeatures().threads;
  const peerScript = resolve('bench/peers/torch_layer.py');
  const python = '/usr/bin/python3';
  const hasTorch = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  const peer = (): number | null => {
    if (!hasTorch) return null;
    const r = spawnSync(python, [peerScript, `--batch=${B}`, `--seq=${T}`, `--rank=${rank}`, `--threads=${threads}`, '--repeats=1', '--warmup=1'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`torch peer failed: ${r.stderr}`);
    return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number[] }).ms[0]!;
  };
  // warm-up: the first passes first-touch the activation memory (slow 4 KiB page faults here)
  for (let w = 0; w < option("warmup", 3); w++) await ours();
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await ours());
    const p = peer();
    if (p !== null) b.push(p);
  }
  lm.free();
  const gflop = flops() / 1e9;
  const m = median(a);
  console.log(`train.lora_layer  Qwen2.5-0.5B layer, ${B}x${T} tokens, LoRA r${rank}, bf16 weights, ${threads} threads`);
  console.log(`  ours : median ${m.toFixed(1)} ms (min ${Math.min(...a).toFixed(1)}, max ${Math.max(...a).toFixed(1)}), ${(gflop / (m / 1000)).toFixed(0)} GFLOP/s (${gflop.toFixed(1)} GFLOP counted)`);
  if (b.length > 0) {
    const pm = median(b);
    console.log(`  torch: median ${pm.toFixed(1)} ms (min ${Math.min(...b).toFixed(1)}, max ${Math.max(...b).toFixed(1)}), ${(gflop / (pm / 1000)).toFixed(0)} GFLOP/s`);
    console.log(`  ratio torch / ours = ${(pm / m).toFixed(2)} (> 1: we are faster)`);
  } else {
    console.log('  torch: not installed (apt-get install python3-torch); no peer figure');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
