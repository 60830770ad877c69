// matmulPrecision: 'bf16' against the default 'fp32' on the same bf16 weights: log-probs and LoRA
// gradients stay within bf16 rounding of the activations, the option really changes the math
// where the CPU has AVX512_BF16 (and changes nothing where it has not), and bad values are refused.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CausalLM, createRandomModel, nativeFeatures, packSequences } from '../../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-precision-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'qwen2-bf16');
const bf16Hardware = nativeFeatures().matmulKernels === 'avx512-bf16';

beforeAll(async () => {
  await createRandomModel(dir, { architecture: 'qwen2', vocabSize: 300, hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 256 }, { seed: 5, dtype: 'BF16' });
});

// Two sequences of 70 and 90 tokens: M = 160 rows, above the packed-GEMM threshold where the
// bf16 path applies, and past one 64-query attention block.
function batch() {
  const make = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 31 + k * 7 + 1) % 300);
  return packSequences([{ tokens: make(70, 1), targetStart: 40 }, { tokens: make(90, 2), targetStart: 60 }]);
}

async function run(precision: 'fp32' | 'bf16') {
  const lm = await CausalLM.load(dir, { matmulPrecision: precision });
  expect(lm.config.matmulPrecision).toBe(precision);
  const adapter = lm.createLora({ rank: 4, alpha: 8, seed: 9 });
  // a non-zero B so that gradients of A are non-zero too
  for (const p of adapter.params())
    if (p.name.includes('lora_B')) adapter.setParam(p.name, Float32Array.from(adapter.getParam(p.name), (_, i) => Math.sin(i) * 0.05));
  const b = batch();
  const pass = await lm.forward(b, { adapter });
  const logp = Float64Array.from(pass.logp);
  await pass.backward(new Float32Array(logp.length).fill(-1 / logp.length));
  const grads = new Map(adapter.params().map((p) => [p.name, Float64Array.from(adapter.getGrad(p.name))]));
  lm.free();
  return { logp, grads };
}

describe("matmulPrecision: 'bf16'", () => {
  it('keeps log-probs and LoRA gradients within bf16 rounding of the fp32 results', async () => {
    const a = await run('fp32');
    const b = await run('bf16');
    let worstLogp = 0;
    a.logp.forEach((v, i) => (worstLogp = Math.max(worstLogp, Math.abs(v - b.logp[i]!))));
    // Each product is within ~2^-9 of its row's magnitude; through two layers and a 300-way
    // log-softmax of logits of size ~1 that is a few 1e-3 at most (measured 2026-11-25: 1.6e-3 for
    // log-probs, 5.3e-3 relative L2 for the worst gradient; LM head in bf16 too).
    expect(worstLogp).toBeLessThan(2e-2);
    let worstGrad = 0;
    for (const [name, g] of a.grads) {
      const h = b.grads.get(name)!;
      let num = 0, den = 0;
      g.forEach((v, i) => {
        num += (v - h[i]!) ** 2;
        den += v * v;
      });
      if (den > 0) worstGrad = Math.max(worstGrad, Math.sqrt(num / den));
    }
    expect(worstGrad, 'relative L2 error of the worst LoRA gradient').toBeLessThan(5e-2);
    if (bf16Hardware) expect(worstLogp, 'the bf16 path ran (results differ from fp32)').toBeGreaterThan(1e-7);
    else expect(worstLogp, 'without the AVX512_BF16 kernels, bf16 computes what fp32 does').toBe(0);
  });

  it('refuses an unknown precision, naming the value', async () => {
    await expect(CausalLM.load(dir, { matmulPrecision: 'int8' as never })).rejects.toThrow(/matmulPrecision must be "fp32" or "bf16", got "int8"/);
  });
});
