/**
 * train.lora_layer, train.full_layer: forward + backward of one Qwen2.5-0.5B-shaped decoder layer
 * (hidden 896, 14 heads, 2 KV heads, head dim 64, intermediate 4864), batch 4 x 256 tokens (4 x 128
 * with --quick), bf16
 * weights as stored, beside PyTorch on the CPU (bench/peers/torch_layer.py: the same layer written
 * in torch, same shapes and thread count) when /usr/bin/python3 has torch.
 *   lora: rank 8 (alpha 16) on all seven projections; only the adapters get gradients.
 *   full: every weight, bias and norm gets a gradient (ours: CausalLM.load(dir, { fullFinetune })).
 * Ours runs through the public API on a 1-layer model with a 512-token vocabulary and one target
 * per sequence, so embedding, final norm and LM head add < 1% of the work. Rounds alternate ours
 * and torch (torch_layer.py --serve keeps one process), after warm-up passes on both sides.
 * Every round also measures the bf16 register-only peak (vdpbf16ps on every thread, 50 ms): the
 * figure's peak_fraction is ours (counted GFLOP / median ms) over that peak's median, so machine
 * drift moves both sides of the fraction alike (the nominal peak, ~820 GFLOP/s, is one reading).
 * FLOPs counted (forward, backward to the inputs and, for full, to the weights):
 *   projections 2 x tokens x (C (q + 2 kv) + q C + 3 C F) per product
 *   attention   2 x 2 x B x T(T+1)/2 x Hq x D forward (QK^T and PV on the causal half), backward 2x
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CausalLM, createRandomModel, nativeFeatures } from '../../src/index.js';
import { makeFigure, median } from '../lib/figures.js';
import { runGroup } from '../lib/group.js';
import { kernelAddon } from '../lib/matmul.js';
import { MALLOC_KEEP_ENV, TORCH_INSTALL_HINT, TorchLayerPeer, torchVersion } from '../lib/torch-peer.js';

const C = 896, Hq = 14, Hk = 2, D = 64, F = 4864;
const B = 4, RANK = 8;

function gflop(mode: 'lora' | 'full', T: number): number {
  const tokens = B * T;
  const proj = 2 * tokens * (C * (Hq * D + 2 * Hk * D) + Hq * D * C + 3 * C * F);
  const lora = 2 * tokens * RANK * 7 * (C + C) * 3;
  const attn = 2 * 2 * B * ((T * (T + 1)) / 2) * Hq * D;
  return (mode === 'lora' ? proj * 2 + attn * 3 + lora : proj * 3 + attn * 3) / 1e9;
}

runGroup('layer', async (ctx) => {
  const rounds = ctx.quick ? 5 : 7;
  const T = ctx.quick ? 128 : 256; // tokens per sequence
  const warmup = 3;
  const threads = nativeFeatures().threads;
  const addon = kernelAddon();
  const dir = join(tmpdir(), 'rrec-bench-qwen05-layer1');
  if (!existsSync(join(dir, 'model.safetensors')) || !existsSync(join(dir, 'config.json')))
    await createRandomModel(dir, { architecture: 'qwen2', vocabSize: 512, hiddenSize: C, numLayers: 1, numHeads: Hq, numKvHeads: Hk, intermediateSize: F, ropeTheta: 1e6 }, { seed: 1, dtype: 'BF16' });
  const tokens = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % 512);
  const seqOffsets = Int32Array.from({ length: B + 1 }, (_, i) => i * T);
  const targetRows = Int32Array.from({ length: B }, (_, i) => i * T + T - 2);
  const targetTokens = Int32Array.from({ length: B }, (_, i) => tokens[i * T + T - 1]!);
  const haveTorch = torchVersion() !== null;
  const script = join(ctx.root, 'bench', 'peers', 'torch_layer.py');

  for (const mode of ['lora', 'full'] as const) {
    // bf16 products, the trainer's default (matmul_precision) and what torch computes in bf16
    const lm = await CausalLM.load(dir, { fullFinetune: mode === 'full', matmulPrecision: 'bf16' });
    const adapter = mode === 'lora' ? lm.createLora({ rank: RANK, alpha: 2 * RANK }) : null;
    const ours = async (): Promise<number> => {
      const t0 = performance.now();
      const pass = await lm.forward({ tokens, seqOffsets, targetRows, targetTokens }, { adapter });
      await pass.backward(new Float32Array(B).fill(-1 / B));
      const ms = performance.now() - t0;
      (adapter ?? lm).zeroGrad();
      return ms;
    };
    const peer = haveTorch ? await TorchLayerPeer.start(script, [`--mode=${mode}`, `--batch=${B}`, `--seq=${T}`, `--rank=${RANK}`, `--threads=${threads}`, `--warmup=${warmup}`, '--dtype=bfloat16']) : null;
    for (let w = 0; w < warmup; w++) await ours(); // first touch of activation memory
    const a: number[] = [];
    const b: number[] = [];
    const peaks: number[] = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await ours());
      if (peer) b.push(await peer.step());
      const peak = addon._bf16Peak(0.05);
      if (peak !== null) peaks.push(peak);
      ctx.log(`${mode} round ${r + 1}/${rounds}: ours ${a[r]!.toFixed(0)} ms${peer ? `, torch ${b[r]!.toFixed(0)} ms` : ''}`);
    }
    await peer?.close();
    lm.free();
    const g = gflop(mode, T);
    const achieved = g / (median(a) / 1000);
    const peak = peaks.length > 0 ? median(peaks) : null;
    const what =
      mode === 'lora'
        ? `fwd+bwd, one Qwen2.5-0.5B layer, ${B}x${T} tokens, LoRA r${RANK} on all 7 projections, bf16 weights with bf16 products (matmulPrecision bf16), ${threads} threads`
        : `fwd+bwd, one Qwen2.5-0.5B layer, ${B}x${T} tokens, every weight gets a gradient (ours trains f32 copies of the bf16 weights; torch bf16 parameters), ${threads} threads`;
    ctx.emit({
      ...makeFigure({
        name: `train.${mode}_layer`,
        unit: 'ms',
        higherIsBetter: false,
        samples: a,
        peer: peer ? { name: `PyTorch ${peer.version} bf16`, samples: b } : null,
        note: `${what}; ${g.toFixed(1)} GFLOP counted, ours ~${achieved.toFixed(0)} GFLOP/s${peak !== null ? ` of a bf16 peak of ${peak.toFixed(0)} GFLOP/s measured in the same rounds` : ' (no AVX512_BF16: no bf16 peak)'}; ${rounds} rounds after ${warmup} warm-up${peer ? (process.env.GLIBC_TUNABLES === MALLOC_KEEP_ENV.GLIBC_TUNABLES ? '; both sides with glibc malloc kept from returning memory (GLIBC_TUNABLES, as run-all sets it)' : '; torch with GLIBC_TUNABLES (malloc keeps memory), ours without') : `; ${TORCH_INSTALL_HINT}`}`,
      }),
      peak_fraction: peak !== null ? achieved / peak : null,
    });
  }
});
