// The model packs its frozen decoder weights once at load (native/core/model_load.cc packWeights,
// the CPU backend's 48-column panels) and its forward then reads them. What must hold:
//   - the packed bytes are what the layout says, counted here from the config (panels of 48
//     output columns, 4 bytes per step: a bf16 pair or an f32), for LoRA / inference models, and
//     none for a full fine-tune (its weights change every step) or with RREC_PACKED_WEIGHTS=0;
//   - training numerics do not move: log-probs and LoRA gradients of a batch whose rows are past
//     the unpacked kernels' switch to their own packed GEMM (M >= 32 tokens) are bit-identical with
//     and without the packed copies;
//   - decoding (1-4 rows per product) gives the same greedy tokens, and log-probs within the
//     float32 summation-order difference (2e-5 nats, as test/engine/scheduling.test.ts) of the
//     unpacked kernels' with f32 products; with bf16 products 1e-3: an ulp-level difference in an
//     activation can flip its rounding to bf16 at the next product (a 2^-9 relative step), so
//     orders differ by bf16, not f32, rounding there (seen: 2.4e-5).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { loadNative } from '../../src/native.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-packed-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const kernelInfo = (loadNative() as unknown as { _matmulKernelInfo(): { avx512: boolean; bf16DotCompiled: boolean } })._matmulKernelInfo();

async function withPacking<T>(on: boolean, f: () => Promise<T>): Promise<T> {
  const prev = process.env.RREC_PACKED_WEIGHTS;
  if (on) delete process.env.RREC_PACKED_WEIGHTS;
  else process.env.RREC_PACKED_WEIGHTS = '0';
  try {
    return await f();
  } finally {
    if (prev === undefined) delete process.env.RREC_PACKED_WEIGHTS;
    else process.env.RREC_PACKED_WEIGHTS = prev;
  }
}

/** Packed bytes of every decoder projection, from the config: ceil(N / 48) * 48 columns x 4 bytes per step. */
function expectedPackedBytes(c: { hiddenSize: number; numHeads: number; numKvHeads: number; headDim: number; intermediateSize: number; numLayers: number }, bf16: boolean): number {
  const C = c.hiddenSize, q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim, F = c.intermediateSize;
  const shapes: [number, number][] = [[q, C], [kv, C], [kv, C], [C, q], [F, C], [F, C], [C, F]]; // [N, K]
  let bytes = 0;
  for (const [N, K] of shapes) bytes += Math.ceil(N / 48) * 48 * (bf16 ? K / 2 : K) * 4;
  return bytes * c.numLayers;
}

function batch(vocab: number) {
  const make = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 41 + k * 13 + 7) % vocab);
  return packSequences([{ tokens: make(40, 1), targetStart: 5 }, { tokens: make(33, 2), targetStart: 20 }]);
}

for (const dtype of ['F32', 'BF16'] as const) {
  const dir = join(root, `qwen2-${dtype}`);
  writeTinyModel(dir, 'qwen2', { dtype });
  const precision = dtype === 'BF16' ? ('bf16' as const) : ('fp32' as const);
  const packs = kernelInfo.avx512 && (dtype === 'F32' || kernelInfo.bf16DotCompiled);

  describe(`packed decoder weights (${dtype} weights, matmulPrecision ${precision})`, () => {
    it('are made for frozen weights only, of the size the layout says', async () => {
      const lm = await CausalLM.load(dir, { matmulPrecision: precision });
      const full = await CausalLM.load(dir, { matmulPrecision: precision, fullFinetune: true });
      const off = await withPacking(false, () => CausalLM.load(dir, { matmulPrecision: precision }));
      try {
        expect(lm.config.packedWeightBytes).toBe(packs ? expectedPackedBytes(lm.config, dtype === 'BF16') : 0);
        expect(full.config.packedWeightBytes, 'full fine-tune: weights change every step').toBe(0);
        expect(off.config.packedWeightBytes, 'RREC_PACKED_WEIGHTS=0').toBe(0);
      } finally {
        lm.free();
        full.free();
        off.free();
      }
    });

    it.skipIf(!packs)('leave training log-probs and LoRA gradients bit-identical (rows >= 32)', async () => {
      const on = await CausalLM.load(dir, { matmulPrecision: precision });
      const off = await withPacking(false, () => CausalLM.load(dir, { matmulPrecision: precision }));
      try {
        const b = batch(on.config.vocabSize);
        const results = [];
        for (const lm of [on, off]) {
          const adapter = lm.createLora({ rank: 4, alpha: 8, seed: 3 });
          // B starts at zero: give it values so that every gradient (A's too) is non-zero
          for (const p of adapter.params())
            if (/lora_B/.test(p.name)) adapter.setParam(p.name, Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37) * 0.05));
          const pass = await lm.forward(b, { adapter });
          await pass.backward(new Float32Array(pass.logp.length).fill(-0.1));
          const grads = adapter.params().map((p) => Array.from(adapter.getGrad(p.name)));
          expect(grads.every((g) => g.some((x) => x !== 0)), 'every gradient is non-zero').toBe(true);
          results.push({ logp: Array.from(pass.logp), grads });
        }
        expect(results[0]!.logp).toEqual(results[1]!.logp);
        expect(results[0]!.grads).toEqual(results[1]!.grads);
      } finally {
        on.free();
        off.free();
      }
    });

    const tol = dtype === 'BF16' ? 1e-3 : 2e-5;
    it.skipIf(!packs)(`decode the same greedy tokens, log-probs within ${tol}`, async () => {
      const on = await CausalLM.load(dir, { matmulPrecision: precision });
      const off = await withPacking(false, () => CausalLM.load(dir, { matmulPrecision: precision }));
      try {
        const reqs = [1, 2, 3].map((k) => ({ prompt: Array.from({ length: 5 + k }, (_, i) => (i * 17 + k * 5) % 100), n: 2, temperature: 0, seed: k, maxTokens: 10 }));
        const [a, b] = [await new Engine(on).generate(reqs), await new Engine(off).generate(reqs)];
        for (let r = 0; r < reqs.length; r++)
          for (let s = 0; s < a[r]!.samples.length; s++) {
            const x = a[r]!.samples[s]!, y = b[r]!.samples[s]!;
            expect(Array.from(x.tokens), `request ${r} sample ${s}`).toEqual(Array.from(y.tokens));
            for (let i = 0; i < x.logprobs.length; i++) expect(Math.abs(x.logprobs[i]! - y.logprobs[i]!)).toBeLessThanOrEqual(tol);
          }
      } finally {
        on.free();
        off.free();
      }
    });
  });
}
