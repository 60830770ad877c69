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

// Full fine-tune keeps f32 master weights; with bf16 products each decoder projection multiplies a
// bf16 copy of its master (the speed of the LoRA path), which AdamW and setParam keep in step. The
// check: a bf16 model and an f32 twin holding the same master weights give the same log-probs
// within bf16 rounding, before and after an optimizer step of the bf16 model (its masters copied
// into the twin) and after a setParam on both.
describe("matmulPrecision: 'bf16' with fullFinetune", () => {
  const worst = (a: Float64Array, b: Float64Array) => a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i]!)), 0);
  const logpOf = async (lm: CausalLM) => Float64Array.from((await lm.forward(batch(), { keepForBackward: false })).logp);

  it('multiplies bf16 copies that follow the f32 masters through an optimizer step and setParam', async () => {
    const bf = await CausalLM.load(dir, { fullFinetune: true, matmulPrecision: 'bf16' });
    const f32 = await CausalLM.load(dir, { fullFinetune: true, matmulPrecision: 'fp32' });
    try {
      const b = batch();
      const grads: Float64Array[] = [];
      const logp0: Float64Array[] = [];
      for (const lm of [f32, bf]) {
        const pass = await lm.forward(b);
        logp0.push(Float64Array.from(pass.logp));
        await pass.backward(new Float32Array(pass.logp.length).fill(-1 / pass.logp.length));
        grads.push(Float64Array.from(lm.getGrad('model.layers.1.mlp.down_proj.weight')));
      }
      // as for LoRA above: a few 1e-3 of log-prob from bf16-rounded activations and weights (measured
      // 2026-11-25: 1.1e-3 before the step, 1.2e-3 after it, 1.3e-3 after setParam)
      expect(worst(logp0[0]!, logp0[1]!)).toBeLessThan(2e-2);
      let num = 0, den = 0;
      grads[0]!.forEach((v, i) => {
        num += (v - grads[1]![i]!) ** 2;
        den += v * v;
      });
      expect(Math.sqrt(num / den), 'relative L2 error of a weight gradient').toBeLessThan(5e-2);
      if (bf16Hardware) expect(worst(logp0[0]!, logp0[1]!), 'the bf16 copies are multiplied').toBeGreaterThan(1e-7);
      else expect(worst(logp0[0]!, logp0[1]!)).toBe(0);

      await bf.createOptimizer().step({ lr: 1e-2 });
      for (const p of bf.params()) f32.setParam(p.name, bf.getParam(p.name));
      const [f1, b1] = [await logpOf(f32), await logpOf(bf)];
      expect(worst(logp0[1]!, b1), 'the step moved the log-probs').toBeGreaterThan(0.1);
      expect(worst(f1, b1)).toBeLessThan(2e-2);

      const name = 'model.layers.1.mlp.down_proj.weight';
      const tripled = Float32Array.from(bf.getParam(name), (v) => 3 * v);
      bf.setParam(name, tripled);
      f32.setParam(name, tripled);
      const [f2, b2] = [await logpOf(f32), await logpOf(bf)];
      expect(worst(b1, b2), 'setParam moved the log-probs (measured 0.12)').toBeGreaterThan(0.05);
      expect(worst(f2, b2)).toBeLessThan(2e-2);
    } finally {
      bf.free();
      f32.free();
    }
  });
});
