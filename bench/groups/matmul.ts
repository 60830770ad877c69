/**
 * matmul.*: GFLOP/s of the forward product out[M,N] = inp[M,K] @ W^T that the model runs, on the
 * Qwen2.5-0.5B MLP shape K=896, N=4864, at M=512 (prefill / training) and M=16 (batched decode),
 * with bf16 and f32 stored weights, beside OpenBLAS and oneDNN (bench/peer_gemm.cc, when installed)
 * with the same thread count. matmul.bf16.*: bf16 products (activations rounded to bf16, AVX512_BF16;
 * matmulPrecision 'bf16', the trainer's default), the product oneDNN's bf16 computes;
 * matmul.bf16f32.*: the same weights with f32 activations (matmulPrecision 'fp32'). Rounds alternate ours (every case) and each peer
 * (every case); each side's figure for a round is the median of 5 timed batches of ~0.05 s (0.02 with --quick); the
 * peer shown is the faster one, the other is in the note.
 * Ours runs what the model runs for frozen weights (LoRA, sampling, evaluation): W packed once
 * into 48-column panels (impl 'packed', outside the timing, as the model does at load and as
 * oneDNN's weights are pre-packed here); where there is no packed form (bf16f32: BF16 weights with
 * f32 activations) the unpacked kernels. The note gives the unpacked kernels' figure too (what a
 * full fine-tune's changing weights run).
 */
import { makeFigure, median } from '../lib/figures.js';
import { buildGemmPeers, runGemmPeer, type GemmCase } from '../lib/gemm-peer.js';
import { runGroup } from '../lib/group.js';
import { MatmulTimer, kernelAddon } from '../lib/matmul.js';
import { formatNumber } from '../lib/table.js';

runGroup('matmul', async (ctx) => {
  const addon = kernelAddon();
  const info = addon._matmulKernelInfo();
  const rounds = ctx.quick ? 5 : 7;
  const batchSeconds = ctx.quick ? 0.02 : 0.05;
  const K = 896, N = 4864;
  const bf16m512: GemmCase = { op: 'fwd', dtype: 'BF16', M: 512, K, N };
  const bf16m16: GemmCase = { op: 'fwd', dtype: 'BF16', M: 16, K, N };
  // products: BF16 weights multiplied in bf16 (without AVX512_BF16 the f32 path runs: same figure as bf16f32)
  // packed: the packed forward runs here for this product (AVX-512; bf16 products need AVX512_BF16)
  const packedF32 = info.avx512;
  const packedBf16 = packedF32 && info.bf16DotCompiled === true;
  const specs: { name: string; c: GemmCase; products?: boolean; packed: boolean }[] = [
    { name: 'matmul.bf16.m512', c: bf16m512, products: true, packed: packedBf16 },
    { name: 'matmul.bf16.m16', c: bf16m16, products: true, packed: packedBf16 },
    { name: 'matmul.bf16f32.m512', c: bf16m512, packed: false },
    { name: 'matmul.bf16f32.m16', c: bf16m16, packed: false },
    { name: 'matmul.f32.m512', c: { op: 'fwd', dtype: 'F32', M: 512, K, N }, packed: packedF32 },
    { name: 'matmul.f32.m16', c: { op: 'fwd', dtype: 'F32', M: 16, K, N }, packed: packedF32 },
  ];
  const timer = new MatmulTimer(addon, batchSeconds);
  const { peers, notes } = buildGemmPeers(ctx.root, info.threads);
  for (const n of notes) ctx.log(n);
  const peerCases = [...new Set(specs.map((s) => s.c))]; // each product once (bf16 and bf16f32 share theirs)
  const ours = specs.map(() => [] as number[]);
  const unpacked = specs.map(() => [] as number[]);
  const theirs = new Map<string, number[][]>(peers.map((p) => [p.name, peerCases.map(() => [])]));
  for (let r = 0; r < rounds; r++) {
    specs.forEach((s, i) => {
      ours[i]!.push(timer.measureMedian(s.c, s.packed ? 'packed' : 'auto', 5, s.products ?? false));
      if (s.packed) unpacked[i]!.push(timer.measureMedian(s.c, 'auto', 5, s.products ?? false));
    });
    for (const p of peers) runGemmPeer(p, peerCases, batchSeconds * 5).forEach((g, i) => theirs.get(p.name)![i]!.push(g));
    ctx.log(`round ${r + 1}/${rounds}`);
  }
  const missing = notes.length > 0 ? `; ${notes.join('; ')}` : '';
  specs.forEach((s, i) => {
    const shape = `fwd M=${s.c.M} K=${K} N=${N}, ${s.c.dtype === 'BF16' ? 'bf16' : 'f32'} weights, ${info.threads} threads`;
    // each peer's median on this case (NaN: no such product), the fastest shown beside ours
    const j = peerCases.indexOf(s.c);
    const medians = j < 0 ? [] : peers.map((p) => ({ name: p.name, samples: theirs.get(p.name)![j]! })).filter((p) => p.samples.every(Number.isFinite));
    medians.sort((a, b) => median(b.samples) - median(a.samples));
    const best = medians;
    const others = best.slice(1).map((p) => `${p.name} ${formatNumber(median(p.samples))}`);
    const what = s.products
      ? `${shape}, bf16 products (activations rounded to bf16, as oneDNN's bf16; ours ${info.bf16DotCompiled ? 'AVX512_BF16' : 'without AVX512_BF16: f32 math'}; OpenBLAS has no bf16 product)`
      : s.c.dtype === 'BF16'
        ? `${shape} (ours: f32 activations, matmulPrecision fp32; oneDNN: bf16 x bf16; OpenBLAS has no bf16 product)`
        : shape;
    const layout = s.packed ? `; W packed once (48-column panels, as at model load; unpacked kernels ${formatNumber(median(unpacked[i]!))})` : '; unpacked W';
    const peerNote = best.length === 0 ? `; no peer: ${notes.join('; ') || 'no peer has this product'}` : others.length > 0 ? `; also ${others.join(', ')}` : missing;
    ctx.emit(makeFigure({ name: s.name, unit: 'GFLOP/s', higherIsBetter: true, samples: ours[i]!, peer: best[0] ?? null, note: `${what}${layout}${peerNote}; ${rounds} rounds` }));
  });
});
