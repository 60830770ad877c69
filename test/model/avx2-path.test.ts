// What a CPU without AVX-512 runs: with the AVX-512 kernels switched off in this process
// (_avx512Kernels(false): matmul, LoRA and attention kernels all follow it), the matmuls take the
// AVX2 + FMA kernels (native/cpu/matmul_avx2.cc) and attention the generic loops. For each
// architecture's tiny float32 model: next-token log-probs against the float64 naive reference
// (the same bound as test/model/forward-naive.test.ts), and every full-fine-tune gradient against
// the default path's (the AVX-512 kernels here) within float32 summation order. The kernel-level
// test (test/kernels/matmul.test.ts) checks each AVX2 product against a float64 reference.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, nativeFeatures, packSequences } from '../../src/index.js';
import { loadNative } from '../../src/native.js';
import { naiveLogprobs } from '../reference/naive-forward.js';
import { ARCHS, writeTinyModel } from '../helpers/tiny-models.js';

const native = loadNative() as unknown as { _avx512Kernels(on: boolean): boolean; _matmulKernelInfo(): { avx2: boolean } };
const hasAvx2 = native._matmulKernelInfo().avx2;
const root = mkdtempSync(join(tmpdir(), 'rrec-avx2-path-'));
afterAll(() => {
  native._avx512Kernels(true);
  rmSync(root, { recursive: true, force: true });
});

const make = (n: number, k: number, vocab: number) => Array.from({ length: n }, (_, i) => (i * 37 + k * 11 + 3) % vocab);

async function run(dir: string, seqs: number[][], avx512: boolean) {
  native._avx512Kernels(avx512); // before loading: the model picks its weight copies at load
  const kernels = nativeFeatures().matmulKernels;
  const lm = await CausalLM.load(dir, { dtype: 'float32', fullFinetune: true });
  try {
    const batch = packSequences(seqs.map((tokens) => ({ tokens, targetStart: 1 })));
    const pass = await lm.forward(batch);
    const logp = Float64Array.from(pass.logp);
    await pass.backward(Float32Array.from(pass.logp, (_, i) => -1 / (1 + (i % 7))));
    const grads = new Map(lm.params().map((p) => [p.name, Float64Array.from(lm.getGrad(p.name))]));
    return { kernels, logp, grads, targetOffsets: batch.targetOffsets };
  } finally {
    lm.free();
  }
}

describe.each(ARCHS)('%s on the AVX2 path', (arch) => {
  it.skipIf(!hasAvx2)('log-probs match the naive reference and gradients the default path', async () => {
    const dir = join(root, arch);
    const model = writeTinyModel(dir, arch);
    const V = model.config.vocab_size;
    const seqs = [make(5, 1, V), make(21, 3, V), make(150, 4, V)];
    const avx2 = await run(dir, seqs, false);
    const dflt = await run(dir, seqs, true);
    expect(avx2.kernels).toBe('avx2');
    let worst = 0;
    seqs.forEach((tokens, s) => {
      const ref = naiveLogprobs(model, tokens);
      for (let j = 1; j < tokens.length; j++)
        worst = Math.max(worst, Math.abs(avx2.logp[avx2.targetOffsets[s]! + j - 1]! - ref[j - 1]![tokens[j]!]!));
    });
    // measured 2026-11-25: 3.3e-6 to 6.6e-6 (float32 rounding; the rotary angle's error at position 149)
    expect(worst, 'worst |log-prob - reference|').toBeLessThan(2e-5);
    let worstGrad = 0, worstName = '';
    for (const [name, g] of dflt.grads) {
      const h = avx2.grads.get(name)!;
      let num = 0, den = 0;
      g.forEach((v, i) => {
        num += (v - h[i]!) ** 2;
        den += v * v;
      });
      if (den === 0) continue;
      const d = Math.sqrt(num / den);
      if (d > worstGrad) [worstGrad, worstName] = [d, name];
    }
    // float32 sums in another order (and libm's tanh against the kernel's for Gemma2's cap);
    // measured 2026-11-25: 7.5e-7 to 1.7e-6
    expect(worstGrad, `worst relative L2 difference of a gradient (${worstName})`).toBeLessThan(2e-5);
  });
});
